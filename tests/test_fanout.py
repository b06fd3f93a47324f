"""Fan-out under load, against a real uvicorn: many readers, and one reader that is stuck.

Latency figures are printed (run with ``-s``) and repeated in assertion messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from liveblog.app import create_app
from liveblog.hub import Hub, Subscription
from tests.support import (
    Editor,
    LiveServer,
    bearer,
    make_editor,
    migrated_settings_for,
    open_stuck_reader,
    run_server,
)

STREAM_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=None)
STREAM_TIMEOUT = httpx.Timeout(60.0)


class Reader:
    """One stream: records (seq, update id, monotonic time) for each ``update`` event."""

    def __init__(self) -> None:
        self.updates: list[tuple[int, int, float]] = []
        self.other_events: list[str] = []
        self.ready = asyncio.Event()
        self.finished = False

    async def run(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
    ) -> None:
        async with client.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200, response.status_code
            seq: int | None = None
            kind: str | None = None
            async for line in response.aiter_lines():
                if line.startswith("retry:"):
                    self.ready.set()
                elif line.startswith("id: "):
                    seq = int(line[4:])
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    assert seq is not None and kind is not None, line[:80]
                    if kind == "update":
                        update_id = json.loads(line[6:])["id"]
                        self.updates.append((seq, update_id, time.monotonic()))
                    else:
                        self.other_events.append(kind)
                elif line == "":
                    seq = kind = None
        self.finished = True


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def latency_report(label: str, after_return: Sequence[float], after_send: Sequence[float]) -> str:
    def summary(values: Sequence[float]) -> str:
        ms = [value * 1000 for value in values]
        return (
            f"p50={percentile(ms, 0.5):.1f} ms p99={percentile(ms, 0.99):.1f} ms "
            f"max={max(ms):.1f} ms min={min(ms):.1f} ms"
        )

    return (
        f"{label}: {len(after_return)} deliveries; latency from the POST returning: "
        f"{summary(after_return)} (negative = seen before the response arrived); "
        f"from the POST being sent: {summary(after_send)}"
    )


def latencies(
    readers: Sequence[Reader], posted: Sequence[tuple[int, float, float]]
) -> tuple[list[float], list[float]]:
    """Per delivery: seconds after the POST returned, and after it was sent."""
    times = {update_id: (sent, returned) for update_id, sent, returned in posted}
    after_return, after_send = [], []
    for reader in readers:
        for _, update_id, seen in reader.updates:
            sent, returned = times[update_id]
            after_return.append(seen - returned)
            after_send.append(seen - sent)
    return after_return, after_send


async def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(0.01)


async def create_story(api: httpx.AsyncClient, slug: str) -> str:
    response = await api.post(
        "/api/stories", json={"title": "Election night", "slug": slug, "status": "live"}
    )
    assert response.status_code == 201, response.text
    return slug


async def post_update(api: httpx.AsyncClient, slug: str, body: str) -> tuple[int, float, float]:
    """Post; returns the update id, when the request was sent and when it returned."""
    sent = time.monotonic()
    response = await api.post(f"/api/stories/{slug}/updates", json={"body": body})
    returned = time.monotonic()
    assert response.status_code == 201, response.text
    update_id: int = response.json()["id"]
    return update_id, sent, returned


@contextlib.asynccontextmanager
async def api_client(server: LiveServer, editor: Editor) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=server.url, headers=bearer(editor.token), timeout=30.0
    ) as client:
        yield client


async def stop(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- (a) many readers -----------------------------------------------------------------

STREAMS = 200
UPDATES = 100
STREAMS_PER_CLIENT = 50


@pytest.mark.anyio
async def test_200_streams_get_every_update_once_and_in_order(server: LiveServer) -> None:
    editor: Editor = server.run(make_editor(server.app, "alice"))
    hub = server.liveblog.hub
    async with contextlib.AsyncExitStack() as stack:
        api = await stack.enter_async_context(api_client(server, editor))
        slug = await create_story(api, "election-night")
        sid = server.story_id(slug)
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.url, limits=STREAM_LIMITS, timeout=STREAM_TIMEOUT)
            )
            for _ in range(STREAMS // STREAMS_PER_CLIENT)
        ]
        readers = [Reader() for _ in range(STREAMS)]
        url = f"/stories/{slug}/events"
        tasks = [
            asyncio.create_task(reader.run(clients[n % len(clients)], url))
            for n, reader in enumerate(readers)
        ]
        try:
            async with asyncio.timeout(120):
                connect_started = time.monotonic()
                await asyncio.gather(*(reader.ready.wait() for reader in readers))
                connect_time = time.monotonic() - connect_started
                assert hub.subscriber_count(sid) == STREAMS

                posted: list[tuple[int, float, float]] = []
                post_started = time.monotonic()
                for n in range(UPDATES):
                    posted.append(await post_update(api, slug, f"Result {n}: *counted*."))
                post_time = time.monotonic() - post_started
                # Ending the story closes every stream: each reader's record is final.
                response = await api.patch(f"/api/stories/{slug}", json={"status": "ended"})
                assert response.status_code == 200, response.text
                await asyncio.gather(*tasks)
                delivery_time = time.monotonic() - post_started
        finally:
            await stop(tasks)

    update_ids = [update_id for update_id, _, _ in posted]
    after_return, after_send = latencies(readers, posted)
    report = (
        f"{latency_report(f'{STREAMS} streams x {UPDATES} updates', after_return, after_send)}; "
        f"connect {connect_time:.2f}s, posting {post_time:.2f}s, "
        f"all delivered and closed {delivery_time:.2f}s"
    )
    print(f"\n{report}")

    assert all(reader.finished for reader in readers), report
    expected_seqs = list(range(1, UPDATES + 1))
    for n, reader in enumerate(readers):
        assert [seq for seq, _, _ in reader.updates] == expected_seqs, f"stream {n}; {report}"
        assert [uid for _, uid, _ in reader.updates] == update_ids, f"stream {n}; {report}"
        assert reader.other_events == ["story"], f"stream {n}; {report}"
    assert len(after_return) == STREAMS * UPDATES, report
    assert max(after_return) < 30.0, report
    assert hub.stats().overflows == 0, report
    await wait_until(lambda: hub.subscriber_count(sid) == 0, 10, "streams to unsubscribe")


# --- (b) one stuck reader -------------------------------------------------------------

BACKLOG = 8
SEND_TIMEOUT = 1.0
NORMAL_READERS = 3
MAX_UPDATES = 250
AFTER_DROP = 5
# ~76 KB of UTF-8 per frame, under the 20,000-character body limit: the kernel buffers
# a few MB for a socket that is never read before the server's writes start to block.
BIG_BODY = "\N{WATER WAVE}" * 19_000


@pytest.fixture
def stuck_server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = migrated_settings_for(
        tmp_path, stream_backlog=BACKLOG, stream_send_timeout=SEND_TIMEOUT
    )
    with run_server(create_app(settings)) as live:
        yield live


def drain_socket(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Read until the server closes the connection; returns (bytes, closed).

    A reader the server dropped gets a reset (the server aborts, it does not wait for it
    to take what was queued): what was still unread is gone with it."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + timeout
    data = bytearray()
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return bytes(data), True
        if not chunk:
            return bytes(data), True
        data += chunk
    return bytes(data), False


def dechunk(raw: bytes) -> tuple[bytes, bytes]:
    """Split an HTTP/1.1 chunked response into its head and its complete chunks' bytes."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    body = bytearray()
    while True:
        size_line, found, after = rest.partition(b"\r\n")
        if not found:
            break
        size = int(size_line, 16)
        if size == 0 or len(after) < size + 2:
            break
        body += after[:size]
        rest = after[size + 2 :]
    return head, bytes(body)


