"""The hostile crowd: everyone at once, while an editor posts once a second.

* replay readers: ``Last-Event-ID: 0``, read everything; each must get ids 1..N once
  and in order, N the story's last event when the editor is done;
* replay holders: ``Last-Event-ID: 0``, never read;
* slowloris: a request line, then a header byte a second, never a whole head;
* live holders: no ``Last-Event-ID``, never read;
* live readers: no ``Last-Event-ID``, read; each must get every update posted after it
  was connected, and nothing twice or out of order.

After the editor's last post, and at least twice the send timeout after the crowd came,
the bench counts the server's sockets to the holders (still open on the client's side):
a server that drops readers whose writes block for the send timeout has closed the
replay holders' by then. Then the readers get a grace period to finish, the crowd
hangs up, and twice the send timeout later the server's memory is read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.client import percentile
from bench.crowd.clients import (
    Checked,
    Group,
    Holder,
    Slowloris,
    drip,
    open_members,
    stream_request,
)
from bench.crowd.seed import Seeded
from bench.crowd.server import HOST, RssSampler, Server, request, server_sockets, tcp_table
from bench.servers import listen_overflows

CONNECT_CONCURRENCY = 500
POST_TIMEOUT = 30.0


@dataclass
class CrowdOptions:
    duration: float = 30.0
    replay_readers: int = 500
    replay_holders: int = 500
    slowloris: int = 300
    live_holders: int = 100
    live_readers: int = 50
    grace: float = 60.0  # for the readers to finish after the editor's last post
    send_timeout: float = 10.0  # the server's LIVEBLOG_STREAM_SEND_TIMEOUT

    @property
    def total(self) -> int:
        return (
            self.replay_readers
            + self.replay_holders
            + self.slowloris
            + self.live_holders
            + self.live_readers
        )


@dataclass
class Post:
    at: float  # seconds after the crowd came
    status: int  # 0: no answer (timed out, connection lost)
    latency_ms: float
    error: str = ""


@dataclass
class Readers:
    """The verdict on one group of reading readers."""

    wanted: int
    complete: int = 0
    incomplete: int = 0
    first_problem: str = ""
    problems: dict[str, int] = field(default_factory=dict)  # kind -> readers


@dataclass
class Held:
    """The connections of one group the server holds open (ESTABLISHED) at one moment."""

    count: int
    unsent_kib: int  # queued in the server's kernel buffers, not yet taken by the client
    unread_kib: int  # arrived in the client's kernel buffers, not read by it


@dataclass
class CrowdResult:
    last_seq: int = 0  # N: the story's last event after the editor
    posts: list[Post] = field(default_factory=list)
    post_p50_ms: float = float("nan")
    post_p99_ms: float = float("nan")
    post_max_ms: float = float("nan")
    post_non_2xx: int = 0
    post_5xx: int = 0
    post_no_answer: int = 0
    replay: Readers = field(default_factory=lambda: Readers(0))
    live: Readers = field(default_factory=lambda: Readers(0))
    readers_done_s: float = float("nan")  # after the crowd came, all readers complete
    opened_s: float = float("nan")  # after the crowd came, every connection opened
    rss_start_kib: int = 0
    rss_peak_kib: int = 0
    rss_after_kib: int = 0
    # Server-side sockets to each group, ESTABLISHED, counted twice while the clients
    # still hold them: after the editor (>= 2 x send timeout) and before hanging up.
    held_at_s: tuple[float, float] = (0.0, 0.0)
    held: dict[str, tuple[Held, Held]] = field(default_factory=dict)
    held_timeline: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    server_sockets_after: dict[str, int] = field(default_factory=dict)  # by state
    slowloris_closed: int = 0
    slowloris_closed_after_s: float = float("nan")  # median, from its connection
    slowloris_answers: dict[str, int] = field(default_factory=dict)
    connect_errors: dict[str, int] = field(default_factory=dict)
    error_answers: dict[str, list[str]] = field(default_factory=dict)
    overflows: int = 0
    seconds: float = 0.0


class Editor:
    """POSTs an update once a second for ``duration`` seconds, one at a time (a late
    answer delays the next post, never doubles it up), from a process of its own
    (``bench/crowd/editor.py``): an editor does not share the crowd's event loop."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, server: Server, seeded: Seeded, duration: float) -> Editor:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.crowd.editor", str(server.port), seeded.slug,
            str(duration), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(f"{seeded.token}\n".encode())
        async with asyncio.timeout(60):
            if await process.stdout.readline() != b"ready\n":
                raise RuntimeError("the editor process did not start")
        return cls(process)

    async def posts(self, t0: float) -> list[Post]:
        out, _ = await self.process.communicate(f"{t0!r}\n".encode())
        if self.process.returncode != 0:
            raise RuntimeError(f"the editor process failed: status {self.process.returncode}")
        return [Post(**post) for post in json.loads(out)]


