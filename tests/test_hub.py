"""Contract tests for the broadcast hub, run against every backend in ``BACKEND_URLS``.

Only the memory backend exists today; a new backend joins by adding its URL to
``BACKEND_URLS`` (and skipping in the ``backend`` fixture when its service is absent).
Every test drives a real ``Hub`` with a real backend; the log the hub fills gaps from is a
plain in-memory list of real ``StoryEvent`` rows, encoded exactly as the app encodes them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack

import anyio
import pytest

from liveblog.events import Frame, dump_payload, encode
from liveblog.hub import BroadcastBackend, Hub, Subscription, backend_from_url
from liveblog.hub.core import channel_for, pack
from liveblog.models import EventKind, StoryEvent

BACKEND_URLS = {"memory": "memory://"}

WAIT = 5.0  # seconds any single expected delivery may take
STORY = 1
OTHER_STORY = 2


@pytest.fixture(params=sorted(BACKEND_URLS))
def backend(request: pytest.FixtureRequest) -> BroadcastBackend:
    """A fresh, not yet connected backend (the hub connects it in ``start``)."""
    return backend_from_url(BACKEND_URLS[request.param])


def story_event(story_id: int, seq: int, *, closes: bool = False) -> StoryEvent:
    kind = EventKind.story if closes else EventKind.update
    return StoryEvent(
        story_id=story_id,
        seq=seq,
        kind=kind,
        update_id=seq,
        data=dump_payload({"kind": kind.value, "id": seq, "html": f"<p>update {seq}</p>"}),
        closes=closes,
    )


class EventLog:
    """The story log the hub reads missing frames from: real events, real encoding."""

    def __init__(self) -> None:
        self.events: dict[tuple[int, int], StoryEvent] = {}
        self.calls: list[tuple[int, int, int]] = []
        self.failures_left = 0

    def append(self, story_id: int, seq: int) -> StoryEvent:
        event = self.events[story_id, seq] = story_event(story_id, seq)
        return event

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
async def make_hub(backend: BroadcastBackend) -> AsyncIterator[HubFactory]:
    """Start a hub on the fixture's backend; stopped at teardown."""
    hubs: list[Hub] = []

    async def make(log: EventLog | None = None, *, backlog: int = 64) -> Hub:
        assert not hubs, "one hub per backend instance"
        hub = Hub(backend, load_frames=(log or EventLog()).load_frames, backlog=backlog)
        await hub.start()
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        await hub.stop()


async def next_frame(subscription: Subscription) -> Frame:
    with anyio.fail_after(WAIT):
        frame = await subscription.next()
    assert frame is not None, "subscription closed while a frame was expected"
    return frame


async def frames(subscription: Subscription, count: int) -> list[Frame]:
    return [await next_frame(subscription) for _ in range(count)]


def seqs(received: Iterable[Frame]) -> list[int]:
    return [frame.seq for frame in received]


# --- the backend contract itself ------------------------------------------------------


@pytest.mark.anyio
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


@pytest.mark.anyio
async def test_backend_listen_ends_on_disconnect(backend: BroadcastBackend) -> None:
    await backend.connect()
    await backend.subscribe("liveblog.story.a")

    async def drain() -> list[tuple[str, bytes]]:
        return [item async for item in backend.listen()]

    listener = asyncio.create_task(drain())
    await backend.publish("liveblog.story.a", b"one")
    await asyncio.sleep(0.05)
    await backend.disconnect()
    with anyio.fail_after(WAIT):
        received = await listener
    assert received == [("liveblog.story.a", b"one")]


# --- the hub over the backend ---------------------------------------------------------


