"""Story statistics for editors: readers connected now (counted across processes through
the broadcast backend), peak concurrent readers and page views."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import httpx
import pytest

from liveblog.app import create_app
from liveblog.events import Frame
from liveblog.hub import Hub
from liveblog.hub.memory import MemoryBackend
from liveblog.hub.presence import CHANNEL, EXPIRY_INTERVALS, Presence
from liveblog.settings import Settings
from tests.services import redis_namespace_url, require_redis
from tests.support import (
    LiveServer,
    bearer,
    login,
    make_editor,
    migrated_settings_for,
    run_server,
    settings_for,
)

pytestmark = pytest.mark.anyio

INTERVAL = 0.1  # seconds between presence reports in these tests


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return migrated_settings_for(tmp_path, presence_interval=INTERVAL)


async def no_frames(story_id: int, after: int, before: int) -> list[Frame]:
    return []


async def no_seq(story_id: int) -> int:
    return 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 10) -> None:
    """Wait for ``check()`` to hold; the counts it reads change every INTERVAL."""
    poll = INTERVAL / 2
    for _ in range(int(within / poll)):
        if await check():
            return
        await anyio.sleep(poll)
    raise AssertionError(f"still not true after {within} s")


async def test_reports_from_every_process_add_up_and_expire() -> None:
    hub = Hub(MemoryBackend(), load_frames=no_frames, load_last_seq=no_seq)
    await hub.start()
    clock = Clock()
    presence = Presence(hub, interval=INTERVAL, clock=clock)
    await presence.start()
    try:
        # Another process's reports arrive over the same channel as our own.
        other = json.dumps({"process": "other", "readers": {"7": 5, "8": 1}}).encode()
        async with hub.subscribe(7), hub.subscribe(7), hub.subscribe(9):
            await hub.backend.publish(CHANNEL, other)
            await presence.report()
            await eventually(lambda: _async(presence.totals() == {7: 7, 8: 1, 9: 1}))
            assert presence.readers(7) == 7 and presence.readers(42) == 0
            # A malformed report is ignored, not counted, and breaks nothing.
            await hub.backend.publish(CHANNEL, b'{"process": "x", "readers": [1, 2]}')
            await hub.backend.publish(CHANNEL, b"\xff not json")
            await presence.report()
            await eventually(lambda: _async(presence.totals() == {7: 7, 8: 1, 9: 1}))

            # A process that stops reporting is forgotten once its report is too old.
            clock.now += EXPIRY_INTERVALS * INTERVAL + 1
            await presence.report()
            await eventually(lambda: _async(presence.totals() == {7: 2, 9: 1}))
        await presence.report()
        await eventually(lambda: _async(presence.totals() == {}))
    finally:
        await presence.stop()
        await hub.stop()


async def _async(value: bool) -> bool:
    return value


async def open_streams(
    stack: AsyncExitStack, client: httpx.AsyncClient, url: str, count: int
) -> list[AsyncIterator[str]]:
    streams = []
    for _ in range(count):
        response = await stack.enter_async_context(client.stream("GET", url))
        assert response.status_code == 200
        lines = response.aiter_lines()
        assert (await anext(lines)).startswith("retry:")  # subscribed
        streams.append(lines)
    return streams


async def desk_stats(client: httpx.AsyncClient, slug: str) -> dict[str, int]:
    response = await client.get(f"/desk/stories/{slug}/stats")
    assert response.status_code == 200
    stats: dict[str, int] = response.json()
    return stats


async def test_desk_shows_readers_now_peak_and_page_views(server: LiveServer) -> None:
    editor = server.run(make_editor(server.app, "alice"))
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as desk:
        created = await desk.post(
            "/api/stories", json={"title": "Flood", "status": "live"}, headers=bearer(editor.token)
        )
        assert created.status_code == 201
        anonymous = await desk.get("/desk/stories/flood/stats", follow_redirects=False)
        assert anonymous.status_code in (302, 303)  # editors only
        await login(desk, editor)
        assert await desk_stats(desk, "flood") == {
            "readers_now": 0,
            "peak_readers": 0,
            "page_views": 0,
        }
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as readers:
            for _ in range(4):
                assert (await readers.get("/stories/flood")).status_code == 200
            async with AsyncExitStack() as stack:
                streams = await open_streams(stack, readers, "/stories/flood/events", 3)

                async def three_now() -> bool:
                    stats = await desk_stats(desk, "flood")
                    return stats["readers_now"] == 3 and stats["peak_readers"] == 3

                await eventually(three_now)
                assert (await desk_stats(desk, "flood"))["page_views"] == 4
                assert len(streams) == 3  # (held open until here)

            async def none_now() -> bool:
                return (await desk_stats(desk, "flood"))["readers_now"] == 0

            await eventually(none_now)

            # The peak and the views are kept in the story row.
            async def written() -> bool:
                row = server.run(_story_row(server, "flood"))
                return bool(row == (4, 3))

            await eventually(written)
            assert await desk_stats(desk, "flood") == {
                "readers_now": 0,
                "peak_readers": 3,
                "page_views": 4,
            }
        desk_page = await desk.get("/desk/stories/flood")
        assert 'data-stat="peak_readers">3<' in desk_page.text


async def _story_row(server: LiveServer, slug: str) -> tuple[int, int] | None:
    from liveblog import store

    async with server.liveblog.db.session() as session:
        story = await store.get_story(session, slug)
    return None if story is None else (story.page_views, story.peak_readers)


async def test_readers_on_two_processes_are_counted_together(tmp_path: Path) -> None:
    """Two app processes (each its own hub and presence) sharing a database and Redis:
    each desk sees the readers of both."""
    require_redis()
    shared = settings_for(tmp_path, presence_interval=INTERVAL, broadcast_url=redis_namespace_url())
    with run_server(create_app(shared)) as first, run_server(create_app(shared)) as second:
        editor = first.run(make_editor(first.app, "alice"))
        async with (
            httpx.AsyncClient(base_url=first.url, timeout=10) as desk_a,
            httpx.AsyncClient(base_url=second.url, timeout=10) as desk_b,
            httpx.AsyncClient(base_url=first.url, timeout=10) as reader_a,
            httpx.AsyncClient(base_url=second.url, timeout=10) as reader_b,
            AsyncExitStack() as stack,
        ):
            created = await desk_a.post(
                "/api/stories",
                json={"title": "Flood", "status": "live"},
                headers=bearer(editor.token),
            )
            assert created.status_code == 201
            await login(desk_a, editor)
            await login(desk_b, editor)
            streams = await open_streams(stack, reader_a, "/stories/flood/events", 2)
            streams += await open_streams(stack, reader_b, "/stories/flood/events", 3)

            async def both_see_five() -> bool:
                a = await desk_stats(desk_a, "flood")
                b = await desk_stats(desk_b, "flood")
                return a["readers_now"] == b["readers_now"] == 5

            await eventually(both_see_five)
            assert len(streams) == 5  # (held open until here)
            assert first.liveblog.presence.process != second.liveblog.presence.process
