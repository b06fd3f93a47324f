"""The reconnect storm: every reader of a story comes back at once (a deploy, a network
blip), as fast as the client can open connections, in waves of ``CONCURRENCY``.

Variant ``fresh``: no ``Last-Event-ID``; a reader is served once it has the retry line.
Variant ``resume``: ``Last-Event-ID`` a little behind the head (head minus 0..50, at
random); a reader is served once it has every event up to the head, checked id by id.
Each variant runs on a server of its own, started for it on the same data directory.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from bench.client import percentile
from bench.crowd.clients import Checked, Group, open_members, stream_request
from bench.crowd.server import HOST, RssSampler, Server
from bench.servers import listen_overflows

CONCURRENCY = 500
BEHIND = 50  # at most this many events behind the head


@dataclass
class StormResult:
    variant: str
    readers: int
    served: int = 0
    seconds: float = float("nan")  # until every reader was served (or the time ran out)
    served_p50_ms: float = float("nan")  # one reader: from its connect to being served
    served_p99_ms: float = float("nan")
    replayed_events: int = 0
    problems: int = 0
    first_problem: str = ""
    connect_errors: int = 0
    error_answers: list[str] = field(default_factory=list)
    overflows: int = 0  # connections the kernel dropped, the accept queue full
    server_cpu_s: float = 0.0
    rss_before_kib: int = 0
    rss_peak_kib: int = 0
    note: str = ""


async def storm(
    server: Server, slug: str, head: int, *, readers: int, resume: bool, rng: random.Random,
    within: float = 120.0,
) -> StormResult:  # fmt: skip
    result = StormResult("resume" if resume else "fresh", readers)
    port = server.port

    def reader(group: Group) -> Checked:
        if not resume:
            return Checked(group, stream_request(HOST, port, slug, None), expect=None, target=None)
        last = max(0, head - rng.randint(0, BEHIND))
        request = stream_request(HOST, port, slug, last)
        return Checked(group, request, expect=last + 1, target=None if last == head else head)

    # First requests cost imports and caches: one reader of the same kind, first.
    warm = Group(HOST, port, "", name="warm-up", wanted=1)
    await open_members(warm, 1, lambda: reader(warm), asyncio.Semaphore(1))
    async with asyncio.timeout(30):
        await warm.served_all.wait()
    warm.close_all()
    await asyncio.sleep(1.0)

    group = Group(HOST, port, "", name=result.variant, wanted=readers)
    sampler = RssSampler(server)
    result.rss_before_kib = server.rss_kib()
    overflows = listen_overflows()
    cpu = server.cpu_seconds()
    sampler.start()
    started = time.monotonic()
    try:
        await open_members(group, readers, lambda: reader(group), asyncio.Semaphore(CONCURRENCY))
        try:
            async with asyncio.timeout(max(1.0, started + within - time.monotonic())):
                await group.served_all.wait()
        except TimeoutError:
            result.note = f"not all served within {within:.0f} s"
        result.seconds = time.monotonic() - started
    finally:
        result.rss_peak_kib = await sampler.stop()
        result.server_cpu_s = server.cpu_seconds() - cpu
        result.overflows = listen_overflows() - overflows
        group.close_all()
    members = [member for member in group.members if isinstance(member, Checked)]
    result.served = sum(1 for member in members if member.served_at)
    waits = [(member.served_at - member.started) * 1000 for member in members if member.served_at]
    if waits:
        result.served_p50_ms = percentile(waits, 0.5)
        result.served_p99_ms = percentile(waits, 0.99)
    result.replayed_events = sum(member.count for member in members)
    troubled = [member for member in members if member.problem]
    result.problems = len(troubled)
    if troubled:
        result.first_problem = f"reader on port {troubled[0].port}: {troubled[0].problem}"
    result.connect_errors = len(group.connect_errors)
    result.error_answers = group.errors[:3]
    await asyncio.sleep(1.0)  # let the hang-ups reach the server before it is stopped
    return result