@pytest.mark.anyio
async def test_message_reaches_subscribed_story_only(make_hub: HubFactory) -> None:
    hub = await make_hub()
    async with hub.subscribe(STORY) as mine, hub.subscribe(OTHER_STORY) as other:
        # A story nobody follows: the hub must not deliver it anywhere.
        await hub.publish([story_event(99, 1)])
        await hub.publish([story_event(STORY, 1)])
        frame = await next_frame(mine)
        assert (frame.story_id, frame.seq) == (STORY, 1)
        assert frame.data == encode(story_event(STORY, 1)).data
        assert other.backlog == 0
        assert hub.stats().delivered_frames == 1

        await hub.publish([story_event(OTHER_STORY, 1)])
        frame = await next_frame(other)
        assert (frame.story_id, frame.seq) == (OTHER_STORY, 1)
        assert mine.backlog == 0
    assert hub.stats().subscribers == 0
    assert hub.stats().stories == 0


@pytest.mark.anyio
async def test_leaving_a_story_stops_its_delivery(make_hub: HubFactory) -> None:
    hub = await make_hub()
    async with hub.subscribe(STORY) as staying:
        async with hub.subscribe(STORY) as leaving:
            await hub.publish([story_event(STORY, 1)])
            assert seqs([await next_frame(leaving)]) == [1]
        assert leaving.closed
        assert hub.subscriber_count(STORY) == 1
        await hub.publish([story_event(STORY, 2)])
        assert seqs(await frames(staying, 2)) == [1, 2]
        assert leaving.backlog == 0
        with anyio.fail_after(WAIT):
            assert await leaving.next() is None
    assert hub.subscriber_count(STORY) == 0


