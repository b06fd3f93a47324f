"""Limits: body size (413), text lengths and characters (422), page caps, slugs, and the
cap on concurrent streams per client address (429)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from liveblog.headers import headers_for
from liveblog.models import MAX_BODY, MAX_HEADLINE, MAX_SLUG, MAX_SUMMARY, MAX_TITLE
from liveblog.settings import Settings
from tests.factories import new_story
from tests.security_support import Account, add_account, browser, db_state, logged_in
from tests.support import LiveServer, bearer, migrated_settings_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return migrated_settings_for(tmp_path, max_streams_per_client=2)


@pytest.fixture
async def editor(app: Starlette) -> Account:
    account = await add_account(app, "alice")
    async with browser(app) as client:
        await new_story(client, account, "storm")
    return account


async def test_bodies_over_the_limit_are_413_on_forms_and_api(
    app: Starlette, settings: Settings, editor: Account
) -> None:
    big = "x" * (settings.max_body_bytes + 1)
    async with logged_in(app, editor) as (client, csrf):
        before = db_state(settings)
        for path, kwargs in [
            ("/desk/stories", {"data": {"csrf_token": csrf, "title": big}}),
            ("/desk/stories/storm", {"data": {"csrf_token": csrf, "summary": big}}),
            ("/login", {"data": {"username": "alice", "password": big}}),
            ("/api/stories/storm/updates", {"json": {"body": big}}),
        ]:
            response = await client.post(path, headers=bearer(editor.token), **kwargs)  # type: ignore[arg-type]
            assert response.status_code == 413, path
        assert db_state(settings) == before


@pytest.mark.parametrize(
    ("path", "content_type", "takes_images"),
    [
        ("/api/stories/storm/updates", "application/json", False),
        ("/login", "application/x-www-form-urlencoded", False),
        ("/api/media", "image/png", True),
    ],
)
async def test_a_chunked_body_is_refused_with_413_while_it_streams(
    app: Starlette,
    settings: Settings,
    editor: Account,
    path: str,
    content_type: str,
    takes_images: bool,
) -> None:
    limit = settings.max_body_bytes + (settings.max_upload_bytes if takes_images else 0)
    chunk = b"x" * 65_536
    pulled = 0

    async def body() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        nonlocal pulled
        for _ in range(limit // len(chunk) + 50):
            pulled += 1
            yield chunk

    async with browser(app) as client:
        before = db_state(settings)
        headers = {**bearer(editor.token), "Content-Type": content_type}
        request = client.build_request("POST", path, content=body(), headers=headers)
        assert "content-length" not in request.headers
        response = await client.send(request)
        assert db_state(settings) == before
    assert response.status_code == 413
    assert str(limit) in response.text
    # Refused at the chunk that passed the limit, not after the whole body was read.
    assert pulled == limit // len(chunk) + 1
    for name, value in headers_for(path, https=False).items():
        assert response.headers[name] == value, name


@pytest.mark.parametrize(
    ("path", "field", "limit", "extra"),
    [
        ("/api/stories/storm/updates", "body", MAX_BODY, {}),
        ("/api/stories/storm/updates", "headline", MAX_HEADLINE, {"body": "b"}),
        ("/api/stories", "title", MAX_TITLE, {}),
        ("/api/stories", "summary", MAX_SUMMARY, {"title": "t"}),
    ],
)
async def test_text_lengths_are_capped_at_exactly_the_limit(
    app: Starlette,
    settings: Settings,
    editor: Account,
    path: str,
    field: str,
    limit: int,
    extra: dict[str, str],
) -> None:
    async with browser(app) as client:
        before = db_state(settings)
        too_long = await client.post(
            path, json={**extra, field: "é" * (limit + 1)}, headers=bearer(editor.token)
        )
        assert too_long.status_code == 422
        assert field in too_long.json()["error"]
        assert db_state(settings) == before
        at_limit = await client.post(
            path, json={**extra, field: "é" * limit}, headers=bearer(editor.token)
        )
        assert at_limit.status_code == 201


async def test_the_desk_applies_the_same_length_limits(
    app: Starlette, settings: Settings, editor: Account
) -> None:
    async with logged_in(app, editor) as (client, csrf):
        before = db_state(settings)
        for data in [
            {"body": "x" * (MAX_BODY + 1)},
            {"body": "ok", "headline": "h" * (MAX_HEADLINE + 1)},
        ]:
            response = await client.post(
                "/desk/stories/storm/updates", data={"csrf_token": csrf, **data}
            )
            assert response.status_code == 422
        assert db_state(settings) == before


@pytest.mark.parametrize(
    "text",
    ["nul\x00byte", "escape\x1b[31m", "bell\x07", "form\x0cfeed", "nonchar\uffff"],
)
async def test_control_characters_are_refused_with_422(
    app: Starlette, settings: Settings, editor: Account, text: str
) -> None:
    async with browser(app) as client:
        before = db_state(settings)
        for path, body in [
            ("/api/stories", {"title": text}),
            ("/api/stories/storm/updates", {"body": text}),
            ("/api/stories/storm/updates", {"body": "fine", "headline": text}),
        ]:
            response = await client.post(path, json=body, headers=bearer(editor.token))
            assert response.status_code == 422, (path, body)
        assert db_state(settings) == before
    # Tabs and line breaks are ordinary text.
    async with browser(app) as client:
        fine = await client.post(
            "/api/stories/storm/updates",
            json={"body": "line\none\ttab\r\n"},
            headers=bearer(editor.token),
        )
    assert fine.status_code == 201


@pytest.mark.parametrize(
    "slug",
    ["Upper", "with space", "-lead", "trail-", "dou--ble", "ünï", "a/b", "x" * (MAX_SLUG + 1)],
)
async def test_bad_slugs_are_422(
    app: Starlette, settings: Settings, editor: Account, slug: str
) -> None:
    async with browser(app) as client:
        before = db_state(settings)
        response = await client.post(
            "/api/stories", json={"title": "T", "slug": slug}, headers=bearer(editor.token)
        )
        assert response.status_code == 422
        assert db_state(settings) == before


async def test_lookups_by_impossible_slugs_and_ids_are_404(app: Starlette, editor: Account) -> None:
    async with browser(app) as client:
        for path in [
            "/stories/%00",
            "/stories/UPPER",
            "/api/stories/%00",
            "/stories/storm/updates/99999999999999999999999",
            "/api/stories/storm/updates/99999999999999999999999",
        ]:
            response = await client.get(path, headers=bearer(editor.token))
            assert response.status_code == 404, path


async def test_page_sizes_are_capped(app: Starlette, editor: Account) -> None:
    async with browser(app) as client:
        for limit, status in [("100", 200), ("101", 400), ("0", 400), ("-1", 400), ("1e9", 400)]:
            response = await client.get(
                f"/api/stories/storm/updates?limit={limit}", headers=bearer(editor.token)
            )
            assert response.status_code == status, limit
        assert (await client.get("/stories/storm?before=x")).status_code == 400


# --- streams per client address ------------------------------------------------------


@pytest.fixture
async def live_story(server: LiveServer) -> AsyncIterator[str]:
    account: Account = server.run(add_account(server.app, "alice"))
    async with httpx.AsyncClient(base_url=server.url, headers=bearer(account.token)) as api:
        response = await api.post(
            "/api/stories", json={"title": "Storm", "slug": "storm", "status": "live"}
        )
        assert response.status_code == 201
        yield "/stories/storm/events"


async def open_stream(stack: AsyncExitStack, client: httpx.AsyncClient, url: str) -> int:
    response = await stack.enter_async_context(client.stream("GET", url))
    if response.status_code == 200:
        # The stream is really open once its first line has arrived. (The line iterator
        # is closed with the stack: a dropped iterator would close the connection.)
        lines = response.aiter_lines()
        stack.push_async_callback(lines.aclose)  # type: ignore[attr-defined]
        first = await anext(lines)
        assert first.startswith("retry:")
    return response.status_code


async def status_from(app: Starlette, address: str, path: str) -> int:
    async with browser(app, address=address) as client:
        return (await client.get(path)).status_code


async def test_concurrent_streams_per_address_are_capped_with_429(
    server: LiveServer, live_story: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        first, second = AsyncExitStack(), AsyncExitStack()
        async with first, second:
            assert await open_stream(first, client, live_story) == 200
            assert await open_stream(second, client, live_story) == 200
            refused = await client.get(live_story)
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) > 0
            assert refused.headers["x-content-type-options"] == "nosniff"
            # Another address is not affected (same app, another client address).
            # (Run on the server's own loop: the app's database lives there.)
            assert server.run(status_from(server.app, "203.0.113.5", "/stories/nope/events")) == 404
            await second.aclose()
            # Once a stream ends its place is free again.
            deadline = time.monotonic() + 10
            while True:
                async with AsyncExitStack() as third:
                    status = await open_stream(third, client, live_story)
                if status == 200 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert status == 200
