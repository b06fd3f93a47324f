"""Contract tests for the broadcast hub, run against every backend in ``BACKEND_URLS``.

Every test drives a real ``Hub`` with a real backend: in-process memory, the machine's
Redis, and PostgreSQL LISTEN/NOTIFY (each with a channel namespace of its own, so runs
sharing a server do not hear each other). The log the hub fills gaps from is a plain
in-memory list of real ``StoryEvent`` rows, encoded exactly as the app encodes them.
Faults are real too: the Redis server kills the hub's subscription connection, and
PostgreSQL terminates its LISTEN connection (``pg_terminate_backend``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack

import anyio
import psycopg
import pytest
from redis.asyncio import Redis

from liveblog.events import Frame, dump_payload, encode
from liveblog.hub import BroadcastBackend, BroadcastDown, Hub, Subscription, backend_from_url
from liveblog.hub.core import channel_for, pack
from liveblog.hub.memory import MemoryBackend
from liveblog.hub.postgres import PostgresBackend
from liveblog.hub.redis import RedisBackend
from liveblog.models import EventKind, StoryEvent
from tests.services import (
    POSTGRES_URL,
    REDIS_URL,
    redis_namespace_url,
    require_postgres,
    require_redis,
)

BACKEND_URLS = {"memory": "memory://", "redis": REDIS_URL, "postgres": POSTGRES_URL}

pytestmark = pytest.mark.anyio

WAIT = 5.0  # seconds any single expected delivery may take
STORY = 1
OTHER_STORY = 2


@pytest.fixture(params=sorted(BACKEND_URLS))
def backend_url(request: pytest.FixtureRequest) -> str:
    """The backend's URL, with a channel namespace of this test's own."""
    url = BACKEND_URLS[request.param]
    if request.param == "redis":
        require_redis()
    elif request.param == "postgres":
        require_postgres()
    else:
        return url
    return redis_namespace_url(url)  # the same ?namespace= for both


@pytest.fixture
def backend(backend_url: str) -> BroadcastBackend:
    """A fresh, not yet connected backend (the hub connects it in ``start``)."""
    return backend_from_url(backend_url)


async def break_connection(backend: BroadcastBackend) -> None:
    """Cut the backend's receiving connection from the outside, as a fault would."""
    if isinstance(backend, RedisBackend):
        async with Redis.from_url(REDIS_URL) as admin:
            clients = await admin.client_list()
            ids = [client["id"] for client in clients if client["name"] == backend.client_name]
            assert ids, "the subscription connection is not in CLIENT LIST"
            for client_id in ids:
                await admin.client_kill_filter(_id=client_id)
    elif isinstance(backend, PostgresBackend):
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as admin:
            cursor = await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (backend.listen_name,),
            )
            assert [row[0] for row in await cursor.fetchall()] == [True]
    else:
        assert isinstance(backend, MemoryBackend)
        # Closed behind the hub's back: its listen() ends though nobody asked.
        await backend.disconnect()


def story_event(
    story_id: int, seq: int, *, closes: bool = False, html: str | None = None
) -> StoryEvent:
    kind = EventKind.story if closes else EventKind.update
    html = f"<p>update {seq}</p>" if html is None else html
    return StoryEvent(
        story_id=story_id,
        seq=seq,
        kind=kind,
        update_id=seq,
        data=dump_payload({"kind": kind.value, "id": seq, "html": html}),
        closes=closes,
    )


class EventLog:
    """The story log the hub reads missing frames from: real events, real encoding."""

    def __init__(self) -> None:
        self.events: dict[tuple[int, int], StoryEvent] = {}
        self.calls: list[tuple[int, int, int]] = []
        self.failures_left = 0

    def append(self, story_id: int, seq: int, *, html: str | None = None) -> StoryEvent:
        event = self.events[story_id, seq] = story_event(story_id, seq, html=html)
        return event

    def commit(self, story_id: int, *seqs: int) -> list[StoryEvent]:
        """Append events (as a transaction commits them) for the caller to publish."""
        return [self.append(story_id, seq) for seq in seqs]

    async def last_seq(self, story_id: int) -> int:
        return max((seq for sid, seq in self.events if sid == story_id), default=0)

    async def load_frames(self, story_id: int, after: int, before: int) -> list[Frame]:
        self.calls.append((story_id, after, before))
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("the database is unavailable")
        return [
            encode(event)
            for (sid, seq), event in sorted(self.events.items())
            if sid == story_id and after < seq < before
        ]


HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture
def log() -> EventLog:
    return EventLog()


