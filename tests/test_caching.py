"""Cacheable reads: ETags from the story's position, CDN-friendly Cache-Control, and a
conditional GET answered 304 before anything is rendered or the updates are read.

"Nothing rendered" is checked by counting the templates the app's Jinja environment
hands out, and "nothing read" by recording every SQL statement the engine runs (the
SQLAlchemy ``before_cursor_execute`` event on the real database).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from jinja2 import Template
from sqlalchemy import event
from starlette.applications import Starlette

from liveblog.state import Liveblog
from tests.factories import create_story, post_update
from tests.security_support import browser
from tests.support import Editor, bearer, login

pytestmark = pytest.mark.anyio

PUBLIC_CACHE = re.compile(r"^public, max-age=\d+, stale-while-revalidate=\d+$")
UPDATE_TABLE = re.compile(r'\bFROM "?update"?\b', re.I)


@dataclass
class Work:
    """What the app did while serving requests: templates rendered, SQL run."""

    templates: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.templates.clear()
        self.statements.clear()

    @property
    def update_queries(self) -> list[str]:
        return [sql for sql in self.statements if UPDATE_TABLE.search(sql)]


@pytest.fixture
def work(app: Starlette, monkeypatch: pytest.MonkeyPatch) -> Iterator[Work]:
    liveblog: Liveblog = app.state.liveblog
    seen = Work()
    environment = liveblog.renderer.templates
    get_template = environment.get_template

    def counting_get_template(name: Any, *args: Any, **kwargs: Any) -> Template:
        seen.templates.append(str(name))
        return get_template(name, *args, **kwargs)

    monkeypatch.setattr(environment, "get_template", counting_get_template)

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.statements.append(statement)

    engine = liveblog.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
async def api(app: Starlette, editor: Editor) -> AsyncIterator[httpx.AsyncClient]:
    """The editor's API client: every request carries the token."""
    async with browser(app) as client:
        client.headers.update(bearer(editor.token))
        yield client


