"""The stream's shortcuts, against a real uvicorn: what ``liveblog.live`` trusts without
reading the database, and what makes it read again.

A reader joining a live story that already has readers in the process is admitted
from memory; a story event (unpublishing, ending) must end that trust at once. Open
streams end when the server is told to shut down, and many readers arriving together
at a story nobody follows yet make one database read, not one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import event
from sse_starlette.sse import AppStatus

from tests.factories import create_story, post_update
from tests.support import Editor, LiveServer, login
from tests.test_stream import WAIT, EventStream, api, open_stream, reader, reporter

pytestmark = pytest.mark.anyio

__all__ = ["api", "reader", "reporter"]  # fixtures


async def test_unpublishing_a_followed_story_hides_it_from_new_readers(
    server: LiveServer, api: httpx.AsyncClient, reader: httpx.AsyncClient, reporter: Editor
) -> None:
    slug = await create_story(api, "embargo-lifted-too-soon")
    async with open_stream(reader, slug) as witness:
        await post_update(api, slug, "Published by mistake.")
        await witness.next_event()
        # A second reader joins from memory: the story is live and followed here.
        async with open_stream(reader, slug) as second:
            response = await api.patch(f"/api/stories/{slug}", json={"status": "draft"})
            assert response.status_code == 200, response.text
            unpublished = await witness.next_event()
            assert unpublished.json()["story"]["status"] == "draft"
            await second.next_event()
        # The story is still followed (the witness stays), but it is a draft now.
        late = await reader.get(f"/stories/{slug}/events")
        assert late.status_code == 404
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as desk:
            await login(desk, reporter)
            async with open_stream(desk, slug) as editor_view:
                fresh = await post_update(api, slug, "Under embargo again.")
                seen = await editor_view.next_event()
        assert seen.json()["id"] == fresh["id"]


async def test_a_reader_arriving_after_the_end_is_told_so(
    api: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    slug = await create_story(api, "count-complete")
    streams: list[EventStream] = []
    async with open_stream(reader, slug) as first, open_stream(reader, slug) as second:
        streams += [first, second]
        await post_update(api, slug, "Final result.")
        response = await api.patch(f"/api/stories/{slug}", json={"status": "ended"})
        assert response.status_code == 200
        for stream in streams:
            update, ended = await stream.events(2)
            assert update.event == "update"
            assert ended.json()["story"]["status"] == "ended"
            await stream.finished()
    assert (await reader.get(f"/stories/{slug}/events")).status_code == 204
    async with open_stream(reader, slug, last_event_id="1") as late:
        ended = await late.next_event()
        await late.finished()
    assert (ended.event, ended.seq) == ("story", 2)


async def test_server_shutdown_ends_open_streams(
    server: LiveServer, api: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    slug = await create_story(api, "shutting-down")
    async with open_stream(reader, slug) as stream:
        # What uvicorn's signal handler does (through sse-starlette) on SIGTERM.
        AppStatus.should_exit = True
        try:
            started = time.monotonic()
            await stream.finished(within=5)
            ended_after = time.monotonic() - started
        finally:
            AppStatus.should_exit = False
    assert ended_after < 5
    assert server.liveblog.live.streams.open_count == 0


async def test_a_crowd_arriving_at_once_reads_the_story_once(
    server: LiveServer, api: httpx.AsyncClient
) -> None:
    slug = await create_story(api, "crowd")
    crowd_story = server.story_id(slug)  # read before the reads are counted
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "FROM story" in statement:
            statements.append(statement)

    engine = server.liveblog.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    crowd = 40
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    try:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=WAIT, limits=limits) as many,
            contextlib.AsyncExitStack() as open_streams,
        ):
            bodies: list[AsyncIterator[bytes]] = []  # kept: a dropped one closes its stream

            async def join() -> None:
                url = f"/stories/{slug}/events"
                response = await open_streams.enter_async_context(many.stream("GET", url))
                assert response.status_code == 200
                body = response.aiter_raw()
                bodies.append(body)
                # The retry line: the server sends nothing before it has subscribed.
                assert (await anext(body)).startswith(b"retry:")

            await asyncio.gather(*(join() for _ in range(crowd)))
            assert server.liveblog.hub.subscriber_count(crowd_story) == crowd
            reads = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # The slug, the position (the hub's), the status: a few reads, not one per reader.
    assert reads <= 6, statements