@pytest.fixture
async def make_hub(backend: BroadcastBackend, log: EventLog) -> AsyncIterator[HubFactory]:
    """Start a hub on the fixture's backend, reading the fixture's log; stopped at teardown."""
    hubs: list[Hub] = []

    async def make(*, backlog: int = 64) -> Hub:
        assert not hubs, "one hub per backend instance"
        hub = Hub(backend, load_frames=log.load_frames, load_last_seq=log.last_seq, backlog=backlog)
        await hub.start()
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        await hub.stop()


@pytest.fixture
async def hub(make_hub: HubFactory) -> Hub:
    """A hub with the default backlog (``make_hub`` for another)."""
    return await make_hub()


async def post(hub: Hub, log: EventLog, story_id: int, *seqs: int) -> None:
    """Commit events to the log, then publish them: what the newsroom does."""
    await hub.publish(log.commit(story_id, *seqs))


async def next_frame(subscription: Subscription) -> Frame:
    with anyio.fail_after(WAIT):
        frame = await subscription.next()
    assert frame is not None, "subscription closed while a frame was expected"
    return frame


async def frames(subscription: Subscription, count: int) -> list[Frame]:
    return [await next_frame(subscription) for _ in range(count)]


def seqs(received: Iterable[Frame]) -> list[int]:
    return [frame.seq for frame in received]


async def wait_for(condition: Callable[[], bool], seconds: float = WAIT) -> None:
    with anyio.fail_after(seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)


# --- the backend contract itself ------------------------------------------------------


async def test_backend_delivers_only_subscribed_channels(backend: BroadcastBackend) -> None:
    await backend.connect()
    try:
        await backend.subscribe("liveblog.story.a")
        await backend.publish("liveblog.story.b", b"not for us")
        await backend.publish("liveblog.story.a", b"first")
        await backend.unsubscribe("liveblog.story.a")
        await backend.publish("liveblog.story.a", b"after unsubscribe")
        await backend.subscribe("liveblog.story.c")
        await backend.publish("liveblog.story.c", b"last")
        received: list[tuple[str, bytes]] = []
        with anyio.fail_after(WAIT):
            async for item in backend.listen():
                received.append(item)
                if len(received) == 2:
                    break
    finally:
        await backend.disconnect()
    assert received == [("liveblog.story.a", b"first"), ("liveblog.story.c", b"last")]


async def test_backend_listen_ends_on_disconnect(backend: BroadcastBackend) -> None:
    await backend.connect()
    await backend.subscribe("liveblog.story.a")
    received: list[tuple[str, bytes]] = []

    async def drain() -> None:
        async for item in backend.listen():
            received.append(item)

    listener = asyncio.create_task(drain())
    await backend.publish("liveblog.story.a", b"one")
    await wait_for(lambda: len(received) == 1)
    await backend.disconnect()
    with anyio.fail_after(WAIT):
        await listener
    assert received == [("liveblog.story.a", b"one")]


async def test_backend_can_connect_again_after_disconnect(backend: BroadcastBackend) -> None:
    """What the hub does after a fault: the new connection starts with no subscriptions."""
    await backend.connect()
    await backend.subscribe("liveblog.story.a")
    await backend.disconnect()
    await backend.connect()
    try:
        await backend.publish("liveblog.story.a", b"nobody listens again yet")
        await backend.subscribe("liveblog.story.b")
        await backend.publish("liveblog.story.b", b"fresh")
        with anyio.fail_after(WAIT):
            async for item in backend.listen():  # noqa: B007 (the first is what we want)
                break
    finally:
        await backend.disconnect()
    assert item == ("liveblog.story.b", b"fresh")


@pytest.mark.parametrize("backend_url", ["postgres", "redis"], indirect=True)
async def test_two_processes_on_one_server_hear_each_other_and_no_other_namespace(
    backend: BroadcastBackend, backend_url: str, log: EventLog
) -> None:
    """Two hubs with their own connections (as two worker processes have), and a third
    on the same server under another namespace (another site) that must hear nothing
    (not run on memory://, one process by definition)."""
    base = BACKEND_URLS["redis" if isinstance(backend, RedisBackend) else "postgres"]
    backends = (backend, backend_from_url(backend_url), backend_from_url(redis_namespace_url(base)))
    hubs = [Hub(b, load_frames=log.load_frames, load_last_seq=log.last_seq) for b in backends]
    for hub in hubs:
        await hub.start()
    try:
        writer, reader, stranger = hubs
        async with reader.subscribe(STORY) as subscription, stranger.subscribe(STORY) as other:
            await post(writer, log, STORY, 1, 2)
            assert seqs(await frames(subscription, 2)) == [1, 2]
            # The stranger's channel is another one: a probe it does hear proves the
            # story messages had their chance to arrive.
            await post(stranger, log, OTHER_STORY, 1)
            await asyncio.sleep(0.1)
            assert other.backlog == 0
    finally:
        for hub in hubs:
            await hub.stop()


