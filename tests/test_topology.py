"""The scale-out topology, natively: two ``liveblog serve`` processes on PostgreSQL, a
broadcast backend between them, Debian's nginx in front configured by the very template
docker-compose mounts. Readers reconnect as browsers do (Last-Event-ID), and every test
checks that each reader got every sequence number once, in order, through faults:
Redis restarting, PostgreSQL terminating the LISTEN connection, a worker SIGKILLed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from liveblog.settings import Settings
from tests.factories import end_story, last_seq, post_update
from tests.services import (
    REDIS_URL,
    postgres_database,
    postgres_settings,
    postgres_template,
    redis_namespace_url,
    require_redis,
)
from tests.support import Editor, bearer
from tests.topology import (
    Nginx,
    Reader,
    Worker,
    create_story,
    prepare,
    reading,
    running_nginx,
    running_redis,
    running_workers,
)

__all__ = ["postgres_database", "postgres_template"]  # fixtures

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SLUG = "summit"


@pytest.fixture
def settings(tmp_path: Path, postgres_database: str) -> Settings:
    return postgres_settings(tmp_path, postgres_database, heartbeat_interval=1.0)


@pytest.fixture
async def editor(settings: Settings) -> Editor:
    return await prepare(settings)


def child_processes(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def broadcast_url(kind: str, settings: Settings) -> str:
    if kind == "redis":
        require_redis()
        return redis_namespace_url(REDIS_URL)
    assert settings.database_url is not None
    return settings.database_url  # LISTEN/NOTIFY in the app's own database


def api(base_url: str, editor: Editor) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, headers=bearer(editor.token), timeout=30)


def assert_every_seq_once_in_order(readers: list[Reader], last: int) -> None:
    for reader in readers:
        assert reader.seqs == list(range(1, last + 1)), (reader.name, reader.seqs)


async def finish(
    readers: list[Reader], tasks: list[asyncio.Task[None]], via: httpx.AsyncClient
) -> int:
    """End the story (its last event closes every stream) and wait for every reader to
    be told 204; returns the last sequence number."""
    await end_story(via, SLUG)
    async with asyncio.timeout(30):
        await asyncio.gather(*tasks)
    return await last_seq(via, SLUG)


@dataclass
class TwoWorkers:
    a: Worker
    b: Worker
    readers: list[Reader]  # one on each worker
    tasks: list[asyncio.Task[None]]
    on_a: httpx.AsyncClient
    on_b: httpx.AsyncClient


@asynccontextmanager
async def two_workers_in_step(live: Settings, editor: Editor) -> AsyncIterator[TwoWorkers]:
    """Workers a and b on ``live``, a reader on each, and two updates (one posted
    through each worker) that both readers have had: the state before a fault."""
    with running_workers(live, "a", "b") as (a, b):
        await create_story(a.url, editor, SLUG)
        readers = [Reader(a.url, SLUG, "on-a"), Reader(b.url, SLUG, "on-b")]
        async with (
            reading(readers) as tasks,
            api(a.url, editor) as on_a,
            api(b.url, editor) as on_b,
        ):
            await post_update(on_a, SLUG, "before 1")
            await post_update(on_b, SLUG, "before 2")
            for reader in readers:
                await reader.wait_for(2)
            yield TwoWorkers(a, b, readers, tasks, on_a, on_b)


@pytest.fixture
def workers(settings: Settings, request: pytest.FixtureRequest) -> Iterator[list[Worker]]:
    kind: str = request.param
    with running_workers(
        settings.model_copy(update={"broadcast_url": broadcast_url(kind, settings)}), "a", "b"
    ) as started:
        yield started


@pytest.fixture
def nginx(workers: list[Worker], tmp_path: Path) -> Iterator[Nginx]:
    """nginx in front of ``workers``."""
    with running_nginx(tmp_path / "nginx", workers) as started:
        yield started


@pytest.mark.parametrize("workers", ["redis", "postgres"], indirect=True)
async def test_an_update_posted_on_one_worker_reaches_readers_of_the_other(
    workers: list[Worker], nginx: Nginx, editor: Editor
) -> None:
    a, b = workers
    await create_story(a.url, editor, SLUG)
    readers = [Reader(a.url, SLUG, "direct-a"), Reader(b.url, SLUG, "direct-b")]
    readers += [Reader(nginx.url, SLUG, f"nginx-{n}") for n in range(4)]
    async with (
        reading(readers) as tasks,
        api(a.url, editor) as on_a,
        api(b.url, editor) as on_b,
        api(nginx.url, editor) as through_nginx,
    ):
        for n, via in enumerate([on_a, on_b, on_a, through_nginx, on_b, on_a]):
            await post_update(via, SLUG, f"update {n}")
        last = await finish(readers, tasks, through_nginx)
    assert last == 7  # six updates and the end
    assert_every_seq_once_in_order(readers, last)
    # The readers on B heard A's posts (and the other way round): every process has all.
    assert all(reader.connections == 1 for reader in readers)


@pytest.mark.parametrize("workers", ["redis"], indirect=True)
async def test_a_killed_worker_loses_nothing_for_readers_reconnecting_through_nginx(
    workers: list[Worker], nginx: Nginx, editor: Editor
) -> None:
    a, b = workers
    await create_story(a.url, editor, SLUG)
    readers = [Reader(nginx.url, SLUG, f"nginx-{n}") for n in range(6)]
    async with reading(readers) as tasks, api(nginx.url, editor) as through_nginx:
        for n in range(3):
            await post_update(through_nginx, SLUG, f"before {n}")
        for reader in readers:
            await reader.wait_for(3)
        b.kill()
        for n in range(3):
            await post_update(through_nginx, SLUG, f"after {n}")
        last = await finish(readers, tasks, through_nginx)
    assert last == 7
    assert_every_seq_once_in_order(readers, last)
    # Round robin put some readers on B; they came back through nginx, to A.
    assert any(reader.connections >= 2 for reader in readers)


async def test_restarting_redis_mid_stream_loses_nothing(
    settings: Settings, editor: Editor, tmp_path: Path
) -> None:
    with running_redis(tmp_path / "redis") as redis_server:
        live = settings.model_copy(update={"broadcast_url": redis_server.url})
        async with two_workers_in_step(live, editor) as two:
            redis_server.kill()
            # Posts succeed while the broadcast is down: they are in the log.
            await post_update(two.on_a, SLUG, "during 1")
            await post_update(two.on_b, SLUG, "during 2")
            health = await two.on_a.get("/healthz")
            assert health.status_code == 503, health.text
            assert health.json()["broadcast"].startswith("error")
            assert health.json()["database"] == "ok"

            redis_server.start()
            for reader in two.readers:
                await reader.wait_for(4)  # the gap, filled from the log
            await post_update(two.on_b, SLUG, "after 1")
            await post_update(two.on_a, SLUG, "after 2")
            for reader in two.readers:
                await reader.wait_for(6)
            for worker in (two.a, two.b):
                async with httpx.AsyncClient(base_url=worker.url) as client:
                    assert (await client.get("/healthz")).status_code == 200
            last = await finish(two.readers, two.tasks, two.on_a)
    assert last == 7
    assert_every_seq_once_in_order(two.readers, last)
    assert all(reader.connections == 1 for reader in two.readers)  # nobody had to reconnect


async def test_terminating_the_listen_connection_loses_nothing(
    settings: Settings, editor: Editor
) -> None:
    assert settings.database_url is not None
    live = settings.model_copy(update={"broadcast_url": settings.database_url})
    async with two_workers_in_step(live, editor) as two:
        with psycopg.connect(settings.database_url, autocommit=True) as admin:
            terminated = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'liveblog-listen'"
                " AND datname = current_database()"
            ).fetchall()
        assert terminated == [(True,), (True,)]  # one LISTEN connection per worker
        for n in range(4):
            await post_update(two.on_a if n % 2 else two.on_b, SLUG, f"through the fault {n}")
        last = await finish(two.readers, two.tasks, two.on_a)
    assert last == 7
    assert_every_seq_once_in_order(two.readers, last)
    assert all(reader.connections == 1 for reader in two.readers)


async def test_serve_with_several_workers_shares_one_broadcast(
    settings: Settings, editor: Editor
) -> None:
    """``liveblog serve --workers 2``: uvicorn's processes share one port, the kernel
    spreads connections over them, the broadcast backend joins them up."""
    live = settings.model_copy(update={"broadcast_url": broadcast_url("redis", settings)})
    with running_workers(live, "many", workers_each=2) as (server,):
        await create_story(server.url, editor, SLUG)
        readers = [Reader(server.url, SLUG, f"reader-{n}") for n in range(6)]
        async with reading(readers) as tasks, api(server.url, editor) as client:
            for n in range(6):
                await post_update(client, SLUG, f"update {n}")
            last = await finish(readers, tasks, client)
        assert len(child_processes(server.process.pid)) >= 2  # the workers
    assert last == 7
    assert_every_seq_once_in_order(readers, last)
