"""``python -m bench.scaleout``: figures of the scale-out topology, printed.

1. Delivery latency across processes: an update posted on worker A, seen by a reader
   attached to worker B (and, for comparison, by a reader on A itself), with each
   broadcast backend (Redis pub/sub; PostgreSQL LISTEN/NOTIFY), on PostgreSQL.
2. Memory: a worker process's own resident size, and nginx's per proxied stream (the
   load balancer's cost per reader), with N streams held open through nginx.
3. Recovery after a Redis restart: Redis is killed, an update is posted during the
   outage, Redis is started again; the time from Redis accepting connections again to
   the missed update reaching readers on both workers (the hubs reconnect with backoff,
   re-subscribe and fill the gap from the log).

Runs the same harness as tests/test_topology.py (``tests/topology.py``): real
``liveblog serve`` processes, the machine's PostgreSQL (a scratch database, dropped
afterwards), the shared Redis under a namespace of its own for (1), a private
redis-server on a free port for (2). Needs the ``test`` extra installed.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.client import Swarm, raise_open_files_limit
from liveblog.settings import Settings
from tests.factories import post_update
from tests.services import (
    REDIS_URL,
    fresh_postgres_database,
    postgres_settings,
    redis_namespace_url,
)
from tests.support import Editor, bearer
from tests.topology import (
    Reader,
    create_story,
    prepare,
    reading,
    running_nginx,
    running_redis,
    running_workers,
)


def ms(values: Sequence[float], fraction: float) -> str:
    ordered = sorted(values)
    value = ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
    return f"{value * 1000:7.1f}"


def summary(label: str, values: Sequence[float]) -> str:
    return (
        f"  {label:<36} p50 {ms(values, 0.5)} ms   p95 {ms(values, 0.95)} ms"
        f"   max {ms(values, 1.0)} ms   (n={len(values)})"
    )


async def latency(settings: Settings, editor: Editor, backend: str, posts: int) -> None:
    slug = f"latency-{backend}"
    with running_workers(settings, "a", "b") as (a, b):
        await create_story(a.url, editor, slug)
        on_b, on_a = Reader(b.url, slug, "on-b"), Reader(a.url, slug, "on-a")
        async with (
            reading([on_b, on_a]),
            httpx.AsyncClient(base_url=a.url, headers=bearer(editor.token)) as api,
        ):
            await post_update(api, slug, "warm-up")
            await on_b.wait_for(1)
            sent: dict[int, float] = {}
            returned: dict[int, float] = {}
            for n in range(posts):
                seq = n + 2
                sent[seq] = time.monotonic()
                await post_update(api, slug, f"update {n}")
                returned[seq] = time.monotonic()
                await on_b.wait_for(seq)
                await on_a.wait_for(seq)
                await asyncio.sleep(0.02)
    seqs = sorted(sent)
    print(f"{backend}: {posts} updates posted one by one on worker A")
    print(summary("post sent -> seen on B", [on_b.arrivals[s] - sent[s] for s in seqs]))
    print(summary("post sent -> seen on A (local)", [on_a.arrivals[s] - sent[s] for s in seqs]))
    print(summary("201 returned -> seen on B", [on_b.arrivals[s] - returned[s] for s in seqs]))
    print(summary("post request itself (A)", [returned[s] - sent[s] for s in seqs]))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


async def memory(settings: Settings, editor: Editor, work: Path, streams: int) -> None:
    slug = "memory"
    raise_open_files_limit(streams * 2 + 1024)
    with running_workers(settings, "a") as (worker,):
        await create_story(worker.url, editor, slug)
        async with httpx.AsyncClient(base_url=worker.url) as client:
            for _ in range(20):  # warm: pages, streams, API, as after some traffic
                await client.get(f"/stories/{slug}")
        started = rss_kib(worker.process.pid)
        with running_nginx(work / "nginx", [worker]) as nginx:
            nginx_workers = children(nginx.process.pid)  # worker_processes auto

            def nginx_rss() -> int:
                return sum(rss_kib(pid) for pid in nginx_workers)

            before = nginx_rss()
            swarm = Swarm("127.0.0.1", nginx.port, f"/stories/{slug}/events")
            await swarm.connect(streams)
            after = nginx_rss()
            app_after = rss_kib(worker.process.pid)
            await swarm.close()
    print(f"memory: one worker on PostgreSQL + Redis; {streams} streams through nginx")
    print(f"  worker RSS after start and 20 page views   {started / 1024:8.1f} MiB")
    growth = (app_after - started) / streams
    print(f"  worker RSS growth per stream               {growth:8.1f} KiB")
    print(f"  nginx workers' RSS growth per stream       {(after - before) / streams:8.1f} KiB")


async def recovery(
    settings: Settings, editor: Editor, work: Path, rounds: int, outage: float
) -> None:
    slug = "recovery"
    times: list[float] = []
    with running_redis(work / "redis") as redis_server:
        live = settings.model_copy(update={"broadcast_url": redis_server.url})
        with running_workers(live, "a", "b") as (a, b):
            await create_story(a.url, editor, slug)
            readers = [Reader(a.url, slug, "on-a"), Reader(b.url, slug, "on-b")]
            async with (
                reading(readers),
                httpx.AsyncClient(base_url=a.url, headers=bearer(editor.token)) as api,
            ):
                for seq in range(1, rounds + 1):
                    redis_server.kill()
                    await post_update(api, slug, "posted while Redis is down")
                    await asyncio.sleep(outage)
                    redis_server.start()  # returns once it accepts connections
                    up = time.monotonic()
                    for reader in readers:
                        await reader.wait_for(seq)
                    times.append(max(reader.arrivals[seq] for reader in readers) - up)
                    await asyncio.sleep(0.5)
    print(f"Redis restart: {rounds} rounds, down {outage:.1f} s each, one update posted meanwhile")
    print(summary("Redis up again -> update on A and B", times))


async def main(posts: int, rounds: int, outage: float, streams: int) -> None:
    with tempfile.TemporaryDirectory() as temp, fresh_postgres_database() as database_url:
        work = Path(temp)
        settings = postgres_settings(work, database_url)
        editor = await prepare(settings)
        for backend, url in (
            ("redis", redis_namespace_url(REDIS_URL)),
            ("postgres", database_url),
        ):
            live = settings.model_copy(update={"broadcast_url": url})
            await latency(live, editor, backend, posts)
        redis = settings.model_copy(update={"broadcast_url": redis_namespace_url(REDIS_URL)})
        await memory(redis, editor, work, streams)
        await recovery(settings, editor, work, rounds, outage)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--outage", type=float, default=1.0, help="seconds Redis stays down")
    parser.add_argument("--streams", type=int, default=2000, help="streams through nginx")
    args = parser.parse_args()
    asyncio.run(main(args.posts, args.rounds, args.outage, args.streams))
