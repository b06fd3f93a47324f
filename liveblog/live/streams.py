"""The open streams of one app, and the one ticker that looks after all of them.

One ticker per process does what took a task or a timer per stream: heartbeats to idle
streams, the send timeout (a write blocked too long drops the connection), and the end
of every stream when the server shuts down (``liveblog.live.shutdown``). Dropped readers
are counted and logged once per ``DROP_REPORT`` seconds at INFO: they are ordinary, not
faults. So are the readers who joined and left (a stream's access line is written when
it ends, ``liveblog.server``): a crowd arriving shows within seconds, in one line.
After a crowd leaves, the ticker hands freed memory back to the system.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from starlette.types import Send

from liveblog import tasks
from liveblog.gc_tuning import return_freed_memory
from liveblog.hub import Hub, Subscription
from liveblog.live.following import LiveStory
from liveblog.live.shutdown import server_exiting
from liveblog.live.stream import HEARTBEAT, EventStream, monotonic
from liveblog.live.turns import Turns
from liveblog.metrics import Metrics

log = logging.getLogger(__name__)

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]
MAX_TICK = 0.5  # seconds: how soon a server shutdown ends the open streams
DROP_REPORT = 10.0  # seconds between log lines counting dropped readers
# Memory is handed back to the system (gc_tuning.return_freed_memory) once the open
# streams fall to half their peak, if that is at least this many fewer.
RELEASE_AFTER = 500
REPLAY_WRITES_PER_TURN = 16  # pieces of replay written per turn of the event loop (Turns)


class Streams:
    """The open streams of one app."""

    def __init__(
        self,
        hub: Hub,
        *,
        heartbeat: float,
        send_timeout: float,
        site_headers: Sequence[tuple[bytes, bytes]] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self.hub = hub
        self.metrics = metrics
        # What the site adds to every response on this path (security, CORS), and a
        # stream's response headers: its own, then those.
        self.site_headers = list(site_headers)
        self.headers = [*HEADERS, *self.site_headers]
        self.heartbeat = heartbeat
        self.send_timeout = send_timeout
        self._open: set[EventStream] = set()
        self.dropped_slow = 0  # readers dropped: a write waited past the send timeout
        self.dropped_behind = 0  # readers dropped: they fell ``backlog`` events behind
        self.joined = 0  # streams opened
        self.left = 0  # streams ended
        self._reported = (0, 0)
        self._reported_traffic = (0, 0)
        self._peak = 0  # the most streams open at once since memory was last released
        self.replay_turns = Turns(REPLAY_WRITES_PER_TURN)
        self._ticker: asyncio.Task[None] | None = None
        if metrics is not None:
            metrics.watch_streams(lambda: len(self._open))

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick(), name="liveblog-stream-ticker")

    async def stop(self) -> None:
        self.report_traffic()
        self.report_drops()
        self.close_all()
        ticker, self._ticker = self._ticker, None
        await tasks.stop(ticker)

    @property
    def open_count(self) -> int:
        return len(self._open)

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
        self.joined += 1
        if len(self._open) > self._peak:
            self._peak = len(self._open)
        if self.metrics is not None:
            self.metrics.stream_joins.inc()
        return stream

    def forget(self, stream: EventStream) -> None:
        """The stream is over (called once, as it ends)."""
        self._open.discard(stream)
        self.left += 1
        metrics = self.metrics
        if metrics is not None:
            metrics.stream_leaves.inc()
            if stream.aborted:  # what ``EventStream.run`` counts in ``dropped_*`` next
                if stream.subscription.overflowed:
                    metrics.slow_backlog.inc()
                else:
                    metrics.slow_send_timeout.inc()

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
                    self.report_traffic()
                    self.report_drops()
                    self._release_after_a_crowd()
            except Exception:  # keep ticking: every open stream depends on it
                log.exception("stream ticker")

    def _release_after_a_crowd(self) -> None:
        count = len(self._open)
        if self._peak - count >= max(RELEASE_AFTER, count):
            self._peak = count
            return_freed_memory()

    def report_traffic(self) -> None:
        """Log the readers who joined and left since the last report, if any: one line,
        INFO. Their streams' access lines come as each ends."""
        joined = self.joined - self._reported_traffic[0]
        left = self.left - self._reported_traffic[1]
        if joined or left:
            self._reported_traffic = (self.joined, self.left)
            log.info(
                "event streams: %d open; %d readers joined and %d left since the last report",
                len(self._open),
                joined,
                left,
            )

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
        if server_exiting():
            # End every stream now rather than hold the shutdown until it times out.
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
