"""Replays against the real app on a real SQLite file: shared, bounded, and never in an
editor's way (``liveblog.live.replay``, ``Database.stream_session``, the hub's recent frames).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from liveblog.live.replay import PAGE, PIECE
from liveblog.models import StoryCreate, StoryStatus, UpdateCreate, User
from liveblog.settings import Settings
from liveblog.state import Liveblog
from tests.support import bearer, make_editor

pytestmark = pytest.mark.anyio

EVENTS = 2 * PAGE + 88  # three pages of the log, the last one partial
BODY = "The **A4 bridge** is closed in both directions; police divert traffic. " * 4
ID_LINE = re.compile(rb"^id: (\d+)$", re.M)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # conftest's ``app`` is built from these: one connection for the stream path.
    return settings.model_copy(update={"stream_db_connections": 1})


def liveblog_of(app: Starlette) -> Liveblog:
    liveblog: Liveblog = app.state.liveblog
    return liveblog


async def seed_story(app: Starlette, slug: str, updates: int) -> tuple[int, User]:
    """A live story with ``updates`` updates (one event each after its creation)."""
    liveblog = liveblog_of(app)
    editor = await make_editor(app, f"ed-{slug}")
    async with liveblog.db.session() as session:
        user = await session.get(User, editor.user_id)
    assert user is not None
    story = await liveblog.newsroom.create_story(
        StoryCreate(title=f"Story {slug}", slug=slug, status=StoryStatus.live), actor=user
    )
    for number in range(updates):
        await liveblog.newsroom.post_update(
            slug, UpdateCreate(body=f"{number}: {BODY}"), author=user
        )
    assert story.id is not None
    return story.id, user


async def collect(liveblog: Liveblog, story_id: int, after: int, until: int) -> list[bytes]:
    return [piece async for piece in liveblog.live.replays.replay(story_id, after, until)]


def seqs(pieces: list[bytes]) -> list[int]:
    return [int(seq) for seq in ID_LINE.findall(b"".join(pieces))]


@contextmanager
def counting_event_reads(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every statement ``engine`` runs that reads the event log, as it runs it."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "story_event" in statement:
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


async def test_a_crowd_replaying_the_same_range_shares_each_page(app: Starlette) -> None:
    liveblog = liveblog_of(app)
    story_id, _ = await seed_story(app, "crowd", EVENTS)
    last = EVENTS  # the story's creation is not an event; every update is one
    with counting_event_reads(liveblog.db.stream_engine) as reads:
        results = await asyncio.gather(*(collect(liveblog, story_id, 0, last) for _ in range(40)))
    for pieces in results:
        assert seqs(pieces) == list(range(1, last + 1))
    # Three pages, each read once for all 40 readers; none from the editors' pool.
    assert liveblog.live.replays.page_reads == 3
    assert len(reads) == 3
    # A later reader finds them in the cache.
    with counting_event_reads(liveblog.db.stream_engine) as reads:
        assert seqs(await collect(liveblog, story_id, 100, last)) == list(range(101, last + 1))
    assert reads == []


async def test_a_replay_is_written_in_bounded_pieces(app: Starlette) -> None:
    liveblog = liveblog_of(app)
    story_id, _ = await seed_story(app, "pieces", PAGE + 10)
    pieces = await collect(liveblog, story_id, 0, PAGE + 10)
    assert sum(map(len, pieces)) > 2 * PIECE  # a page is larger than a piece here
    assert max(map(len, pieces)) <= PIECE
    assert seqs(pieces) == list(range(1, PAGE + 11))


async def test_resuming_readers_are_replayed_from_memory(app: Starlette) -> None:
    liveblog = liveblog_of(app)
    story_id, user = await seed_story(app, "resume", 30)
    async with liveblog.hub.subscribe(story_id):  # a reader here: the hub follows the story
        for number in range(20):
            await liveblog.newsroom.post_update(
                "resume", UpdateCreate(body=f"live {number}"), author=user
            )
        for _ in range(200):  # the hub's listener fans them out
            if liveblog.hub.position(story_id) == 50:
                break
            await asyncio.sleep(0.01)
        position = liveblog.hub.position(story_id)
        assert position == 50
        with (
            counting_event_reads(liveblog.db.stream_engine) as stream_reads,
            counting_event_reads(liveblog.db.engine) as site_reads,
        ):
            for after in (49, 45, 31, 30):
                replayed = seqs(await collect(liveblog, story_id, after, position))
                assert replayed == list(range(after + 1, position + 1))
        assert stream_reads == [] and site_reads == []
        assert liveblog.live.replays.from_memory == 4

        # From before what this process saw: the log is read once, and the page it
        # read fills the window, so the readers after it need no read.
        with counting_event_reads(liveblog.db.stream_engine) as stream_reads:
            assert seqs(await collect(liveblog, story_id, 10, position)) == list(range(11, 51))
            assert len(stream_reads) == 1
            assert seqs(await collect(liveblog, story_id, 12, position)) == list(range(13, 51))
            assert len(stream_reads) == 1
        assert liveblog.live.replays.from_memory == 5

    # Everyone left: the hub forgets the story and its frames. The next readers find the
    # page in the cache, and the first of them fills the window again from it.
    async with liveblog.hub.subscribe(story_id):
        assert liveblog.hub.recent(story_id, 45, 50) is None
        with counting_event_reads(liveblog.db.stream_engine) as stream_reads:
            assert seqs(await collect(liveblog, story_id, 20, 50)) == list(range(21, 51))
            assert seqs(await collect(liveblog, story_id, 25, 50)) == list(range(26, 51))
        assert stream_reads == []
        assert liveblog.live.replays.from_memory == 6


async def test_editors_post_while_any_number_of_readers_wait_for_a_replay(
    app: Starlette,
) -> None:
    liveblog = liveblog_of(app)
    story_id, _ = await seed_story(app, "storm", EVENTS)
    editor = await make_editor(app, "poster")
    transport = httpx.ASGITransport(app=app)
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://testserver")
        )
        # Every connection of the stream path is taken (a slow replay read, say) ...
        held = await stack.enter_async_context(liveblog.db.stream_session())
        await held.connection()
        # ... and 40 readers wait in line for it, holding no connection at all.
        readers = [asyncio.create_task(collect(liveblog, story_id, 0, EVENTS)) for _ in range(40)]
        for _ in range(100):
            if liveblog.db.stream_waits >= 1:
                break
            await asyncio.sleep(0.01)
        assert liveblog.db.stream_waits >= 1
        assert not any(reader.done() for reader in readers)
        assert liveblog.db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]

        async with asyncio.timeout(10):
            response = await client.post(
                "/api/stories/storm/updates",
                json={"body": "Editors are never queued behind readers."},
                headers=bearer(editor.token),
            )
        assert response.status_code == 201, response.text
        assert not any(reader.done() for reader in readers)
        await stack.aclose()  # the stream path's connection comes back

    async with asyncio.timeout(30):
        results = await asyncio.gather(*readers)
    for pieces in results:
        assert seqs(pieces) == list(range(1, EVENTS + 1))
