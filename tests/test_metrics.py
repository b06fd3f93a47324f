"""Prometheus metrics and JSON logs (docs/operations.md), scraped from a real server.

The metrics listener is the one ``LIVEBLOG_METRICS_ADDRESS`` opens: a port of its own,
never the site's. Each test reads the counters before and after real traffic (a reader's
stream, an editor's post through the API, a reader that stops reading) and checks that
they moved by what happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from liveblog.app import create_app
from liveblog.metrics import Address
from liveblog.models import StoryCreate, StoryStatus, UpdateCreate, User
from liveblog.settings import Settings
from tests.factories import create_story, last_seq, post_update
from tests.support import (
    LiveServer,
    bearer,
    make_editor,
    migrated_settings_for,
    open_stuck_reader,
    run_server,
)
from tests.test_stream import WAIT, open_stream

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports free now (other test runs share the host)."""
    for _ in range(50):
        first = free_port()
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise AssertionError(f"no {count} consecutive free ports")


def scrape(port: int) -> Samples:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=WAIT)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def wait_until(check: Callable[[], bool], within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "the metrics did not move in time"
        await asyncio.sleep(0.05)


@pytest.fixture
def metrics_port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, metrics_port: int) -> Settings:
    return migrated_settings_for(tmp_path, metrics_address=f"127.0.0.1:{metrics_port}")


@pytest.fixture
def metered(settings: Settings) -> Iterator[LiveServer]:
    with run_server(create_app(settings), settings=settings) as live:
        yield live


async def test_a_scrape_sees_readers_posts_frames_and_replays(
    metered: LiveServer, metrics_port: int
) -> None:
    server = metered
    editor = server.run(make_editor(server.app, "alice"))
    async with (
        httpx.AsyncClient(base_url=server.url, headers=bearer(editor.token), timeout=WAIT) as api,
        httpx.AsyncClient(base_url=server.url, timeout=WAIT) as reader,
    ):
        # Never on the site's own port.
        assert (await reader.get("/metrics")).status_code == 404
        slug = await create_story(api, "storm")
        before = scrape(metrics_port)
        assert value(before, "liveblog_open_streams") == 0
        assert value(before, "liveblog_webhook_backlog") == 0
        assert value(before, "liveblog_db_pool_limit", pool="site") > 0
        assert "process_resident_memory_bytes" in {name for name, _ in before}
        first = await last_seq(api, slug)

        async with open_stream(reader, slug) as stream:
            joined = scrape(metrics_port)
            assert value(joined, "liveblog_open_streams") == 1
            assert value(joined, "liveblog_stream_joins_total") == 1 + value(
                before, "liveblog_stream_joins_total"
            )
            await post_update(api, slug, "The bridge is closed.")
            event = await stream.next_event()
            assert event.event == "update"
            published = await last_seq(api, slug) - first
            assert published >= 1
            after = scrape(metrics_port)

        def moved(name: str) -> float:
            return value(after, name) - value(before, name)

        assert moved("liveblog_events_published_total") == published
        assert moved("liveblog_frames_delivered_total") == published  # one reader
        assert moved("liveblog_publish_to_fan_out_seconds_count") == published
        assert 0 < moved("liveblog_publish_to_fan_out_seconds_sum") < WAIT
        assert moved("liveblog_replay_events_count") == 0

        # The reader hangs up: the stream is over, and counted as left.
        await wait_until(lambda: value(scrape(metrics_port), "liveblog_open_streams") == 0)
        left = scrape(metrics_port)
        assert value(left, "liveblog_stream_leaves_total") == value(
            left, "liveblog_stream_joins_total"
        )

        # A reader resuming from the start is replayed every event: one replay of that many.
        newest = await last_seq(api, slug)
        async with open_stream(reader, slug, last_event_id="0") as resumed:
            replayed = await resumed.events(newest)
            assert [message.seq for message in replayed] == list(range(1, newest + 1))
            again = scrape(metrics_port)
        assert value(again, "liveblog_replay_events_count") == 1
        assert value(again, "liveblog_replay_events_sum") == newest


@pytest.fixture
def overflowing(tmp_path: Path, metrics_port: int) -> Iterator[LiveServer]:
    settings = migrated_settings_for(
        tmp_path,
        metrics_address=f"127.0.0.1:{metrics_port}",
        stream_backlog=2,  # a reader that does not read is dropped two frames behind
        stream_send_timeout=60,  # ... and never by the send timeout here
        heartbeat_interval=60,
    )
    with run_server(create_app(settings), settings=settings) as live:
        yield live


