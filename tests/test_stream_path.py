"""The event stream is served outside Starlette's middleware stack (``liveblog/live/routing.py``):
every answer on its path must still carry what that stack adds everywhere else.

The reference is the stack itself: a ``POST`` to the stream's path is not taken by the
shortcut, so Starlette answers it (405) through the app's middleware. Every security
header on that answer must be on each stream answer too, with the same value, and the
public-read CORS header with it: the live stream (GET and HEAD), the 204 of an ended
story, the 404 of an unknown one, the 429 of the per-address cap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from liveblog.app import create_app
from liveblog.settings import Settings
from tests.support import bearer, make_editor, run_server, settings_for

pytestmark = pytest.mark.anyio

SECURITY = (
    "content-security-policy",
    "x-content-type-options",
    "referrer-policy",
    "x-frame-options",
    "strict-transport-security",
)


@pytest.fixture(params=[False, True], ids=["http", "https"])
def site(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    return settings_for(tmp_path, https=request.param, max_streams_per_client=1)


@pytest.fixture
async def reader(site: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    with run_server(create_app(site)) as server:
        editor = server.run(make_editor(server.app, "alice"))
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            for slug, status in (("open", "live"), ("over", "live")):
                response = await client.post(
                    "/api/stories",
                    json={"title": slug, "slug": slug, "status": status},
                    headers=bearer(editor.token),
                )
                assert response.status_code == 201, response.text
            ended = await client.patch(
                "/api/stories/over", json={"status": "ended"}, headers=bearer(editor.token)
            )
            assert ended.status_code == 200, ended.text
            yield client, editor.token


def security_headers(response: httpx.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in SECURITY if name in response.headers}


def assert_like_the_stack(response: httpx.Response, stack: dict[str, str]) -> None:
    assert security_headers(response) == stack, (response.status_code, response.request.url)
    assert response.headers.get("access-control-allow-origin") == "*"
    assert "access-control-allow-credentials" not in response.headers


async def test_every_stream_answer_carries_the_sites_headers(
    reader: tuple[httpx.AsyncClient, str], site: Settings
) -> None:
    client, _ = reader
    through_stack = await client.post("/stories/open/events")
    assert through_stack.status_code == 405
    stack = security_headers(through_stack)
    # The reference is not empty: the stack's policy for a page of this site.
    assert "content-security-policy" in stack and stack["x-frame-options"] == "DENY"
    assert ("strict-transport-security" in stack) is site.https

    async with client.stream("GET", "/stories/open/events") as live:
        assert live.status_code == 200
        assert live.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert live.headers["cache-control"] == "no-store"
        assert_like_the_stack(live, stack)
        first = await anext(live.aiter_lines())
        assert first.startswith("retry:")
        # The cap is one stream per address here: the next one is refused.
        refused = await client.get("/stories/open/events")
        assert refused.status_code == 429
        assert_like_the_stack(refused, stack)

    head = await client.head("/stories/open/events")
    assert head.status_code == 200 and head.content == b""
    assert_like_the_stack(head, stack)

    unknown = await client.get("/stories/no-such-story/events")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "text/plain; charset=utf-8"
    assert unknown.text == "No such story."
    assert_like_the_stack(unknown, stack)

    over = await client.get("/stories/over/events")
    assert over.status_code == 204 and over.content == b""
    assert_like_the_stack(over, stack)


async def test_other_methods_on_the_stream_path_still_go_through_the_app(
    reader: tuple[httpx.AsyncClient, str],
) -> None:
    client, _ = reader
    preflight = await client.options(
        "/stories/open/events",
        headers={"Origin": "https://partner.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-methods"] == "GET, HEAD"
    for method in ("POST", "PUT", "DELETE"):
        response = await client.request(method, "/stories/open/events")
        assert response.status_code == 405, method
        assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}