@pytest.fixture
async def reader(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous browser, without cookies of its own."""
    async with browser(app) as client:
        yield client


def etag_of(response: httpx.Response) -> str:
    tag: str | None = response.headers.get("etag")
    assert tag is not None, f"no ETag on {response.request.url}"
    assert re.fullmatch(r'W/"[0-9a-f]+"', tag), tag
    return tag


async def test_story_page_is_publicly_cacheable_and_revalidates_without_rendering(
    api: httpx.AsyncClient, reader: httpx.AsyncClient, work: Work
) -> None:
    slug = await create_story(api, "flood-watch")
    for n in range(3):
        await post_update(api, slug, f"Update {n}: the river is *rising*.")

    work.reset()
    first = await reader.get(f"/stories/{slug}")
    assert first.status_code == 200
    assert "Update 2" in first.text
    tag = etag_of(first)
    assert PUBLIC_CACHE.match(first.headers["cache-control"]), first.headers["cache-control"]
    assert "set-cookie" not in first.headers, "a shared cache must not store a cookie"
    assert "story.html" in work.templates and "_update.html" in work.templates
    assert work.update_queries, "the full page reads the updates"

    work.reset()
    again = await reader.get(f"/stories/{slug}", headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    assert again.headers["cache-control"] == first.headers["cache-control"]
    assert work.templates == [], "a 304 must not render anything"
    assert work.update_queries == [], f"a 304 must not read the updates: {work.statements}"

    # A new event is a new version: the old tag no longer matches.
    await post_update(api, slug, "Update 3: the barriers held.")
    changed = await reader.get(f"/stories/{slug}", headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert "Update 3" in changed.text
    assert etag_of(changed) != tag


async def test_if_none_match_lists_and_weak_comparison(
    api: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    slug = await create_story(api, "flood-watch")
    tag = etag_of(await reader.get(f"/stories/{slug}"))
    strong = tag.removeprefix("W/")
    for header in (f'"nope", {tag}', strong, f'W/"other" , {strong}', "*"):
        response = await reader.get(f"/stories/{slug}", headers={"If-None-Match": header})
        assert response.status_code == 304, header
    for header in ('"nope"', 'W/"nope"', tag[:-2] + '"'):
        response = await reader.get(f"/stories/{slug}", headers={"If-None-Match": header})
        assert response.status_code == 200, header


async def test_every_representation_of_the_page_has_its_own_tag(
    api: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    slug = await create_story(api, "flood-watch")
    updates = [await post_update(api, slug, f"Update {n}.") for n in range(3)]
    urls = [
        f"/stories/{slug}",
        f"/stories/{slug}?before={updates[-1]['id']}",
        f"/stories/{slug}?after={updates[0]['id']}",
    ]
    tags = [etag_of(await reader.get(url)) for url in urls]
    assert len(set(tags)) == len(tags), tags
    # The same representation asked for again: the same tag.
    assert etag_of(await reader.get(urls[1])) == tags[1]
    # Another story changing the "latest stories" list changes this page too.
    await create_story(api, "storm-watch")
    assert etag_of(await reader.get(urls[0])) != tags[0]


async def test_choosing_an_order_sets_a_cookie_so_it_stays_out_of_shared_caches(
    api: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    slug = await create_story(api, "flood-watch")
    newest = await reader.get(f"/stories/{slug}")
    oldest = await reader.get(f"/stories/{slug}?order=oldest")
    assert oldest.status_code == 200
    assert "set-cookie" in oldest.headers
    assert oldest.headers["cache-control"].startswith("private"), oldest.headers["cache-control"]
    assert etag_of(oldest) != etag_of(newest)
    # The remembered order is a different page at the same URL: its own tag, and the
    # page says that it varies by cookie.
    remembered = await reader.get(f"/stories/{slug}")
    # (and by Accept-Encoding: pages are sent gzipped, liveblog/compression.py)
    assert remembered.headers["vary"] == "Cookie, Accept-Encoding"
    assert etag_of(remembered) == etag_of(oldest)
    assert etag_of(remembered) != etag_of(newest)


async def test_an_editors_view_is_never_stored_or_revalidated(
    app: Starlette, api: httpx.AsyncClient, editor: Editor, reader: httpx.AsyncClient
) -> None:
    slug = await create_story(api, "flood-watch")
    public_tag = etag_of(await reader.get(f"/stories/{slug}"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        await login(browser, editor)
        page = await browser.get(f"/stories/{slug}")
        assert page.status_code == 200
        assert page.headers["cache-control"] == "private, no-store"
        assert "etag" not in page.headers
        again = await browser.get(f"/stories/{slug}", headers={"If-None-Match": public_tag})
        assert again.status_code == 200, "an editor's page is never answered from a copy"


async def test_api_json_revalidates_privately_without_reading_updates(
    api: httpx.AsyncClient, work: Work
) -> None:
    slug = await create_story(api, "flood-watch")
    update = await post_update(api, slug, "First.")
    urls = [
        "/api/stories",
        f"/api/stories/{slug}",
        f"/api/stories/{slug}/updates",
        f"/api/stories/{slug}/updates?limit=5",
        f"/api/stories/{slug}/updates/{update['id']}",
    ]
    tags: dict[str, str] = {}
    for url in urls:
        response = await api.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == "private, no-cache", url
        tags[url] = etag_of(response)
    assert len(set(tags.values())) == len(urls), tags

    for url in urls:
        work.reset()
        response = await api.get(url, headers={"If-None-Match": tags[url]})
        assert response.status_code == 304, url
        assert response.content == b""
        assert response.headers["etag"] == tags[url]
        assert work.update_queries == [], f"{url} read the updates for a 304: {work.statements}"

    await post_update(api, slug, "Second.")
    for url in urls:
        response = await api.get(url, headers={"If-None-Match": tags[url]})
        assert response.status_code == 200, f"{url} still 304 after a new event"
        assert etag_of(response) != tags[url]


async def test_widget_json_is_public_and_revalidates_without_rendering(
    api: httpx.AsyncClient, reader: httpx.AsyncClient, work: Work
) -> None:
    slug = await create_story(api, "flood-watch")
    await post_update(api, slug, "For the widget.")
    url = f"/stories/{slug}/updates.json"
    work.reset()
    first = await reader.get(url)
    assert first.status_code == 200
    assert first.headers["cache-control"].startswith("public, max-age=")
    assert "_update.html" in work.templates
    tag = etag_of(first)

    work.reset()
    again = await reader.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert work.templates == [] and work.update_queries == []
    assert etag_of(await reader.get(f"{url}?limit=3")) != tag
    assert etag_of(await reader.get(f"{url}?order=oldest")) != tag

    await post_update(api, slug, "Newer.")
    assert (await reader.get(url, headers={"If-None-Match": tag})).status_code == 200