# --- the hub over the backend ---------------------------------------------------------


async def test_message_reaches_subscribed_story_only(hub: Hub, log: EventLog) -> None:
    async with hub.subscribe(STORY) as mine, hub.subscribe(OTHER_STORY) as other:
        # A story nobody follows: the hub must not deliver it anywhere.
        await post(hub, log, 99, 1)
        await post(hub, log, STORY, 1)
        frame = await next_frame(mine)
        assert (frame.story_id, frame.seq) == (STORY, 1)
        assert frame.data == encode(story_event(STORY, 1)).data
        assert other.backlog == 0
        assert hub.stats().delivered_frames == 1

        await post(hub, log, OTHER_STORY, 1)
        frame = await next_frame(other)
        assert (frame.story_id, frame.seq) == (OTHER_STORY, 1)
        assert mine.backlog == 0
    assert hub.stats().subscribers == 0
    assert hub.stats().stories == 0


async def test_leaving_a_story_stops_its_delivery(hub: Hub, log: EventLog) -> None:
    async with hub.subscribe(STORY) as staying:
        async with hub.subscribe(STORY) as leaving:
            await post(hub, log, STORY, 1)
            assert seqs([await next_frame(leaving)]) == [1]
        assert leaving.closed
        assert hub.subscriber_count(STORY) == 1
        await post(hub, log, STORY, 2)
        assert seqs(await frames(staying, 2)) == [1, 2]
        assert leaving.backlog == 0
        with anyio.fail_after(WAIT):
            assert await leaving.next() is None
    assert hub.subscriber_count(STORY) == 0


async def test_fan_out_hands_every_subscriber_the_same_bytes_in_order(
    hub: Hub, log: EventLog
) -> None:
    count, updates = 25, 10
    async with AsyncExitStack() as stack:
        subscriptions = [
            await stack.enter_async_context(hub.subscribe(STORY)) for _ in range(count)
        ]
        assert hub.subscriber_count(STORY) == count
        await post(hub, log, STORY, *range(1, updates + 1))
        received = [await frames(subscription, updates) for subscription in subscriptions]

    expected = [encode(story_event(STORY, seq)).data for seq in range(1, updates + 1)]
    first = received[0]
    assert seqs(first) == list(range(1, updates + 1))
    assert [frame.data for frame in first] == expected
    for other in received[1:]:
        assert seqs(other) == seqs(first)
        # Encoded once, shared by all: the very same objects, not equal copies.
        assert all(mine.data is theirs.data for mine, theirs in zip(other, first, strict=True))
        assert all(mine is theirs for mine, theirs in zip(other, first, strict=True))
    assert hub.stats().delivered_frames == count * updates


async def test_large_frames_arrive_whole(hub: Hub, log: EventLog) -> None:
    """Bigger than a PostgreSQL NOTIFY may carry: that backend sends the header only."""
    async with hub.subscribe(STORY) as subscription:
        big = log.append(STORY, 1, html="<p>" + "long read " * 3000 + "</p>")
        assert len(encode(big).data) > 20_000
        await hub.publish([big])
        frame = await next_frame(subscription)
    assert frame.data == encode(big).data


async def test_duplicates_are_delivered_once(hub: Hub, log: EventLog) -> None:
    async with hub.subscribe(STORY) as subscription:
        one, two = log.commit(STORY, 1, 2)
        await hub.publish([one, one, two, one, two])
        # A later frame proves the duplicates before it were processed, not just pending.
        await post(hub, log, STORY, 3)
        assert seqs(await frames(subscription, 3)) == [1, 2, 3]
        assert subscription.backlog == 0
    assert hub.stats().delivered_frames == 3
    assert hub.stats().gap_fills == 0