def subscriptions(server: LiveServer, sid: int) -> set[Subscription]:
    async def current() -> set[Subscription]:
        return set(server.liveblog.hub._subscribers.get(sid, ()))

    found: set[Subscription] = server.run(current())
    return found


async def sample_backlogs(
    watched: Sequence[Subscription], done: threading.Event
) -> dict[Subscription, int]:
    """Runs on the server's loop: the largest backlog each subscription ever held."""
    peaks = dict.fromkeys(watched, 0)
    while not done.is_set():
        for subscription in watched:
            peaks[subscription] = max(peaks[subscription], subscription.backlog)
        await asyncio.sleep(0.002)
    return peaks


@pytest.mark.anyio
async def test_stuck_reader_is_dropped_without_slowing_the_others(
    stuck_server: LiveServer,
) -> None:
    server = stuck_server
    hub: Hub = server.liveblog.hub
    editor: Editor = server.run(make_editor(server.app, "alice"))
    async with contextlib.AsyncExitStack() as stack:
        api = await stack.enter_async_context(api_client(server, editor))
        slug = await create_story(api, "stuck-reader")
        sid = server.story_id(slug)
        path = f"/stories/{slug}/events"

        stuck_socket = await asyncio.to_thread(open_stuck_reader, server.url, path)
        stack.callback(stuck_socket.close)
        await wait_until(lambda: hub.subscriber_count(sid) == 1, 10, "the stuck subscription")
        (stuck,) = subscriptions(server, sid)

        client = await stack.enter_async_context(
            httpx.AsyncClient(base_url=server.url, timeout=STREAM_TIMEOUT)
        )
        readers = [Reader() for _ in range(NORMAL_READERS)]
        tasks = [asyncio.create_task(reader.run(client, path)) for reader in readers]
        stack.push_async_callback(stop, tasks)
        async with asyncio.timeout(10):
            await asyncio.gather(*(reader.ready.wait() for reader in readers))
        assert hub.subscriber_count(sid) == NORMAL_READERS + 1
        watched = [stuck, *(subscriptions(server, sid) - {stuck})]
        done = threading.Event()
        sampler = asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(sample_backlogs(watched, done), server.loop)
        )

        posted: list[tuple[int, float, float]] = []
        dropped_after: int | None = None
        started = time.monotonic()
        while len(posted) < MAX_UPDATES:
            posted.append(await post_update(api, slug, f"{len(posted)} {BIG_BODY}"))
            if dropped_after is None and hub.subscriber_count(sid) == NORMAL_READERS:
                dropped_after = len(posted)
            if dropped_after is not None and len(posted) >= dropped_after + AFTER_DROP:
                break
        post_time = time.monotonic() - started
        await wait_until(
            lambda: all(len(reader.updates) >= len(posted) for reader in readers),
            30,
            "the normal readers to receive every update",
        )
        await wait_until(
            lambda: hub.subscriber_count(sid) == NORMAL_READERS, 15, "the stuck reader to go"
        )
        done.set()
        peaks = await sampler
        stats = hub.stats()

        # Now read what the stuck reader was sent: the server must have closed it.
        raw, closed = await asyncio.to_thread(drain_socket, stuck_socket, 30)
        head, body = dechunk(raw)
        stuck_seqs = [int(seq) for seq in re.findall(rb"^id: (\d+)\nevent: update\n", body, re.M)]
        complete = re.findall(rb"^id: \d+\nevent: update\ndata: [^\n]*\n\n", body, re.M)

        # It resumes where it was cut off, from the log.
        resumed = Reader()
        resume_id = str(stuck_seqs[-1] if stuck_seqs else 0)
        resume_task = asyncio.create_task(
            resumed.run(client, path, headers={"Last-Event-ID": resume_id})
        )
        try:
            await wait_until(
                lambda: len(resumed.updates) >= len(posted) - len(stuck_seqs), 30, "the replay"
            )
        finally:
            await stop([resume_task])

    after_return, after_send = latencies(readers, posted)
    mechanism = (
        f"overflow (backlog {BACKLOG}) after update {dropped_after}, then the "
        f"{SEND_TIMEOUT}s send timeout closed the connection"
        if stuck.overflowed
        else f"the {SEND_TIMEOUT}s send timeout (no overflow) after update {dropped_after}"
    )
    label = f"{NORMAL_READERS} readers beside a stuck one"
    report = (
        f"{latency_report(label, after_return, after_send)}; "
        f"{len(posted)} updates posted in {post_time:.2f}s; stuck reader got "
        f"{len(stuck_seqs)} frames and was dropped by {mechanism}; "
        f"peak backlogs {sorted(peaks.values())}; {stats}"
    )
    print(f"\n{report}")

    expected = list(range(1, len(posted) + 1))
    for reader in readers:
        assert [seq for seq, _, _ in reader.updates] == expected, report
        assert [uid for _, uid, _ in reader.updates] == [uid for uid, _, _ in posted], report
    assert max(after_return) < 10.0, report
    assert dropped_after is not None, report
    # Gone from the hub, and never holding more than its limit while it was there.
    assert stuck.closed, report
    assert stuck not in subscriptions(server, sid), report
    assert all(peak <= BACKLOG for peak in peaks.values()), report
    if stuck.overflowed:
        assert stats.overflows >= 1, report
        assert peaks[stuck] == BACKLOG, report
    assert stats.subscribers == NORMAL_READERS, report
    # The server closed the stuck connection (a blocked write timed out) after sending
    # it a gap-free prefix of the log, and a reconnect replays the rest.
    assert closed, report
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    assert stuck_seqs == list(range(1, len(stuck_seqs) + 1)), report
    assert len(complete) == len(stuck_seqs), report
    assert len(stuck_seqs) < len(posted), report
    assert [seq for seq, _, _ in resumed.updates] == expected[len(stuck_seqs) :], report
