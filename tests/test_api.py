"""The JSON API over HTTP: happy paths, and every error status with its JSON body.

Every error case also checks that the database did not change: a snapshot of all rows
of ``story``, ``update`` and ``story_event`` is taken before and after the request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from starlette.applications import Starlette

from liveblog import auth, store
from liveblog.models import UpdateCreate
from liveblog.settings import Settings
from liveblog.state import Liveblog
from tests import services
from tests.factories import delete_update, new_story, new_update
from tests.support import Editor, bearer, login, make_editor

pytestmark = pytest.mark.anyio

Snapshot = dict[str, list[tuple[Any, ...]]]
TABLES = ("story", "update", "story_event")


def snapshot(settings: Settings) -> Snapshot:
    """Every row of the content tables, straight from the database (SQLite or PostgreSQL:
    tests/test_postgres_api.py runs this module there too)."""
    return {
        table: services.rows(settings, f'SELECT * FROM "{table}" ORDER BY id') for table in TABLES
    }


def assert_error(response: httpx.Response, status: int) -> str:
    request = response.request
    assert response.status_code == status, (request.method, str(request.url), response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict)
    assert set(body) == {"error"}
    assert isinstance(body["error"], str) and body["error"].strip()
    message: str = body["error"]
    return message


async def refused(
    client: httpx.AsyncClient,
    settings: Settings,
    status: int,
    method: str,
    url: str,
    **kwargs: Any,
) -> str:
    """Send one request that must fail with ``status`` and change nothing."""
    before = snapshot(settings)
    response = await client.request(method, url, **kwargs)
    message = assert_error(response, status)
    assert snapshot(settings) == before, f"{method} {url} changed the database"
    return message


@pytest.fixture
async def update(client: httpx.AsyncClient, editor: Editor) -> dict[str, Any]:
    """The live story "flood" with one update by ``editor``: the update, as the API
    returned it."""
    await new_story(client, editor)
    return await new_update(client, editor)


async def read_only_token(app: Starlette, editor: Editor) -> str:
    liveblog: Liveblog = app.state.liveblog
    async with liveblog.db.transaction() as session:
        user = await store.get_user(session, editor.user_id)
        assert user is not None
        return await auth.create_api_token(session, user, read_only=True)


# --- happy paths ---------------------------------------------------------------------


async def test_create_story_returns_201_with_location(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    response = await client.post(
        "/api/stories",
        json={"title": "Storm hits coast", "summary": "Gales.", "status": "live", "breaking": True},
        headers=bearer(editor.token),
    )
    assert response.status_code == 201
    created = response.json()
    assert created["slug"] == "storm-hits-coast"
    assert created["title"] == "Storm hits coast"
    assert created["status"] == "live"
    assert created["breaking"] is True
    assert created["last_seq"] == 0
    assert created["started_at"] is not None
    assert response.headers["location"] == "/api/stories/storm-hits-coast"

    fetched = await client.get(response.headers["location"], headers=bearer(editor.token))
    assert fetched.status_code == 200
    assert fetched.json() == created
    # The snapshot used by the error tests really sees committed rows.
    rows = snapshot(settings)["story"]
    assert len(rows) == 1 and "storm-hits-coast" in rows[0]


async def test_slug_is_made_unique_when_not_given(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    first = await client.post("/api/stories", json={"title": "Vote"}, headers=bearer(editor.token))
    second = await client.post("/api/stories", json={"title": "Vote"}, headers=bearer(editor.token))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["slug"] == "vote"
    assert second.json()["slug"] == "vote-2"
    assert second.json()["status"] == "draft"


async def test_the_api_records_who_created_a_story(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    bob = await make_editor(app, "bob")
    created = await new_story(client, bob, "vote")
    assert created["created_by"] == "bob"
    await new_story(client, editor, "flood")
    # Kept with the story, and shown to every staff member, whoever created it.
    assert services.rows(settings, "SELECT slug, created_by_id FROM story ORDER BY id") == [
        ("vote", bob.user_id),
        ("flood", editor.user_id),
    ]
    fetched = await client.get("/api/stories/vote", headers=bearer(editor.token))
    assert fetched.json() == created
    listed = await client.get("/api/stories", headers=bearer(editor.token))
    creators = {story["slug"]: story["created_by"] for story in listed.json()["stories"]}
    assert creators == {"vote": "bob", "flood": "alice"}
    patched = await client.patch(
        "/api/stories/vote", json={"title": "Vote: the count"}, headers=bearer(editor.token)
    )
    assert patched.json()["created_by"] == "bob"  # a change does not make its editor the creator
    # A story created before creators were recorded (migration 0003) has none.
    services.execute(settings, "UPDATE story SET created_by_id = NULL WHERE slug = ?", "flood")
    legacy = await client.get("/api/stories/flood", headers=bearer(editor.token))
    assert legacy.status_code == 200 and legacy.json()["created_by"] is None


async def test_list_stories(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor, "one")
    await new_story(client, editor, "two", status="draft")
    response = await client.get("/api/stories", headers=bearer(editor.token))
    assert response.status_code == 200
    slugs = {story["slug"] for story in response.json()["stories"]}
    assert slugs == {"one", "two"}


async def test_patch_story(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor)
    response = await client.patch(
        "/api/stories/flood",
        json={"title": "Flood: day two", "status": "ended"},
        headers=bearer(editor.token),
    )
    assert response.status_code == 200
    patched = response.json()
    assert patched["title"] == "Flood: day two"
    assert patched["status"] == "ended"
    assert patched["ended_at"] is not None
    assert patched["last_seq"] == 1
    again = await client.get("/api/stories/flood", headers=bearer(editor.token))
    assert again.json() == patched


async def test_post_and_read_an_update(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor)
    response = await client.post(
        "/api/stories/flood/updates",
        json={"body": "Roads **closed**.", "headline": "Roads shut", "key_event": True},
        headers=bearer(editor.token),
    )
    assert response.status_code == 201
    update = response.json()
    assert response.headers["location"] == f"/api/stories/flood/updates/{update['id']}"
    assert update["headline"] == "Roads shut"
    assert update["body"] == "Roads **closed**."
    assert "<strong>closed</strong>" in update["body_html"]
    assert update["key_event"] is True
    assert update["pinned"] is False
    assert update["author"] == "Alice"
    assert update["edited_at"] is None

    fetched = await client.get(response.headers["location"], headers=bearer(editor.token))
    assert fetched.status_code == 200
    assert fetched.json() == update
    story = (await client.get("/api/stories/flood", headers=bearer(editor.token))).json()
    assert story["last_seq"] == 1


async def test_patch_update(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor)
    update = await new_update(client, editor, headline="Old")
    response = await client.patch(
        f"/api/stories/flood/updates/{update['id']}",
        json={"body": "Corrected text.", "headline": ""},
        headers=bearer(editor.token),
    )
    assert response.status_code == 200
    patched = response.json()
    assert patched["id"] == update["id"]
    assert patched["body"] == "Corrected text."
    assert patched["headline"] is None
    assert patched["edited_at"] is not None
    assert patched["edited_at"] > patched["created_at"]


async def test_delete_update(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor)
    keep = await new_update(client, editor, body="keep")
    gone = await new_update(client, editor, body="gone")
    response = await client.delete(
        f"/api/stories/flood/updates/{gone['id']}", headers=bearer(editor.token)
    )
    assert response.status_code == 204
    assert response.content == b""
    listed = (await client.get("/api/stories/flood/updates", headers=bearer(editor.token))).json()
    assert [update["id"] for update in listed["updates"]] == [keep["id"]]
    assert listed["last_seq"] == 3


async def test_pagination_with_before_and_next_before(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor)
    posted = [(await new_update(client, editor, body=f"update {n}"))["id"] for n in range(25)]
    newest_first = posted[::-1]

    seen: list[int] = []
    pages: list[int] = []
    url = "/api/stories/flood/updates?limit=10"
    while True:
        response = await client.get(url, headers=bearer(editor.token))
        assert response.status_code == 200
        page = response.json()
        assert page["story"] == "flood"
        assert page["last_seq"] == 25
        ids = [update["id"] for update in page["updates"]]
        seen.extend(ids)
        pages.append(len(ids))
        if page["next_before"] is None:
            break
        assert page["next_before"] == ids[-1]
        url = f"/api/stories/flood/updates?limit=10&before={page['next_before']}"
    assert pages == [10, 10, 5]
    assert seen == newest_first

    default = (await client.get("/api/stories/flood/updates", headers=bearer(editor.token))).json()
    assert [update["id"] for update in default["updates"]] == newest_first[:20]
    assert default["next_before"] == newest_first[19]


async def test_exact_page_has_no_next_before(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor)
    for n in range(3):
        await new_update(client, editor, body=f"update {n}")
    page = (
        await client.get("/api/stories/flood/updates?limit=3", headers=bearer(editor.token))
    ).json()
    assert len(page["updates"]) == 3
    assert page["next_before"] is None


async def test_limit_is_capped_at_100(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    liveblog: Liveblog = app.state.liveblog
    async with liveblog.db.session() as session:
        user = await store.get_user(session, editor.user_id)
    assert user is not None
    for n in range(105):
        await liveblog.newsroom.post_update("flood", UpdateCreate(body=f"n{n}"), author=user)

    full = await client.get("/api/stories/flood/updates?limit=100", headers=bearer(editor.token))
    assert full.status_code == 200
    assert len(full.json()["updates"]) == 100
    assert full.json()["next_before"] is not None

    message = await refused(
        client,
        settings,
        400,
        "GET",
        "/api/stories/flood/updates?limit=101",
        headers=bearer(editor.token),
    )
    assert "limit" in message


async def test_read_only_token_can_read(
    app: Starlette, client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor)
    token = await read_only_token(app, editor)
    assert (await client.get("/api/stories", headers=bearer(token))).status_code == 200
    assert (await client.get("/api/stories/flood", headers=bearer(token))).status_code == 200
    listed = await client.get("/api/stories/flood/updates", headers=bearer(token))
    assert listed.status_code == 200


# --- 400 -----------------------------------------------------------------------------


BAD_BODIES = [
    (b'{"title": "half', "application/json"),
    (b"", "application/json"),
    (b"\xff\xfe{}", "application/json"),
    (b"[1, 2]", "application/json"),
    (b'"just a string"', "application/json"),
    (b"null", "application/json"),
    (b'{"title": "Fine"}', "text/plain"),
    (b'{"title": "Fine"}', "application/x-www-form-urlencoded"),
    (b'{"title": "Fine"}', ""),
]


async def test_bad_bodies_are_400(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    """Malformed JSON, JSON that is not an object, and a body that is not JSON at all."""
    await new_story(client, editor)
    update = await new_update(client, editor)
    targets = [
        ("POST", "/api/stories"),
        ("PATCH", "/api/stories/flood"),
        ("POST", "/api/stories/flood/updates"),
        ("PATCH", f"/api/stories/flood/updates/{update['id']}"),
    ]
    for content, content_type in BAD_BODIES:
        headers = {**bearer(editor.token), "Content-Type": content_type}
        for method, url in targets:
            await refused(client, settings, 400, method, url, content=content, headers=headers)


async def test_json_content_type_with_charset_is_accepted(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    response = await client.post(
        "/api/stories",
        content=b'{"title": "Charset"}',
        headers={**bearer(editor.token), "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


async def test_bad_before_or_limit_is_400(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    await new_update(client, editor)
    for query in [
        "before=abc",
        "before=-1",
        "before=1.5",
        "before=9999999999999999999",
        "limit=0",
        "limit=-5",
        "limit=abc",
        "limit=101",
        "limit=1e2",
    ]:
        message = await refused(
            client,
            settings,
            400,
            "GET",
            f"/api/stories/flood/updates?{query}",
            headers=bearer(editor.token),
        )
        assert query.split("=")[0] in message, (query, message)


# --- 401 / 403 -----------------------------------------------------------------------


def write_requests(update_id: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("POST", "/api/stories", {"title": "New", "slug": "new"}),
        ("PATCH", "/api/stories/flood", {"title": "Changed"}),
        ("POST", "/api/stories/flood/updates", {"body": "More"}),
        ("PATCH", f"/api/stories/flood/updates/{update_id}", {"body": "Changed"}),
        ("DELETE", f"/api/stories/flood/updates/{update_id}", None),
    ]


def read_requests(update_id: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", "/api/stories", None),
        ("GET", "/api/stories/flood", None),
        ("GET", "/api/stories/flood/updates", None),
        ("GET", f"/api/stories/flood/updates/{update_id}", None),
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer lb_not-a-real-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="},
        {"Authorization": "lb_just-the-token"},
    ],
    ids=["none", "wrong", "empty", "basic", "no-scheme"],
)
async def test_missing_or_wrong_token_is_401(
    client: httpx.AsyncClient, update: dict[str, Any], settings: Settings, headers: dict[str, str]
) -> None:
    for method, url, body in write_requests(update["id"]) + read_requests(update["id"]):
        before = snapshot(settings)
        response = await client.request(method, url, json=body, headers=headers)
        assert_error(response, 401)
        assert response.headers["www-authenticate"].lower().startswith("bearer")
        assert snapshot(settings) == before


async def test_wrong_token_with_real_prefix_is_401(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    # The real token with one character changed.
    tampered = editor.token[:-1] + ("A" if editor.token[-1] != "A" else "B")
    await refused(
        client,
        settings,
        401,
        "POST",
        "/api/stories/flood/updates",
        json={"body": "x"},
        headers=bearer(tampered),
    )


async def test_logged_in_cookie_alone_is_401(
    client: httpx.AsyncClient, editor: Editor, update: dict[str, Any], settings: Settings
) -> None:
    csrf = await login(client, editor)
    # The browser session works for the desk ...
    assert (await client.get("/desk")).status_code == 200
    # ... but the API never looks at cookies, even with a valid CSRF token alongside.
    for method, url, body in write_requests(update["id"]) + read_requests(update["id"]):
        before = snapshot(settings)
        response = await client.request(method, url, json=body, headers={"X-CSRF-Token": csrf})
        assert_error(response, 401)
        assert snapshot(settings) == before


async def test_read_only_token_cannot_write_403(
    app: Starlette,
    client: httpx.AsyncClient,
    editor: Editor,
    update: dict[str, Any],
    settings: Settings,
) -> None:
    token = await read_only_token(app, editor)
    for method, url, body in write_requests(update["id"]):
        message = await refused(
            client, settings, 403, method, url, json=body, headers=bearer(token)
        )
        assert "read-only" in message


# --- 404 -----------------------------------------------------------------------------


async def no_such_update(
    client: httpx.AsyncClient, settings: Settings, editor: Editor, url: str
) -> None:
    """GET, PATCH and DELETE of the update at ``url`` are all 404, and change nothing."""
    headers = bearer(editor.token)
    await refused(client, settings, 404, "GET", url, headers=headers)
    await refused(client, settings, 404, "PATCH", url, json={"body": "x"}, headers=headers)
    await refused(client, settings, 404, "DELETE", url, headers=headers)


async def test_unknown_story_is_404(
    client: httpx.AsyncClient, editor: Editor, update: dict[str, Any], settings: Settings
) -> None:
    headers = bearer(editor.token)
    cases: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/api/stories/nope", None),
        ("PATCH", "/api/stories/nope", {"title": "x"}),
        ("GET", "/api/stories/nope/updates", None),
        ("POST", "/api/stories/nope/updates", {"body": "x"}),
        # An update that exists, asked for under the wrong story.
        ("GET", f"/api/stories/nope/updates/{update['id']}", None),
        ("PATCH", f"/api/stories/nope/updates/{update['id']}", {"body": "x"}),
        ("DELETE", f"/api/stories/nope/updates/{update['id']}", None),
    ]
    for method, url, body in cases:
        await refused(client, settings, 404, method, url, json=body, headers=headers)


async def test_update_of_another_story_is_404(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor, "one")
    await new_story(client, editor, "two")
    update = await new_update(client, editor, "one")
    await no_such_update(client, settings, editor, f"/api/stories/two/updates/{update['id']}")


async def test_unknown_and_deleted_updates_are_404(
    client: httpx.AsyncClient, editor: Editor, update: dict[str, Any], settings: Settings
) -> None:
    await delete_update(client, editor, update["id"])
    for update_id in (update["id"], 999_999):
        await no_such_update(client, settings, editor, f"/api/stories/flood/updates/{update_id}")


# --- 409 -----------------------------------------------------------------------------


async def test_duplicate_slug_is_409(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    message = await refused(
        client,
        settings,
        409,
        "POST",
        "/api/stories",
        json={"title": "Another", "slug": "flood"},
        headers=bearer(editor.token),
    )
    assert "flood" in message


async def test_posting_to_an_ended_story_is_409(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    ended = await client.patch(
        "/api/stories/flood", json={"status": "ended"}, headers=bearer(editor.token)
    )
    assert ended.status_code == 200
    await refused(
        client,
        settings,
        409,
        "POST",
        "/api/stories/flood/updates",
        json={"body": "Too late", "pinned": True},
        headers=bearer(editor.token),
    )
    # Reopened, it takes updates again.
    reopened = await client.patch(
        "/api/stories/flood", json={"status": "live"}, headers=bearer(editor.token)
    )
    assert reopened.status_code == 200
    await new_update(client, editor, body="Back")


# --- 413 -----------------------------------------------------------------------------


async def test_declared_content_length_over_limit_is_413(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    padding = "x" * settings.max_body_bytes
    content = ('{"body": "' + padding + '"}').encode()
    assert len(content) > settings.max_body_bytes
    message = await refused(
        client,
        settings,
        413,
        "POST",
        "/api/stories/flood/updates",
        content=content,
        headers={**bearer(editor.token), "Content-Type": "application/json"},
    )
    assert str(settings.max_body_bytes) in message


async def test_chunked_body_over_limit_is_413(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    chunk = b"x" * 65_536
    chunks_needed = settings.max_body_bytes // len(chunk) + 2

    async def body() -> AsyncIterator[bytes]:
        yield b'{"body": "'
        for _ in range(chunks_needed):
            yield chunk
        yield b'"}'

    request = client.build_request(
        "POST",
        "/api/stories/flood/updates",
        content=body(),
        headers={**bearer(editor.token), "Content-Type": "application/json"},
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    before = snapshot(settings)
    response = await client.send(request)
    message = assert_error(response, 413)
    assert str(settings.max_body_bytes) in message
    assert snapshot(settings) == before


async def test_chunked_body_under_limit_is_accepted(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor)

    async def body() -> AsyncIterator[bytes]:
        yield b'{"body": '
        yield b'"chunked but small"}'

    response = await client.post(
        "/api/stories/flood/updates",
        content=body(),
        headers={**bearer(editor.token), "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    assert response.json()["body"] == "chunked but small"


# --- 422 -----------------------------------------------------------------------------


async def test_invalid_updates_are_422(
    client: httpx.AsyncClient, editor: Editor, update: dict[str, Any], settings: Settings
) -> None:
    headers = bearer(editor.token)
    bad_new: list[tuple[dict[str, Any], str]] = [
        ({"body": ""}, "body"),
        ({"body": "   \n "}, "body"),
        ({}, "body"),
        ({"body": "ok", "headline": "h" * 201}, "headline"),
        ({"body": "b" * 20_001}, "body"),
        ({"body": "ok", "colour": "red"}, "colour"),
        ({"body": "ok", "pinned": "sometimes"}, "pinned"),
        ({"body": 42}, "body"),
    ]
    for body, field in bad_new:
        message = await refused(
            client, settings, 422, "POST", "/api/stories/flood/updates", json=body, headers=headers
        )
        assert field in message
    url = f"/api/stories/flood/updates/{update['id']}"
    bad_patch: list[tuple[dict[str, Any], str]] = [
        ({"body": ""}, "body"),
        ({"headline": "h" * 201}, "headline"),
        ({"id": 5}, "id"),
        ({"key_event": "maybe"}, "key_event"),
    ]
    for body, field in bad_patch:
        message = await refused(client, settings, 422, "PATCH", url, json=body, headers=headers)
        assert field in message


async def test_invalid_stories_are_422(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    headers = bearer(editor.token)
    bad_new: list[tuple[dict[str, Any], str]] = [
        ({"title": ""}, "title"),
        ({"summary": "no title"}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"title": "ok", "status": "paused"}, "status"),
        ({"title": "ok", "slug": "Bad Slug"}, "slug"),
        ({"title": "ok", "slug": "double--hyphen"}, "slug"),
        ({"title": "ok", "slug": "-leading"}, "slug"),
        ({"title": "ok", "slug": "s" * 81}, "slug"),
        ({"title": "ok", "last_seq": 7}, "last_seq"),
        ({"title": "ok", "summary": "s" * 1001}, "summary"),
    ]
    for body, field in bad_new:
        message = await refused(
            client, settings, 422, "POST", "/api/stories", json=body, headers=headers
        )
        assert field in message
    bad_patch: list[tuple[dict[str, Any], str]] = [
        ({"status": "paused"}, "status"),
        ({"title": ""}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"slug": "renamed"}, "slug"),
        ({"breaking": "very"}, "breaking"),
    ]
    for body, field in bad_patch:
        message = await refused(
            client, settings, 422, "PATCH", "/api/stories/flood", json=body, headers=headers
        )
        assert field in message


async def test_a_post_is_six_statements_and_the_update_knows_its_place(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    """An editor's post (issue 18, a faster publish): the token's user; the story, read
    and locked in one statement; the update, inserted with its place in the story; its
    audit entry; the story's next seq; the event. Nothing read twice, nothing written
    twice, and the place is the event's seq."""
    headers = bearer(editor.token)
    story = {"title": "Storm", "slug": "storm", "status": "live"}
    assert (await client.post("/api/stories", json=story, headers=headers)).status_code == 201
    # The first use of a token records it (once a minute): not part of every post.
    first = await client.post("/api/stories/storm/updates", json={"body": "One"}, headers=headers)
    assert first.status_code == 201
    statements: list[str] = []
    liveblog: Liveblog = app.state.liveblog
    engine = liveblog.db.engine.sync_engine

    def seen(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", seen)
    try:
        made = await client.post(
            "/api/stories/storm/updates", json={"body": "Two"}, headers=headers
        )
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert made.status_code == 201, made.text
    assert len(statements) <= 6, "\n".join(statements)
    update_id = made.json()["id"]
    ((place,),) = services.rows(
        settings, 'SELECT published_seq FROM "update" WHERE id = ?', update_id
    )
    ((seq,),) = services.rows(
        settings, "SELECT seq FROM story_event WHERE update_id = ?", update_id
    )
    ((last_seq,),) = services.rows(settings, "SELECT last_seq FROM story WHERE slug = ?", "storm")
    assert place == seq == last_seq == 2
