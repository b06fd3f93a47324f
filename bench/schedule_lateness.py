"""``python -m bench.schedule_lateness``: how late scheduled updates go out (issue 13).

``liveblog serve`` started as a user starts it (``bench.crowd.server``), on a fresh data
directory with a live story (``bench.crowd.seed``). Through the API, the bench schedules
updates (``POST /api/stories/{slug}/updates`` with ``publish_at``) and, for each, takes

* publish lateness: its ``created_at`` (the moment the scheduler published it, the
  server's clock) minus its ``publish_at``, read back from the API;
* reader lateness: the moment a reader's stream (``GET /stories/{slug}/events``, one
  raw connection opened before the schedules) received its ``update`` event, taken with
  ``time.time()`` in the bench, minus its ``publish_at`` (one machine, one clock). The
  scheduler stamps ``created_at`` when its round begins, before the transaction that
  publishes everything due: with many due at once, only this figure counts that
  transaction;
* published exactly once: the API says ``published``, the live reader received its
  event once, and the story's log, replayed from before the schedules, holds one
  ``update`` event for it.

Patterns, each on a server and data directory of its own:

1. ``spread``: 100 schedules 100 ms apart, the first about 5 s ahead;
2. ``burst``: 100 schedules for the same instant;
3. ``hostile``: ``spread`` while a crowd (``bench/schedule_crowd.py``, its own process)
   replays the whole log again and again with ``Last-Event-ID: 0`` (a story of 2,000
   updates: past the replay window, so from the database's log), plus slowloris
   connections and readers that never read;
4. ``restart``: 20 schedules made, the server stopped (Ctrl+C) before they are due and
   started again after: late by about the downtime, each published once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import uvloop

from bench.client import Publisher, Reader, Swarm, percentile, raise_open_files_limit
from bench.crowd.seed import Seeded, seed
from bench.crowd.server import HOST, Server, request, scan_log
from bench.run import load_average, machine

PATTERNS = ("spread", "burst", "hostile", "restart")
API_TIMEOUT = 30.0


def say(line: str = "") -> None:
    print(line, flush=True)


def iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")


def wall_of(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def same_time(text: str, wall: float) -> bool:
    return abs(wall_of(text) - wall) < 0.0005


@dataclass
class Schedule:
    due: float  # publish_at, as time.time()
    id: int = 0
    status: int = 0  # the API's answer to the schedule
    answered: float = 0.0  # when it answered (time.time())
    state: str = ""  # read back from the API afterwards
    published: float = float("nan")  # its created_at, the server's clock
    received: list[float] = field(default_factory=list)  # the live reader's arrivals
    logged: int = 0  # update events carrying its id in the story's log


@dataclass
class Outcome:
    pattern: str
    schedules: list[Schedule]
    notes: list[str] = field(default_factory=list)

    def publish_ms(self) -> list[float]:
        return [
            (each.published - each.due) * 1000
            for each in self.schedules
            if not math.isnan(each.published)
        ]

    def reader_ms(self) -> list[float]:
        return [(each.received[0] - each.due) * 1000 for each in self.schedules if each.received]

    def once(self) -> int:
        return sum(
            1
            for each in self.schedules
            if each.state == "published" and len(each.received) == 1 and each.logged == 1
        )


class Watcher(Reader):
    """A reader's stream: when each ``update`` event arrived, by update id (time.time())."""

    def __init__(self, swarm: Swarm, request: bytes) -> None:
        super().__init__(swarm)
        self.request = request
        self.arrivals: dict[int, list[float]] = {}
        self.opened = asyncio.get_running_loop().create_future()
        self.changed = asyncio.Event()
        self._wall = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self._wall = time.time()
        super().data_received(data)

    def _block(self, data: bytes, start: int, end: int, now: float) -> None:
        if not self.opened.done():
            self.opened.set_result(None)
        block = data[start:end]
        if b"event: update\n" not in block:
            return
        line = block[block.index(b"data: ") + 6 :].split(b"\n", 1)[0]
        update_id = json.loads(line)["id"]
        self.arrivals.setdefault(update_id, []).append(self._wall)
        self.changed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("the stream closed before it opened"))
        self.changed.set()

    async def until(self, ids: set[int], deadline: float) -> bool:
        """Wait until every id has arrived (True) or ``deadline`` passes (time.time())."""
        while not ids <= self.arrivals.keys():
            self.changed.clear()
            try:
                async with asyncio.timeout(max(0.0, deadline - time.time())):
                    await self.changed.wait()
            except TimeoutError:
                return False
            if self.closed:
                return ids <= self.arrivals.keys()
        return True


