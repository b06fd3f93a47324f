"""The HTTP server layer as liveblog runs it: uvicorn's httptools protocol, guarded.

uvicorn bounds neither the size of a request head nor the time a client may take to send
it: llhttp has no header size limit, and uvicorn's keep-alive timer stops at the first
byte of a request. One connection could grow the process by whatever it sent without a
newline, and slow ones (slowloris) could stay open for ever. ``GuardedProtocol`` counts
each head's bytes (431 past ``max_head_bytes``) and times it (408 after
``head_timeout``), and answers the errors of this layer (400, 408, 431, and the 500 of
an app that failed before it answered) with the site's security headers.
docs/security.md ("Limits") has the why; ``uvicorn_options`` is the one place the CLI
and the tests get the server from.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import socket
import struct
from dataclasses import dataclass
from typing import Any

from uvicorn.config import LOGGING_CONFIG, Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from liveblog.headers import headers_for
from liveblog.settings import Settings

CONNECTION_EXTENSION = "liveblog.connection"
# The server answers before (or without) routing, so its answers get the strictest
# policy, that of a page: no framing, no script, nothing sniffed.
ERROR_POLICY_PATH = "/"
# SO_LINGER on with a zero timeout: close() sends a reset and frees the socket and its
# kernel send buffer at once, where a plain close keeps them until the peer reads.
_LINGER_RESET = struct.pack("ii", 1, 0)


@dataclass(frozen=True)
class HeadLimits:
    """What one connection may cost: its request heads, its bodies, its stream."""

    max_bytes: int
    timeout: float
    body_timeout: float = 10.0
    stream_send_buffer: int = 64 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> HeadLimits:
        return cls(
            max_bytes=settings.max_head_bytes,
            timeout=settings.head_timeout,
            body_timeout=settings.body_timeout,
            stream_send_buffer=settings.stream_send_buffer,
        )


def error_headers(body: bytes, *, https: bool) -> list[tuple[bytes, bytes]]:
    """Headers of an answer the server writes itself; the connection closes after it."""
    policy = headers_for(ERROR_POLICY_PATH, https=https)
    return [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"connection", b"close"),
        *((name.lower().encode(), value.encode()) for name, value in policy.items()),
    ]


class GuardedProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: HeadLimits,
        https: bool = False,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.https = https
        self.reading_head = True  # the next byte received belongs to a request head
        self.head_started = False  # some of the current head has arrived
        self.head_bytes = 0
        self.head_timer: asyncio.TimerHandle | None = None
        self.body_timer: asyncio.TimerHandle | None = None
        self.body_seen = 0.0  # loop time of the last body bytes received
        self.connection_extension: dict[object, object] = {
            "abort": self.abort_connection,
            "stream": self.hold_stream,
        }

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms no timer before the first request: a silent client stayed for ever.
        self._start_head_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        self._stop_body_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Only what fits under the limit reaches the parser, which would otherwise
        # buffer an endless header line. A head that starts a read is counted exactly;
        # one pipelined behind another request in the same read is counted from the
        # next read on, so it may pass the limit by at most one read (256 KiB).
        while self.reading_head and data and not self._handed_off():
            room = self.limits.max_bytes - self.head_bytes
            if room <= 0:
                self._refuse(431, f"Request head larger than {self.limits.max_bytes} bytes.")
                return
            piece, data = data[:room], data[room:]
            self.head_started = True
            self.head_bytes += len(piece)  # on_headers_complete resets both, if the head ends
            super().data_received(piece)
        if data and not self._handed_off():
            super().data_received(data)
        # Armed here rather than at each first byte: a head that arrives in one read
        # (nearly all) never costs a timer.
        if self.reading_head and self.head_started and not self._handed_off():
            self._start_head_clock()
        elif self._reading_body():
            # Likewise the body's: a request whose body came with its head (nearly all)
            # never arms one. The timer re-arms itself while bytes keep coming.
            self.body_seen = self.loop.time()
            if self.body_timer is None:
                self.body_timer = self.loop.call_later(
                    self.limits.body_timeout, self._body_timed_out
                )

    def _reading_body(self) -> bool:
        cycle = self.cycle
        return (
            not self.reading_head
            and cycle is not None
            and cycle.more_body
            and not cycle.response_complete
            and not self._handed_off()
        )

    def _handed_off(self) -> bool:
        """Closing (a refusal went out) or upgraded: what is left is not ours to parse."""
        return self.transport.is_closing() or self.transport.get_protocol() is not self

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, msg)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.reading_head = self.head_started = True  # its clock starts after this read

    def on_headers_complete(self) -> None:
        self._stop_head_clock()
        self.reading_head = self.head_started = False
        self.head_bytes = 0
        self.scope.setdefault("extensions", {})[CONNECTION_EXTENSION] = self.connection_extension
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:  # a request the app will run
            # uvicorn builds the cycle itself (no hook for a subclass), so its 500 is
            # swapped on the instance.
            cycle.send_500_response = functools.partial(  # type: ignore[method-assign]
                _send_500, cycle, https=self.https
            )

    def on_message_complete(self) -> None:
        self._stop_body_clock()
        super().on_message_complete()
        # The next head's clock starts at its first byte; until then uvicorn's keep-alive
        # timer (armed when the response completes) decides how long an idle client stays.
        self.reading_head = True

    # The app's way out

    def abort_connection(self) -> None:
        """Drop the connection at once, with a reset.

        Given to every request as ``scope["extensions"]["liveblog.connection"]["abort"]``.
        The stream code (``liveblog/live/stream.py``) calls it when it drops a reader that
        stopped reading: the socket and its send buffer are released now, instead of a
        graceful close waiting for that reader to take what is still queued.
        """
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to free
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self.transport.abort()

    def hold_stream(self) -> None:
        """Make this connection fit to stay open for hours as an event stream.

        Given as ``scope["extensions"]["liveblog.connection"]["stream"]``; the stream
        endpoint calls it. Left to itself, Linux grows a socket's send buffer to 4 MiB
        (``tcp_wmem``), and a reader that never reads makes the server push that much
        before a write blocks: 500 such readers held 1.2 GiB of kernel memory and as
        much work, measured with ``bench/crowd``. A fixed buffer of
        ``LIVEBLOG_STREAM_SEND_BUFFER`` (the kernel doubles it) is plenty for a live
        story, and a blocked write starts the send timeout early. The transport's own
        buffer pauses the writer at the same size, so what a stream holds in the
        process is as small.
        """
        size = self.limits.stream_send_buffer
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        self.transport.set_write_buffer_limits(high=size)

    # Head and body timing, and refusals

    def _start_head_clock(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.limits.timeout, self._head_timed_out)

    def _stop_head_clock(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _stop_body_clock(self) -> None:
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None

    def _body_timed_out(self) -> None:
        self.body_timer = None
        if not self._reading_body():
            return
        idle = self.loop.time() - self.body_seen
        if idle < self.limits.body_timeout:  # bytes came meanwhile: wait from the last
            self.body_timer = self.loop.call_later(
                self.limits.body_timeout - idle, self._body_timed_out
            )
            return
        self._refuse(408, f"No request body received for {self.limits.body_timeout:g} s.")

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.head_started:
            self._refuse(408, f"Request head not received within {self.limits.timeout:g} s.")
        elif not self.transport.is_closing():
            # Nothing was asked: closed without an answer, as an idle keep-alive is.
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with ``message`` (unless a response is being written: the
        answer would land inside it), then close."""
        self._stop_head_clock()
        self.reading_head = False
        if self.transport.is_closing():
            return
        if status != 400:  # uvicorn has logged its own
            client = f"{self.client[0]}:{self.client[1]} - " if self.client else ""
            self.logger.warning("%s%d %s", client, status, message)
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            body = message.encode()
            headers = [*self.server_state.default_headers, *error_headers(body, https=self.https)]
            lines = [name + b": " + value + b"\r\n" for name, value in headers]
            self.transport.write(b"".join([STATUS_LINE[status], *lines, b"\r\n", body]))
        self.transport.close()


