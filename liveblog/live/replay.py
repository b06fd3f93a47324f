"""Replaying the log to readers who missed events: the cost follows the story, not the crowd.

A reader that reconnects with ``Last-Event-ID`` is owed every event after it. Read and
encoded per reader, as before, 400 scripts asking for a 5,000-event story from the start
took 1.8 GiB and every database connection, and an editor's post failed. Here:

* **From memory first.** A reader resuming within the hub's window of recent frames
  (``LIVEBLOG_REPLAY_WINDOW``, per followed story) is replayed from those frames: no
  database read at all. That is what a deploy's reconnect storm mostly is.
* **The log in shared pages.** Further back, the log is read in pages of ``PAGE``
  events aligned on sequence numbers: page *k* holds events ``k*PAGE+1 .. (k+1)*PAGE``
  (or up to the story's newest, for the last one). Events never change once logged, so
  a page, read and encoded once, serves every reader who needs it: pages are kept in a
  shared cache bounded in bytes (``LIVEBLOG_REPLAY_CACHE_BYTES``), and readers asking
  for a page already being read wait for that one read.
* **Reads wait in line.** The log is read with the function the app hands over
  (``liveblog.loaders``), on ``Database.stream_session``: a few connections of the
  stream path's own, never the editors'.
* **Under the reader's own backpressure.** A page is written in pieces of at most
  ``PIECE`` bytes, each awaited: a reader that stops reading holds one piece in its
  socket's buffer, not the story, and is dropped after the send timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from liveblog.events import Frame
from liveblog.hub import Hub
from liveblog.metrics import Metrics

log = logging.getLogger(__name__)

PAGE = 256  # events per page of the log
PIECE = 64 * 1024  # bytes per write to a replaying reader

PageKey = tuple[int, int, int]  # story id, page number, newest seq in it
# The frames of a story's events after ``after`` and before ``before``, from the log.
LoadFrames = Callable[[int, int, int], Awaitable[list[Frame]]]


@dataclass(frozen=True, slots=True)
class Page:
    """Events ``first .. first + len(offsets) - 1`` of a story, encoded back to back."""

    story_id: int
    first: int
    data: bytes
    offsets: tuple[int, ...]  # where each event's frame starts in ``data``
    closes: tuple[bool, ...]

    @property
    def last(self) -> int:
        return self.first + len(self.offsets) - 1

    def offset_after(self, seq: int) -> int:
        """Where the frames of the events after ``seq`` begin in ``data``."""
        index = seq + 1 - self.first
        if index <= 0:
            return 0
        if index >= len(self.offsets):
            return len(self.data)
        return self.offsets[index]

    def frames(self) -> list[Frame]:
        ends = (*self.offsets[1:], len(self.data))
        return [
            Frame(story_id=self.story_id, seq=self.first + i, closes=closes, data=self.data[a:b])
            for i, (a, b, closes) in enumerate(zip(self.offsets, ends, self.closes, strict=True))
        ]


def _page(story_id: int, first: int, frames: Sequence[Frame]) -> Page:
    offsets = []
    at = 0
    for frame in frames:
        offsets.append(at)
        at += len(frame.data)
    return Page(
        story_id=story_id,
        first=frames[0].seq if frames else first,
        data=b"".join(frame.data for frame in frames),
        offsets=tuple(offsets),
        closes=tuple(frame.closes for frame in frames),
    )


# Pieces are made one at a time, as the reader takes them: a copy of the page (or of
# the recent frames) per reader, made up front, cost 1,000 replaying readers 430 MiB.


def page_pieces(data: bytes, start: int) -> Iterator[bytes]:
    view = memoryview(data)
    for at in range(start, len(data), PIECE):
        yield bytes(view[at : at + PIECE])


def frame_pieces(frames: Iterable[Frame]) -> Iterator[bytes]:
    batch: list[bytes] = []
    size = 0
    for frame in frames:
        batch.append(frame.data)
        size += len(frame.data)
        if size >= PIECE:
            yield b"".join(batch)
            batch.clear()
            size = 0
    if batch:
        yield b"".join(batch)


class Replays:
    def __init__(
        self,
        hub: Hub,
        load_frames: LoadFrames,
        *,
        cache_bytes: int,
        metrics: Metrics | None = None,
    ) -> None:
        self.hub = hub
        self.metrics = metrics
        self._load_frames = load_frames
        self.cache_bytes = cache_bytes
        self._pages: OrderedDict[PageKey, Page] = OrderedDict()
        self._cached_bytes = 0
        self._reading: dict[PageKey, asyncio.Future[Page]] = {}
        # What an operator (and bench/crowd.py) reads at shutdown.
        self.from_memory = 0
        self.from_pages = 0
        self.page_reads = 0
        self.page_hits = 0

    async def replay(self, story_id: int, after: int, until: int) -> AsyncIterator[bytes]:
        """The frames of events ``after+1 .. until``, in order, in pieces to write."""
        if self.metrics is not None and after < until:
            self.metrics.replay_events.observe(until - after)
        from_log = False
        while after < until:
            recent = self.hub.recent(story_id, after, until)
            if recent is not None:
                for piece in frame_pieces(recent):
                    yield piece
                if not from_log:
                    self.from_memory += 1
                return
            from_log = True
            number = after // PAGE
            newest = min((number + 1) * PAGE, until)
            page = await self._page(story_id, number, newest)
            if page.last < after + 1:
                # The log ends before ``until``: never expected (the position came from
                # it), and nothing more to send if so.
                log.warning("replay: story %s has no events after %s", story_id, after)
                return
            if page.last == until and self.hub.recent(story_id, page.first - 1, until) is None:
                # The newest page fills the hub's recent frames (those of a story that
                # had no readers here a moment ago start empty), so the readers after
                # this one resume from memory.
                self.hub.prime(story_id, page.frames())
            for piece in page_pieces(page.data, page.offset_after(after)):
                yield piece
            after = page.last
        if from_log:
            self.from_pages += 1

    async def _page(self, story_id: int, number: int, newest: int) -> Page:
        key = (story_id, number, newest)
        page = self._pages.get(key)
        if page is not None:
            self._pages.move_to_end(key)
            self.page_hits += 1
            return page
        pending = self._reading.get(key)
        if pending is None:
            pending = self._reading[key] = asyncio.ensure_future(self._read(key))
            pending.add_done_callback(lambda _: self._reading.pop(key, None))
        else:
            self.page_hits += 1
        # Shielded: a reader hanging up must not cancel the read others wait for.
        return await asyncio.shield(pending)

    async def _read(self, key: PageKey) -> Page:
        story_id, number, newest = key
        first = number * PAGE + 1
        frames = await self._load_frames(story_id, first - 1, newest + 1)  # PAGE at most
        self.page_reads += 1
        page = _page(story_id, first, frames)
        if page.first == first and page.last == newest:  # whole: the log has no gaps
            self._keep(key, page)
        return page

    def _keep(self, key: PageKey, page: Page) -> None:
        size = len(page.data)
        if size > self.cache_bytes:
            return
        self._pages[key] = page
        self._cached_bytes += size
        while self._cached_bytes > self.cache_bytes:
            _, oldest = self._pages.popitem(last=False)
            self._cached_bytes -= len(oldest.data)

    def summary(self) -> str:
        return (
            f"stream replays: {self.from_memory} from memory, {self.from_pages} from the log "
            f"({self.page_reads} page reads, {self.page_hits} shared or cached)"
        )
