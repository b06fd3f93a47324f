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
database first. Duplicates are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from liveblog.events import Frame, encode
from liveblog.hub.backend import BroadcastBackend
from liveblog.models import StoryEvent

log = logging.getLogger(__name__)

# (story_id, after_seq, before_seq) -> encoded frames with after_seq < seq < before_seq
LoadFrames = Callable[[int, int, int], Awaitable[list[Frame]]]

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
    """One stream's view of a story: a bounded backlog of frames and a wake-up."""

    __slots__ = ("_frames", "_limit", "_waiter", "closed", "overflowed", "story_id")

    def __init__(self, story_id: int, limit: int) -> None:
        self.story_id = story_id
        self._frames: deque[Frame] = deque()
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None
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
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

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
        return self._frames.popleft()


@dataclass
class HubStats:
    stories: int
    subscribers: int
    overflows: int
    gap_fills: int
    delivered_frames: int


class Hub:
    def __init__(
        self, backend: BroadcastBackend, *, load_frames: LoadFrames, backlog: int = 256
    ) -> None:
        self.backend = backend
        self._load_frames = load_frames
        self._backlog = backlog
        self._subscribers: dict[int, set[Subscription]] = {}
        self._last_seq: dict[int, int] = {}
        self._listener: asyncio.Task[None] | None = None
        self._overflows = 0
        self._gap_fills = 0
        self._delivered = 0

    async def start(self) -> None:
        await self.backend.connect()
        self._listener = asyncio.create_task(self._listen(), name="liveblog-hub-listener")

    async def stop(self) -> None:
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.close()
        await self.backend.disconnect()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    def stats(self) -> HubStats:
        return HubStats(
            stories=len(self._subscribers),
            subscribers=sum(len(s) for s in self._subscribers.values()),
            overflows=self._overflows,
            gap_fills=self._gap_fills,
            delivered_frames=self._delivered,
        )

    def subscriber_count(self, story_id: int) -> int:
        return len(self._subscribers.get(story_id, ()))

    # --- publishing ------------------------------------------------------------------

    async def publish(self, events: Sequence[StoryEvent]) -> None:
        """Send committed events to every process. Call only after the commit."""
        for event in events:
            frame = encode(event)
            await self.backend.publish(channel_for(frame.story_id), pack(frame))

    # --- subscribing -----------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(self, story_id: int) -> AsyncIterator[Subscription]:
        subscription = Subscription(story_id, self._backlog)
        subscribers = self._subscribers.get(story_id)
        if subscribers is None:
            subscribers = self._subscribers[story_id] = set()
            await self.backend.subscribe(channel_for(story_id))
        subscribers.add(subscription)
        try:
            yield subscription
        finally:
            subscription.close()
            subscribers.discard(subscription)
            if not subscribers and self._subscribers.get(story_id) is subscribers:
                del self._subscribers[story_id]
                # Forget the position too: a later first reader replays from the log
                # itself, so there is no gap for the hub to fill.
                self._last_seq.pop(story_id, None)
                await self.backend.unsubscribe(channel_for(story_id))

    # --- receiving -------------------------------------------------------------------

    async def _listen(self) -> None:
        async for _channel, message in self.backend.listen():
            try:
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
            self._gap_fills += 1
            for missing in await self._load_frames(story_id, last, seq):
                self._fan_out(missing)
        if data:
            frame = Frame(story_id=story_id, seq=seq, closes=closes, data=data)
        else:
            loaded = await self._load_frames(story_id, seq - 1, seq + 1)
            if not loaded:
                log.warning("hub: story %s event %s is not in the log", story_id, seq)
                return
            frame = loaded[0]
        self._fan_out(frame)

    def _fan_out(self, frame: Frame) -> None:
        subscribers = self._subscribers.get(frame.story_id)
        if not subscribers:
            return
        last = self._last_seq.get(frame.story_id)
        if last is not None and frame.seq <= last:
            return
        self._last_seq[frame.story_id] = frame.seq
        for subscription in tuple(subscribers):
            subscription.push(frame)
            if subscription.overflowed and subscription in subscribers:
                self._overflows += 1
                subscribers.discard(subscription)
        self._delivered += len(subscribers)
