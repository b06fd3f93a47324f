"""Open event streams, the reader hot path, in pure ASGI.

``GET /stories/{slug}/events`` (``views/stream.py``) decides *what* a reader gets; this
module writes it, as cheaply as a Python process can:

* A live frame is written to each reader by the hub's fan-out itself: the stream's
  subscription calls back (``Subscription.on_ready``) and the stream drives the ASGI
  ``send`` coroutine by hand. A write to a socket with room returns without waiting,
  so nothing is scheduled, no task wakes up, and a frame costs one socket write per
  reader. Only a write that must wait (the reader's socket is full) is handed to a task,
  which also writes whatever queues up in the bounded backlog meanwhile.
* The reader's own request task just waits for the client to hang up.
* One ticker per process does what took a task or a timer per stream: heartbeats to
  idle streams, the send timeout (a write blocked too long drops the connection), and
  the end of every stream when uvicorn shuts down.
* A dropped reader (a write blocked past the send timeout, or ``backlog`` events behind)
  is dropped for real: the connection is aborted (``liveblog.server`` gives the app a
  way), so its socket and whatever waits in its send buffer go at once. A graceful close
  would wait for a reader who is not reading to take the rest. Drops are counted and
  logged once per ``DROP_REPORT`` seconds at INFO: they are ordinary, not faults.

sse-starlette ran three to four tasks, a task group and a lock per stream, and waking a
task per reader per event cost several times what nginx + nchan spends on a delivery;
``docs/performance.md`` has the measurements. The wire format is unchanged: the same
headers, the ``retry:`` block first, each event as its shared ``Frame`` bytes,
``: heartbeat`` comments.

Joining a live story that already has readers here costs no database query: ``Streams``
remembers, per live story with local streams, its id and that it is live, checked
against every event that passes (a ``story`` event, which may end or unpublish it, makes
the next reader read the story again); the hub knows the position to start from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import types
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass
from types import CoroutineType
from typing import Any, TypeVar

from sse_starlette.sse import AppStatus
from starlette.types import Message, Receive, Send

from liveblog.events import Frame
from liveblog.gc_tuning import return_freed_memory
from liveblog.hub import Hub, Subscription

log = logging.getLogger(__name__)
T = TypeVar("T")

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]
# Pushed into an idle stream's subscription like a frame, so it is written in order with
# the frames; seq 0 is never an event's.
HEARTBEAT = Frame(story_id=0, seq=0, closes=False, data=b": heartbeat\n\n")
STORY_EVENT = b"\nevent: story\n"
MAX_TICK = 0.5  # seconds: how soon a server shutdown ends the open streams
DROP_REPORT = 10.0  # seconds between log lines counting dropped readers
# Memory is handed back to the system (gc_tuning.return_freed_memory) once the open
# streams fall to half their peak, if that is at least this many fewer.
RELEASE_AFTER = 500
REPLAY_WRITES_PER_TURN = 16  # pieces of replay written per turn of the event loop (Turns)
monotonic = time.monotonic


def start_message(headers: list[tuple[bytes, bytes]]) -> Message:
    return {"type": "http.response.start", "status": 200, "headers": list(headers)}


def body_message(data: bytes, *, more: bool = True) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


@types.coroutine
def _resume(coro: Coroutine[Any, None, None], pending: Any) -> Generator[Any, None, None]:
    """Finish ``coro``, driven by hand until it yielded ``pending`` (the future it waits
    on), inside a task: what ``await`` would have done had a task been driving it."""
    while True:
        try:
            yield pending
        except BaseException as exc:  # cancelled (the send timeout): the write sees it
            try:
                pending = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                pending = coro.send(None)
            except StopIteration:
                return


@dataclass(eq=False, slots=True)
class LiveStory:
    """A live story with streams in this process: what a new reader needs to join it."""

    slug: str
    id: int
    # Every event up to ``checked`` was seen here, and none of them changed the story
    # since it was last read as live.
    checked: int
    live: bool = True
    streams: int = 0

    def saw(self, frame: Frame) -> None:
        """Called with each frame past ``checked``, by the first stream that writes it."""
        if frame.seq == self.checked + 1 and frame.data.find(STORY_EVENT, 0, 48) < 0:
            self.checked = frame.seq
        else:  # a story event (title, status, pin...) or a gap: read the story again
            self.live = False
            self.checked = max(self.checked, frame.seq)


class EventStream:
    """One reader's stream."""

    __slots__ = (
        "_abort_connection",
        "_interrupting",
        "_send",
        "_streams",
        "aborted",
        "direct",
        "ending",
        "last",
        "listening",
        "story",
        "subscription",
        "task",
        "writer",
        "writing_since",
        "wrote",
    )

    def __init__(
        self,
        streams: Streams,
        send: Send,
        subscription: Subscription,
        *,
        last: int,
        story: LiveStory | None,
        task: asyncio.Task[Any],
        abort: Callable[[], None] | None = None,
    ) -> None:
        self._streams = streams
        self._abort_connection = abort
        self._send = send
        self.subscription = subscription
        self.last = last  # the newest event sent (or replayed)
        self.story = story
        self.task = task  # the request's task: it starts and finishes the response
        self.writer: asyncio.Task[None] | None = None  # finishing a write that had to wait
        self.direct = False  # the fan-out writes frames as they come
        self.listening = False  # the request task waits for the client to hang up
        self.ending = False
        self.aborted = False
        self.writing_since = 0.0  # when the write in progress began waiting (0: none)
        self.wrote = False  # an event was written since the last heartbeat round
        self._interrupting = False
        subscription.on_ready = self._ready

    async def run(
        self, receive: Receive, first: bytes, replay: AsyncIterator[bytes] | None
    ) -> None:
        """Send the headers, ``first`` (the retry line), the ``replay`` batches, then the
        live frames until the story ends, the client hangs up, or the subscription closes
        (it overflowed, or the server stops): the reader then resumes from the log."""
        try:
            await self._write(start_message(self._streams.headers))
            await self._write(body_message(first))
            if replay is not None:
                await self._replay(replay)
            await self._catch_up()
            if not self.ending:
                # Live: the fan-out writes; this task waits for the client to hang up.
                self.listening = True
                try:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    return
                except asyncio.CancelledError:  # end() or abort()
                    if not self._interrupted():
                        raise
                finally:
                    self.listening = False
            if self.writer is not None and not self.writer.done():
                await asyncio.wait([self.writer])
            if not self.aborted:
                await self._write(body_message(b"", more=False))
        except asyncio.CancelledError:  # abort() of a write of this task's own
            if not self._interrupted():
                raise
        finally:
            self.direct = False
            self.subscription.on_ready = None
            if self.writer is not None:
                self.writer.cancel()
            self._streams.forget(self)
        if self.aborted:
            # The reader reconnects (if it still can) and resumes from the log.
            if self.subscription.overflowed:
                self._streams.dropped_behind += 1
            else:
                self._streams.dropped_slow += 1
            if self._abort_connection is not None:
                self._abort_connection()
                # The server hears of the lost connection on the next turn of the loop;
                # returned before it, it would take the unfinished response for a fault.
                await asyncio.sleep(0)
                await asyncio.sleep(0)
            # Elsewhere, returning with the response unfinished makes the server close it.

    async def _replay(self, replay: AsyncIterator[bytes]) -> None:
        # A method of its own so that its last piece is not kept, for as long as the
        # reader stays, by a variable of ``run``'s (10,000 resumed readers kept 300 MB).
        turns = self._streams.replay_turns
        async for piece in replay:
            await turns.take()
            await self._write(body_message(piece))

    def end(self) -> None:
        """End the stream once what is being written is out (story over, or closed)."""
        self.direct = False
        if not self.ending:
            self.ending = True
            if self.listening:
                self._interrupt()

    def abort(self) -> None:
        """The reader stopped reading (a write waited past the send timeout, or it fell
        ``backlog`` events behind): stop, and drop the connection."""
        self.direct = False
        self.aborted = True
        if self.writer is not None:
            self.writer.cancel()
        self._interrupt()

    # --- writing ------------------------------------------------------------------

    def _ready(self) -> None:
        """Called by the subscription, inside the hub's fan-out: a frame came, or it closed.

        This runs once per reader per event, so ``_data`` and ``body_message`` are
        written out in it rather than called."""
        subscription = self.subscription
        if not self.direct:  # the request task or the writer takes it from the backlog
            if subscription.closed:
                self._closed()
            return
        send = self._send
        story = self.story
        try:
            while (frame := subscription.take()) is not None:
                if frame is not HEARTBEAT:
                    seq = frame.seq
                    if seq <= self.last:
                        continue
                    self.last = seq
                    if story is not None and seq > story.checked:
                        story.saw(frame)
                    self.wrote = True
                write = send({"type": "http.response.body", "body": frame.data, "more_body": True})
                if not isinstance(write, CoroutineType):  # an awaitable we cannot drive
                    self._wait_for(write, frame.closes)
                    return
                try:
                    pending = write.send(None)
                except StopIteration:  # written (or queued by the transport): the usual case
                    if frame.closes:
                        self.end()
                        return
                    continue
                # The socket is full: a task waits for it, then writes what queued up.
                self._wait_for(_resume(write, pending), frame.closes)
                return
            if subscription.closed:
                self._closed()
        except Exception:  # never into the hub's fan-out loop
            log.exception("stream of story %s: a write failed", subscription.story_id)
            self.abort()

    def _closed(self) -> None:
        """The subscription closed: the story is over or the server stops (end once what
        is written is out), or the reader fell too far behind (drop it)."""
        if self.subscription.overflowed:
            self.abort()
        else:
            self.end()

    def _wait_for(self, write: Awaitable[None], closes: bool) -> None:
        self.direct = False
        self.writing_since = monotonic()
        self.writer = asyncio.get_running_loop().create_task(self._drain(write, closes))

    async def _drain(self, blocked: Awaitable[None], closes: bool) -> None:
        try:
            await blocked
            self.writing_since = 0.0
            if closes:
                self.end()
            else:
                await self._catch_up()
        except Exception:
            log.exception("stream of story %s: a write failed", self.subscription.story_id)
            self.abort()

    async def _catch_up(self) -> None:
        """Write what waits in the backlog, then let the fan-out write directly."""
        while not (self.ending or self.aborted):
            frame = self.subscription.take()
            if frame is None:
                if self.subscription.closed:
                    self._closed()
                else:
                    self.direct = True
                return
            data = self._data(frame)
            if data is None:
                continue
            await self._write(body_message(data))
            if frame.closes:
                self.end()

    def _data(self, frame: Frame) -> bytes | None:
        """What to write for ``frame``: None for an event sent already."""
        if frame is HEARTBEAT:
            return frame.data
        seq = frame.seq
        if seq <= self.last:
            return None
        self.last = seq
        story = self.story
        if story is not None and seq > story.checked:
            story.saw(frame)
        self.wrote = True
        return frame.data

    async def _write(self, message: Message) -> None:
        self.writing_since = monotonic()
        await self._send(message)
        self.writing_since = 0.0

    # --- interrupting the request task ---------------------------------------------

    def _interrupt(self) -> None:
        if not self._interrupting:
            self._interrupting = True
            self.task.cancel()

    def _interrupted(self) -> bool:
        """Whether a CancelledError was our own ``_interrupt`` (then it is spent)."""
        if not self._interrupting:
            return False
        self._interrupting = False
        return self.task.uncancel() == 0  # else the server cancels the request too