async def open_watcher(port: int, slug: str, last_event_id: int | None = None) -> Watcher:
    swarm = Swarm(HOST, port, f"/stories/{slug}/events")
    resume = "" if last_event_id is None else f"Last-Event-ID: {last_event_id}\r\n"
    head = (
        f"GET /stories/{slug}/events HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Accept: text/event-stream\r\nCache-Control: no-cache\r\n{resume}\r\n"
    )
    watcher = Watcher(swarm, head.encode())
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(API_TIMEOUT):
        await loop.create_connection(lambda: watcher, HOST, port)
        await watcher.opened
    return watcher


async def api_get(port: int, token: str, path: str) -> dict[str, Any]:
    async with asyncio.timeout(API_TIMEOUT):
        status, body = await request(port, "GET", path, {"Authorization": f"Bearer {token}"})
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {body[:200]!r}")
    found: dict[str, Any] = json.loads(body)
    return found


async def last_seq(port: int, seeded: Seeded) -> int:
    story = await api_get(port, seeded.token, f"/api/stories/{seeded.slug}")
    return int(story["last_seq"])


async def schedule_all(port: int, seeded: Seeded, dues: list[float]) -> list[Schedule]:
    """POST one scheduled update per due time, one after the other (one editor)."""
    publisher = Publisher(HOST, port, {"Authorization": f"Bearer {seeded.token}"})
    path = f"/api/stories/{seeded.slug}/updates"
    made: list[Schedule] = []
    try:
        for n, due in enumerate(dues):
            body = {"body": f"Scheduled update {n + 1} of {len(dues)}.", "publish_at": iso(due)}
            async with asyncio.timeout(API_TIMEOUT):
                status, answer, _ = await publisher.post(path, json.dumps(body).encode())
            schedule = Schedule(due=due, status=status, answered=time.time())
            if status == 201:
                data = json.loads(answer)
                schedule.id = int(data["id"])
                if data["state"] != "scheduled" or not same_time(data["publish_at"], due):
                    raise RuntimeError(f"unexpected answer to a schedule: {data}")
            made.append(schedule)
    finally:
        await publisher.close()
    return made


async def collect(
    port: int, seeded: Seeded, schedules: list[Schedule], live: Watcher | None, head: int
) -> list[str]:
    """Wait for the events, then read back each schedule (API) and count its events in
    the story's log (a replay from ``head``, the last event before the schedules)."""
    notes: list[str] = []
    wanted = {each.id for each in schedules if each.id}
    deadline = max(each.due for each in schedules) + 60.0
    if live is not None:
        if not await live.until(wanted, deadline):
            notes.append(f"live reader: {len(wanted - live.arrivals.keys())} never arrived")
        await asyncio.sleep(1.0)  # anything twice would come now
        live.close()
        for each in schedules:
            each.received = live.arrivals.get(each.id, [])
    for each in schedules:
        if not each.id:
            continue
        data = await api_get(port, seeded.token, f"/api/stories/{seeded.slug}/updates/{each.id}")
        each.state = data["state"]
        if data["state"] == "published":
            each.published = wall_of(data["created_at"])
            if not same_time(data["publish_at"], each.due):
                notes.append(f"update {each.id}: publish_at changed to {data['publish_at']}")
    log = await open_watcher(port, seeded.slug, head)
    if not await log.until(wanted, time.time() + API_TIMEOUT):
        notes.append(f"log replay: {len(wanted - log.arrivals.keys())} not in the log")
    await asyncio.sleep(1.0)
    log.close()
    for each in schedules:
        each.logged = len(log.arrivals.get(each.id, []))
    return notes


async def fresh_server(
    work: Path, name: str, updates: int, rng: random.Random
) -> tuple[Server, Seeded]:
    seeded = await seed(work / name, updates=updates, rng=rng)
    server = Server(work / name, work / f"{name}.log")
    server.start()
    await server.answering()
    return server, seeded


async def timed(
    server: Server, seeded: Seeded, dues: Callable[[float], list[float]]
) -> tuple[list[Schedule], list[str]]:
    """A reader connected, the schedules made, everything collected."""
    head = await last_seq(server.port, seeded)
    live = await open_watcher(server.port, seeded.slug)
    schedules = await schedule_all(server.port, seeded, dues(time.time()))
    notes = await collect(server.port, seeded, schedules, live, head)
    late_answers = [each for each in schedules if each.answered > each.due]
    if late_answers:
        notes.append(f"{len(late_answers)} schedules were answered after their own time")
    return schedules, notes


