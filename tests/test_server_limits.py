"""The server layer (``liveblog/server.py``) over raw sockets, against a real uvicorn.

Heads are limited in size (431) and in time (408), the server's own errors carry the
site's security headers, keep-alive still works, and the app can abort a connection.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from liveblog.app import create_app
from liveblog.server import CONNECTION_EXTENSION
from liveblog.settings import Settings
from tests.services import redis_namespace_url, require_redis
from tests.support import LiveServer, run_server, server_send_buffer

MAX_HEAD = 4096
HEAD_TIMEOUT = 1.0
SLACK = 1.5  # seconds: a loaded test machine
ENDLESS = 4 * 1024 * 1024  # what a client pushing an endless header would send


@pytest.fixture
def limited_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_head_bytes": MAX_HEAD, "head_timeout": HEAD_TIMEOUT})


@pytest.fixture
def limited(limited_settings: Settings) -> Iterator[LiveServer]:
    with run_server(create_app(limited_settings), settings=limited_settings) as live:
        yield live


@contextlib.contextmanager
def connection(live: LiveServer) -> Iterator[socket.socket]:
    port = urlsplit(live.url).port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield sock


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def read_answer(sock: socket.socket) -> Answer:
    """One response with a Content-Length (every one these tests get)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a whole response head: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "closed inside a response body"
        body += chunk
    return Answer(int(status_line.split()[1]), headers, body)


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed (EOF or reset) within the socket's timeout."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


def head_of(size: int, path: str = "/healthz") -> bytes:
    start = f"GET {path} HTTP/1.1\r\nHost: test\r\nX-Pad: ".encode()
    end = b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


def assert_ours(answer: Answer) -> None:
    """A server-layer answer: the site's security headers, not cached, connection closed."""
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["connection"] == "close"
    assert answer.headers["content-type"].startswith("text/plain")


# --- size ----------------------------------------------------------------------------


def test_a_head_over_the_limit_is_431_while_the_client_is_still_sending(
    limited: LiveServer,
) -> None:
    with connection(limited) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nX-Endless: ")
        sent = 0
        # Keep sending a header line that never ends, until the server answers.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < ENDLESS and not select.select([sock], [], [], 0.01)[0]:
                sent += sock.send(b"a" * 16384)
        answer = read_answer(sock)
        assert answer.status == 431
        assert str(MAX_HEAD) in answer.body.decode()
        assert_ours(answer)
        assert closed_by_server(sock)
    assert sent < ENDLESS


def test_the_head_limit_is_exact_however_the_head_arrives(limited: LiveServer) -> None:
    for pieces in (1, 40):  # one read, or many (counted across reads)
        for size, status in ((MAX_HEAD, 200), (MAX_HEAD + 1, 431)):
            head = head_of(size)
            step = -(-len(head) // pieces)
            with connection(limited) as sock:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    for start in range(0, len(head), step):
                        sock.sendall(head[start : start + step])
                        time.sleep(0.002 if pieces > 1 else 0)
                assert read_answer(sock).status == status, (size, pieces)


def test_a_big_head_within_the_limit_is_served(limited: LiveServer) -> None:
    response = httpx.get(
        f"{limited.url}/healthz", headers={"X-Big": "b" * (MAX_HEAD - 500)}, timeout=5
    )
    assert response.status_code == 200


# --- time ----------------------------------------------------------------------------


def test_a_head_sent_a_byte_at_a_time_is_408_within_the_head_timeout(
    limited: LiveServer,
) -> None:
    with connection(limited) as sock:
        started = time.monotonic()
        trickle = iter(b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 1000)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while time.monotonic() - started < HEAD_TIMEOUT + SLACK:
                sock.send(bytes([next(trickle)]))
                if select.select([sock], [], [], 0.3)[0]:
                    break
        answer = read_answer(sock)
        assert answer.status == 408
        assert_ours(answer)
        assert closed_by_server(sock)
        assert time.monotonic() - started < HEAD_TIMEOUT + SLACK


def test_a_silent_connection_is_closed_after_the_head_timeout(limited: LiveServer) -> None:
    with connection(limited) as sock:
        started = time.monotonic()
        sock.settimeout(HEAD_TIMEOUT + SLACK)
        assert sock.recv(1024) == b""  # closed, without an answer to nothing asked
        assert time.monotonic() - started < HEAD_TIMEOUT + SLACK


def test_keep_alive_outlasts_the_head_timeout_between_requests(limited: LiveServer) -> None:
    with connection(limited) as sock:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            answer = read_answer(sock)
            assert answer.status == 200
            assert answer.headers.get("connection") != "close"
            # Longer than a head may take, shorter than uvicorn's keep-alive (5 s).
            time.sleep(HEAD_TIMEOUT + 0.5)


# --- the server's own answers --------------------------------------------------------


def test_malformed_http_is_400_with_the_security_headers(limited: LiveServer) -> None:
    with connection(limited) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost test\r\n\r\n")  # a header without a colon
        answer = read_answer(sock)
        assert answer.status == 400
        assert_ours(answer)
        assert closed_by_server(sock)


class Failing(Starlette):
    """Fails before it answers, outside Starlette's own error handling (as the stream
    endpoint, served outside that stack, would)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raise RuntimeError("this app fails before it answers")
        await super().__call__(scope, receive, send)


def test_an_app_that_fails_before_answering_gets_500_with_the_security_headers(
    limited_settings: Settings,
) -> None:
    with run_server(Failing(), settings=limited_settings) as live, connection(live) as sock:
        sock.sendall(b"GET /fail HTTP/1.1\r\nHost: test\r\n\r\n")
        answer = read_answer(sock)
        assert answer.status == 500
        assert answer.body == b"Internal Server Error"
        assert_ours(answer)


# --- the app's way to drop a connection ----------------------------------------------


class Aborting:
    """Starts a response, then drops the connection through the scope's extension."""

    def __init__(self) -> None:
        self.told_disconnected = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        abort = scope["extensions"][CONNECTION_EXTENSION]["abort"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * 1000, "more_body": True})
        abort()
        while (await receive())["type"] != "http.disconnect":
            pass
        self.told_disconnected = True


