"""``python -m bench.publish_path``: from the moment an editor's POST is written to the
moment readers have the update, first reader and last reader (issue 18, item 4).

The product as a user starts it (``liveblog demo --no-serve``, ``liveblog token demo``,
``liveblog serve`` with default logging). One editor posts updates one after another on a
keep-alive connection (``bench.client.Publisher``: the time is taken just before the
request is written); readers hold the story's stream open on raw sockets
(``bench.client.Swarm``, every reader must get every seq once and in order). For each
update: POST-to-first-frame (the fastest reader), POST-to-last-frame (the slowest), and
POST-to-answer (the editor's 201). Median and p99 over the updates.

Three patterns:

* ``quiet``: one reader, updates 100 ms apart (the path itself);
* ``crowd``: 2,000 readers, the same updates (the fan-out on top);
* ``burst``: 2,000 readers, updates back to back (an editor's queue under load).

Client and server share the machine (2 cores here): figures are for comparing before
and after a change on the same machine, not absolute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.client import Publisher, Swarm, percentile, raise_open_files_limit
from bench.crowd.server import Server, liveblog_command
from liveblog.demo import DEMO_SLUG, DEMO_USERNAME

HOST = "127.0.0.1"
BODY = (
    "Winds of 120 km/h reached the coast at noon. The harbour wall held, but the A4 "
    "bridge is closed and 30,000 homes are without power. More soon."
)


@dataclass(frozen=True)
class Pattern:
    name: str
    readers: int
    updates: int
    gap: float  # seconds between the end of one POST and the next


PATTERNS = {
    "quiet": Pattern("quiet", readers=1, updates=200, gap=0.1),
    "crowd": Pattern("crowd", readers=2000, updates=200, gap=0.1),
    "burst": Pattern("burst", readers=2000, updates=200, gap=0.0),
}


def user_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("LIVEBLOG_")}


def liveblog(*args: str) -> str:
    done = subprocess.run(
        [liveblog_command(), *args], env=user_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"liveblog {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def ms(values: list[float], fraction: float) -> str:
    return f"{percentile(values, fraction) * 1000:7.2f}"


def last_seq(port: int, token: str) -> int:
    request = urllib.request.Request(
        f"http://{HOST}:{port}/api/stories/{DEMO_SLUG}",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        seq: int = json.load(answer)["last_seq"]
    return seq


async def run_pattern(port: int, token: str, pattern: Pattern) -> dict[str, float]:
    swarm = Swarm(HOST, port, f"/stories/{DEMO_SLUG}/events")
    seq = last_seq(port, token)  # readers join at the end: each post is the next seq
    await swarm.connect(pattern.readers)
    publisher = Publisher(HOST, port, {"Authorization": f"Bearer {token}"})
    path = f"/api/stories/{DEMO_SLUG}/updates"
    first: list[float] = []
    last: list[float] = []
    answered: list[float] = []
    try:
        for n in range(pattern.updates):
            body = json.dumps({"body": f"{BODY} ({pattern.name} {n})"}).encode()
            status, answer, sent = await publisher.post(path, body)
            answered.append(time.monotonic() - sent)
            if status != 201:
                raise RuntimeError(f"POST answered {status}: {answer[:200]!r}")
            seq += 1
            if not await swarm.wait_for(seq, pattern.readers, within=10):
                raise RuntimeError(f"readers did not all get seq {seq} within 10 s")
            arrivals = swarm.arrivals[seq]
            first.append(min(arrivals) - sent)
            last.append(max(arrivals) - sent)
            if pattern.gap:
                await asyncio.sleep(pattern.gap)
    finally:
        await publisher.close()
        await swarm.close()
    if swarm.disorders:
        raise RuntimeError(f"{swarm.disorders} readers saw a seq skipped, repeated or reordered")
    print(
        f"{pattern.name:<6} {pattern.readers:>5} readers, {pattern.updates} updates"
        f"{'' if pattern.gap else ' back to back'}:"
    )
    print("                    median      p99   (ms)")
    print(f"  POST to first frame {ms(first, 0.5)}  {ms(first, 0.99)}")
    print(f"  POST to last frame  {ms(last, 0.5)}  {ms(last, 0.99)}")
    print(f"  POST to 201 answer  {ms(answered, 0.5)}  {ms(answered, 0.99)}")
    return {
        "first_p50_ms": statistics.median(first) * 1000,
        "first_p99_ms": percentile(first, 0.99) * 1000,
        "last_p50_ms": statistics.median(last) * 1000,
        "last_p99_ms": percentile(last, 0.99) * 1000,
    }


async def run(port: int, token: str, chosen: list[str]) -> None:
    for name in chosen:
        await run_pattern(port, token, PATTERNS[name])


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.publish_path",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Checked here, not by ``choices``: argparse checks an empty "*" (or a list default)
    # against the choices as one value, and refuses it (a bare run failed).
    parser.add_argument(
        "patterns", nargs="*", metavar="{quiet,crowd,burst}", help="all three by default"
    )
    options = parser.parse_args()
    unknown = [name for name in options.patterns if name not in PATTERNS]
    if unknown:
        parser.error(f"unknown patterns {unknown}; choose from {list(PATTERNS)}")
    chosen: list[str] = options.patterns or list(PATTERNS)
    raise_open_files_limit(10_000)
    work = Path(tempfile.mkdtemp(prefix="publish-path-"))
    try:
        data_dir = work / "data"
        liveblog("demo", "--no-serve", "--data-dir", str(data_dir))
        token = liveblog("token", DEMO_USERNAME, "--data-dir", str(data_dir), "--name", "bench")
        server = Server(data_dir, work / "server.log")
        server.start()
        try:
            asyncio.run(server.answering())
            asyncio.run(run(server.port, token.strip(), chosen))
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