def spread(count: int, lead: float, gap: float) -> Callable[[float], list[float]]:
    return lambda now: [round(now + lead + n * gap, 3) for n in range(count)]


def burst(count: int, lead: float) -> Callable[[float], list[float]]:
    return lambda now: [round(now + lead, 3)] * count


async def run_plain(args: argparse.Namespace, work: Path, pattern: str) -> Outcome:
    server, seeded = await fresh_server(work, pattern, args.seed_updates, random.Random(1))
    try:
        plan = (
            spread(args.schedules, args.lead, args.gap)
            if pattern == "spread"
            else burst(args.schedules, args.lead)
        )
        schedules, notes = await timed(server, seeded, plan)
    finally:
        server.stop()
    return Outcome(pattern, schedules, notes + log_notes(server))


async def run_hostile(args: argparse.Namespace, work: Path) -> Outcome:
    server, seeded = await fresh_server(work, "hostile", args.hostile_updates, random.Random(3))
    crowd: asyncio.subprocess.Process | None = None
    try:
        head = await last_seq(server.port, seeded)
        crowd = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.schedule_crowd", str(server.port), seeded.slug,
            str(head), str(args.replay), str(args.slowloris), str(args.holders),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert crowd.stdout is not None and crowd.stdin is not None
        async with asyncio.timeout(120):
            if await crowd.stdout.readline() != b"ready\n":
                raise RuntimeError("the crowd process did not start")
        await asyncio.sleep(args.settle)  # the replays under way
        cpu = server.cpu_seconds()
        started = time.monotonic()
        schedules, notes = await timed(
            server, seeded, spread(args.schedules, args.hostile_lead, args.gap)
        )
        busy = (server.cpu_seconds() - cpu) / (time.monotonic() - started)
        crowd.stdin.close()
        async with asyncio.timeout(120):
            out, _ = await crowd.communicate()
        done: dict[str, Any] = json.loads(out)
        notes.insert(
            0,
            f"crowd: {args.replay} replay readers in a loop (Last-Event-ID: 0, {head} events "
            f"each), {args.slowloris} slowloris, {args.holders} holders; "
            f"{done['replays']} whole replays ({done['replayed_events']} events) in "
            f"{done['seconds']:.0f} s, {done['failed']} cut short, "
            f"{done['connect_errors']} connect errors; server CPU {busy:.0%} of a core "
            "while the schedules ran",
        )
        if done["first_problem"]:
            notes.append(f"crowd's first problem: {done['first_problem']}")
    finally:
        if crowd is not None and crowd.returncode is None:
            crowd.kill()
            await crowd.wait()
        server.stop()
    return Outcome("hostile", schedules, notes + log_notes(server))


async def run_restart(args: argparse.Namespace, work: Path) -> Outcome:
    server, seeded = await fresh_server(work, "restart", args.seed_updates, random.Random(4))
    try:
        head = await last_seq(server.port, seeded)
        schedules = await schedule_all(
            server.port, seeded, spread(args.restart_schedules, args.lead, 0.05)(time.time())
        )
    finally:
        server.stop()
    stopped = time.time()
    first_due = min(each.due for each in schedules)
    # Down until ``downtime`` after the first schedule was due.
    await asyncio.sleep(max(0.0, first_due + args.downtime - time.time()))
    again = Server(server.data_dir, server.log_path)
    again.start()
    try:
        began = time.time()
        await again.answering()
        up = time.time()
        live = await open_watcher(again.port, seeded.slug, head)
        notes = await collect(again.port, seeded, schedules, live, head)
    finally:
        again.stop()
    early = sum(1 for each in schedules if each.published < stopped)
    notes.insert(
        0,
        f"server stopped {first_due - stopped:.1f} s before the first was due, started "
        f"again {began - first_due:.1f} s after it, answering {up - first_due:.1f} s after "
        f"it; {early} published before the stop; the reader connected after the start "
        "(Last-Event-ID: the event before the schedules)",
    )
    return Outcome("restart", schedules, notes + log_notes(again))


