"""What ``liveblog.server`` does for a connection that becomes an event stream, over raw
sockets against a real uvicorn: its access line is written when it ends, with how long
it lasted, and its response can start in one write."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from liveblog.logs import AccessFormatter, JsonFormatter
from liveblog.server import CONNECTION_EXTENSION
from liveblog.settings import Settings
from tests.support import run_server

STREAM_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")]
FIRST = b"retry: 1000\n\n"


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def access() -> Iterator[Capture]:
    """The access log's records: ``listen()`` it once the server has configured logging
    (it replaces the logger's handlers), before the first connection."""
    logger = logging.getLogger("uvicorn.access")
    capture = Capture()
    level = logger.level
    yield capture
    logger.removeHandler(capture)
    logger.setLevel(level)


def listen(capture: Capture) -> None:
    logger = logging.getLogger("uvicorn.access")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)


class App:
    """``/stream``: held and started as the stream endpoint does; ``/page``: plain."""

    def __init__(self) -> None:
        self.started: list[bool] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/page":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        connection = scope["extensions"][CONNECTION_EXTENSION]
        connection["stream"]()
        started = connection["start"](STREAM_HEADERS, FIRST)
        self.started.append(started)
        if not started:
            await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
            await send({"type": "http.response.body", "body": FIRST, "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass


def _wait_for(capture: Capture, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(capture.records) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_streams_access_line_is_written_when_it_ends_with_its_duration(
    settings: Settings, access: Capture
) -> None:
    app = App()
    with run_server(
        Starlette(routes=[Route("/stream", app), Route("/page", app)]), settings=settings
    ) as live:
        listen(access)
        port = urlsplit(live.url).port
        assert port is not None
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /stream?x=1 HTTP/1.1\r\nHost: test\r\n\r\n")
            received = b""
            while not received.endswith(b"\r\n\r\n" + b"%x\r\n" % len(FIRST) + FIRST + b"\r\n"):
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
            head = received.split(b"\r\n\r\n", 1)[0].lower()
            assert head.startswith(b"http/1.1 200 ok\r\n")
            for name, value in STREAM_HEADERS:
                assert b"\r\n" + name + b": " + value in head
            assert b"\r\ntransfer-encoding: chunked" in head
            assert b"\r\ndate: " in head and b"\r\nserver: uvicorn" in head
            time.sleep(0.3)
            assert [r for r in access.records if r.args and "/stream" in str(r.args)] == []
        _wait_for(access, 1)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /page HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            while sock.recv(65536):
                pass
        _wait_for(access, 2)
    assert app.started == [True]  # head and first bytes in one write
    stream, page = access.records[:2]
    assert isinstance(stream.args, tuple)
    assert stream.args[1:] == ("GET", "/stream?x=1", "1.1", 200)
    seconds = stream.__dict__["stream_seconds"]
    assert 0.2 <= seconds < 5
    assert "stream_seconds" not in page.__dict__
    text = AccessFormatter(fmt='%(client_addr)s - "%(request_line)s" %(status_code)s')
    assert text.format(stream).endswith(f'"GET /stream?x=1 HTTP/1.1" 200 OK stream {seconds:.1f}s')
    assert text.format(page).endswith('"GET /page HTTP/1.1" 200 OK')
    line = json.loads(JsonFormatter().format(stream))
    assert line["stream_seconds"] == seconds and line["path"] == "/stream?x=1"


def test_a_stream_on_a_closing_connection_starts_through_asgi(
    settings: Settings, access: Capture
) -> None:
    """``start`` declines what it does not handle; the ASGI messages say the rest."""
    app = App()
    with run_server(Starlette(routes=[Route("/stream", app)]), settings=settings) as live:
        listen(access)
        port = urlsplit(live.url).port
        assert port is not None
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /stream HTTP/1.0\r\nHost: test\r\n\r\n")
            received = b""
            while FIRST not in received:
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
        _wait_for(access, 1)
    assert app.started == [False]
    assert received.lower().startswith(b"http/1.1 200 ok\r\n")
    assert access.records and access.records[0].__dict__.get("stream_seconds") is not None


def test_proxy_headers_from_a_trusted_proxy_still_apply(settings: Settings) -> None:
    """uvicorn's ``ProxyHeadersMiddleware`` runs without a frame of its own
    (``liveblog.server._ProxyHeaders``), with the same rules: the test client is
    127.0.0.1, which uvicorn trusts by default (``FORWARDED_ALLOW_IPS``)."""
    seen: list[tuple[object, object]] = []

    class Where:  # an ASGI app (a plain function would be a request handler)
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            seen.append((scope["client"], scope["scheme"]))
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    with run_server(Starlette(routes=[Route("/where", Where())]), settings=settings) as live:
        port = urlsplit(live.url).port
        assert port is not None
        for extra in (
            b"X-Forwarded-For: 203.0.113.7, 127.0.0.1\r\nX-Forwarded-Proto: https\r\n",
            b"",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(
                    b"GET /where HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + extra + b"\r\n"
                )
                while sock.recv(65536):
                    pass
    assert seen[0] == (("203.0.113.7", 0), "https")
    assert seen[1][0][0] == "127.0.0.1" and seen[1][1] == "http"  # type: ignore[index]