async def _send_500(cycle: RequestResponseCycle, *, https: bool) -> None:
    body = b"Internal Server Error"
    headers = error_headers(body, https=https)
    await cycle.send({"type": "http.response.start", "status": 500, "headers": headers})
    await cycle.send({"type": "http.response.body", "body": body, "more_body": False})


def uvicorn_options(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` or ``uvicorn.Config``: liveblog's protocol,
    limited by ``settings``, plus ``extra`` (host, port, ...).

    The protocol is a ``functools.partial`` of a module-level class and a frozen
    dataclass so that it pickles: ``--workers`` and ``--reload`` start their processes
    with ``spawn`` and send each of them the whole uvicorn config.
    """
    protocol = functools.partial(
        GuardedProtocol, limits=HeadLimits.from_settings(settings), https=settings.https
    )
    # No WebSocket routes: without this, an upgrade request would be handed to uvicorn's
    # websocket protocol, which has none of these limits.
    return {"http": protocol, "ws": "none", **extra}


def log_config(log_format: str = "text") -> dict[str, Any]:
    """uvicorn's logging, with liveblog's own INFO lines (readers dropped, replays
    served, broadcast faults) printed beside uvicorn's, for ``serve`` and ``demo``.

    ``json`` (``LIVEBLOG_LOG_FORMAT``) formats every line, the access log's too, as one
    JSON object with the request's id (``liveblog.logs``, docs/operations.md)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["liveblog"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    if log_format == "json":
        json_lines = {"()": "liveblog.logs.JsonFormatter"}
        config["formatters"] = {"default": json_lines, "access": dict(json_lines)}
    return config