async def test_a_reader_that_stops_reading_is_counted_as_a_slow_reader_close(
    overflowing: LiveServer, metrics_port: int
) -> None:
    server = overflowing
    liveblog = server.liveblog

    async def start() -> User:
        editor = await make_editor(server.app, "bob")
        async with liveblog.db.session() as session:
            user = await session.get(User, editor.user_id)
        assert user is not None
        await liveblog.newsroom.create_story(
            StoryCreate(title="Stuck", slug="stuck", status=StoryStatus.live), actor=user
        )
        return user

    user: User = server.run(start())
    sock = await asyncio.to_thread(open_stuck_reader, server.url, "/stories/stuck/events")
    try:
        await wait_until(lambda: value(scrape(metrics_port), "liveblog_open_streams") == 1)
        big = "\N{WATER WAVE}" * 19_000  # ~57 KB a frame: a few fill the socket's buffers

        async def post_until_dropped() -> None:
            for number in range(40):
                await liveblog.newsroom.post_update(
                    "stuck", UpdateCreate(body=f"{number} {big}"), author=user
                )
                if liveblog.live.streams.open_count == 0:
                    return

        server.run(post_until_dropped())
        await wait_until(
            lambda: (
                value(scrape(metrics_port), "liveblog_slow_reader_closes_total", reason="backlog")
                == 1
            )
        )
        samples = scrape(metrics_port)
        assert value(samples, "liveblog_open_streams") == 0
        assert value(samples, "liveblog_slow_reader_closes_total", reason="send_timeout") == 0
        assert value(samples, "liveblog_stream_leaves_total") == 1
    finally:
        sock.close()


def test_metrics_addresses_take_a_port_or_a_range() -> None:
    assert Address.parse("0.0.0.0:9100") == Address("0.0.0.0", 9100, 9100)
    assert str(Address.parse("[::1]:9100-9103")) == "[::1]:9100-9103"
    assert str(Address.parse("127.0.0.1:9100").widened(4)) == "127.0.0.1:9100-9103"
    for wrong in ("9100", "host:", "host:0", "host:9103-9100", "host:port"):
        with pytest.raises(ValueError):
            Address.parse(wrong)
    assert Settings(metrics_address="").metrics_address is None


def test_apps_sharing_a_range_take_a_port_each(tmp_path: Path) -> None:
    """What ``serve --workers N`` does: one range, a port per process, each scraped apart;
    a process finding none free does not start."""
    address = Address.parse(f"127.0.0.1:{free_ports(2)}").widened(2)

    def app(name: str) -> Starlette:
        return create_app(migrated_settings_for(tmp_path / name, metrics_address=str(address)))

    async def run() -> None:
        first, second, third = app("first"), app("second"), app("third")
        async with (
            first.router.lifespan_context(first),
            second.router.lifespan_context(second),
        ):
            for port in (address.first, address.last):
                page = await asyncio.to_thread(scrape, port)
                assert value(page, "liveblog_open_streams") == 0
            with pytest.raises(OSError, match="no free port"):
                async with third.router.lifespan_context(third):
                    pass

    asyncio.run(run())


# --- JSON logs ------------------------------------------------------------------------


def test_json_logs_carry_the_request_id_the_response_shows(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LIVEBLOG_SECRET_KEY": "x" * 40,
        "LIVEBLOG_LOG_FORMAT": "json",
        "LIVEBLOG_DATA_DIR": str(tmp_path / "data"),
    }
    command = [sys.executable, "-m", "liveblog.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("liveblog serve did not come up") from None
                time.sleep(0.2)
        given = httpx.get(
            f"http://127.0.0.1:{port}/healthz", headers={"X-Request-ID": "proxy-id.42_a"}
        )
        made = httpx.get(f"http://127.0.0.1:{port}/no-such-page")
        refused = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Request-ID": "x" * 65})
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert given.headers["x-request-id"] == "proxy-id.42_a"
    assert made.status_code == 404
    made_id = made.headers["x-request-id"]
    refused_id = refused.headers["x-request-id"]
    assert made_id and refused_id and refused_id != "x" * 65
    lines = [json.loads(line) for line in output.decode().splitlines() if line.strip()]
    for line in lines:  # every line is one JSON object with the same fields
        assert {"time", "level", "logger", "message"} <= line.keys(), line
    access = {line.get("request_id"): line for line in lines if line["logger"] == "uvicorn.access"}
    assert access["proxy-id.42_a"]["path"] == "/healthz"
    assert access["proxy-id.42_a"]["status"] == 200
    assert access[made_id]["status"] == 404
    assert refused_id in access
    # Lines outside any request (start-up, shut-down) carry none.
    assert any(line["logger"] == "uvicorn.error" and "request_id" not in line for line in lines)
