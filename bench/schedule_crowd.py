"""The hostile crowd of ``bench.schedule_lateness``, in a process of its own:
``python -m bench.schedule_crowd PORT SLUG HEAD REPLAY SLOWLORIS HOLDERS``.

* ``REPLAY`` readers in a loop: each connects with ``Last-Event-ID: 0``, reads the
  story's log up to ``HEAD`` (checked id by id, ``bench.crowd.clients.Checked``),
  hangs up and comes back at once, forcing replay after replay;
* ``SLOWLORIS`` connections that send a header a byte a second, never finished;
* ``HOLDERS`` readers that ask for the log from the start and never read a byte.

It prints ``ready`` once every connection has been opened, runs until its stdin is
closed, then prints what it did as one line of JSON. The crowd has its own event loop
(and core, when there is one free) so that the bench's own reader, which times the
scheduled updates, does not wait behind the crowd's parsing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import uvloop

from bench.client import raise_open_files_limit
from bench.crowd.clients import (
    Checked,
    Group,
    Holder,
    Slowloris,
    drip,
    open_members,
    stream_request,
)
from bench.crowd.server import HOST

REPLAY_TIMEOUT = 120.0  # seconds one replay may take before it is given up


class Replayer(Checked):
    """One replay: done once it has ``target`` (or the server closed it)."""

    def __init__(self, group: Group, request: bytes, target: int) -> None:
        super().__init__(group, request, expect=1, target=target)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.complete = False  # had every event up to the target, once, in order

    def itself(self) -> Replayer:
        return self

    def _served(self, now: float) -> None:
        super()._served(now)
        self.complete = not self.problem
        if not self.done.done():
            self.done.set_result(None)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.done.done():
            self.done.set_result(None)


class Tally:
    def __init__(self) -> None:
        self.replays = 0  # complete: every event 1..HEAD, once, in order
        self.failed = 0  # anything else (closed early, refused, out of order, timed out)
        self.first_problem = ""
        self.connect_errors = 0


async def replay_loop(
    group: Group, request: bytes, target: int, stop: asyncio.Event, tally: Tally
) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        member = Replayer(group, request, target)
        try:
            async with asyncio.timeout(REPLAY_TIMEOUT):
                await loop.create_connection(member.itself, HOST, group.port)
                await member.done
        except (OSError, TimeoutError) as exc:
            tally.connect_errors += 1
            if not tally.first_problem:
                tally.first_problem = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.1)
        if member.transport is not None:
            member.transport.abort()
        if member.complete:
            tally.replays += 1
        elif not stop.is_set():
            tally.failed += 1
            if member.problem and not tally.first_problem:
                tally.first_problem = member.problem


async def crowd(
    port: int, slug: str, head: int, replay: int, slowloris: int, holders: int
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    from_start = stream_request(HOST, port, slug, 0)
    replayers = Group(HOST, port, f"/stories/{slug}/events", name="replay")
    slow = Group(HOST, port, "", name="slowloris")
    held = Group(HOST, port, "", name="holders")
    gate = asyncio.Semaphore(200)
    await asyncio.gather(
        open_members(
            slow,
            slowloris,
            lambda: Slowloris(slow, f"GET /stories/{slug}/events HTTP/1.1\r\n".encode()),
            gate,
        ),
        open_members(held, holders, lambda: Holder(from_start), gate),
    )
    stop = asyncio.Event()
    tally = Tally()
    started = time.monotonic()
    loops = [
        asyncio.create_task(replay_loop(replayers, from_start, head, stop, tally))
        for _ in range(replay)
    ]
    dripping = asyncio.create_task(drip(slow, stop, limit=3600))
    print("ready", flush=True)
    # Until the bench closes our stdin.
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    await stdin.read()
    stop.set()
    seconds = time.monotonic() - started
    for group in (replayers, slow, held):
        group.close_all()
    for task in loops:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*loops, return_exceptions=True)
    await dripping
    return {
        "seconds": seconds,
        "replays": tally.replays,
        "replayed_events": tally.replays * head,
        "failed": tally.failed,
        "first_problem": tally.first_problem,
        "connect_errors": tally.connect_errors
        + len(slow.connect_errors)
        + len(held.connect_errors),
        "slowloris_closed": sum(
            1 for member in slow.members if isinstance(member, Slowloris) and member.closed_at
        ),
        "error_answers": replayers.errors[:3],
    }


def main() -> None:
    port, slug, head, replay, slowloris, holders = sys.argv[1:7]
    raise_open_files_limit(int(replay) + int(slowloris) + int(holders) + 1024)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(
            crowd(int(port), slug, int(head), int(replay), int(slowloris), int(holders))
        )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