class Turns:
    """At most ``per_turn`` replay writes per turn of the event loop; the others wait for
    the next turns, in order.

    A thousand readers replaying a story at once are a thousand writes ready in every
    turn of the loop, and everything else (an editor's post needs a dozen turns: each
    database call is one) waits behind all of them: measured with ``bench/crowd``, an
    editor's post took 1.3 s while each of its queries ran in a millisecond. Taking
    turns keeps a turn of the loop short whatever the crowd; the replays as a whole go
    as fast as before, since each turn still writes ``per_turn`` pieces.
    """

    __slots__ = ("_scheduled", "_used", "_waiting", "per_turn")

    def __init__(self, per_turn: int) -> None:
        self.per_turn = per_turn
        self._used = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._scheduled = False

    async def take(self) -> None:
        if self._used < self.per_turn and not self._waiting:
            self._used += 1
            self._schedule()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._schedule()
        await waiter

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            # Runs in the next turn: the callbacks ready now are this turn's.
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._scheduled = False
        self._used = 0
        while self._waiting and self._used < self.per_turn:
            waiter = self._waiting.popleft()
            if not waiter.done():  # (a reader that hung up while it waited)
                waiter.set_result(None)
                self._used += 1
        if self._waiting or self._used:
            self._schedule()


class Streams:
    """The open streams of one app, and the live stories they follow."""

    def __init__(
        self,
        hub: Hub,
        *,
        heartbeat: float,
        send_timeout: float,
        site_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self.hub = hub
        # What the site adds to every response on this path (security, CORS), and a
        # stream's response headers: its own, then those.
        self.site_headers = list(site_headers)
        self.headers = [*HEADERS, *self.site_headers]
        self.heartbeat = heartbeat
        self.send_timeout = send_timeout
        self.story_ids: dict[str, int] = {}  # slug -> id; a slug never changes hands
        self._live: dict[str, LiveStory] = {}
        self._open: set[EventStream] = set()
        self.dropped_slow = 0  # readers dropped: a write waited past the send timeout
        self.dropped_behind = 0  # readers dropped: they fell ``backlog`` events behind
        self._reported = (0, 0)
        self._peak = 0  # the most streams open at once since memory was last released
        self.replay_turns = Turns(REPLAY_WRITES_PER_TURN)
        self._reads: dict[int | str, asyncio.Future[Any]] = {}
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick(), name="liveblog-stream-ticker")

    async def stop(self) -> None:
        self.report_drops()
        self.close_all()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    @property
    def open_count(self) -> int:
        return len(self._open)

    # --- live stories -------------------------------------------------------------

    def live_story(self, slug: str) -> LiveStory | None:
        """The story, if it is live with streams here and nothing changed it since."""
        story = self._live.get(slug)
        return story if story is not None and story.live else None

    def confirm_live(self, slug: str, story_id: int, seq: int) -> LiveStory:
        """The database says the story is live as of event ``seq``."""
        story = self._live.get(slug)
        if story is None:
            story = self._live[slug] = LiveStory(slug=slug, id=story_id, checked=seq)
        elif seq >= story.checked:
            story.checked = seq
            story.live = True
        return story

    def current(self, story: LiveStory, position: int) -> bool:
        """Whether a reader subscribed at ``position`` may trust ``story`` unread."""
        return story.live and position <= story.checked and self._live.get(story.slug) is story

    # --- streams --------------------------------------------------------------------

    def open(
        self,
        send: Send,
        subscription: Subscription,
        *,
        last: int,
        story: LiveStory | None,
        abort: Callable[[], None] | None = None,
    ) -> EventStream:
        """A stream for the current request: ``run`` it, after the events up to ``last``.
        ``abort`` drops the connection at once (from the server), for a reader that
        stopped reading."""
        task = asyncio.current_task()
        assert task is not None
        stream = EventStream(
            self, send, subscription, last=last, story=story, task=task, abort=abort
        )
        self._open.add(stream)
        if len(self._open) > self._peak:
            self._peak = len(self._open)
        if story is not None:
            story.streams += 1
        return stream

    def forget(self, stream: EventStream) -> None:
        self._open.discard(stream)
        story = stream.story
        if story is not None:
            story.streams -= 1
            if story.streams <= 0 and self._live.get(story.slug) is story:
                del self._live[story.slug]

    async def read_once(self, key: int | str, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``, shared by every reader asking for ``key`` (a story's id or slug)
        while it runs: a crowd arriving at a story nobody here follows yet makes one
        query, not thousands."""
        pending = self._reads.get(key)
        if pending is None:
            pending = self._reads[key] = asyncio.ensure_future(read())
            pending.add_done_callback(lambda _: self._reads.pop(key, None))
        result: T = await asyncio.shield(pending)
        return result

    # --- the ticker ---------------------------------------------------------------

    def close_all(self) -> None:
        for stream in list(self._open):
            stream.subscription.close()

    async def _tick(self) -> None:
        period = min(MAX_TICK, self.heartbeat / 4, self.send_timeout / 4)
        next_beat = monotonic() + self.heartbeat
        next_report = monotonic() + DROP_REPORT
        while True:
            await asyncio.sleep(period)
            try:
                next_beat = self._tick_once(next_beat)
                if monotonic() >= next_report:
                    next_report = monotonic() + DROP_REPORT
                    self.report_drops()
                    self._release_after_a_crowd()
            except Exception:  # keep ticking: every open stream depends on it
                log.exception("stream ticker")

    def _release_after_a_crowd(self) -> None:
        count = len(self._open)
        if self._peak - count >= max(RELEASE_AFTER, count):
            self._peak = count
            return_freed_memory()

    def report_drops(self) -> None:
        """Log the readers dropped since the last report, if any: one line, INFO."""
        slow = self.dropped_slow - self._reported[0]
        behind = self.dropped_behind - self._reported[1]
        if slow or behind:
            self._reported = (self.dropped_slow, self.dropped_behind)
            log.info(
                "dropped %d readers that stopped reading (%d waited over the %gs send "
                "timeout, %d fell %d events behind); they resume from the log when they "
                "reconnect",
                slow + behind,
                slow,
                self.send_timeout,
                behind,
                self.hub.backlog,
            )

    def _tick_once(self, next_beat: float) -> float:
        now = monotonic()
        if AppStatus.should_exit:
            # uvicorn is shutting down (sse-starlette hooks its signal handler): end
            # every stream now rather than hold the shutdown until it times out.
            self.close_all()
        for stream in list(self._open):
            since = stream.writing_since
            if since and now - since > self.send_timeout and not stream.aborted:
                stream.abort()
        if now < next_beat:
            return next_beat
        for stream in list(self._open):
            if not stream.wrote:  # silent for a whole interval
                stream.subscription.push(HEARTBEAT)
            stream.wrote = False
        return now + self.heartbeat
