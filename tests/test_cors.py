"""Cross-origin access: the widget's read-only resources answer any origin, without
credentials; nothing else does, and nothing that changes state ever does."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from tests.support import Editor, LiveServer, bearer, make_editor

ORIGIN = "https://partner.example"
ACAO = "access-control-allow-origin"


async def story_with_update(client: httpx.AsyncClient, editor: Editor) -> tuple[str, int]:
    story = await client.post(
        "/api/stories", json={"title": "Cup final", "status": "live"}, headers=bearer(editor.token)
    )
    slug: str = story.json()["slug"]
    update = await client.post(
        f"/api/stories/{slug}/updates", json={"body": "Kick-off"}, headers=bearer(editor.token)
    )
    update_id: int = update.json()["id"]
    return slug, update_id


def assert_public(response: httpx.Response) -> None:
    assert response.headers.get(ACAO) == "*", response.request.url
    # Never with credentials: browsers then send no cookies and expose no editor's view.
    assert "access-control-allow-credentials" not in response.headers


def assert_not_shared(response: httpx.Response) -> None:
    assert not any(name.startswith("access-control-") for name in response.headers), (
        response.request.method,
        response.request.url,
        dict(response.headers),
    )


@pytest.mark.anyio
async def test_the_widgets_read_only_resources_answer_any_origin(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    slug, _ = await story_with_update(client, editor)
    headers = {"Origin": ORIGIN}
    for path in (
        f"/stories/{slug}/updates.json",
        f"/oembed?url=http://testserver/stories/{slug}",
        "/static/widget.js",
        "/static/embed-resizer.js",
    ):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, path
        assert_public(response)
        assert_public(await client.head(path, headers=headers))
    # Errors too: a widget must be able to read "no such story" and say so.
    assert_public(await client.get("/stories/nope/updates.json", headers=headers))
    # An ended story's stream answers 204 ("stop reconnecting"), readable cross-origin.
    await client.patch(
        f"/api/stories/{slug}", json={"status": "ended"}, headers=bearer(editor.token)
    )
    ended = await client.get(f"/stories/{slug}/events", headers=headers)
    assert ended.status_code == 204
    assert_public(ended)


def test_the_live_stream_answers_any_origin(server: LiveServer) -> None:
    editor = server.run(make_editor(server.app, "alice"))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        slug = http.post(
            "/api/stories", json={"title": "Derby", "status": "live"}, headers=bearer(editor.token)
        ).json()["slug"]
        with http.stream(
            "GET", f"/stories/{slug}/events", headers={"Origin": ORIGIN, "Last-Event-ID": "0"}
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert_public(stream)


@pytest.mark.anyio
async def test_preflight_is_answered_for_reads_only(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    slug, _ = await story_with_update(client, editor)
    for path in (f"/stories/{slug}/events", f"/stories/{slug}/updates.json", "/oembed"):
        preflight = await client.options(
            path,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "last-event-id",
            },
        )
        assert preflight.status_code == 204
        assert_public(preflight)
        assert preflight.headers["access-control-allow-methods"] == "GET, HEAD"
        assert "last-event-id" in preflight.headers["access-control-allow-headers"].lower()
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            refused = await client.options(
                path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": method}
            )
            assert_not_shared(refused)
            assert_not_shared(await client.request(method, path, headers={"Origin": ORIGIN}))


@pytest.mark.anyio
async def test_other_pages_are_not_shared_across_origins(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    slug, update_id = await story_with_update(client, editor)
    headers = {"Origin": ORIGIN, **bearer(editor.token)}
    for path in (
        "/",
        f"/stories/{slug}",
        f"/stories/{slug}/updates/{update_id}",
        f"/stories/{slug}/feed.atom",
        f"/embed/{slug}",
        "/static/css/site.css",
        "/static/js/live.js",
        "/api/stories",
        f"/api/stories/{slug}",
        f"/api/stories/{slug}/updates",
        "/desk",
        "/login",
    ):
        assert_not_shared(await client.get(path, headers=headers))


def _fill(path: str, slug: str, update_id: int, username: str) -> str:
    values = {"slug": slug, "update_id": str(update_id), "username": username}
    return re.sub(r"{(\w+)(?::\w+)?}", lambda m: values.get(m.group(1), "1"), path)


@pytest.mark.anyio
async def test_nothing_that_changes_state_is_ever_shared_across_origins(
    app: Starlette, client: httpx.AsyncClient, editor: Editor
) -> None:
    """Every route that takes anything but GET/HEAD, found from the app itself, so a new
    route is covered the day it is added: neither its preflight nor its answer (even a
    successful change, made with a valid token) carries any CORS header."""
    slug, update_id = await story_with_update(client, editor)
    changing = [
        (route.path, method)
        for route in app.routes
        if isinstance(route, Route)
        for method in sorted(route.methods or ())
        if method not in ("GET", "HEAD")
    ]
    assert len(changing) >= 10  # the sweep really found the desk's and the API's writes
    statuses = set()
    for path_format, method in changing:
        path = _fill(path_format, slug, update_id, editor.username)
        preflight = await client.options(
            path,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert_not_shared(preflight)
        response = await client.request(
            method, path, headers={"Origin": ORIGIN, **bearer(editor.token)}, json={}
        )
        statuses.add(response.status_code)
        assert_not_shared(response)
    # A change that went through (an API write with a valid token) is not shared either.
    made = await client.post(
        f"/api/stories/{slug}/updates",
        json={"body": "From another origin"},
        headers={"Origin": ORIGIN, **bearer(editor.token)},
    )
    assert made.status_code == 201
    assert_not_shared(made)
    assert len(statuses) > 1
