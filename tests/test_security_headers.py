"""Security headers on every kind of response, and pages free of inline script and style."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from liveblog.app import create_app
from liveblog.headers import headers_for
from liveblog.settings import Settings
from tests.factories import new_story, new_update
from tests.htmlcheck import executable_markup
from tests.security_support import Account, add_account, browser, log_in
from tests.support import bearer

pytestmark = pytest.mark.anyio


def csp(response: httpx.Response) -> dict[str, str]:
    header = response.headers.get("content-security-policy", "")
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
        for part in header.split(";")
        if part.strip()
    }


@pytest.fixture
async def site(app: Starlette) -> tuple[Account, int]:
    """A live story with one update, and an admin who wrote it."""
    admin = await add_account(app, "ada", role="admin")
    async with browser(app) as client:
        await new_story(client, admin, "storm")
        posted = await new_update(
            client, admin, "storm", body="A [link](https://example.com).", headline="Hi"
        )
    return admin, posted["id"]


async def responses(app: Starlette, admin: Account, update_id: int) -> dict[str, httpx.Response]:
    """One response of every kind: pages, desk, API, feed, errors, static files."""
    out: dict[str, httpx.Response] = {}
    async with browser(app) as reader:
        for path in [
            "/",
            "/stories/storm",
            f"/stories/storm/updates/{update_id}",
            "/stories/storm/feed.atom",
            "/login",
            "/stories/no-such-story",
            "/healthz",
            "/static/css/site.css",
            "/static/js/live.js",
        ]:
            out[path] = await reader.get(path)
        out["api"] = await reader.get("/api/stories", headers=bearer(admin.token))
        out["api 401"] = await reader.get("/api/stories")
        out["413"] = await reader.post(
            "/api/stories", content=b"x" * 2_000_000, headers=bearer(admin.token)
        )
        await log_in(reader, admin)
        for path in [
            "/desk",
            "/desk/stories/storm",
            f"/desk/stories/storm/updates/{update_id}/edit",
            f"/desk/stories/storm/updates/{update_id}/history",
            "/desk/users",
            "/desk/tokens",
        ]:
            out[path] = await reader.get(path)
    return out


async def test_every_response_gets_the_security_headers(
    app: Starlette, site: tuple[Account, int]
) -> None:
    admin, update_id = site
    found = await responses(app, admin, update_id)
    assert found["413"].status_code == 413 and found["api 401"].status_code == 401
    for name, response in found.items():
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin", name
        assert "strict-transport-security" not in response.headers, name
        if name.startswith("/static/"):
            assert "x-frame-options" not in response.headers, name
            continue
        assert response.headers["x-frame-options"] == "DENY", name
        policy = csp(response)
        assert policy["frame-ancestors"] == "'none'", name
        assert policy["script-src"] == "'self'", name
        assert policy["style-src"] == "'self'", name
        assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'", name
        assert "unsafe" not in response.headers["content-security-policy"], name


async def test_pages_carry_no_inline_script_style_or_handlers(
    app: Starlette, site: tuple[Account, int]
) -> None:
    admin, update_id = site
    found = await responses(app, admin, update_id)
    pages = {
        name: response
        for name, response in found.items()
        if response.headers.get("content-type", "").startswith("text/html")
    }
    assert len(pages) >= 10
    for name, response in pages.items():
        assert executable_markup(response.text) == [], name


async def test_embed_pages_may_be_framed_but_keep_the_script_policy(
    app: Starlette, site: tuple[Account, int]
) -> None:
    async with browser(app) as reader:
        response = await reader.get("/embed/storm")
    assert response.status_code == 200
    assert "x-frame-options" not in response.headers
    policies = response.headers.get_list("content-security-policy")
    assert policies, "embed pages still get a policy"
    assert all("frame-ancestors 'none'" not in policy for policy in policies)
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_policy_by_path() -> None:
    assert (
        "frame-ancestors 'none'"
        in headers_for("/stories/x", https=False)["Content-Security-Policy"]
    )
    embed = headers_for("/embed/x", https=False)
    assert "X-Frame-Options" not in embed
    assert "frame-ancestors" not in embed["Content-Security-Policy"]
    assert "script-src 'self'" in embed["Content-Security-Policy"]
    widget = headers_for("/static/widget.js", https=False)
    assert "X-Frame-Options" not in widget and "Content-Security-Policy" not in widget
    # Only the path prefix counts: /embedded is an ordinary page.
    assert headers_for("/embedded", https=False)["X-Frame-Options"] == "DENY"


async def test_hsts_only_when_served_over_https(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=SecretStr("k" * 32), https=True)
    app = create_app(settings)
    async with app.router.lifespan_context(app), browser(app) as client:
        for path in ["/", "/login", "/static/css/site.css", "/api/stories"]:
            response = await client.get(path)
            assert response.headers["strict-transport-security"] == "max-age=31536000", path