def log_notes(server: Server) -> list[str]:
    scan = scan_log(server.log_path)
    notes = []
    if scan.errors:
        notes.append(f"server log: {scan.errors} errors, first: {scan.first_errors[0]}")
    if scan.pool_waits:
        notes.append(f"server log: {scan.pool_waits} pool waits")
    if server.exit_status not in (0, None):
        notes.append(f"server exited with status {server.exit_status}")
    return notes


def figures(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"median {statistics.median(values):.0f} ms, p95 {percentile(values, 0.95):.0f} ms, "
        f"max {max(values):.0f} ms"
    )


def report(outcome: Outcome, what: str) -> None:
    total = len(outcome.schedules)
    made = sum(1 for each in outcome.schedules if each.status == 201)
    say(f"{outcome.pattern}: {what}")
    say(f"  scheduled (201):   {made}/{total}")
    say(f"  publish lateness:  {figures(outcome.publish_ms())} (created_at - publish_at)")
    say(f"  reader lateness:   {figures(outcome.reader_ms())} (stream arrival - publish_at)")
    say(f"  published once:    {outcome.once()}/{total} (API state, live stream, story log)")
    for note in outcome.notes:
        say(f"  note: {note}")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.schedule_lateness",
        description="How late scheduled updates are published and reach a reader, "
        "against `liveblog serve` started as a user starts it.",
    )
    parser.add_argument(
        "--patterns", default=",".join(PATTERNS), help=f"any of {','.join(PATTERNS)} (all)"
    )
    parser.add_argument("--schedules", type=int, default=100, help="per pattern (100)")
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between spread ones")
    parser.add_argument("--lead", type=float, default=5.0, help="seconds to the first (5)")
    parser.add_argument("--seed-updates", type=int, default=20, help="story's updates (20)")
    parser.add_argument("--hostile-updates", type=int, default=2000, help="(2000)")
    parser.add_argument("--hostile-lead", type=float, default=10.0, help="(10)")
    parser.add_argument("--replay", type=int, default=300, help="looping replay readers (300)")
    parser.add_argument("--slowloris", type=int, default=100, help="(100)")
    parser.add_argument("--holders", type=int, default=100, help="never-reading readers (100)")
    parser.add_argument("--settle", type=float, default=5.0, help="crowd's head start, s (5)")
    parser.add_argument("--restart-schedules", type=int, default=20, help="(20)")
    parser.add_argument(
        "--downtime", type=float, default=5.0, help="s down after the first is due (5)"
    )
    args = parser.parse_args(argv)
    args.patterns = [name for name in args.patterns.split(",") if name]
    unknown = set(args.patterns) - set(PATTERNS)
    if unknown:
        parser.error(f"unknown patterns: {', '.join(sorted(unknown))}")
    return args


async def run(args: argparse.Namespace) -> int:
    failed = 0
    with tempfile.TemporaryDirectory(prefix="liveblog-schedule-") as tmp:
        work = Path(tmp)
        for pattern in args.patterns:
            try:
                if pattern in ("spread", "burst"):
                    outcome = await run_plain(args, work, pattern)
                elif pattern == "hostile":
                    outcome = await run_hostile(args, work)
                else:
                    outcome = await run_restart(args, work)
            except Exception as exc:
                say(f"{pattern}: FAILED: {type(exc).__name__}: {exc}")
                failed += 1
                continue
            what = {
                "spread": f"{args.schedules} schedules {args.gap * 1000:.0f} ms apart, "
                f"the first {args.lead:.0f} s ahead, one reader",
                "burst": f"{args.schedules} schedules for one instant {args.lead:.0f} s ahead, "
                "one reader",
                "hostile": f"spread ({args.schedules}, {args.gap * 1000:.0f} ms apart, the first "
                f"{args.hostile_lead:.0f} s ahead) under a hostile crowd",
                "restart": f"{args.restart_schedules} schedules 50 ms apart, falling due while "
                "the server is stopped",
            }[pattern]
            report(outcome, what)
            if outcome.once() != len(outcome.schedules):
                failed += 1
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    raise_open_files_limit(args.replay + args.slowloris + args.holders + 1024)
    info = machine()
    say(
        f"Machine: {info['nproc']} cores ({os.cpu_count()} online), {info['cpu']}, "
        f"{info['memory']} memory; Python {platform.python_version()}; "
        f"load average {info['load_before']}"
    )
    say(
        "(publish lateness: the server's created_at, stamped when the scheduler's round "
        "begins; reader lateness also counts that round's transaction and the fan-out)"
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        status = runner.run(run(args))
    say(f"load average after: {load_average()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
