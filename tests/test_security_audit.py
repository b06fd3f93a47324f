"""Audit and corrections: who did what is in the log; corrections keep earlier versions."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from datetime import datetime

import pytest
from starlette.applications import Starlette

from liveblog.settings import Settings
from tests.factories import new_story, new_update
from tests.htmlcheck import text_of
from tests.security_support import Account, add_account, browser, log_in
from tests.support import bearer

pytestmark = pytest.mark.anyio


def rows(settings: Settings, query: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(settings.data_dir / "liveblog.db")) as conn:
        return conn.execute(query).fetchall()


async def test_every_event_records_who_did_it(app: Starlette, settings: Settings) -> None:
    alice = await add_account(app, "alice")
    bob = await add_account(app, "bob")
    async with browser(app) as client:
        await new_story(client, alice, "storm")
        update_id = (await new_update(client, alice, "storm", body="One"))["id"]
        csrf = await log_in(client, bob)
        for path, form in [
            (f"/desk/stories/storm/updates/{update_id}/edit", {"body": "One, corrected"}),
            (f"/desk/stories/storm/updates/{update_id}/pin", {"pinned": "on"}),
            ("/desk/stories/storm", {"title": "Storm", "status": "live", "breaking": "on"}),
            (f"/desk/stories/storm/updates/{update_id}/delete", {}),
        ]:
            response = await client.post(path, data={"csrf_token": csrf, **form})
            assert response.status_code == 303, path
    events = rows(settings, "SELECT seq, kind, actor_id FROM story_event ORDER BY seq")
    assert [(kind, actor) for _seq, kind, actor in events] == [
        ("update", alice.user_id),
        ("edit", bob.user_id),
        ("story", bob.user_id),  # the pin
        ("story", bob.user_id),  # breaking
        ("delete", bob.user_id),
        ("story", bob.user_id),  # the deleted update was pinned: unpinned
    ]


async def corrected_update(app: Starlette) -> tuple[Account, Account, int]:
    alice = await add_account(app, "alice", display_name="Alice Author")
    bob = await add_account(app, "bob", display_name="Bob Corrector")
    async with browser(app) as client:
        await new_story(client, alice, "storm")
        posted = await new_update(
            client, alice, "storm", body="Winds of **100** km/h.", headline="Winds"
        )
        update_id: int = posted["id"]
        # Bob corrects on the desk, then alice corrects again through the API.
        csrf = await log_in(client, bob)
        response = await client.post(
            f"/desk/stories/storm/updates/{update_id}/edit",
            data={"csrf_token": csrf, "body": "Winds of **120** km/h.", "headline": "Winds"},
        )
        assert response.status_code == 303
        patched = await client.patch(
            f"/api/stories/storm/updates/{update_id}",
            json={"headline": "Gale-force winds", "key_event": True},
            headers=bearer(alice.token),
        )
        assert patched.status_code == 200
        # A change of the pin alone is not a correction: no revision for it.
        await client.patch(
            f"/api/stories/storm/updates/{update_id}",
            json={"pinned": True},
            headers=bearer(alice.token),
        )
    return alice, bob, update_id


async def test_corrections_keep_every_earlier_version(app: Starlette, settings: Settings) -> None:
    alice, bob, update_id = await corrected_update(app)
    revisions = rows(
        settings,
        "SELECT update_id, editor_id, headline, body, key_event FROM update_revision ORDER BY id",
    )
    assert revisions == [
        (update_id, alice.user_id, "Winds", "Winds of **100** km/h.", 0),
        (update_id, bob.user_id, "Winds", "Winds of **120** km/h.", 0),
    ]
    current = rows(settings, f'SELECT headline, body, key_event FROM "update" WHERE id={update_id}')
    assert current == [("Gale-force winds", "Winds of **120** km/h.", 1)]


async def test_readers_see_an_edited_mark_with_the_time(app: Starlette) -> None:
    alice, _bob, update_id = await corrected_update(app)
    async with browser(app) as reader:
        page = await reader.get(f"/stories/storm/updates/{update_id}")
        api = await reader.get(
            f"/api/stories/storm/updates/{update_id}", headers=bearer(alice.token)
        )
    mark = re.search(r'class="update__edited">Edited <time datetime="([^"]+)">', page.text)
    assert mark is not None
    # The same moment; the page's <time> carries it to the millisecond, as HTML allows.
    edited = datetime.fromisoformat(api.json()["edited_at"])
    assert datetime.fromisoformat(mark.group(1)) == edited.replace(
        microsecond=edited.microsecond // 1000 * 1000
    )


async def test_the_desk_shows_an_updates_revision_history(app: Starlette) -> None:
    _alice, bob, update_id = await corrected_update(app)
    async with browser(app) as client:
        await log_in(client, bob)
        page = await client.get(f"/desk/stories/storm/updates/{update_id}/history")
        assert page.status_code == 200
        # Anonymous readers never see it.
        async with browser(app) as reader:
            anonymous = await reader.get(f"/desk/stories/storm/updates/{update_id}/history")
            assert anonymous.status_code == 303
        missing = await client.get("/desk/stories/storm/updates/999/history")
        assert missing.status_code == 404
    versions = re.findall(
        r'<li class="revision[^"]*" data-revision="(\d+)">(.*?)</li>', page.text, re.S
    )
    assert [number for number, _ in versions] == ["3", "2", "1"]
    texts = [" ".join(text_of(html).split()) for _, html in versions]
    assert "(current)" in texts[0] and "Gale-force winds" in texts[0] and "Alice Author" in texts[0]
    assert "Winds of 120 km/h." in texts[1] and "Bob Corrector" in texts[1]
    assert "Winds of 100 km/h." in texts[2] and "Alice Author" in texts[2]
    # The desk links to the history from every update's controls.
    async with browser(app) as client:
        await log_in(client, bob)
        desk = await client.get("/desk/stories/storm")
    assert f"/desk/stories/storm/updates/{update_id}/history" in desk.text
