"""The editors' desk through its HTML forms: login, logout, CSRF, and every form action.

Each form is posted the way a browser without JavaScript would send it, and the effect
is checked on the reader's page.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from liveblog.settings import Settings
from tests import htmltree
from tests.htmltree import Node, parse, pinned_ids, timeline_ids
from tests.services import rows
from tests.support import Editor, bearer, csrf_from, login

pytestmark = pytest.mark.anyio

SESSION_COOKIE = "liveblog_session"


# --- helpers -------------------------------------------------------------------------


def snapshot(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(settings.data_dir / "liveblog.db")) as conn:
        return {
            table: conn.execute(f'SELECT * FROM "{table}" ORDER BY id').fetchall()
            for table in ("story", "update", "story_event", "login_session")
        }


@asynccontextmanager
async def other_browser(
    app: Starlette, cookies: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", cookies=cookies
    ) as client:
        yield client


def session_cookie_header(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(SESSION_COOKIE + "="):
            return header
    return None


async def create_story(
    client: httpx.AsyncClient, csrf: str, slug: str = "flood", **fields: str
) -> None:
    form = {"csrf_token": csrf, "title": "Flood", "slug": slug, "status": "live", **fields}
    response = await client.post("/desk/stories", data=form)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/desk/stories/{slug}"


@pytest.fixture
async def csrf(client: httpx.AsyncClient, editor: Editor) -> str:
    """Logged in on the desk, with the live story "flood" made through its form: the
    CSRF token for the next forms."""
    csrf = await login(client, editor)
    await create_story(client, csrf)
    return csrf


async def post_update(
    client: httpx.AsyncClient, csrf: str, slug: str = "flood", **fields: str
) -> int:
    form = {"csrf_token": csrf, "body": "Water is rising.", **fields}
    response = await client.post(
        f"/desk/stories/{slug}/updates", data=form, headers={"Accept": "application/json"}
    )
    assert response.status_code == 201, response.text
    update_id: int = response.json()["id"]
    return update_id


async def reader_page(client: httpx.AsyncClient, slug: str = "flood") -> Node:
    return await htmltree.page(client, f"/stories/{slug}")


# --- login ---------------------------------------------------------------------------


async def test_login_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/login?next=/desk/stories/flood")
    assert response.status_code == 200
    page = parse(response.text)
    form = page.find("form", action="/login")
    assert form.attrs["method"] == "post"
    assert form.find("input", name="username")
    assert form.find("input", name="password").attrs["type"] == "password"
    assert form.find("input", name="next").attrs["value"] == "/desk/stories/flood"
    assert form.find("input", name="csrf_token").attrs["value"]
    assert "liveblog_csrf" in response.cookies


async def test_wrong_password_and_unknown_user_get_the_same_400(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    csrf = csrf_from((await client.get("/login")).text)
    messages = []
    before = snapshot(settings)
    for username, password in [
        (editor.username, "wrong password!"),
        ("nobody", editor.password),
        (editor.username, ""),
    ]:
        response = await client.post(
            "/login", data={"username": username, "password": password, "csrf_token": csrf}
        )
        assert response.status_code == 400
        assert session_cookie_header(response) is None
        page = parse(response.text)
        messages.append(page.find(role="alert").text())
        # The username is kept in the form; the password is not.
        form = page.find("form", action="/login")
        assert form.find("input", name="username").attrs["value"] == username
        assert "value" not in form.find("input", name="password").attrs
    assert messages[0] == "Wrong username or password."
    assert len(set(messages)) == 1
    assert snapshot(settings) == before
    assert (await client.get("/desk")).status_code == 303


async def test_login_sets_a_httponly_samesite_lax_cookie(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    csrf = csrf_from((await client.get("/login")).text)
    response = await client.post(
        "/login",
        data={"username": "ALICE", "password": editor.password, "csrf_token": csrf},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/desk"
    header = session_cookie_header(response)
    assert header is not None
    attributes = {part.strip().split("=")[0].lower(): part for part in header.split(";")}
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=lax"
    assert attributes["path"].strip() == "Path=/"
    assert "max-age" in attributes
    value = header.split(";")[0].split("=", 1)[1]
    assert len(value) >= 32
    assert (await client.get("/desk")).status_code == 200
    # Logged in, the login page sends you to the desk.
    again = await client.get("/login")
    assert again.status_code == 303
    assert again.headers["location"] == "/desk"


async def test_logout_ends_the_session_server_side(
    app: Starlette, client: httpx.AsyncClient, editor: Editor
) -> None:
    csrf = await login(client, editor)
    old_cookie = client.cookies[SESSION_COOKIE]
    # Replaying the cookie from elsewhere works while the login lasts ...
    async with other_browser(app, {SESSION_COOKIE: old_cookie}) as replay:
        assert (await replay.get("/desk")).status_code == 200

    response = await client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cleared = session_cookie_header(response)
    assert cleared is not None and ("max-age=0" in cleared.lower() or "expires=" in cleared.lower())

    # ... and not after logout, even though the replayed cookie is unchanged.
    async with other_browser(app, {SESSION_COOKIE: old_cookie}) as replay:
        desk = await replay.get("/desk")
        assert desk.status_code == 303
        assert desk.headers["location"].startswith("/login")
    assert (await client.get("/desk")).status_code == 303


async def test_logout_needs_the_csrf_token(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await login(client, editor)
    before = snapshot(settings)
    response = await client.post("/logout", data={})
    assert response.status_code == 403
    assert snapshot(settings) == before
    assert (await client.get("/desk")).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/desk", "/desk/stories/flood", "/desk/stories/flood/updates/1/edit"],
)
async def test_desk_requires_login(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path}"


async def test_desk_posts_require_login(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    csrf = csrf_from((await client.get("/login")).text)
    before = snapshot(settings)
    response = await client.post("/desk/stories", data={"csrf_token": csrf, "title": "No"})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    as_json = await client.post(
        "/desk/stories",
        data={"csrf_token": csrf, "title": "No"},
        headers={"Accept": "application/json"},
    )
    assert as_json.status_code == 401
    assert as_json.json()["error"]
    # An API token is no login for the desk.
    with_token = await client.post(
        "/desk/stories", data={"csrf_token": csrf, "title": "No"}, headers=bearer(editor.token)
    )
    assert with_token.status_code == 303
    assert snapshot(settings) == before


async def test_login_returns_to_next(client: httpx.AsyncClient, editor: Editor) -> None:
    page = parse((await client.get("/login?next=/desk/stories/flood")).text)
    form = page.find("form", action="/login")
    data = {
        str(node.attrs["name"]): str(node.attrs.get("value") or "")
        for node in form.find_all("input", type="hidden")
    }
    response = await client.post(
        "/login", data={**data, "username": editor.username, "password": editor.password}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/desk/stories/flood"


@pytest.mark.parametrize(
    "next_value",
    [
        "//evil.example",
        "//evil.example/desk",
        "/\\evil.example",
        "https://evil.example/",
        "evil.example",
        "javascript:alert(1)",
    ],
)
async def test_next_cannot_leave_the_site(
    client: httpx.AsyncClient, editor: Editor, next_value: str
) -> None:
    csrf = csrf_from((await client.get("/login")).text)
    response = await client.post(
        "/login",
        data={
            "username": editor.username,
            "password": editor.password,
            "csrf_token": csrf,
            "next": next_value,
        },
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location == "/desk"
    assert httpx.URL("http://testserver").join(location).host == "testserver"


# --- CSRF ----------------------------------------------------------------------------


async def test_form_post_without_csrf_token_is_403(
    client: httpx.AsyncClient, csrf: str, settings: Settings
) -> None:
    update_id = await post_update(client, csrf)
    forms = [
        ("/desk/stories", {"title": "Sneaky", "status": "live"}),
        ("/desk/stories/flood", {"title": "Hijacked", "status": "ended"}),
        ("/desk/stories/flood/updates", {"body": "Forged"}),
        (f"/desk/stories/flood/updates/{update_id}/edit", {"body": "Forged"}),
        (f"/desk/stories/flood/updates/{update_id}/delete", {}),
        (f"/desk/stories/flood/updates/{update_id}/pin", {"pinned": "on"}),
    ]
    for url, form in forms:
        for token in (None, "", "0" * 64, csrf[:-1]):
            data = form if token is None else {**form, "csrf_token": token}
            before = snapshot(settings)
            response = await client.post(url, data=data)
            assert response.status_code == 403, (url, token)
            assert "text/html" in response.headers["content-type"]
            assert snapshot(settings) == before, (url, token)


async def test_csrf_token_from_another_cookie_is_403(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await login(client, editor)
    async with other_browser(app) as other:
        foreign = csrf_from((await other.get("/login")).text)
        assert other.cookies["liveblog_csrf"] != client.cookies["liveblog_csrf"]
    before = snapshot(settings)
    response = await client.post(
        "/desk/stories", data={"csrf_token": foreign, "title": "Sneaky", "status": "live"}
    )
    assert response.status_code == 403
    # The same token in the header instead of the field is no better.
    header = await client.post(
        "/desk/stories",
        data={"title": "Sneaky", "status": "live"},
        headers={"X-CSRF-Token": foreign},
    )
    assert header.status_code == 403
    assert snapshot(settings) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
    ],
    ids=["sec-fetch-site", "origin", "null-origin", "lookalike-origin"],
)
async def test_cross_site_form_posts_are_403_even_with_a_valid_token(
    client: httpx.AsyncClient, csrf: str, settings: Settings, headers: dict[str, str]
) -> None:
    before = snapshot(settings)
    for url, form in [
        ("/desk/stories", {"title": "Sneaky", "status": "live"}),
        ("/desk/stories/flood/updates", {"body": "Forged"}),
        ("/logout", {}),
    ]:
        response = await client.post(url, data={**form, "csrf_token": csrf}, headers=headers)
        assert response.status_code == 403, url
    assert snapshot(settings) == before


async def test_same_origin_headers_with_a_valid_token_pass(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    csrf = await login(client, editor)
    await create_story(client, csrf, slug="one")
    for slug, headers in [
        ("two", {"Sec-Fetch-Site": "same-origin"}),
        ("three", {"Origin": "http://testserver"}),
        ("four", {"Sec-Fetch-Site": "none"}),
    ]:
        response = await client.post(
            "/desk/stories",
            data={"csrf_token": csrf, "title": slug, "slug": slug, "status": "live"},
            headers=headers,
        )
        assert response.status_code == 303, headers


# --- stories and updates through the forms --------------------------------------------


async def test_create_story_via_the_form(client: httpx.AsyncClient, editor: Editor) -> None:
    csrf = await login(client, editor)
    response = await client.post(
        "/desk/stories",
        data={
            "csrf_token": csrf,
            "title": "Bridge collapse",
            "summary": "A bridge fell.",
            "slug": "",
            "status": "live",
            "breaking": "on",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/desk/stories/bridge-collapse"
    desk = await client.get(response.headers["location"])
    assert desk.status_code == 200
    page = parse(desk.text)
    assert page.find("h1", data_story_title=True).text() == "Bridge collapse"
    reader = await reader_page(client, "bridge-collapse")
    assert reader.find(data_story_summary=True).text() == "A bridge fell."
    assert "hidden" not in reader.find(data_story_breaking=True).attrs
    listed = parse((await client.get("/desk")).text)
    assert listed.find("a", href="/desk/stories/bridge-collapse").text() == "Bridge collapse"


async def test_the_desk_records_who_created_a_story(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    csrf = await login(client, editor)
    await create_story(client, csrf, "flood")
    assert rows(settings, "SELECT created_by_id FROM story WHERE slug = ?", "flood") == [
        (editor.user_id,)
    ]
    story = await client.get("/api/stories/flood", headers=bearer(editor.token))
    assert story.json()["created_by"] == "alice"
    # The desk's story list says it too.
    assert "<td>alice</td>" in (await client.get("/desk")).text


async def test_create_story_errors_keep_what_was_typed(
    client: httpx.AsyncClient, csrf: str, settings: Settings
) -> None:
    before = snapshot(settings)
    invalid = await client.post(
        "/desk/stories",
        data={"csrf_token": csrf, "title": "", "summary": "Kept summary", "slug": "Bad Slug"},
    )
    assert invalid.status_code == 422
    page = parse(invalid.text)
    form = page.find("form", action="/desk/stories")
    assert form.find("textarea", name="summary").text() == "Kept summary"
    assert form.find("input", name="slug").attrs["value"] == "Bad Slug"
    assert page.find_all(role="alert")

    duplicate = await client.post(
        "/desk/stories", data={"csrf_token": csrf, "title": "Again", "slug": "flood"}
    )
    assert duplicate.status_code == 409
    form = parse(duplicate.text).find("form", action="/desk/stories")
    assert form.find("input", name="title").attrs["value"] == "Again"
    assert snapshot(settings) == before


async def test_post_an_update_without_javascript(client: httpx.AsyncClient, csrf: str) -> None:
    response = await client.post(
        "/desk/stories/flood/updates",
        data={"csrf_token": csrf, "body": "Roads **closed**.", "headline": "Roads shut"},
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/desk/stories/flood#update-")
    update_id = int(location.rsplit("-", 1)[1])
    desk = parse((await client.get(location)).text)
    assert desk.find(data_desk_update=str(update_id))

    page = await reader_page(client)
    assert timeline_ids(page) == [update_id]
    article = page.find("article", data_update_id=str(update_id))
    assert article.find("h2").text() == "Roads shut"
    assert article.find("strong").text() == "closed"


async def test_post_an_update_as_json(client: httpx.AsyncClient, csrf: str) -> None:
    response = await client.post(
        "/desk/stories/flood/updates",
        data={"csrf_token": csrf, "body": "Via fetch", "key_event": "on"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["body"] == "Via fetch"
    assert body["key_event"] is True
    assert body["author"] == "Alice"
    assert timeline_ids(await reader_page(client)) == [body["id"]]

    invalid = await client.post(
        "/desk/stories/flood/updates",
        data={"csrf_token": csrf, "body": ""},
        headers={"Accept": "application/json"},
    )
    assert invalid.status_code == 422
    assert "body" in invalid.json()["error"]


async def test_validation_error_keeps_what_the_editor_typed(
    client: httpx.AsyncClient, csrf: str, settings: Settings
) -> None:
    before = snapshot(settings)
    response = await client.post(
        "/desk/stories/flood/updates",
        data={
            "csrf_token": csrf,
            "body": "   ",
            "headline": "Typed <headline> & more",
            "key_event": "on",
        },
    )
    assert response.status_code == 422
    assert snapshot(settings) == before
    page = parse(response.text)
    form = page.find("form", data_compose=True)
    assert form.find("input", name="headline").attrs["value"] == "Typed <headline> & more"
    assert "checked" in form.find("input", name="key_event").attrs
    assert "checked" not in form.find("input", name="pinned").attrs
    errors = page.find_all("div", class_="form-error")
    assert any("body" in error.text() for error in errors)
    # The page is still a working form: it carries a fresh CSRF token.
    assert form.find("input", name="csrf_token").attrs["value"]


async def test_posting_to_an_ended_story_via_the_form_is_refused(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    csrf = await login(client, editor)
    await create_story(client, csrf, status="ended")
    before = snapshot(settings)
    response = await client.post(
        "/desk/stories/flood/updates", data={"csrf_token": csrf, "body": "Kept body"}
    )
    assert response.status_code == 409
    form = parse(response.text).find("form", data_compose=True)
    assert form.find("textarea", name="body").text() == "Kept body"
    assert snapshot(settings) == before


async def test_edit_via_the_edit_form(client: httpx.AsyncClient, csrf: str) -> None:
    update_id = await post_update(client, csrf, body="Fist draft", headline="Typo")

    form_page = await client.get(f"/desk/stories/flood/updates/{update_id}/edit")
    assert form_page.status_code == 200
    form = parse(form_page.text).find(
        "form", action=f"/desk/stories/flood/updates/{update_id}/edit"
    )
    assert form.find("textarea", name="body").text() == "Fist draft"
    assert form.find("input", name="headline").attrs["value"] == "Typo"
    before = (await reader_page(client)).find("article", data_update_id=str(update_id))
    assert not before.find_all(class_="update__edited")

    response = await client.post(
        f"/desk/stories/flood/updates/{update_id}/edit",
        data={"csrf_token": csrf, "body": "First draft", "headline": "Fixed"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/desk/stories/flood#update-{update_id}"

    article = (await reader_page(client)).find("article", data_update_id=str(update_id))
    assert article.find("h2").text() == "Fixed"
    assert article.find("div", class_="update__body").text() == "First draft"
    edited = article.find("span", class_="update__edited")
    assert edited.text().startswith("Edited")
    assert edited.find("time").attrs["datetime"]


async def test_edit_errors_keep_what_was_typed(
    client: httpx.AsyncClient, csrf: str, settings: Settings
) -> None:
    update_id = await post_update(client, csrf)
    before = snapshot(settings)
    response = await client.post(
        f"/desk/stories/flood/updates/{update_id}/edit",
        data={"csrf_token": csrf, "body": "", "headline": "New headline"},
    )
    assert response.status_code == 422
    form = parse(response.text).find("form", action=f"/desk/stories/flood/updates/{update_id}/edit")
    assert form.find("input", name="headline").attrs["value"] == "New headline"
    assert snapshot(settings) == before
    missing = await client.get("/desk/stories/flood/updates/999999/edit")
    assert missing.status_code == 404


async def test_delete_via_the_form(client: httpx.AsyncClient, csrf: str) -> None:
    keep = await post_update(client, csrf, body="keep")
    gone = await post_update(client, csrf, body="gone")
    assert timeline_ids(await reader_page(client)) == [gone, keep]

    response = await client.post(
        f"/desk/stories/flood/updates/{gone}/delete", data={"csrf_token": csrf}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/desk/stories/flood"
    assert timeline_ids(await reader_page(client)) == [keep]
    assert (await client.get(f"/stories/flood/updates/{gone}")).status_code == 404
    again = await client.post(
        f"/desk/stories/flood/updates/{gone}/delete", data={"csrf_token": csrf}
    )
    assert again.status_code == 404


async def test_pin_and_unpin(client: httpx.AsyncClient, csrf: str) -> None:
    first = await post_update(client, csrf, body="first")
    second = await post_update(client, csrf, body="second")
    page = await reader_page(client)
    assert pinned_ids(page) == []
    assert "hidden" in page.find("section", data_pinned=True).attrs

    async def pin(update_id: int, value: str) -> None:
        response = await client.post(
            f"/desk/stories/flood/updates/{update_id}/pin",
            data={"csrf_token": csrf, "pinned": value},
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/desk/stories/flood"

    await pin(first, "on")
    page = await reader_page(client)
    section = page.find("section", data_pinned=True)
    assert "hidden" not in section.attrs
    assert pinned_ids(page) == [first]
    # The desk offers to unpin it now.
    desk = parse((await client.get("/desk/stories/flood")).text)
    controls = desk.find(data_desk_update=str(first))
    assert controls.find("input", data_pin_value=True).attrs["value"] == "off"

    await pin(second, "on")
    assert pinned_ids(await reader_page(client)) == [second]

    await pin(second, "off")
    page = await reader_page(client)
    assert pinned_ids(page) == []
    assert "hidden" in page.find("section", data_pinned=True).attrs
    # Both updates stay in the timeline throughout.
    assert timeline_ids(page) == [second, first]


async def test_story_settings(client: httpx.AsyncClient, editor: Editor) -> None:
    csrf = await login(client, editor)
    await create_story(client, csrf, summary="Old summary", breaking="on")
    page = await reader_page(client)
    assert "hidden" in page.find(data_ended_note=True).attrs

    response = await client.post(
        "/desk/stories/flood",
        data={
            "csrf_token": csrf,
            "title": "Flood: the aftermath",
            "summary": "New summary",
            "status": "ended",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/desk/stories/flood"

    page = await reader_page(client)
    assert page.find("h1", data_story_title=True).text() == "Flood: the aftermath"
    assert page.find(data_story_summary=True).text() == "New summary"
    assert "hidden" in page.find(data_story_breaking=True).attrs
    note = page.find(data_ended_note=True)
    assert "hidden" not in note.attrs
    assert "ended" in note.text()
    assert page.find(data_story_status=True).text() == "Ended"
    assert page.find(data_live_story=True).attrs["data-status"] == "ended"
    assert "<title>Flood: the aftermath" in (await client.get("/stories/flood")).text


async def test_story_settings_errors(
    client: httpx.AsyncClient, csrf: str, settings: Settings
) -> None:
    before = snapshot(settings)
    for data in [{"title": ""}, {"title": "Fine", "status": "paused"}]:
        response = await client.post("/desk/stories/flood", data={"csrf_token": csrf, **data})
        assert response.status_code == 422
        assert parse(response.text).find_all("div", class_="form-error")
    assert snapshot(settings) == before
    missing = await client.post("/desk/stories/nope", data={"csrf_token": csrf, "title": "x"})
    assert missing.status_code == 404