@pytest.mark.anyio
async def test_fan_out_hands_every_subscriber_the_same_bytes_in_order(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub()
    count, updates = 25, 10
    async with AsyncExitStack() as stack:
        subscriptions = [
            await stack.enter_async_context(hub.subscribe(STORY)) for _ in range(count)
        ]
        assert hub.subscriber_count(STORY) == count
        await hub.publish([story_event(STORY, seq) for seq in range(1, updates + 1)])
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


@pytest.mark.anyio
async def test_duplicates_are_delivered_once(make_hub: HubFactory) -> None:
    hub = await make_hub()
    async with hub.subscribe(STORY) as subscription:
        one, two = story_event(STORY, 1), story_event(STORY, 2)
        await hub.publish([one, one, two, one, two])
        # A later frame proves the duplicates before it were processed, not just pending.
        await hub.publish([story_event(STORY, 3)])
        assert seqs(await frames(subscription, 3)) == [1, 2, 3]
        assert subscription.backlog == 0
    assert hub.stats().delivered_frames == 3
    assert hub.stats().gap_fills == 0


@pytest.mark.anyio
async def test_gap_is_filled_from_the_log_in_order(make_hub: HubFactory) -> None:
    log = EventLog()
    hub = await make_hub(log)
    for seq in range(1, 7):
        log.append(STORY, seq)
    async with hub.subscribe(STORY) as subscription:
        await hub.publish([log.events[STORY, 1]])
        assert seqs([await next_frame(subscription)]) == [1]
        assert log.calls == []
        # 2 was committed but its message was lost: 3 must not overtake it.
        await hub.publish([log.events[STORY, 3]])
        assert seqs(await frames(subscription, 2)) == [2, 3]
        assert log.calls == [(STORY, 1, 3)]
        # A wider gap: 4 and 5 come from the log, in order, before 6.
        await hub.publish([log.events[STORY, 6]])
        received = await frames(subscription, 3)
        assert seqs(received) == [4, 5, 6]
        assert [frame.data for frame in received] == [
            encode(log.events[STORY, seq]).data for seq in (4, 5, 6)
        ]
        assert log.calls == [(STORY, 1, 3), (STORY, 3, 6)]
        # The late original of a filled frame is a duplicate now.
        await hub.publish([log.events[STORY, 2], log.events[STORY, 5]])
        await hub.publish([story_event(STORY, 7)])
        assert seqs([await next_frame(subscription)]) == [7]
        assert subscription.backlog == 0
    assert hub.stats().gap_fills == 2


@pytest.mark.anyio
async def test_header_only_message_is_read_from_the_log(make_hub: HubFactory) -> None:
    log = EventLog()
    hub = await make_hub(log)
    event = log.append(STORY, 1)
    async with hub.subscribe(STORY) as subscription:
        await hub.backend.publish(channel_for(STORY), pack(encode(event), with_data=False))
        frame = await next_frame(subscription)
    assert frame.seq == 1
    assert frame.data == encode(event).data
    assert log.calls == [(STORY, 0, 2)]


@pytest.mark.anyio
async def test_listener_survives_a_failing_gap_fill(
    make_hub: HubFactory, caplog: pytest.LogCaptureFixture
) -> None:
    log = EventLog()
    hub = await make_hub(log)
    for seq in range(1, 5):
        log.append(STORY, seq)
    async with hub.subscribe(STORY) as subscription:
        await hub.publish([log.events[STORY, 1]])
        assert seqs([await next_frame(subscription)]) == [1]
        log.failures_left = 1
        with caplog.at_level(logging.ERROR, logger="liveblog.hub.core"):
            await hub.publish([log.events[STORY, 3]])  # gap fill fails: 3 is held back
            await hub.publish([log.events[STORY, 4]])  # next message fills 2 and 3
            assert seqs(await frames(subscription, 3)) == [2, 3, 4]
    assert log.calls == [(STORY, 1, 3), (STORY, 1, 4)]
    assert "could not deliver" in caplog.text


@pytest.mark.anyio
async def test_first_reader_after_everyone_left_starts_fresh(make_hub: HubFactory) -> None:
    log = EventLog()
    hub = await make_hub(log)
    async with hub.subscribe(STORY) as subscription:
        await hub.publish([story_event(STORY, 1)])
        assert seqs([await next_frame(subscription)]) == [1]
    assert hub.stats().stories == 0
    await hub.publish([story_event(STORY, 2), story_event(STORY, 3)])  # nobody listening
    async with hub.subscribe(STORY) as subscription:
        # The stream replays 2..4 from the log itself; the hub must not fill that "gap".
        await hub.publish([story_event(STORY, 5)])
        assert seqs([await next_frame(subscription)]) == [5]
    assert log.calls == []


@pytest.mark.anyio
async def test_backlog_holds_exactly_its_limit(make_hub: HubFactory) -> None:
    backlog = 4
    hub = await make_hub(backlog=backlog)
    async with hub.subscribe(STORY) as subscription:
        await hub.publish([story_event(STORY, seq) for seq in range(1, backlog + 1)])
        await wait_for(lambda: subscription.backlog == backlog)
        assert not subscription.overflowed
        assert seqs(await frames(subscription, backlog)) == [1, 2, 3, 4]
        assert hub.subscriber_count(STORY) == 1
    assert hub.stats().overflows == 0


@pytest.mark.anyio
async def test_overflowing_subscription_is_closed_and_bounded(make_hub: HubFactory) -> None:
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
            await hub.publish([story_event(STORY, seq)])
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


@pytest.mark.anyio
async def test_overflow_wakes_a_waiting_reader_with_none(make_hub: HubFactory) -> None:
    hub = await make_hub(backlog=1)
    async with hub.subscribe(STORY) as subscription:
        await hub.publish([story_event(STORY, 1), story_event(STORY, 2)])
        await wait_for(lambda: subscription.overflowed)
        with anyio.fail_after(WAIT):
            assert await subscription.next() is None


@pytest.mark.anyio
async def test_stop_closes_subscriptions(make_hub: HubFactory) -> None:
    hub = await make_hub()
    async with hub.subscribe(STORY) as waiting, hub.subscribe(OTHER_STORY) as idle:
        blocked = asyncio.create_task(waiting.next())
        await asyncio.sleep(0.05)
        assert not blocked.done()
        await hub.stop()
        with anyio.fail_after(WAIT):
            assert await blocked is None
            assert await idle.next() is None
        assert waiting.closed and idle.closed
        # A late push to a closed subscription is ignored, never queued.
        waiting.push(encode(story_event(STORY, 1)))
        assert waiting.backlog == 0


async def wait_for(condition: Callable[[], bool], seconds: float = WAIT) -> None:
    with anyio.fail_after(seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)
