"""A reader that stops reading is dropped for real, against a real server as users run it.

Dropped means: the server's socket is gone (reset), with its send queue, while the reader
still holds its end open. A graceful close would keep the socket ESTABLISHED with its
whole send queue until the reader read it, which a stuck phone or a script never does.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from liveblog.app import create_app
from liveblog.models import StoryCreate, StoryStatus, UpdateCreate, User
from tests.support import (
    LiveServer,
    make_editor,
    open_stuck_reader,
    run_server,
    server_send_buffer,
    settings_for,
)

pytestmark = pytest.mark.anyio

# ~76 KB of UTF-8 per frame, under the 20,000-character body limit.
BIG_BODY = "\N{WATER WAVE}" * 19_000
SEND_TIMEOUT = 1.0
TCP_ESTABLISHED = "01"


def server_sockets(server_port: int, client_port: int) -> list[str]:
    """TCP states (hex, /proc/net/tcp) of the server's sockets to one client port."""
    states = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local, remote, state = fields[1], fields[2], fields[3]
                if (
                    int(local.rsplit(":", 1)[1], 16) == server_port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port
                ):
                    states.append(state)
    return states


def port_of(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


async def seed(server: LiveServer, slug: str, updates: int) -> User:
    liveblog = server.liveblog

    async def work() -> User:
        editor = await make_editor(server.app, f"ed-{slug}")
        async with liveblog.db.session() as session:
            user = await session.get(User, editor.user_id)
        assert user is not None
        await liveblog.newsroom.create_story(
            StoryCreate(title=slug, slug=slug, status=StoryStatus.live), actor=user
        )
        for number in range(updates):
            await liveblog.newsroom.post_update(
                slug, UpdateCreate(body=f"{number} {BIG_BODY}"), author=user
            )
        return user

    user: User = server.run(work())
    return user


async def wait_for_gone(server: LiveServer, sock: socket.socket, within: float) -> float:
    """Seconds until the server holds no established socket to ``sock``; fails after
    ``within``."""
    client_port = sock.getsockname()[1]
    began = time.monotonic()
    while time.monotonic() - began < within:
        if TCP_ESTABLISHED not in server_sockets(port_of(server), client_port):
            return time.monotonic() - began
        await asyncio.sleep(0.05)
    states = server_sockets(port_of(server), client_port)
    raise AssertionError(f"the server still holds the reader's socket after {within}s: {states}")


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = settings_for(
        tmp_path,
        stream_send_timeout=SEND_TIMEOUT,
        stream_backlog=1000,  # never overflows here: only the send timeout can drop it
        heartbeat_interval=60,
    )
    with run_server(create_app(settings), settings=settings) as live:
        yield live


async def test_a_reader_stuck_within_its_backlog_is_aborted_by_the_send_timeout(
    slow_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = slow_server
    caplog.set_level(logging.INFO)
    # ~7.6 MB of replay: more than the kernel buffers for a reader that does not read.
    await seed(server, "stuck", 100)
    sock = await asyncio.to_thread(
        open_stuck_reader, server.url, "/stories/stuck/events", last_event_id=0
    )
    try:
        client_port = sock.getsockname()[1]
        await asyncio.sleep(0.3)
        assert TCP_ESTABLISHED in server_sockets(port_of(server), client_port)
        # A stream's socket has a small fixed send buffer (the kernel doubles the setting):
        # what a reader that stops reading can make the server hold.
        sent = server.liveblog.settings.stream_send_buffer
        assert server_send_buffer(port_of(server), client_port) == 2 * sent
        took = await wait_for_gone(server, sock, 2 * SEND_TIMEOUT + 2)
        # Not before the send timeout: it was the timeout that dropped it.
        assert took >= SEND_TIMEOUT - 0.5, took
        assert server.liveblog.live.streams.dropped_slow == 1
        assert server.liveblog.live.streams.open_count == 0
        # The reader's side sees a reset, not a clean end.
        sock.settimeout(5)
        with pytest.raises(ConnectionResetError):
            while sock.recv(1 << 20):
                pass
        # An ordinary event, not a fault: counted in one INFO line, no ERROR, no traceback.
        server.liveblog.live.streams.report_drops()
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        (line,) = [r for r in caplog.records if "readers that stopped reading" in r.getMessage()]
        assert line.levelno == logging.INFO and line.exc_info is None
        assert line.getMessage().startswith("dropped 1 readers"), line.getMessage()
    finally:
        sock.close()


@pytest.fixture
def short_backlog_server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = settings_for(
        tmp_path,
        stream_send_timeout=60,  # far away: only the overflow can drop it in time
        stream_backlog=2,
        heartbeat_interval=60,
    )
    with run_server(create_app(settings), settings=settings) as live:
        yield live


async def test_a_reader_that_falls_a_backlog_behind_is_aborted_at_once(
    short_backlog_server: LiveServer,
) -> None:
    server = short_backlog_server
    liveblog = server.liveblog
    user = await seed(server, "behind", 0)
    sock = await asyncio.to_thread(
        open_stuck_reader, server.url, "/stories/behind/events", last_event_id=None
    )
    try:
        client_port = sock.getsockname()[1]
        for _ in range(100):
            if liveblog.live.streams.open_count == 1:
                break
            await asyncio.sleep(0.05)
        assert liveblog.live.streams.open_count == 1

        async def post() -> None:
            await liveblog.newsroom.post_update("behind", UpdateCreate(body=BIG_BODY), author=user)

        posted = 0
        while liveblog.live.streams.open_count and posted < 300:
            server.run(post())
            posted += 1
        assert liveblog.live.streams.open_count == 0, "never dropped"
        assert liveblog.hub.stats().overflows == 1
        # Within moments of the overflow, not after the 60 s send timeout.
        await wait_for_gone(server, sock, 3)
        assert liveblog.live.streams.dropped_behind == 1
        assert TCP_ESTABLISHED not in server_sockets(port_of(server), client_port)
    finally:
        sock.close()