async def story_last_seq(server: Server, seeded: Seeded) -> int:
    auth = {"Authorization": f"Bearer {seeded.token}"}
    async with asyncio.timeout(POST_TIMEOUT):
        status, body = await request(server.port, "GET", f"/api/stories/{seeded.slug}", auth)
    if status != 200:
        raise RuntimeError(f"GET /api/stories/{seeded.slug} answered {status}")
    last: int = json.loads(body)["last_seq"]
    return last


def count_held(groups: list[Group], port: int) -> dict[str, Held]:
    sockets, unread = tcp_table(port)
    established = {sock.peer: sock for sock in sockets if sock.state == "ESTABLISHED"}
    held: dict[str, Held] = {}
    for group in groups:
        mine = [port for port in group.ports() if port in established]
        held[group.name] = Held(
            len(mine),
            sum(established[port].unsent for port in mine) // 1024,
            sum(unread.get(port, 0) for port in mine) // 1024,
        )
    return held


async def watch_sockets(
    groups: list[Group], port: int, t0: float, stop: asyncio.Event, *, limit: float
) -> list[tuple[float, dict[str, int]]]:
    """Every second until ``stop`` (or ``limit`` seconds): how many of each group's
    connections the server holds open, and the bytes queued unsent in all of them."""
    timeline: list[tuple[float, dict[str, int]]] = []
    for _ in range(round(limit)):
        held = count_held(groups, port)
        at = round(time.monotonic() - t0, 1)
        counts = {name: each.count for name, each in held.items()}
        # What the server's kernel holds for clients that have not taken it (all groups).
        counts["unsent KiB"] = sum(each.unsent_kib for each in held.values())
        timeline.append((at, counts))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await stop.wait()
        if stop.is_set():
            break
    return timeline


def judge(group: Group, last_seq: int, required_from: dict[Checked, int]) -> Readers:
    """Readers that got what they must (``required_from``: the first id each must have)."""
    verdict = Readers(wanted=len(group.members))
    kinds: Counter[str] = Counter()
    for member in group.members:
        assert isinstance(member, Checked)
        problem = member.problem
        first_due = required_from.get(member)
        if not problem:
            if member.transport is None:
                problem = "never connected"
            elif member.last_seq is None or member.last_seq < last_seq:
                problem = f"stopped at id {member.last_seq} of {last_seq} (still waiting)"
            elif first_due is not None and (member.first_id or 0) > first_due:
                problem = f"first id {member.first_id}, but id {first_due} came after it joined"
        if problem:
            verdict.incomplete += 1
            kinds[re.sub(r"(id|where|of|after|port) \d+", r"\1 N", problem)] += 1
            if not verdict.first_problem:
                verdict.first_problem = f"reader on port {member.port}: {problem}"
        else:
            verdict.complete += 1
    verdict.problems = dict(kinds)
    return verdict


def readers_finished(groups: list[Group], last_seq: int) -> bool:
    for group in groups:
        for member in group.members:
            assert isinstance(member, Checked)
            if member.closed_at == 0.0 and (member.last_seq or 0) < last_seq:
                return False
    return True


