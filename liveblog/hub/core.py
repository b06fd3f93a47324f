"""The broadcast hub: one listener per process, fan-out to every local stream.

Each event is encoded into its SSE frame once, by the process that commits it; that
frame travels through the backend and the very same bytes object is handed to every
local stream of the story. Streams never share a queue with each other: each has a
small bounded backlog, and a stream that falls ``backlog`` frames behind is closed
(its reader reconnects with ``Last-Event-ID`` and replays from the log), so one stuck
reader can neither slow the others nor grow memory without bound.

The hub also guards order: it remembers the last sequence number it fanned out per
story and, when a message arrives with a gap before it (a lost backend message, or a
publisher that died between commit and publish), it reads the missing frames from the
database first. Duplicates are dropped. Its position in a story starts at the story's
``last_seq`` when the first local reader arrives, so even the first message is checked.

Faults are handled here too, once for every backend: when the backend's ``listen``
fails or ends unexpectedly, the hub reconnects with backoff, re-subscribes the channels
that have local readers, and reads from the log every event after its last delivered
one, before it takes the next message. Readers get every event once and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from liveblog import tasks
from liveblog.events import Frame, encode
from liveblog.hub.backend import BroadcastBackend
from liveblog.hub.recent import RecentFrames
from liveblog.metrics import Metrics
from liveblog.models import StoryEvent

log = logging.getLogger(__name__)

# (story_id, after_seq, before_seq) -> encoded frames with after_seq < seq < before_seq
LoadFrames = Callable[[int, int, int], Awaitable[list[Frame]]]
# story_id -> the story's newest sequence number in the log (0 if none)
LoadLastSeq = Callable[[int], Awaitable[int]]

NEWEST = 2**31 - 1  # a "before" bound past any sequence number (the column is 32-bit)
RECONNECT_FIRST = 0.05  # seconds before the first reconnect attempt; doubles per failure
RECONNECT_MAX = 2.0
PROBE_TIMEOUT = 2.0
# Events published here and not yet fanned out here, timed for the latency metric; a
# story whose readers left meanwhile never comes back, so the oldest are let go.
TIMED_EVENTS = 1024
HEALTH_CHANNEL = "liveblog.health"

CHANNEL_PREFIX = "liveblog.story."


def channel_for(story_id: int) -> str:
    return f"{CHANNEL_PREFIX}{story_id}"


def pack(frame: Frame, *, with_data: bool = True) -> bytes:
    """Backend message: a one-line header, then the frame (empty: read it from the log)."""
    header = b"%d %d %d\n" % (frame.story_id, frame.seq, int(frame.closes))
    return header + frame.data if with_data else header


def unpack(message: bytes) -> tuple[int, int, bool, bytes]:
    header, _, data = message.partition(b"\n")
    story_id, seq, closes = header.split()
    return int(story_id), int(seq), closes == b"1", data


class Subscription:
    """One stream's view of a story: a bounded backlog of frames and a wake-up.

    The wake-up is a future for ``next()``, or, when ``on_ready`` is set, that callback,
    called synchronously by ``push`` and ``close``: the reader hot path
    (``liveblog.live.stream``) writes the frame right away instead of waking a task.
    """

    __slots__ = ("_frames", "_limit", "_waiter", "closed", "on_ready", "overflowed", "story_id")

    def __init__(self, story_id: int, limit: int) -> None:
        self.story_id = story_id
        # A list, not a deque: a deque allocates a 64-slot block up front (~0.6 KiB, 6 MB
        # for 10,000 streams), and the backlog is short (bounded, and usually empty).
        self._frames: list[Frame] = []
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None
        self.on_ready: Callable[[], None] | None = None
        self.closed = False
        self.overflowed = False

    @property
    def backlog(self) -> int:
        return len(self._frames)

    def push(self, frame: Frame) -> None:
        if self.closed:
            return
        if len(self._frames) >= self._limit:
            # The reader is too far behind: drop what it has not taken and end the
            # stream; it resumes from the log with Last-Event-ID.
            self.overflowed = True
            self.closed = True
            self._frames.clear()
        else:
            self._frames.append(frame)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self.on_ready is not None:
            self.on_ready()
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take(self) -> Frame | None:
        """The next frame without waiting: None if there is none (or it overflowed)."""
        if self.overflowed or not self._frames:
            return None
        return self._frames.pop(0)

    async def next(self) -> Frame | None:
        """The next frame, or None once the subscription is closed (or overflowed)."""
        while not self._frames:
            if self.closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.overflowed:
            return None
        return self._frames.pop(0)


@dataclass
class HubStats:
    stories: int
    subscribers: int
    overflows: int
    gap_fills: int
    delivered_frames: int
    connected: bool = True
    reconnects: int = 0


class BroadcastDown(ConnectionError):
    """The broadcast backend is unreachable (what /healthz reports)."""


class Hub:
    def __init__(
        self,
        backend: BroadcastBackend,
        *,
        load_frames: LoadFrames,
        load_last_seq: LoadLastSeq,
        backlog: int = 256,
        recent_frames: int = 512,
        reconnect_delay: float = RECONNECT_FIRST,
        reconnect_max: float = RECONNECT_MAX,
        metrics: Metrics | None = None,
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        # (story id, seq) -> when its publish began, for events with local readers.
        self._published_at: dict[tuple[int, int], float] = {}
        self._load_frames = load_frames
        self._load_last_seq = load_last_seq
        self._backlog = backlog
        self._reconnect_delay = reconnect_delay
        self._reconnect_max = reconnect_max
        self._subscribers: dict[int, set[Subscription]] = {}
        self._last_seq: dict[int, int] = {}
        # The newest frames of each followed story, for readers resuming (hub.recent).
        self._recent: dict[int, RecentFrames] = {}
        self._recent_limit = recent_frames
        self._routes: dict[str, Callable[[bytes], None]] = {}
        # Stories whose channel the current backend connection is subscribed to.
        self._listening: set[int] = set()
        # One lock per story channel, so its subscribe and unsubscribe calls reach the
        # backend in call order. Weak values: a lock lives while someone holds or awaits it.
        self._channel_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        # story id -> (seq, closes) of the newest event whose publish failed; re-sent
        # (as a header, the frame is in the log) once the backend is back.
        self._unsent: dict[int, tuple[int, bool]] = {}
        self._connected = False
        self._stopping = False
        self._listener: asyncio.Task[None] | None = None
        self._overflows = 0
        self._gap_fills = 0
        self._delivered = 0
        self._reconnects = 0

    async def start(self) -> None:
        # The first connection must work: a wrong URL should stop the app, not loop.
        await self.backend.connect()
        self._connected = True
        self._listener = asyncio.create_task(self._run(), name="liveblog-hub-listener")

    async def stop(self) -> None:
        self._stopping = True
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.close()
        self._connected = False
        await self.backend.disconnect()
        listener, self._listener = self._listener, None
        await tasks.stop(listener)

    def stats(self) -> HubStats:
        return HubStats(
            stories=len(self._subscribers),
            subscribers=sum(len(s) for s in self._subscribers.values()),
            overflows=self._overflows,
            gap_fills=self._gap_fills,
            delivered_frames=self._delivered,
            connected=self._connected,
            reconnects=self._reconnects,
        )

    @property
    def backlog(self) -> int:
        """Frames a subscription may fall behind before it is closed."""
        return self._backlog

    @property
    def connected(self) -> bool:
        return self._connected

    async def check(self) -> None:
        """Raise ``BroadcastDown`` unless the backend is connected and takes a message."""
        if not self._connected:
            raise BroadcastDown("reconnecting to the broadcast backend")
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                # Nobody subscribes to this channel: a probe of the publishing path.
                await self.backend.publish(HEALTH_CHANNEL, b"")
        except Exception as exc:
            raise BroadcastDown(f"broadcast backend refused a message: {exc!r}") from exc

    def subscriber_count(self, story_id: int) -> int:
        return len(self._subscribers.get(story_id, ()))

    def position(self, story_id: int) -> int | None:
        """The story's newest event fanned out here (or in the log when the first local
        reader subscribed). A subscription entered now gets every event after it."""
        return self._last_seq.get(story_id)

    def recent(self, story_id: int, after: int, until: int) -> list[Frame] | None:
        """The frames after ``after`` up to ``until`` from memory, or None if this process
        does not hold them all (a reader resuming from further back reads the log)."""
        recent = self._recent.get(story_id)
        return None if recent is None else recent.between(after, until)

    def prime(self, story_id: int, frames: Sequence[Frame]) -> None:
        """Frames read from the log for a replay: keep the newest, for the next readers."""
        recent = self._recent.get(story_id)
        if recent is not None:
            recent.prime(frames)

    def subscriber_counts(self) -> dict[int, int]:
        """Open local streams per story (what presence tells the other processes)."""
        return {story_id: len(subs) for story_id, subs in self._subscribers.items()}

    async def route(self, channel: str, handler: Callable[[bytes], None]) -> None:
        """Hand ``channel``'s messages to ``handler`` rather than to the story fan-out
        (hub.presence uses one such channel). Re-subscribed after a reconnect."""
        self._routes[channel] = handler
        if self._connected:
            try:
                await self.backend.subscribe(channel)
            except Exception as exc:
                log.warning("hub: could not subscribe %s (%r)", channel, exc)
                await self._connection_failed()

    # --- publishing ------------------------------------------------------------------

    async def publish(self, events: Sequence[StoryEvent]) -> None:
        """Send committed events to every process. Call only after the commit.

        Never raises for a broken backend: the events are committed, so they are not
        lost. The newest one per story is re-sent after the reconnect, and every
        process fills what it missed from the log.
        """
        with_data = self.backend.carries_frames
        metrics = self.metrics
        if metrics is not None:
            metrics.events_published.inc(len(events))
            began = time.monotonic()
        for event in events:
            frame = encode(event)
            if metrics is not None and frame.story_id in self._subscribers:
                self._time(frame, began)
            try:
                await self.backend.publish(
                    channel_for(frame.story_id), pack(frame, with_data=with_data)
                )
            except Exception as exc:
                log.warning(
                    "hub: could not publish story %s event %s (%r); will re-send it after "
                    "reconnecting (it is committed: nothing is lost)",
                    frame.story_id,
                    frame.seq,
                    exc,
                )
                self._remember_unsent(frame)
                await self._connection_failed()

    def _time(self, frame: Frame, began: float) -> None:
        timed = self._published_at
        timed[(frame.story_id, frame.seq)] = began
        if len(timed) > TIMED_EVENTS:
            del timed[next(iter(timed))]

    def _remember_unsent(self, frame: Frame) -> None:
        previous = self._unsent.get(frame.story_id)
        if previous is None or previous[0] < frame.seq:
            self._unsent[frame.story_id] = (frame.seq, frame.closes)

    async def _resend_unsent(self) -> None:
        for story_id, (seq, closes) in list(self._unsent.items()):
            header = Frame(story_id=story_id, seq=seq, closes=closes, data=b"")
            await self.backend.publish(channel_for(story_id), pack(header, with_data=False))
            if self._unsent.get(story_id) == (seq, closes):
                del self._unsent[story_id]

    # --- subscribing -----------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(self, story_id: int) -> AsyncIterator[Subscription]:
        """A subscription to one story. Once entered, every event committed from then
        on is delivered (a stream replays what came before from the log itself)."""
        subscription = Subscription(story_id, self._backlog)
        self._subscribers.setdefault(story_id, set()).add(subscription)
        try:
            if not self._followed(story_id):
                await self._sync_channel(story_id)
            yield subscription
        finally:
            subscription.close()
            subscribers = self._subscribers.get(story_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[story_id]
            if story_id not in self._subscribers or not self._followed(story_id):
                # Shielded: a reader hanging up cancels its stream, and a half-done
                # unsubscribe would leave the channel state wrong for the next reader.
                await asyncio.shield(self._sync_channel(story_id))

    def _followed(self, story_id: int) -> bool:
        """Subscribed and position known: a reader joining (or leaving others behind)
        has nothing to sync, which is what a crowd arriving at a story mostly finds.

        A sync running at the same time cannot be undoing that: one that finds the story
        unwanted forgets the position and the subscription in the same step, before it
        awaits anything, so from then on this is False and the reader queues for the lock
        and re-subscribes after it. Checking for a held lock instead made every reader
        of an arriving crowd queue behind the first one's database read."""
        return story_id in self._listening and story_id in self._last_seq

    def _channel_lock(self, story_id: int) -> asyncio.Lock:
        lock = self._channel_locks.get(story_id)
        if lock is None:
            lock = self._channel_locks[story_id] = asyncio.Lock()
        return lock

    async def _sync_channel(self, story_id: int) -> None:
        """Make the backend subscription and the hub's position match whether the story
        has local readers now. Under the story's lock, deciding from the current state
        rather than from the call, so racing joins and leaves end up right."""
        async with self._channel_lock(story_id):
            wanted = bool(self._subscribers.get(story_id))
            listening = story_id in self._listening
            if wanted and not listening and self._connected:
                try:
                    await self.backend.subscribe(channel_for(story_id))
                except Exception as exc:
                    log.warning("hub: could not subscribe story %s (%r)", story_id, exc)
                    await self._connection_failed()  # re-subscribed after the reconnect
                else:
                    self._listening.add(story_id)
            if wanted and story_id not in self._last_seq:
                # Read after subscribing: whatever is committed later reaches the hub,
                # so a message arriving past this position with a gap before it can be
                # filled from the log; whatever came before, streams replay themselves.
                position = await self._load_last_seq(story_id)
                if self._subscribers.get(story_id):
                    position = max(position, self._last_seq.get(story_id, 0))
                    self._last_seq[story_id] = position
                    recent = self._recent.get(story_id)
                    if recent is None or recent.end != position:
                        self._recent[story_id] = RecentFrames(position, self._recent_limit)
            if not wanted:
                # Forget the position too: a later first reader replays from the log
                # itself, so there is no gap for the hub to fill.
                self._last_seq.pop(story_id, None)
                self._recent.pop(story_id, None)
                if listening:
                    self._listening.discard(story_id)
                    if self._connected:
                        try:
                            await self.backend.unsubscribe(channel_for(story_id))
                        except Exception as exc:
                            log.warning("hub: could not unsubscribe story %s (%r)", story_id, exc)
                            await self._connection_failed()

    # --- the connection --------------------------------------------------------------

    async def _connection_failed(self) -> None:
        """Hand a broken connection to the listener: closing it ends ``listen``, and the
        listener reconnects (closing twice is harmless)."""
        if self._connected and not self._stopping:
            self._connected = False
            with contextlib.suppress(Exception):
                await self.backend.disconnect()

    async def _run(self) -> None:
        """The listener: receive until the connection breaks, then reconnect with backoff,
        re-subscribe and fill every story's gap from the log; until stopped."""
        delay = self._reconnect_delay
        while not self._stopping:
            if not self._connected:
                try:
                    await self._reconnect()
                except Exception as exc:
                    if self._stopping:
                        return
                    self._connected = False
                    log.warning("hub: reconnecting failed (%r); retrying in %.2fs", exc, delay)
                    with contextlib.suppress(Exception):
                        await self.backend.disconnect()
                    await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                    delay = min(delay * 2, self._reconnect_max)
                    continue
                log.warning("hub: reconnected to the broadcast backend")
                delay = self._reconnect_delay
            failure: BaseException | None = None
            try:
                async for channel, message in self.backend.listen():
                    await self._dispatch(channel, message)
            except Exception as exc:
                failure = exc
            if self._stopping:
                return
            log.warning("hub: broadcast connection lost (%r); reconnecting", failure)
            self._connected = False
            with contextlib.suppress(Exception):
                await self.backend.disconnect()
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _reconnect(self) -> None:
        self._listening.clear()
        await self.backend.connect()
        self._reconnects += 1
        if self.metrics is not None:
            self.metrics.broadcast_reconnects.inc()
        self._connected = True
        for channel in list(self._routes):
            await self.backend.subscribe(channel)
        for story_id in list(self._subscribers):
            await self._sync_channel(story_id)
        if not self._connected:  # a subscribe failed
            raise BroadcastDown("could not re-subscribe")
        # Messages published while the connection was down are gone: read those
        # events from the log. (This task is the only one that fans out, and messages
        # arriving meanwhile wait in the backend, so order holds.)
        for story_id in list(self._subscribers):
            last = self._last_seq.get(story_id)
            if last is not None and await self._fill(story_id, last, None):
                self._gap_filled()
        await self._resend_unsent()

    # --- receiving -------------------------------------------------------------------

    async def _dispatch(self, channel: str, message: bytes) -> None:
        try:
            route = self._routes.get(channel)
            if route is not None:
                route(message)
                return
            await self._receive(message)
        except Exception:
            log.exception("hub: could not deliver a broadcast message")

    async def _receive(self, message: bytes) -> None:
        story_id, seq, closes, data = unpack(message)
        if story_id not in self._subscribers:
            return
        last = self._last_seq.get(story_id)
        if last is not None and seq <= last:
            return  # already delivered (a duplicate, or filled from the log earlier)
        if last is not None and seq > last + 1:
            self._gap_filled()
            await self._fill(story_id, last, seq)
        if data:
            frame = Frame(story_id=story_id, seq=seq, closes=closes, data=data)
        else:
            loaded = await self._load_frames(story_id, seq - 1, seq + 1)
            if not loaded:
                log.warning("hub: story %s event %s is not in the log", story_id, seq)
                return
            frame = loaded[0]
        self._fan_out(frame)

    def _gap_filled(self) -> None:
        self._gap_fills += 1
        if self.metrics is not None:
            self.metrics.gap_fills.inc()

    async def _fill(self, story_id: int, after: int, before: int | None) -> int:
        """Fan out the logged events between ``after`` and ``before`` (None: the newest),
        in as many reads as the loader's page size needs. Returns how many."""
        count = 0
        while before is None or after < before - 1:
            frames = await self._load_frames(story_id, after, NEWEST if before is None else before)
            if not frames:
                break
            for frame in frames:
                self._fan_out(frame)
            count += len(frames)
            after = frames[-1].seq
        return count

    def _fan_out(self, frame: Frame) -> None:
        subscribers = self._subscribers.get(frame.story_id)
        if not subscribers:
            return
        last = self._last_seq.get(frame.story_id)
        if last is not None and frame.seq <= last:
            return
        self._last_seq[frame.story_id] = frame.seq
        recent = self._recent.get(frame.story_id)
        if recent is None:
            recent = self._recent[frame.story_id] = RecentFrames(frame.seq - 1, self._recent_limit)
        recent.add(frame)
        for subscription in tuple(subscribers):
            subscription.push(frame)
            if subscription.overflowed and subscription in subscribers:
                self._overflows += 1
                subscribers.discard(subscription)
        self._delivered += len(subscribers)
        metrics = self.metrics
        if metrics is not None:
            # Once per event, however many readers: the hot path pays nothing per reader.
            metrics.frames_delivered.inc(len(subscribers))
            began = self._published_at.pop((frame.story_id, frame.seq), None)
            if began is not None:
                metrics.fan_out_latency.observe(time.monotonic() - began)