async def test_gap_is_filled_from_the_log_in_order(hub: Hub, log: EventLog) -> None:
    async with hub.subscribe(STORY) as subscription:
        await post(hub, log, STORY, 1)
        assert seqs([await next_frame(subscription)]) == [1]
        # 2 was committed but its message was lost: 3 must not overtake it.
        log.commit(STORY, 2)
        await post(hub, log, STORY, 3)
        assert seqs(await frames(subscription, 2)) == [2, 3]
        # A wider gap: 4 and 5 come from the log, in order, before 6.
        log.commit(STORY, 4, 5)
        await post(hub, log, STORY, 6)
        received = await frames(subscription, 3)
        assert seqs(received) == [4, 5, 6]
        assert [frame.data for frame in received] == [
            encode(log.events[STORY, seq]).data for seq in (4, 5, 6)
        ]
        # The late original of a filled frame is a duplicate now.
        await hub.publish([log.events[STORY, 2], log.events[STORY, 5]])
        await post(hub, log, STORY, 7)
        assert seqs([await next_frame(subscription)]) == [7]
        assert subscription.backlog == 0
    assert hub.stats().gap_fills == 2
    if hub.backend.carries_frames:  # (otherwise every message is a read of the log)
        assert log.calls == [(STORY, 1, 3), (STORY, 3, 6)]


async def test_a_gap_before_the_first_message_is_filled_too(hub: Hub, log: EventLog) -> None:
    """The hub's position starts at the story's last_seq when the first reader comes."""
    log.commit(STORY, 1, 2)  # before anyone follows the story: streams replay these
    async with hub.subscribe(STORY) as subscription:
        log.commit(STORY, 3)  # committed, but its message was lost
        await post(hub, log, STORY, 4)
        assert seqs(await frames(subscription, 2)) == [3, 4]
        assert subscription.backlog == 0
    assert hub.stats().gap_fills == 1


async def test_header_only_message_is_read_from_the_log(hub: Hub, log: EventLog) -> None:
    async with hub.subscribe(STORY) as subscription:
        [event] = log.commit(STORY, 1)
        await hub.backend.publish(channel_for(STORY), pack(encode(event), with_data=False))
        frame = await next_frame(subscription)
    assert frame.seq == 1
    assert frame.data == encode(event).data
    assert log.calls == [(STORY, 0, 2)]


async def test_listener_survives_a_failing_gap_fill(
    hub: Hub, log: EventLog, caplog: pytest.LogCaptureFixture
) -> None:
    async with hub.subscribe(STORY) as subscription:
        await post(hub, log, STORY, 1)
        assert seqs([await next_frame(subscription)]) == [1]
        log.commit(STORY, 2)
        log.failures_left = 1
        with caplog.at_level(logging.ERROR, logger="liveblog.hub.core"):
            await post(hub, log, STORY, 3)  # gap fill fails: 3 is held back
            await post(hub, log, STORY, 4)  # next message fills 2 and 3
            assert seqs(await frames(subscription, 3)) == [2, 3, 4]
    if hub.backend.carries_frames:
        assert log.calls == [(STORY, 1, 3), (STORY, 1, 4)]
    assert "could not deliver" in caplog.text


async def test_first_reader_after_everyone_left_starts_fresh(hub: Hub, log: EventLog) -> None:
    async with hub.subscribe(STORY) as subscription:
        await post(hub, log, STORY, 1)
        assert seqs([await next_frame(subscription)]) == [1]
    assert hub.stats().stories == 0
    await post(hub, log, STORY, 2, 3)  # nobody listening
    log.commit(STORY, 4)
    async with hub.subscribe(STORY) as subscription:
        # The stream replays 2..4 from the log itself; the hub must not fill that "gap".
        await post(hub, log, STORY, 5)
        assert seqs([await next_frame(subscription)]) == [5]
    assert hub.stats().gap_fills == 0
    if hub.backend.carries_frames:
        assert log.calls == []


async def test_backlog_holds_exactly_its_limit(make_hub: HubFactory, log: EventLog) -> None:
    backlog = 4
    hub = await make_hub(backlog=backlog)
    async with hub.subscribe(STORY) as subscription:
        await post(hub, log, STORY, *range(1, backlog + 1))
        await wait_for(lambda: subscription.backlog == backlog)
        assert not subscription.overflowed
        assert seqs(await frames(subscription, backlog)) == [1, 2, 3, 4]
        assert hub.subscriber_count(STORY) == 1
    assert hub.stats().overflows == 0


