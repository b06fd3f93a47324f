"""The event log's invariants, checked in the database after real concurrent requests.

* sequence numbers per story are 1..N, gap-free and unique, and ``last_seq`` is N;
* a change that fails draws no number;
* at most one update per story is pinned, and the database itself refuses a second.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette

from liveblog import auth, store
from liveblog.models import StoryStatus, Update, UpdateCreate, utcnow
from liveblog.settings import Settings
from liveblog.state import Liveblog
from tests import services
from tests.factories import new_story, new_update
from tests.support import Editor, bearer, make_editor

pytestmark = pytest.mark.anyio


def query(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    # SQLite or PostgreSQL (tests/test_postgres_store.py runs this module there too).
    return services.rows(settings, sql, *params)


def column(settings: Settings, sql: str, *params: Any) -> list[Any]:
    """The one column a query selects, row by row."""
    return [value for (value,) in query(settings, sql, *params)]


SEQS = (
    "SELECT e.seq FROM story_event e JOIN story s ON s.id = e.story_id "
    "WHERE s.slug = ? ORDER BY e.id"
)
PINNED = (
    'SELECT u.id FROM "update" u JOIN story s ON s.id = u.story_id '
    "WHERE s.slug = ? AND u.pinned AND u.deleted_at IS NULL ORDER BY u.id"
)


def seqs(settings: Settings, slug: str) -> list[int]:
    return column(settings, SEQS, slug)


def last_seq(settings: Settings, slug: str) -> int:
    [(value,)] = query(settings, "SELECT last_seq FROM story WHERE slug = ?", slug)
    return int(value)


def pinned(settings: Settings, slug: str) -> list[int]:
    return column(settings, PINNED, slug)


def assert_gap_free(settings: Settings, slug: str) -> int:
    values = seqs(settings, slug)
    assert sorted(values) == list(range(1, len(values) + 1)), values
    assert last_seq(settings, slug) == len(values)
    return len(values)


# --- sequence numbers ----------------------------------------------------------------


async def test_concurrent_posts_get_gap_free_unique_sequence_numbers(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    count = 50
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/stories/flood/updates",
                json={"body": f"update {n}"},
                headers=bearer(editor.token),
            )
            for n in range(count)
        )
    )
    assert [response.status_code for response in responses] == [201] * count
    ids = {response.json()["id"] for response in responses}
    assert len(ids) == count

    values = seqs(settings, "flood")
    assert len(values) == count
    assert len(set(values)) == count
    assert sorted(values) == list(range(1, count + 1))
    assert last_seq(settings, "flood") == count
    # One event per update, each naming its own update.
    event_updates = query(settings, "SELECT update_id FROM story_event WHERE kind = 'update'")
    assert {update_id for (update_id,) in event_updates} == ids

    story = await client.get("/api/stories/flood", headers=bearer(editor.token))
    assert story.json()["last_seq"] == count


async def test_concurrent_changes_on_two_stories_keep_separate_sequences(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor, "one")
    await new_story(client, editor, "two")
    first = (await new_update(client, editor, "one"))["id"]
    headers = bearer(editor.token)
    requests = []
    for n in range(15):
        requests.append(
            client.post("/api/stories/one/updates", json={"body": f"a{n}"}, headers=headers)
        )
        requests.append(
            client.post("/api/stories/two/updates", json={"body": f"b{n}"}, headers=headers)
        )
        requests.append(
            client.patch(
                f"/api/stories/one/updates/{first}", json={"body": f"edit {n}"}, headers=headers
            )
        )
    responses = await asyncio.gather(*requests)
    assert all(response.status_code in (200, 201) for response in responses)
    assert assert_gap_free(settings, "one") == 1 + 15 + 15
    assert assert_gap_free(settings, "two") == 15


async def test_a_refused_change_leaves_last_seq_unchanged(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    await new_update(client, editor)
    ended = await client.patch(
        "/api/stories/flood", json={"status": "ended"}, headers=bearer(editor.token)
    )
    assert ended.status_code == 200
    assert last_seq(settings, "flood") == 2
    events_before = query(settings, "SELECT * FROM story_event ORDER BY id")

    refused = await client.post(
        "/api/stories/flood/updates",
        json={"body": "too late", "pinned": True},
        headers=bearer(editor.token),
    )
    assert refused.status_code == 409
    missing = await client.delete("/api/stories/flood/updates/999", headers=bearer(editor.token))
    assert missing.status_code == 404
    assert last_seq(settings, "flood") == 2
    assert query(settings, "SELECT * FROM story_event ORDER BY id") == events_before

    reopened = await client.patch(
        "/api/stories/flood", json={"status": "live"}, headers=bearer(editor.token)
    )
    assert reopened.status_code == 200
    await new_update(client, editor)
    assert seqs(settings, "flood") == [1, 2, 3, 4]


async def test_a_rolled_back_change_draws_no_number(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    await new_update(client, editor)
    liveblog: Liveblog = app.state.liveblog

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with liveblog.db.transaction() as session:
            story = await store.get_story(session, "flood")
            author = await store.get_user(session, editor.user_id)
            assert story is not None and author is not None
            _update, events = await store.post_update(
                session,
                story=story,
                data=UpdateCreate(body="never committed", pinned=True),
                author=author,
                renderer=liveblog.renderer,
            )
            # The numbers were drawn inside the transaction ...
            assert [event.seq for event in events] == [2, 3]
            raise Abort
    # ... and went away with it.
    assert last_seq(settings, "flood") == 1
    assert query(settings, "SELECT count(*) FROM \"update\" WHERE body = 'never committed'") == [
        (0,)
    ]
    await new_update(client, editor)
    assert seqs(settings, "flood") == [1, 2]


async def test_posts_racing_the_end_of_a_story_stay_before_its_closing_event(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    """An update is either refused (409) or lands before the event that ends the story."""
    await new_story(client, editor)
    headers = bearer(editor.token)
    posts = [
        client.post("/api/stories/flood/updates", json={"body": f"n{n}"}, headers=headers)
        for n in range(20)
    ]
    end = client.patch("/api/stories/flood", json={"status": "ended"}, headers=headers)
    responses = await asyncio.gather(*posts[:10], end, *posts[10:])
    assert responses[10].status_code == 200
    statuses = [response.status_code for response in responses[:10] + responses[11:]]
    assert set(statuses) <= {201, 409}
    assert_gap_free(settings, "flood")
    [(closing_seq,)] = query(settings, "SELECT seq FROM story_event WHERE closes")
    update_seqs = column(settings, "SELECT seq FROM story_event WHERE kind = 'update'")
    assert all(seq < closing_seq for seq in update_seqs), (closing_seq, update_seqs)
    assert len(update_seqs) == statuses.count(201)


# --- one pinned update per story -----------------------------------------------------

# What each database raises when a raw write breaks the one-pin index.
UNIQUE_VIOLATION = (sqlite3.IntegrityError, psycopg.errors.UniqueViolation)


async def test_pinning_b_unpins_a(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    a = (await new_update(client, editor, body="A"))["id"]
    b = (await new_update(client, editor, body="B"))["id"]
    headers = bearer(editor.token)

    pin_a = await client.patch(
        f"/api/stories/flood/updates/{a}", json={"pinned": True}, headers=headers
    )
    assert pin_a.status_code == 200 and pin_a.json()["pinned"] is True
    assert pinned(settings, "flood") == [a]

    pin_b = await client.patch(
        f"/api/stories/flood/updates/{b}", json={"pinned": True}, headers=headers
    )
    assert pin_b.status_code == 200 and pin_b.json()["pinned"] is True
    assert pinned(settings, "flood") == [b]
    got_a = await client.get(f"/api/stories/flood/updates/{a}", headers=headers)
    assert got_a.json()["pinned"] is False

    # Posting a new pinned update takes the pin too.
    c = (await new_update(client, editor, body="C", pinned=True))["id"]
    assert pinned(settings, "flood") == [c]
    assert_gap_free(settings, "flood")

    # Pins are per story: another story keeps its own.
    await new_story(client, editor, "other")
    d = (await new_update(client, editor, "other", pinned=True))["id"]
    assert pinned(settings, "flood") == [c]
    assert pinned(settings, "other") == [d]


async def test_concurrent_pins_leave_one_pinned(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    ids = [(await new_update(client, editor, body=f"u{n}"))["id"] for n in range(10)]
    headers = bearer(editor.token)
    responses = await asyncio.gather(
        *(
            client.patch(
                f"/api/stories/flood/updates/{update_id}", json={"pinned": True}, headers=headers
            )
            for update_id in ids
        ),
        *(
            client.post(
                "/api/stories/flood/updates",
                json={"body": f"p{n}", "pinned": True},
                headers=headers,
            )
            for n in range(10)
        ),
    )
    assert {response.status_code for response in responses} <= {200, 201, 409}
    assert any(response.status_code in (200, 201) for response in responses)
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]
    assert len(pinned(settings, "flood")) == 1
    assert_gap_free(settings, "flood")


async def test_the_database_refuses_two_pinned_updates(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    a = (await new_update(client, editor, body="A", pinned=True))["id"]
    b = (await new_update(client, editor, body="B"))["id"]

    # Straight SQL, past the application: the partial unique index refuses it.
    with pytest.raises(UNIQUE_VIOLATION):
        services.execute(settings, 'UPDATE "update" SET pinned = true WHERE id = ?', b)
    assert pinned(settings, "flood") == [a]

    # Through the ORM, inserting a second pinned row.
    liveblog: Liveblog = app.state.liveblog
    [(story_id,)] = query(settings, "SELECT id FROM story WHERE slug = 'flood'")
    with pytest.raises(IntegrityError):
        async with liveblog.db.transaction() as session:
            session.add(
                Update(
                    story_id=story_id,
                    author_id=editor.user_id,
                    body="sneaky",
                    body_html="<p>sneaky</p>",
                    pinned=True,
                )
            )
    assert pinned(settings, "flood") == [a]
    assert query(settings, "SELECT count(*) FROM \"update\" WHERE body = 'sneaky'") == [(0,)]

    # A deleted update does not hold the pin: the index only counts live rows.
    deleted_at = utcnow().isoformat()
    services.execute(settings, 'UPDATE "update" SET deleted_at = ? WHERE id = ?', deleted_at, a)
    services.execute(settings, 'UPDATE "update" SET pinned = true WHERE id = ?', b)
    assert pinned(settings, "flood") == [b]


async def test_story_status_values_are_stored_as_text(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    # The raw queries above rely on these spellings.
    await new_story(client, editor)
    [(status,)] = query(settings, "SELECT status FROM story WHERE slug = 'flood'")
    assert status in (StoryStatus.live.value, StoryStatus.live.name)


# --- the reads the views use ---------------------------------------------------------


async def test_visible_story_shows_a_draft_only_when_drafts_are_shown(
    app: Starlette, client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor)
    response = await client.post(
        "/api/stories",
        json={"title": "Plans", "slug": "plans", "status": "draft"},
        headers=bearer(editor.token),
    )
    assert response.status_code == 201, response.text
    liveblog: Liveblog = app.state.liveblog
    async with liveblog.db.session() as session:
        for drafts in (True, False):
            live = await store.visible_story(session, "flood", drafts=drafts)
            assert live is not None and live.slug == "flood"
            assert await store.visible_story(session, "no-such-story", drafts=drafts) is None
            assert await store.visible_story(session, "not a slug\x00", drafts=drafts) is None
        draft = await store.visible_story(session, "plans", drafts=True)
        assert draft is not None and draft.status == StoryStatus.draft
        assert await store.visible_story(session, "plans", drafts=False) is None


async def test_count_active_admins_counts_active_admins_but_the_one_excluded(
    app: Starlette, editor: Editor
) -> None:
    liveblog: Liveblog = app.state.liveblog
    root = await make_editor(app, "root", role="admin")
    await make_editor(app, "boss", role="admin")
    former = await make_editor(app, "former", role="admin")
    async with liveblog.db.transaction() as session:
        gone = await store.get_user(session, former.user_id)
        assert gone is not None
        await auth.set_active(session, gone, False)
    async with liveblog.db.session() as session:
        # Neither the editor nor the deactivated admin counts.
        assert await store.count_active_admins(session) == 2
        admin = await store.get_user(session, root.user_id)
        alice = await store.get_user(session, editor.user_id)
        assert admin is not None and alice is not None
        assert await store.count_active_admins(session, excluding=admin) == 1
        assert await store.count_active_admins(session, excluding=alice) == 2
        assert await store.count_active_admins(session, excluding=gone) == 2


async def test_list_users_lists_every_account_by_username(app: Starlette, editor: Editor) -> None:
    liveblog: Liveblog = app.state.liveblog
    for username in ("zoe", "bob"):
        await make_editor(app, username)
    async with liveblog.db.transaction() as session:
        bob = await store.get_user_by_username(session, "bob")
        assert bob is not None
        await auth.set_active(session, bob, False)
    async with liveblog.db.session() as session:
        users = await store.list_users(session)
    assert [user.username for user in users] == ["alice", "bob", "zoe"]


async def test_get_user_out_of_integer_range_is_no_user(app: Starlette, editor: Editor) -> None:
    # PostgreSQL would refuse the query for 2**63; there is no such user anywhere.
    liveblog: Liveblog = app.state.liveblog
    async with liveblog.db.session() as session:
        found = await store.get_user(session, editor.user_id)
        assert found is not None and found.username == "alice"
        for user_id in (0, -1, 2**63, 10**30):
            assert await store.get_user(session, user_id) is None
