"""The newsroom workflow through the API (docs/newsroom.md): contributors on story teams,
drafts and submissions, publish / return / reject, versions and ``If-Match``, refusals
that change nothing, and no unpublished update in any reader output."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
import httpx
import pytest
from sqlmodel import col, select
from starlette.applications import Starlette

from liveblog import auth
from liveblog.models import StoryEvent, StoryTeam, Update, User, utcnow
from liveblog.state import Liveblog
from tests.factories import new_story, new_update
from tests.support import Editor, bearer, make_editor

pytestmark = pytest.mark.anyio

SLUG = "flood"


@pytest.fixture
async def carl(app: Starlette) -> Editor:
    """A contributor, on the team of the story "flood"."""
    return await make_editor(app, "carl", role="contributor")


@pytest.fixture
async def olga(app: Starlette) -> Editor:
    """Another contributor, on no team."""
    return await make_editor(app, "olga", role="contributor")


@pytest.fixture
async def story(client: httpx.AsyncClient, editor: Editor, carl: Editor) -> str:
    await new_story(client, editor, SLUG)
    added = await client.put(f"/api/stories/{SLUG}/team/carl", headers=bearer(editor.token))
    assert added.status_code == 201, added.text
    return SLUG


def liveblog_of(app: Starlette) -> Liveblog:
    found: Liveblog = app.state.liveblog
    return found


async def last_seq(client: httpx.AsyncClient, editor: Editor, slug: str = SLUG) -> int:
    response = await client.get(f"/api/stories/{slug}", headers=bearer(editor.token))
    assert response.status_code == 200
    seq: int = response.json()["last_seq"]
    return seq


async def write(
    client: httpx.AsyncClient, who: Editor, slug: str = SLUG, **fields: Any
) -> httpx.Response:
    body = {"body": "From the scene.", **fields}
    return await client.post(f"/api/stories/{slug}/updates", json=body, headers=bearer(who.token))


async def step(
    client: httpx.AsyncClient,
    who: Editor,
    update_id: int,
    action: str,
    *,
    version: int | None = None,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    headers = bearer(who.token)
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    return await client.post(
        f"/api/stories/{SLUG}/updates/{update_id}/{action}",
        json=body,
        headers=headers,
    )


async def rows(app: Starlette) -> dict[str, list[dict[str, Any]]]:
    """The workflow's rows, read through the app's database (SQLite or PostgreSQL)."""
    async with liveblog_of(app).db.session() as session:
        return {
            "update": [
                u.model_dump()
                for u in (await session.exec(select(Update).order_by(col(Update.id))))
            ],
            "event": [
                e.model_dump()
                for e in (await session.exec(select(StoryEvent).order_by(col(StoryEvent.id))))
            ],
            "team": [t.model_dump() for t in (await session.exec(select(StoryTeam)))],
        }


async def test_createuser_makes_a_contributor(app: Starlette, carl: Editor) -> None:
    async with liveblog_of(app).db.session() as session:
        user = await session.get(User, carl.user_id)
    assert user is not None and user.role.value == "contributor"


async def test_a_submission_is_published_by_an_editor_and_reaches_readers(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, carl: Editor, story: str
) -> None:
    seq = await last_seq(client, editor)
    made = await write(client, carl, body="Bridge closed at 9.")
    assert made.status_code == 201, made.text
    submitted = made.json()
    assert (submitted["state"], submitted["version"]) == ("submitted", 1)
    assert made.headers["etag"] == '"1"'
    update_id = submitted["id"]
    # Nothing for readers yet: no event, not on the page, not in updates.json.
    assert await last_seq(client, editor) == seq
    assert "Bridge closed at 9." not in (await client.get(f"/stories/{story}")).text
    assert "Bridge closed" not in (await client.get(f"/stories/{story}/updates.json")).text
    # Editors see it by its id; the queue's state is in it.
    seen = await client.get(
        f"/api/stories/{story}/updates/{update_id}", headers=bearer(editor.token)
    )
    assert seen.json()["state"] == "submitted"

    published = await step(client, editor, update_id, "publish", version=1)
    assert published.status_code == 200, published.text
    assert (published.json()["state"], published.json()["version"]) == ("published", 2)
    assert await last_seq(client, editor) == seq + 1
    events = (await rows(app))["event"]
    assert (events[-1]["kind"].value, events[-1]["update_id"]) == ("update", update_id)
    assert "Bridge closed at 9." in events[-1]["data"]
    assert "Bridge closed at 9." in (await client.get(f"/stories/{story}")).text
    snapshot = await client.get(f"/stories/{story}/updates.json")
    assert "Bridge closed at 9." in snapshot.text
    # The author is the contributor, whoever published it.
    assert published.json()["author"] == "Carl"


async def test_an_editor_publishes_at_once_or_keeps_a_draft(
    client: httpx.AsyncClient, editor: Editor, story: str
) -> None:
    seq = await last_seq(client, editor)
    direct = await write(client, editor)
    assert direct.status_code == 201
    assert (direct.json()["state"], direct.json()["version"]) == ("published", 1)
    assert await last_seq(client, editor) == seq + 1
    draft = await write(client, editor, state="draft", body="Not yet.")
    assert draft.json()["state"] == "draft"
    assert await last_seq(client, editor) == seq + 1
    published = await step(client, editor, draft.json()["id"], "publish")
    assert published.json()["state"] == "published"
    assert await last_seq(client, editor) == seq + 2


async def test_draft_submit_return_with_a_note_resubmit_reject(
    client: httpx.AsyncClient, editor: Editor, carl: Editor, story: str
) -> None:
    draft = await write(client, carl, state="draft")
    assert draft.status_code == 201
    update_id = draft.json()["id"]
    assert draft.json()["state"] == "draft"
    # A draft is private to its author: an editor cannot see or publish it.
    hidden = await client.get(
        f"/api/stories/{story}/updates/{update_id}", headers=bearer(editor.token)
    )
    assert hidden.status_code == 404
    assert (await step(client, editor, update_id, "publish")).status_code == 404

    submitted = await step(client, carl, update_id, "submit")
    assert (submitted.status_code, submitted.json()["state"]) == (200, "submitted")
    returned = await step(client, editor, update_id, "return", body={"note": "Name your source."})
    assert returned.status_code == 200
    assert returned.json()["state"] == "returned"
    assert returned.json()["return_note"] == "Name your source."
    # The author corrects it and submits it again; the note goes once it is handled.
    fixed = await client.patch(
        f"/api/stories/{story}/updates/{update_id}",
        json={"body": "Police say the bridge is closed."},
        headers=bearer(carl.token),
    )
    assert fixed.status_code == 200, fixed.text
    again = await step(client, carl, update_id, "submit")
    assert again.json()["state"] == "submitted"
    assert again.json()["return_note"] is None
    rejected = await step(client, editor, update_id, "reject")
    assert rejected.json()["state"] == "rejected"
    versions = [r.json()["version"] for r in (draft, submitted, returned, fixed, again, rejected)]
    assert versions == [1, 2, 3, 4, 5, 6]
    # A return needs its note.
    other = (await write(client, carl)).json()["id"]
    assert (await step(client, editor, other, "return")).status_code == 400


async def test_illegal_steps_are_409_and_change_nothing(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, carl: Editor, story: str
) -> None:
    published = (await write(client, editor)).json()["id"]
    draft = (await write(client, carl, state="draft")).json()["id"]
    rejected = (await write(client, carl)).json()["id"]
    assert (await step(client, editor, rejected, "reject")).status_code == 200
    before = await rows(app)
    for who, update_id, action, body in [
        (editor, published, "publish", {}),
        (editor, published, "return", {"note": "No."}),
        (editor, published, "reject", {}),
        (editor, published, "submit", {}),
        (carl, draft, "submit", {}),  # fine: then the rest
    ]:
        answer = await step(client, who, update_id, action, body=body or None)
        if who is carl:
            assert answer.status_code == 200
            before = await rows(app)
        else:
            assert answer.status_code == 409, (action, answer.text)
    for who, update_id, action, body in [
        (carl, draft, "submit", {}),  # submitted already
        (carl, rejected, "submit", {}),
        (editor, rejected, "publish", {}),
        (editor, rejected, "return", {"note": "Again?"}),
    ]:
        answer = await step(client, who, update_id, action, body=body or None)
        assert answer.status_code == 409, (action, answer.text)
        assert "error" in answer.json()
    assert await rows(app) == before
    # A contributor may not change what is published or rejected.
    mine = (await write(client, carl)).json()["id"]
    assert (await step(client, editor, mine, "publish")).status_code == 200
    before = await rows(app)
    for update_id in (mine, rejected):
        patched = await client.patch(
            f"/api/stories/{story}/updates/{update_id}",
            json={"body": "Sneaky."},
            headers=bearer(carl.token),
        )
        assert patched.status_code == 409, patched.text
    assert await rows(app) == before


async def test_contributors_are_refused_403_outside_their_own(
    app: Starlette,
    client: httpx.AsyncClient,
    editor: Editor,
    carl: Editor,
    olga: Editor,
    story: str,
) -> None:
    await new_story(client, editor, "plans", status="draft")
    editors = (await write(client, editor)).json()["id"]
    carls = (await write(client, carl)).json()["id"]
    before = await rows(app)
    refusals: list[tuple[str, httpx.Response]] = [
        # Not on the team of a public story: 403.
        ("olga writes", await write(client, olga)),
        ("olga submits", await step(client, olga, carls, "submit")),
        (
            "olga patches",
            await client.patch(
                f"/api/stories/{story}/updates/{carls}",
                json={"body": "Mine now."},
                headers=bearer(olga.token),
            ),
        ),
        # On the team, but someone else's update.
        (
            "carl patches the editor's",
            await client.patch(
                f"/api/stories/{story}/updates/{editors}",
                json={"body": "Fixed it."},
                headers=bearer(carl.token),
            ),
        ),
        # Never publishes: neither by asking nor by the editors' steps.
        ("carl asks to publish", await write(client, carl, state="published")),
        ("carl publishes", await step(client, carl, carls, "publish")),
        ("carl returns", await step(client, carl, carls, "return", body={"note": "?"})),
        ("carl rejects", await step(client, carl, carls, "reject")),
        # Nor runs teams.
        (
            "carl adds olga",
            await client.put(f"/api/stories/{story}/team/olga", headers=bearer(carl.token)),
        ),
        # The editor may not submit someone else's update either.
        ("the editor submits carl's", await step(client, editor, carls, "submit")),
    ]
    for what, answer in refusals:
        assert answer.status_code == 403, (what, answer.status_code, answer.text)
    # A draft story they are not on is no story to them.
    assert (await write(client, olga, slug="plans")).status_code == 404
    assert await rows(app) == before
    # On its team, they write to it.
    added = await client.put("/api/stories/plans/team/olga", headers=bearer(editor.token))
    assert added.status_code == 201
    again = await client.put("/api/stories/plans/team/olga", headers=bearer(editor.token))
    assert again.status_code == 204
    assert (await write(client, olga, slug="plans")).status_code == 201
    # Off it, they no longer can; taking someone off twice is fine.
    for _ in range(2):
        off = await client.delete("/api/stories/plans/team/olga", headers=bearer(editor.token))
        assert off.status_code == 204
    assert (await write(client, olga, slug="plans")).status_code == 404
    unknown = await client.put(f"/api/stories/{story}/team/nobody", headers=bearer(editor.token))
    assert unknown.status_code == 404


async def test_a_stale_if_match_is_412_and_changes_nothing(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, carl: Editor, story: str
) -> None:
    update_id = (await write(client, carl, state="draft")).json()["id"]
    url = f"/api/stories/{story}/updates/{update_id}"
    first = await client.patch(
        url, json={"body": "First."}, headers={**bearer(carl.token), "If-Match": '"1"'}
    )
    assert (first.status_code, first.json()["version"]) == (200, 2)
    assert first.headers["etag"] == '"2"'
    before = await rows(app)
    stale = await client.patch(
        url, json={"body": "Lost?"}, headers={**bearer(carl.token), "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert "version 2" in stale.json()["error"]
    assert (await step(client, carl, update_id, "submit", version=1)).status_code == 412
    bad = await client.patch(
        url, json={"body": "Lost?"}, headers={**bearer(carl.token), "If-Match": "two"}
    )
    assert bad.status_code == 400
    assert await rows(app) == before
    # A copy of an update readers do not see yet is fresh until its version moves.
    assert (await step(client, carl, update_id, "submit", version=2)).status_code == 200
    staff = bearer(editor.token)
    copy = await client.get(url, headers=staff)
    assert copy.headers["etag"] == '"3"'
    fresh = await client.get(url, headers={**staff, "If-None-Match": copy.headers["etag"]})
    assert fresh.status_code == 304
    note = {"note": "Who says so?"}
    assert (await step(client, editor, update_id, "return", body=note)).status_code == 200
    moved = await client.get(url, headers={**staff, "If-None-Match": copy.headers["etag"]})
    assert (moved.status_code, moved.json()["version"]) == (200, 4)
    # An editor's edit of a published update too.
    published = (await write(client, editor)).json()["id"]
    url = f"/api/stories/{story}/updates/{published}"
    headers = {**bearer(editor.token), "If-Match": '"1"'}
    assert (await client.patch(url, json={"body": "Once."}, headers=headers)).status_code == 200
    assert (await client.patch(url, json={"body": "Twice."}, headers=headers)).status_code == 412


async def test_nothing_unpublished_reaches_any_reader_output(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, carl: Editor, story: str
) -> None:
    hidden: dict[str, int] = {}
    states = ("draft", "submitted", "returned", "rejected", "editors-draft", "scheduled")
    for state in states:
        who, asked = (editor, "draft") if state == "editors-draft" else (carl, state)
        fields: dict[str, Any] = {"body": f"HIDDEN-{state}", "headline": f"HIDDEN-{state}"}
        fields["key_event"] = True
        if asked == "draft":
            fields["state"] = "draft"
        if asked == "scheduled":  # an editor's, not due for an hour
            who, fields["publish_at"] = editor, (utcnow() + timedelta(hours=1)).isoformat()
        made = await write(client, who, **fields)
        assert made.status_code == 201, made.text
        hidden[state] = made.json()["id"]
    assert (
        await step(client, editor, hidden["returned"], "return", body={"note": "HIDDEN-note"})
    ).is_success
    assert (await step(client, editor, hidden["rejected"], "reject")).is_success
    await new_update(client, editor, story, body="SHOWN-update", key_event=True)

    async with liveblog_of(app).db.transaction() as session:
        user = await session.get(User, editor.user_id)
        assert user is not None
        read_only = await auth.create_api_token(session, user, read_only=True)
    site = "http://testserver"
    outputs = {
        "page": await client.get(f"/stories/{story}"),
        "feed": await client.get(f"/stories/{story}/feed.atom"),
        "updates.json": await client.get(f"/stories/{story}/updates.json"),
        "embed": await client.get(f"/embed/{story}"),
        "oembed": await client.get("/oembed", params={"url": f"{site}/stories/{story}"}),
        "author page": await client.get("/authors/carl"),
        "editor's author page": await client.get(f"/authors/{editor.username}"),
        "API listing": await client.get(f"/api/stories/{story}/updates", headers=bearer(read_only)),
    }
    for name, response in outputs.items():
        assert response.status_code == 200, name
        assert "HIDDEN" not in response.text, name
    assert "SHOWN-update" in outputs["page"].text
    assert "SHOWN-update" in outputs["updates.json"].text
    assert "SHOWN-update" in outputs["API listing"].text
    for update_id in hidden.values():
        permalink = await client.get(f"/stories/{story}/updates/{update_id}")
        assert permalink.status_code == 404

    # The log, hence every stream and replay, holds only the published update.
    for event in (await rows(app))["event"]:
        assert event["update_id"] not in hidden.values()
        assert "HIDDEN" not in event["data"]
    # A reader replaying the whole story (ended: the stream sends it all, then closes).
    ended = await client.patch(
        f"/api/stories/{story}", json={"status": "ended"}, headers=bearer(editor.token)
    )
    assert ended.status_code == 200
    with anyio.fail_after(10):
        replay = await client.get(f"/stories/{story}/events", headers={"Last-Event-ID": "0"})
    assert "SHOWN-update" in replay.text
    assert "HIDDEN" not in replay.text


async def test_a_contributor_reads_their_own_updates_and_published_ones_only(
    app: Starlette,
    client: httpx.AsyncClient,
    editor: Editor,
    carl: Editor,
    olga: Editor,
    story: str,
) -> None:
    ken = await make_editor(app, "ken", role="contributor")
    await client.put(f"/api/stories/{story}/team/ken", headers=bearer(editor.token))
    mine = (await write(client, carl, body="Mine")).json()["id"]
    returned = (await write(client, carl, body="Mine, returned")).json()["id"]
    await step(client, editor, returned, "return", body={"note": "Which road?"})
    kens = (await write(client, ken, body="Ken's")).json()["id"]
    editors_draft = (await write(client, editor, state="draft")).json()["id"]
    published = (await write(client, editor, body="Out")).json()["id"]

    async def read(update_id: int) -> httpx.Response:
        return await client.get(
            f"/api/stories/{story}/updates/{update_id}", headers=bearer(carl.token)
        )

    own = await read(mine)
    assert (own.status_code, own.json()["state"]) == (200, "submitted")
    note = (await read(returned)).json()
    assert (note["state"], note["return_note"]) == ("returned", "Which road?")
    assert (await read(published)).status_code == 200
    assert (await read(kens)).status_code == 404
    assert (await read(editors_draft)).status_code == 404
    # Off the team: their own update still, on a live story; nothing of a draft story.
    olgas = await client.get(f"/api/stories/{story}/updates/{mine}", headers=bearer(olga.token))
    assert olgas.status_code == 404