async def test_overflowing_subscription_is_closed_and_bounded(
    make_hub: HubFactory, log: EventLog
) -> None:
    backlog, total = 4, 20
    hub = await make_hub(backlog=backlog)
    async with (
        hub.subscribe(STORY) as stuck,
        hub.subscribe(STORY) as reader,
        hub.subscribe(STORY) as late_reader,
    ):
        peak = 0
        received: list[Frame] = []
        for seq in range(1, total + 1):
            await post(hub, log, STORY, seq)
            received.append(await next_frame(reader))
            peak = max(peak, stuck.backlog)
            assert stuck.backlog <= backlog
            if seq <= backlog:
                assert stuck.backlog == seq and not stuck.closed
                assert hub.subscriber_count(STORY) == 3
            else:
                # One frame past the limit: dropped, closed, forgotten by the hub.
                assert stuck.overflowed and stuck.closed
                assert stuck.backlog == 0
                assert hub.subscriber_count(STORY) == 2
            # A reader that is behind but within the limit is left alone.
            if seq % backlog == 0:
                assert seqs(await frames(late_reader, backlog)) == list(
                    range(seq - backlog + 1, seq + 1)
                )
        with anyio.fail_after(WAIT):
            assert await stuck.next() is None
        assert peak == backlog
        assert seqs(received) == list(range(1, total + 1))
        assert not reader.overflowed and not late_reader.overflowed
        stats = hub.stats()
        assert stats.overflows == 1
        assert stats.subscribers == 2
        # The stuck stream received only what it had room for: backlog frames.
        assert stats.delivered_frames == 2 * total + backlog


async def test_overflow_wakes_a_waiting_reader_with_none(
    make_hub: HubFactory, log: EventLog
) -> None:
    hub = await make_hub(backlog=1)
    async with hub.subscribe(STORY) as subscription:
        await post(hub, log, STORY, 1, 2)
        await wait_for(lambda: subscription.overflowed)
        with anyio.fail_after(WAIT):
            assert await subscription.next() is None


async def test_stop_closes_subscriptions(hub: Hub, log: EventLog) -> None:
    async with hub.subscribe(STORY) as waiting, hub.subscribe(OTHER_STORY) as idle:
        blocked = asyncio.create_task(waiting.next())
        await asyncio.sleep(0.05)
        assert not blocked.done()
        await hub.check()  # healthy while running ...
        await hub.stop()
        with pytest.raises(BroadcastDown):  # ... and says so once stopped
            await hub.check()
        with anyio.fail_after(WAIT):
            assert await blocked is None
            assert await idle.next() is None
        assert waiting.closed and idle.closed
        # A late push to a closed subscription is ignored, never queued.
        waiting.push(encode(story_event(STORY, 1)))
        assert waiting.backlog == 0


# --- ordering of subscribe and unsubscribe --------------------------------------------


async def test_a_new_reader_racing_the_last_one_leaving_stays_subscribed(
    hub: Hub, log: EventLog
) -> None:
    """The leaving reader's unsubscribe and the arriving reader's subscribe reach the
    backend in call order, whatever the interleaving: the channel ends up subscribed."""

    async def enter_later(
        arriving: AbstractAsyncContextManager[Subscription], delay: int
    ) -> Subscription:
        for _ in range(delay):
            await asyncio.sleep(0)
        return await arriving.__aenter__()

    for seq in range(1, 9):
        leaving = hub.subscribe(STORY)
        await leaving.__aenter__()
        arriving = hub.subscribe(STORY)
        # The newcomer enters 0, 1, 2 ... loop turns after the leaver started leaving.
        results = await asyncio.gather(
            leaving.__aexit__(None, None, None), enter_later(arriving, seq - 1)
        )
        subscription = results[1]
        await post(hub, log, STORY, seq)
        frame = await next_frame(subscription)
        assert frame.seq == seq
        await arriving.__aexit__(None, None, None)
    assert hub.stats().stories == 0


# --- faults -----------------------------------------------------------------------------


async def test_a_lost_connection_is_restored_and_the_gap_filled_from_the_log(
    hub: Hub, backend: BroadcastBackend, log: EventLog
) -> None:
    async with hub.subscribe(STORY) as subscription:
        await post(hub, log, STORY, 1)
        assert seqs([await next_frame(subscription)]) == [1]

        await break_connection(backend)
        # Committed (and published, or not) while the connection is down or being
        # restored: whatever the backend lost, the hub reads from the log.
        await post(hub, log, STORY, 2, 3)
        await wait_for(lambda: hub.stats().reconnects >= 1 and hub.connected)
        async with hub.subscribe(OTHER_STORY) as newcomer:
            assert seqs(await frames(subscription, 2)) == [2, 3]
            # Live again, for the old channels and new ones.
            await post(hub, log, STORY, 4)
            await post(hub, log, OTHER_STORY, 1)
            assert seqs([await next_frame(subscription)]) == [4]
            assert seqs([await next_frame(newcomer)]) == [1]
        await post(hub, log, STORY, 5)
        assert seqs([await next_frame(subscription)]) == [5]
        assert subscription.backlog == 0  # nothing twice
    await hub.check()
