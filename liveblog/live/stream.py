"""One reader's open stream, in pure ASGI: the reader hot path, as cheap as a Python
process can make it.

* A live frame is written to each reader by the hub's fan-out itself: the stream's
  subscription calls back (``Subscription.on_ready``) and the stream drives the ASGI
  ``send`` coroutine by hand. A write to a socket with room returns without waiting,
  so nothing is scheduled, no task wakes up, and a frame costs one socket write per
  reader. Only a write that must wait (the reader's socket is full) is handed to a task,
  which also writes whatever queues up in the bounded backlog meanwhile.
* The reader's own request task just waits for the client to hang up.
* A dropped reader (a write blocked past the send timeout, or ``backlog`` events behind)
  is dropped for real: the connection is aborted (``liveblog.server`` gives the app a
  way), so its socket and whatever waits in its send buffer go at once. A graceful close
  would wait for a reader who is not reading to take the rest.

Heartbeats, the send timeout and the end of every stream at shutdown are the ticker's
(``liveblog.live.streams``). The wire format: the headers, the ``retry:`` block first,
each event as its shared ``Frame`` bytes, ``: heartbeat`` comments. Why not
sse-starlette's ``EventSourceResponse``: ``docs/performance.md`` has the measurements.
"""

from __future__ import annotations

import asyncio
import logging
import time
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from types import CoroutineType
from typing import Any, Protocol

from starlette.types import Message, Receive, Send

from liveblog.events import Frame
from liveblog.hub import Subscription
from liveblog.live.following import LiveStory
from liveblog.live.turns import Turns

log = logging.getLogger(__name__)


class Streams(Protocol):
    """What a stream needs of the registry that opened it (``live.streams.Streams``)."""

    headers: list[tuple[bytes, bytes]]
    replay_turns: Turns
    dropped_slow: int
    dropped_behind: int

    def forget(self, stream: EventStream) -> None: ...


# Pushed into an idle stream's subscription like a frame, so it is written in order with
# the frames; seq 0 is never an event's.
HEARTBEAT = Frame(story_id=0, seq=0, closes=False, data=b": heartbeat\n\n")
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
        self,
        receive: Receive,
        first: bytes,
        replay: AsyncIterator[bytes] | None,
        start: Callable[[list[tuple[bytes, bytes]], bytes], bool] | None = None,
    ) -> None:
        """Send the headers, ``first`` (the retry line), the ``replay`` batches, then the
        live frames until the story ends, the client hangs up, or the subscription closes
        (it overflowed, or the server stops): the reader then resumes from the log.
        ``start``, the server's (``liveblog.server``), writes the headers and ``first``
        at once if it can."""
        try:
            if start is None or not start(self._streams.headers, first):
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