def test_the_app_can_abort_a_connection_with_a_reset(limited_settings: Settings) -> None:
    aborting = Aborting()
    app = Starlette(routes=[Route("/abort", aborting)])
    with run_server(app, settings=limited_settings) as live, connection(live) as sock:
        sock.sendall(b"GET /abort HTTP/1.1\r\nHost: test\r\n\r\n")
        received = b""
        with pytest.raises(ConnectionResetError):  # a reset, not an orderly close
            while chunk := sock.recv(65536):
                received += chunk
        assert received.startswith(b"HTTP/1.1 200 ")
        deadline = time.monotonic() + 2
        while not aborting.told_disconnected:  # the app learns it, as from a hang-up
            assert time.monotonic() < deadline
            time.sleep(0.01)


# --- as users run it -----------------------------------------------------------------


def test_serve_with_workers_applies_the_limits_from_the_environment(tmp_path: Path) -> None:
    require_redis()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "LIVEBLOG_SECRET_KEY": "x" * 40,
        "LIVEBLOG_BROADCAST_URL": redis_namespace_url(),
        "LIVEBLOG_MAX_HEAD_BYTES": str(MAX_HEAD),
    }
    command = [sys.executable, "-m", "liveblog.cli", "serve", "--workers", "2"]
    command += ["--port", str(port), "--data-dir", str(tmp_path)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    live = LiveServer(url=f"http://127.0.0.1:{port}", app=Starlette())
    printed = b""
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"{live.url}/healthz", timeout=2).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "no server"
                time.sleep(0.2)
        # One worker answering says nothing of the other: wait until both have started
        # (on a loaded machine the second can take a while longer).
        assert process.stdout is not None
        while printed.count(b"Started server process") < 2:
            assert time.monotonic() < deadline and process.poll() is None, printed
            if select.select([process.stdout], [], [], 0.2)[0]:
                printed += os.read(process.stdout.fileno(), 65536)
        # New connections, spread over both workers by the kernel.
        for _ in range(6):
            for size, status in ((MAX_HEAD, 200), (MAX_HEAD + 1, 431)):
                with connection(live) as sock:
                    sock.sendall(head_of(size))
                    assert read_answer(sock).status == status
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert (printed + output).decode(errors="replace").count("Started server process") == 2


# --- bodies --------------------------------------------------------------------------

BODY_TIMEOUT = 1.0


@pytest.fixture
def body_limited(settings: Settings) -> Iterator[LiveServer]:
    limited = settings.model_copy(update={"body_timeout": BODY_TIMEOUT})
    with run_server(create_app(limited), settings=limited) as live:
        yield live


def test_a_body_that_stops_coming_is_408_and_closed(body_limited: LiveServer) -> None:
    with connection(body_limited) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-"
            b"urlencoded\r\nContent-Length: 1000\r\n\r\nusername=a"
        )
        began = time.monotonic()
        sock.settimeout(BODY_TIMEOUT + SLACK + 2)
        answer = read_answer(sock)
        took = time.monotonic() - began
        assert answer.status == 408, answer
        assert_ours(answer)
        assert BODY_TIMEOUT - 0.2 <= took <= BODY_TIMEOUT + SLACK, took
        assert closed_by_server(sock)


def test_a_slow_body_that_keeps_coming_is_read(body_limited: LiveServer) -> None:
    # One piece every half timeout: slow, but never silent for the whole timeout.
    body = b"username=nobody&password=wrong-password&csrf_token=x"
    with connection(body_limited) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-"
            b"urlencoded\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        for at in range(0, len(body), 16):
            time.sleep(BODY_TIMEOUT / 2)
            sock.sendall(body[at : at + 16])
        sock.settimeout(10)
        answer = read_answer(sock)
        assert answer.status == 403  # the app's own answer (no CSRF cookie), not a 408


# --- event streams -------------------------------------------------------------------


def test_an_event_stream_gets_a_small_fixed_send_buffer(settings: Settings) -> None:
    """What a reader that stops reading can make the server hold in the kernel."""
    size = 24 * 1024
    small = settings.model_copy(update={"stream_send_buffer": size})

    class Page:  # an ASGI app, as the stream endpoint is
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["path"] == "/stream":
                scope["extensions"][CONNECTION_EXTENSION]["stream"]()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    app = Starlette(routes=[Route("/stream", Page()), Route("/page", Page())])
    buffers = {}
    with run_server(app, settings=small) as live:
        port = urlsplit(live.url).port
        assert port is not None
        for path in ("/page", "/stream"):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
                assert sock.recv(65536).startswith(b"HTTP/1.1 200")
                buffers[path] = server_send_buffer(port, sock.getsockname()[1])
    assert buffers["/stream"] == 2 * size, buffers  # Linux doubles what is asked
    assert buffers["/page"] != 2 * size, buffers  # other responses keep the kernel's own
