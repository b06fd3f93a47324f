"""Addresses are built from route names, never typed (``liveblog.urls``)."""

from __future__ import annotations

import re

import httpx
import pytest

from liveblog.render import TEMPLATES_DIR
from tests.support import Editor, bearer, login

# An attribute whose value starts with a path: typed, where url_path() should build it.
TYPED_ADDRESS = re.compile(r"""\b(?:href|src|action|data-[a-z-]+)\s*=\s*["']/""")


def test_templates_type_no_address() -> None:
    typed = [
        f"{path.relative_to(TEMPLATES_DIR)}:{number}: {line.strip()}"
        for path in sorted(TEMPLATES_DIR.rglob("*.html"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if TYPED_ADDRESS.search(line)
    ]
    assert typed == [], "use url_path(name, ...) for these:\n" + "\n".join(typed)


@pytest.mark.anyio
async def test_built_addresses_are_paths_on_pages_and_absolute_where_read_elsewhere(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    csrf = await login(client, editor)
    created = await client.post(
        "/desk/stories", data={"csrf_token": csrf, "title": "Flood", "status": "live"}
    )
    assert created.headers["location"] == "/desk/stories/flood"
    api = await client.post(
        "/api/stories/flood/updates", json={"body": "Rising."}, headers=bearer(editor.token)
    )
    assert api.headers["location"] == f"/api/stories/flood/updates/{api.json()['id']}"
    page = (await client.get("/stories/flood")).text
    assert 'data-events="/stories/flood/events"' in page
    # Static files under their content hash (liveblog/assets.py; tests/test_assets.py).
    assert re.search(r'href="/static/[0-9a-f]{16}/css/site\.css"', page)
    assert f'href="/stories/flood/updates/{api.json()["id"]}"' in page
    assert '<link rel="canonical" href="http://testserver/stories/flood">' in page
    feed = (await client.get("/stories/flood/feed.atom")).text
    assert 'href="http://testserver/stories/flood/feed.atom"' in feed
