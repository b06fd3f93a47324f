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

A breaking story's readers connect by the thousand within a second, and each stays for
hours, so the protocol also does less per connection than uvicorn's own: one timer for
every head timeout, uvicorn's per-connection set-up with what a server shares looked up
once, smaller objects, a stream's head and first bytes in one write, and a stream's
access line written when it ends (docs/performance.md, "A connecting reader in
``liveblog serve``"; docs/operations.md, "Logs").
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
import socket
import struct
import urllib.parse
import weakref
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, ASGIVersions, Scope
from uvicorn.config import LOGGING_CONFIG, Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.flow_control import FlowControl, service_unavailable
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import (
    get_client_addr,
    get_local_addr,
    get_path_with_query_string,
    get_remote_addr,
    is_ssl,
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


# --- what each connection holds, made smaller ------------------------------------------
#
# A connection that becomes a stream keeps its protocol, flow control and request cycle
# for hours, and 10,000 readers connect within seconds: each byte and each call here is
# paid per reader (bench/memory.py, bench/connect_cost.py, docs/performance.md).


class _Event(asyncio.Event):
    """``asyncio.Event`` with its waiters in a list: an empty ``deque`` is 600 bytes, and
    uvicorn keeps two events per connection (its flow control's, its request cycle's)
    that nearly never have more than one waiter."""

    def __init__(self) -> None:
        self._waiters = []  # type: ignore[assignment]  # append, remove, iterate: as a deque
        self._value = False


class _Flow(FlowControl):
    """uvicorn's flow control, with its event made when a write first has to wait:
    nearly every connection, and every idle stream, never needs one."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.read_paused = False
        self.write_paused = False
        self._is_writable_event: asyncio.Event | None = None  # type: ignore[assignment]

    async def drain(self) -> None:
        event = self._is_writable_event
        if event is not None:
            await event.wait()

    def pause_writing(self) -> None:
        if not self.write_paused:
            self.write_paused = True
            if self._is_writable_event is None:
                self._is_writable_event = _Event()
            else:
                self._is_writable_event.clear()

    def resume_writing(self) -> None:
        if self.write_paused:
            self.write_paused = False
            if self._is_writable_event is not None:
                self._is_writable_event.set()


class _Pipeline(list):  # type: ignore[type-arg]
    """uvicorn's queue of pipelined requests (``appendleft``, ``pop``, truth), as a list:
    nearly always empty, where a ``deque`` is 600 bytes from the start."""

    __slots__ = ()

    def appendleft(self, item: object) -> None:
        self.insert(0, item)


class _HeadClock:
    """The head timeout of every connection of one server on one timer.

    A timer per connection (armed as it is accepted, cancelled when its head is in) was
    a libuv timer made and dropped per reader. All heads get the same time, so their
    deadlines come in the order they were set: a dict (insertion-ordered) is the queue,
    and one timer waits for the oldest."""

    __slots__ = ("deadlines", "loop", "timeout", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.deadlines: dict[GuardedProtocol, float] = {}
        self.timer: asyncio.TimerHandle | None = None

    def start(self, protocol: GuardedProtocol) -> None:
        deadlines = self.deadlines
        if protocol not in deadlines:
            deadlines[protocol] = self.loop.time() + self.timeout
            if self.timer is None:
                self.timer = self.loop.call_later(self.timeout, self._expire)

    def stop(self, protocol: GuardedProtocol) -> None:
        self.deadlines.pop(protocol, None)  # the timer finds the next oldest when it fires

    def _expire(self) -> None:
        self.timer = None
        deadlines = self.deadlines
        now = self.loop.time()
        expired = []
        for protocol, deadline in deadlines.items():
            if deadline > now:
                self.timer = self.loop.call_at(deadline, self._expire)
                break
            expired.append(protocol)
        for protocol in expired:
            del deadlines[protocol]
            protocol._head_timed_out()
        if self.timer is None and deadlines:  # some timed out and started again
            self.timer = self.loop.call_at(next(iter(deadlines.values())), self._expire)


class _ProxyHeaders(ProxyHeadersMiddleware):
    """uvicorn's ``ProxyHeadersMiddleware`` (which ``proxy_headers``, its default, puts
    around the app), without a coroutine of its own: it rewrites the scope and returns
    the app's, so an open stream keeps no frame of it for hours. The same rules, read
    from uvicorn's: ``X-Forwarded-Proto`` and ``X-Forwarded-For`` only from a trusted
    proxy (``FORWARDED_ALLOW_IPS``)."""

    def __call__(  # type: ignore[override]
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> Awaitable[None]:
        if scope["type"] != "lifespan":
            client = scope.get("client")
            if (client[0] if client else None) in self.trusted_hosts:
                _forwarded(scope, self.trusted_hosts)  # type: ignore[arg-type]
        return self.app(scope, receive, send)


def _forwarded(scope: dict[str, Any], trusted: Any) -> None:
    proto: bytes | None = None
    forwarded_for: list[bytes] = []
    for name, value in scope["headers"]:
        if name == b"x-forwarded-proto":
            proto = value
        elif name == b"x-forwarded-for":
            forwarded_for.append(value)
    if proto is not None:
        scheme = proto.decode("latin1").strip()
        if scheme in {"http", "https", "ws", "wss"}:
            if scope["type"] == "websocket":
                scheme = scheme.replace("http", "ws")
            scope["scheme"] = scheme
    if forwarded_for:
        host, port = trusted.get_trusted_client_address(b", ".join(forwarded_for).decode("latin1"))
        if host:  # an empty header gives no usable address
            scope["client"] = (host, port)


def _without_proxy_frame(config: Config) -> None:
    proxy = config.loaded_app
    if type(proxy) is ProxyHeadersMiddleware:
        proxy.__class__ = _ProxyHeaders
        proxy.dispatch = getattr(proxy.app, "liveblog_dispatch", proxy.app)  # type: ignore[attr-defined]


class _Shared:
    """What every connection of one server shares, looked up once."""

    __slots__ = (
        "access_log",
        "access_logger",
        "asgi",
        "config",
        "head_clock",
        "logger",
        "loop",
        "server",
        "state",
    )

    def __init__(
        self,
        config: Config,
        state: ServerState,
        loop: asyncio.AbstractEventLoop,
        timeout: float,
    ) -> None:
        if not config.loaded:
            config.load()
        _without_proxy_frame(config)
        self.config = config
        self.state = weakref.ref(state)  # weak: it is the key of ``_servers``
        self.loop = loop
        self.logger = logging.getLogger("uvicorn.error")
        self.access_logger = logging.getLogger("uvicorn.access")
        self.access_log = self.access_logger.hasHandlers()
        # The same dict in every request's scope: nothing changes it.
        self.asgi: ASGIVersions = {"version": config.asgi_version, "spec_version": "2.3"}
        self.head_clock = _HeadClock(loop, timeout)
        self.server: tuple[str, int | None] | None = None  # the last connection's address


# The servers' shared parts, by server (its ServerState), loop and head timeout.
_servers: weakref.WeakKeyDictionary[ServerState, list[_Shared]] = weakref.WeakKeyDictionary()
_last: _Shared | None = None


def _shared_by_server(
    config: Config,
    state: ServerState,
    loop: asyncio.AbstractEventLoop | None,
    timeout: float,
) -> _Shared:
    global _last
    loop = loop or asyncio.get_event_loop()
    last = _last
    if (
        last is not None
        and last.state() is state
        and last.config is config
        and last.loop is loop
        and last.head_clock.timeout == timeout
    ):
        return last
    known = _servers.setdefault(state, [])
    for shared in known:
        if shared.config is config and shared.loop is loop and shared.head_clock.timeout == timeout:
            break
    else:
        shared = _Shared(config, state, loop, timeout)
        known.append(shared)
    _last = shared
    return shared


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
    # liveblog's own attributes in slots: uvicorn's are 28, and CPython shares the keys
    # of instance dicts of up to 30 (a dict of its own per connection was 1.5 KiB).
    __slots__ = (
        "body_seen",
        "body_timer",
        "head_bytes",
        "head_clock",
        "head_started",
        "https",
        "limits",
        "reading_head",
        "shared",
        "stream_cycle",
        "stream_since",
    )

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
        # uvicorn's __init__, with what is the same for every connection of a server
        # looked up once (loggers, the ASGI version, the head clock), not per reader.
        shared = _shared_by_server(config, server_state, _loop, limits.timeout)
        self.config = config
        self.app = config.loaded_app
        self.loop = shared.loop
        self.logger = shared.logger
        self.access_logger = shared.access_logger
        self.access_log = shared.access_log
        self.parser = httptools.HttpRequestParser(self)
        # As uvicorn: answer the first of pipelined requests even if the client closed.
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.ws_protocol_class = config.ws_protocol_class
        self.root_path = config.root_path
        self.asgi_version = shared.asgi["version"]
        self.limit_concurrency = config.limit_concurrency
        self.app_state = app_state
        self.timeout_keep_alive_task = None
        self.timeout_keep_alive = config.timeout_keep_alive
        self.server_state = server_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.transport = None  # type: ignore[assignment]
        self.flow = None  # type: ignore[assignment]
        self.server = None
        self.client = None
        self.scheme = None
        self.pipeline = _Pipeline()  # type: ignore[assignment]
        self.scope = None  # type: ignore[assignment]
        self.headers = None  # type: ignore[assignment]
        self.expect_100_continue = False
        self.cycle = None  # type: ignore[assignment]
        self.url = b""
        self.shared = shared
        self.limits = limits
        self.https = https
        self.reading_head = True  # the next byte received belongs to a request head
        self.head_started = False  # some of the current head has arrived
        self.head_bytes = 0
        self.head_clock = shared.head_clock
        self.body_timer: asyncio.TimerHandle | None = None
        self.body_seen = 0.0  # loop time of the last body bytes received
        # The request cycle of the stream this connection holds (hold_stream), and since
        # when: its access line is written when it ends.
        self.stream_cycle: RequestResponseCycle | None = None
        self.stream_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # uvicorn's, without its trace line, with a smaller flow control.
        self.connections.add(self)
        self.transport = transport
        self.flow = _Flow(transport)
        server = get_local_addr(transport)
        shared = self.shared
        if server != shared.server:
            shared.server = server
        self.server = shared.server  # one tuple for every connection to one address
        self.client = get_remote_addr(transport)
        self.scheme = "https" if is_ssl(transport) else "http"
        # uvicorn arms no timer before the first request: a silent client stayed for ever.
        self._start_head_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        self._stop_body_clock()
        if self.stream_cycle is not None:
            self._log_stream_end()
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
        # uvicorn's, with every key the scope will have set at once (a dict that grows
        # is made again, and a stream keeps its scope), and ``extensions``: the
        # connection's offer to the app, read as a mapping (``__getitem__``).
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.scope = {
            "type": "http",
            "asgi": self.shared.asgi,
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,  # type: ignore[typeddict-item]
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
            "method": "",
            "path": "",
            "raw_path": b"",
            "query_string": b"",
            "extensions": {CONNECTION_EXTENSION: self},  # type: ignore[dict-item]
        }
        self.reading_head = self.head_started = True  # its clock starts after this read

    def on_headers_complete(self) -> None:
        # uvicorn's, with liveblog's request cycle (its 500, a smaller event); no
        # WebSocket upgrade (uvicorn_options sets ``ws="none"``).
        self._stop_head_clock()
        self.reading_head = self.head_started = False
        self.head_bytes = 0
        parser = self.parser
        scope = self.scope
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if self.ws_protocol_class is not None and parser.should_upgrade():
            super().on_headers_complete()  # uvicorn's own, for a WebSocket upgrade
            return
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        scope["path"] = self.root_path + path
        scope["raw_path"] = (
            self.root_path.encode("ascii") + raw_path if self.root_path else raw_path
        )
        scope["query_string"] = parsed_url.query or b""
        app = self.app
        if self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency
            or len(self.tasks) >= self.limit_concurrency
        ):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        existing_cycle = self.cycle
        self.cycle = (_HttpsCycle if self.https else _Cycle)(
            scope=scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=_Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        if existing_cycle is None or existing_cycle.response_complete:
            self._start_asgi_task(self.cycle, app)
        else:  # pipelined: queued until the response before it is complete
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, app))

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        if self.config.reset_contextvars:
            super()._start_asgi_task(cycle, app)
            return
        task = self.loop.create_task(cycle.run_asgi(app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def on_response_complete(self) -> None:
        if self.stream_cycle is not None:  # a stream ended, the connection stays
            self._log_stream_end()
        super().on_response_complete()

    def on_message_complete(self) -> None:
        self._stop_body_clock()
        super().on_message_complete()
        # The next head's clock starts at its first byte; until then uvicorn's keep-alive
        # timer (armed when the response completes) decides how long an idle client stays.
        self.reading_head = True

    # The app's way out

    def __getitem__(self, name: str) -> Any:
        """``scope["extensions"]["liveblog.connection"]``, what the app may ask of its
        connection: ``abort``, ``stream`` and ``start`` (the methods below). The protocol
        is its own mapping: no dict and bound methods made per connection for it."""
        return getattr(self, _OFFERED[name])

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, _OFFERED[name]) if name in _OFFERED else default

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
        cycle = self.cycle
        if cycle is not None and cycle.access_log and not cycle.response_started:
            # Its access line is written when it ends, with how long it lasted (as nginx
            # does), not as it starts: a crowd of readers joining at once was as many
            # lines at the worst moment, a fifth of the CPU each reader cost. How many
            # join is the stream ticker's periodic line (docs/operations.md).
            cycle.access_log = False
            self.stream_cycle = cycle
            self.stream_since = self.loop.time()
        size = self.limits.stream_send_buffer
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        self.transport.set_write_buffer_limits(high=size)

    def start_stream(self, headers: list[tuple[bytes, bytes]], first: bytes) -> bool:
        """Start a held stream's response: its head and its ``first`` body bytes in one
        write, where uvicorn's ``send`` takes two and checks every header of every
        response again. Given as ``scope["extensions"]["liveblog.connection"]["start"]``.

        The head is made once per second (the ``date`` header) and checked as uvicorn
        does when it is made. False (nothing written: send the ASGI messages instead)
        for anything but the plain case: a GET held with ``stream``, on a connection
        that stays open, with nothing sent yet."""
        cycle = self.cycle
        if (
            cycle is None
            or cycle is not self.stream_cycle
            or cycle.response_started
            or cycle.disconnected
            or not cycle.keep_alive
            or self.flow.write_paused
            or cycle.scope["method"] != "GET"
        ):
            return False
        head = _stream_head(self.server_state.default_headers, headers)
        if head is None:
            return False
        cycle.response_started = True
        cycle.waiting_for_100_continue = False
        cycle.chunked_encoding = True
        if first:
            self.transport.write(b"%s%x\r\n%s\r\n" % (head, len(first), first))
        else:
            self.transport.write(head)
        return True

    # Head and body timing, and refusals

    def _log_stream_end(self) -> None:
        cycle, self.stream_cycle = self.stream_cycle, None
        if cycle is None or not cycle.response_started or cycle.access_log:
            return  # never started, or it failed and its 500 was logged
        scope = cycle.scope
        self.access_logger.info(
            '%s - "%s %s HTTP/%s" %d',
            get_client_addr(scope),
            scope["method"],
            get_path_with_query_string(scope),
            scope["http_version"],
            200,
            extra={"stream_seconds": round(self.loop.time() - self.stream_since, 1)},
        )

    def _start_head_clock(self) -> None:
        self.head_clock.start(self)

    def _stop_head_clock(self) -> None:
        self.head_clock.stop(self)

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


_OFFERED = {"abort": "abort_connection", "stream": "hold_stream", "start": "start_stream"}


class _Cycle(RequestResponseCycle):
    """uvicorn's request cycle, with liveblog's 500 (the site's security headers)."""

    https = False

    async def send_500_response(self) -> None:
        await _send_500(self, https=self.https)


class _HttpsCycle(_Cycle):
    https = True


# A stream's response head, for the last (uvicorn's default headers, the stream's
# headers) it was made for: both lists are replaced, not changed, when they change.
_head_cache: tuple[object, object, bytes | None] = (None, None, None)


def _stream_head(
    defaults: list[tuple[bytes, bytes]], headers: list[tuple[bytes, bytes]]
) -> bytes | None:
    global _head_cache
    cached_defaults, cached_headers, head = _head_cache
    if defaults is cached_defaults and headers is cached_headers:
        return head
    lines = [STATUS_LINE[200]]
    for name, value in [*defaults, *headers]:
        name = name.lower()
        if (
            HEADER_RE.search(name)
            or HEADER_VALUE_RE.search(value)
            or name in (b"content-length", b"transfer-encoding")
            or (name == b"connection" and b"close" in value.lower())
        ):
            head = None  # uvicorn's send decides (and refuses what is invalid)
            break
        lines.append(b"%s: %s\r\n" % (name, value))
    else:
        head = b"".join([*lines, b"transfer-encoding: chunked\r\n\r\n"])
    _head_cache = (defaults, headers, head)
    return head


async def _send_500(cycle: RequestResponseCycle, *, https: bool) -> None:
    # A stream that failed before it started is logged now, as any 500 (hold_stream).
    cycle.access_log = cycle.access_logger.hasHandlers()
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
    config["formatters"]["access"]["()"] = "liveblog.logs.AccessFormatter"
    if log_format == "json":
        json_lines = {"()": "liveblog.logs.JsonFormatter"}
        config["formatters"] = {"default": json_lines, "access": dict(json_lines)}
    return config