async def run_crowd(
    server: Server, seeded: Seeded, options: CrowdOptions, rng: random.Random
) -> CrowdResult:
    result = CrowdResult(rss_start_kib=server.rss_kib())
    port, slug = server.port, seeded.slug

    def group(name: str) -> Group:
        return Group(HOST, port, f"/stories/{slug}/events", name=name)

    replay, replay_holders = group("replay readers"), group("replay holders")
    slow, live_holders, live = group("slowloris"), group("live holders"), group("live readers")
    groups = [replay, replay_holders, slow, live_holders, live]
    from_start = stream_request(HOST, port, slug, 0)
    live_request = stream_request(HOST, port, slug, None)
    request_line = f"GET /stories/{slug}/events HTTP/1.1\r\n".encode()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    sampler = RssSampler(server)
    overflows = listen_overflows()
    stop_dripping = asyncio.Event()
    second_at = 0.0

    editor = await Editor.start(server, seeded, options.duration)
    sampler.start()
    t0 = time.monotonic()
    posting = asyncio.create_task(editor.posts(t0))
    limit = options.duration + options.grace + 2 * options.send_timeout + POST_TIMEOUT
    dripping = asyncio.create_task(drip(slow, stop_dripping, limit=limit))
    watching = asyncio.create_task(watch_sockets(groups, port, t0, stop_dripping, limit=limit))
    opening = asyncio.gather(
        open_members(replay, options.replay_readers,
                     lambda: Checked(replay, from_start, expect=1, target=None), gate),
        open_members(replay_holders, options.replay_holders, lambda: Holder(from_start), gate),
        open_members(slow, options.slowloris, lambda: Slowloris(slow, request_line), gate),
        open_members(live_holders, options.live_holders, lambda: Holder(live_request), gate),
        open_members(live, options.live_readers,
                     lambda: Checked(live, live_request, expect=None, target=None), gate),
    )  # fmt: skip
    try:
        await opening
        result.opened_s = time.monotonic() - t0
        result.posts = await posting
        # The first count: the holders have not read for at least twice the send timeout.
        await asyncio.sleep(max(0.0, t0 + 2 * options.send_timeout + 1 - time.monotonic()))
        first_at = time.monotonic() - t0
        first = count_held(groups, port)
        result.last_seq = await story_last_seq(server, seeded)
        for _ in range(round(options.grace / 0.2)):
            if readers_finished([replay, live], result.last_seq):
                break
            await asyncio.sleep(0.2)
        second_at = time.monotonic() - t0
        second = count_held(groups, port)
        result.held_at_s = (round(first_at, 1), round(second_at, 1))
        result.held = {name: (first[name], second[name]) for name in first}
        result.rss_peak_kib = await sampler.stop()
    finally:
        stop_dripping.set()
        await dripping
        result.held_timeline = await watching
        if not posting.done():
            posting.cancel()
        for each in groups:
            each.close_all()
        await sampler.stop()
    result.overflows = listen_overflows() - overflows
    # Closed by the server while the client still held them (the client hangs up after).
    lasted = [
        member.closed_at - member.opened_at for member in slow.members
        if isinstance(member, Slowloris) and 0 < member.closed_at - t0 < second_at
    ]  # fmt: skip
    result.slowloris_closed = len(lasted)
    if lasted:
        result.slowloris_closed_after_s = statistics.median(lasted)
    answers: Counter[str] = Counter()
    for member in slow.members:
        if isinstance(member, Slowloris) and member.answer:
            answers[member.answer.split(b"\r\n", 1)[0].decode(errors="replace")] += 1
    result.slowloris_answers = dict(answers)

    # Who must have what: live readers, every post sent after they had the retry line.
    required: dict[Checked, int] = {}
    firsts = _post_seqs(result.posts, seeded.last_seq, result.last_seq)
    for member in live.members:
        if isinstance(member, Checked) and member.ready_at:
            due = [seq for at, seq in firsts if t0 + at > member.ready_at]
            if due:
                required[member] = min(due)
    result.replay = judge(replay, result.last_seq, {})
    result.live = judge(live, result.last_seq, required)
    if not (result.replay.incomplete or result.live.incomplete):
        ends = [m.last_at for m in [*replay.members, *live.members] if isinstance(m, Checked)]
        result.readers_done_s = max(ends, default=t0) - t0
    _summarise_posts(result)
    result.connect_errors = {each.name: len(each.connect_errors) for each in groups}
    result.error_answers = {each.name: each.errors[:3] for each in groups if each.errors}

    # The crowd has gone: twice the send timeout later, what the server still holds.
    await asyncio.sleep(2 * options.send_timeout)
    result.rss_after_kib = server.rss_kib()
    states: Counter[str] = Counter(sock.state for sock in server_sockets(port))
    result.server_sockets_after = dict(states)
    result.seconds = time.monotonic() - t0
    return result


def _post_seqs(posts: list[Post], seeded: int, last: int) -> list[tuple[float, int]]:
    """(when it was sent, its id) for each of the editor's posts, when that is certain:
    every post answered (a 201 is the next id), none left in doubt."""
    if any(post.status == 0 for post in posts):
        return []
    found: list[tuple[float, int]] = []
    seq = seeded
    for post in posts:
        if post.status == 201:
            seq += 1
            found.append((post.at, seq))
    return found if seq == last else []


def _summarise_posts(result: CrowdResult) -> None:
    latencies = [post.latency_ms for post in result.posts if post.status]
    if latencies:
        result.post_p50_ms = percentile(latencies, 0.5)
        result.post_p99_ms = percentile(latencies, 0.99)
        result.post_max_ms = max(latencies)
    result.post_non_2xx = sum(1 for post in result.posts if not 200 <= post.status < 300)
    result.post_5xx = sum(1 for post in result.posts if post.status >= 500)
    result.post_no_answer = sum(1 for post in result.posts if post.status == 0)


def as_json(result: CrowdResult) -> dict[str, Any]:
    return asdict(result)
