"""Embedding, over HTTP: the widget's first render, the iframe page, oEmbed, the desk's
snippets. (The widget itself runs in a real browser: tests/browser/test_widget.py.)"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from liveblog.app import create_app
from liveblog.settings import Settings
from tests.support import Editor, bearer, login, make_editor

pytestmark = pytest.mark.anyio

SITE = "http://testserver"


async def make_story(
    client: httpx.AsyncClient, editor: Editor, title: str = "Storm Aurelia", status: str = "live"
) -> str:
    response = await client.post(
        "/api/stories", json={"title": title, "status": status}, headers=bearer(editor.token)
    )
    assert response.status_code == 201, response.text
    slug: str = response.json()["slug"]
    return slug


async def get_ok(client: httpx.AsyncClient, url: str) -> httpx.Response:
    response = await client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return response


async def post(client: httpx.AsyncClient, editor: Editor, slug: str, **fields: Any) -> int:
    response = await client.post(
        f"/api/stories/{slug}/updates", json=fields, headers=bearer(editor.token)
    )
    assert response.status_code == 201, response.text
    update_id: int = response.json()["id"]
    return update_id


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, plus the text of each textarea."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.textareas: dict[str, str] = {}
        self._textarea: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.tags.append((tag, attributes))
        if tag == "textarea":
            self._textarea = attributes.get("id", "")
            self.textareas[self._textarea] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.textareas[self._textarea] += data

    def find(self, tag: str, **wanted: str) -> list[dict[str, str]]:
        return [
            attrs
            for name, attrs in self.tags
            if name == tag and all(attrs.get(key) == value for key, value in wanted.items())
        ]


# --- the widget's first render -------------------------------------------------------


async def test_snapshot_has_the_latest_updates_rendered_and_the_seq_to_resume_from(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    slug = await make_story(client, editor)
    first = await post(client, editor, slug, body="See [the map](/maps/1).", pinned=True)
    second = await post(client, editor, slug, body="Second", headline="Key", key_event=True)
    third = await post(client, editor, slug, body="Third")
    story = (await client.get(f"/api/stories/{slug}", headers=bearer(editor.token))).json()

    newest = await client.get(f"/stories/{slug}/updates.json", params={"limit": 2})
    assert newest.status_code == 200
    body = newest.json()
    assert body["last_seq"] == story["last_seq"] > 0
    assert body["order"] == "newest" and body["limit"] == 2
    assert [u["id"] for u in body["updates"]] == [third, second]
    assert body["updates"][1]["key_event"] is True
    assert f'data-update-id="{third}"' in body["updates"][0]["html"]
    assert body["story"]["slug"] == slug and body["story"]["status"] == "live"
    assert body["story"]["url"] == f"{SITE}/stories/{slug}"
    # The pinned update comes along even when it is older than the newest `limit`.
    assert body["pinned"]["id"] == first and 'href="/maps/1"' in body["pinned"]["html"]
    # A snapshot may be cached briefly: the stream replays from its last_seq.
    assert "max-age" in newest.headers["cache-control"]

    oldest = (await client.get(f"/stories/{slug}/updates.json?limit=2&order=oldest")).json()
    assert [u["id"] for u in oldest["updates"]] == [second, third]

    everything = (await client.get(f"/stories/{slug}/updates.json")).json()
    assert [u["id"] for u in everything["updates"]] == [third, second, first]


async def test_snapshot_of_an_ended_story_still_answers(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    slug = await make_story(client, editor)
    await post(client, editor, slug, body="Last word")
    ended = await client.patch(
        f"/api/stories/{slug}", json={"status": "ended"}, headers=bearer(editor.token)
    )
    assert ended.status_code == 200
    body = (await client.get(f"/stories/{slug}/updates.json")).json()
    assert body["story"]["status"] == "ended" and len(body["updates"]) == 1


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=51", "limit=ten", "limit=-1", "limit=1e3", "order=sideways"]
)
async def test_snapshot_refuses_bad_parameters(
    client: httpx.AsyncClient, editor: Editor, query: str
) -> None:
    slug = await make_story(client, editor)
    response = await client.get(f"/stories/{slug}/updates.json?{query}")
    assert response.status_code == 400
    assert "error" in response.json()


async def test_drafts_and_unknown_stories_are_never_embedded_even_for_a_logged_in_editor(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    draft = await make_story(client, editor, title="Embargoed", status="draft")
    await post(client, editor, draft, body="Secret")
    await login(client, editor)  # the desk's cookie is on this client from here on
    for slug in (draft, "no-such-story"):
        snapshot = await client.get(f"/stories/{slug}/updates.json")
        assert snapshot.status_code == 404 and "Secret" not in snapshot.text
        assert (await client.get(f"/embed/{slug}")).status_code == 404
        oembed = await client.get("/oembed", params={"url": f"{SITE}/stories/{slug}"})
        assert oembed.status_code == 404


# --- the iframe page -----------------------------------------------------------------


async def test_embed_page_may_be_framed_by_anyone_and_runs_only_our_files(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    slug = await make_story(client, editor, title="Harbour <fire> & smoke")
    response = await get_ok(client, f"/embed/{slug}?limit=5&order=oldest&theme=dark")
    csp = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["frame-ancestors"] == "*"
    assert directives["script-src"] == "'self'" and "unsafe" not in csp
    assert "x-frame-options" not in response.headers

    page = Elements(response.text)
    [widget] = page.find("live-blog")
    assert widget == {"story": slug, "limit": "5", "order": "oldest", "theme": "dark"}
    scripts = page.find("script")
    # Our own page loads the files under their content hash (liveblog/assets.py).
    sources = [re.sub(r"^/static/[0-9a-f]{16}/", "/static/", s["src"]) for s in scripts]
    assert sources == ["/static/widget.js", "/static/js/embed-frame.js"]
    assert all(source != s["src"] for source, s in zip(sources, scripts, strict=True))
    assert all(not name.startswith("on") for _, attrs in page.tags for name in attrs)
    assert "Harbour &lt;fire&gt; &amp; smoke" in response.text  # the title is escaped
    assert '<meta name="description" content="Live updates: Harbour &lt;fire&gt;' in response.text
    for path in ("/static/widget.js", "/static/js/embed-frame.js", "/static/css/embed.css"):
        assert (await client.get(path)).status_code == 200


async def test_embed_page_refuses_bad_parameters(client: httpx.AsyncClient, editor: Editor) -> None:
    slug = await make_story(client, editor)
    for query in ("theme=neon", "limit=0", "order=random"):
        assert (await client.get(f"/embed/{slug}?{query}")).status_code == 400


# --- oEmbed --------------------------------------------------------------------------


def assert_valid_rich_oembed(data: dict[str, Any]) -> None:
    """The fields oEmbed 1.0 requires of a `rich` response, with their types."""
    assert data["version"] == "1.0"
    assert data["type"] == "rich"
    assert isinstance(data["html"], str) and data["html"].startswith("<iframe ")
    assert isinstance(data["width"], int) and data["width"] > 0
    assert isinstance(data["height"], int) and data["height"] > 0
    assert isinstance(data["title"], str) and data["title"]
    assert isinstance(data["provider_name"], str) and data["provider_name"]
    assert isinstance(data["provider_url"], str) and data["provider_url"].startswith("http")


async def test_oembed_consumer_finds_the_discovery_link_and_gets_a_valid_rich_embed(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    slug = await make_story(client, editor, title="Election night")
    story_page = await get_ok(client, f"/stories/{slug}")
    links = Elements(story_page.text).find("link", rel="alternate", type="application/json+oembed")
    assert len(links) == 1
    href = links[0]["href"]
    assert urlsplit(href).scheme == "http"  # absolute, as consumers need
    assert parse_qs(urlsplit(href).query)["url"] == [f"{SITE}/stories/{slug}"]

    response = await client.get(href)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    assert_valid_rich_oembed(data)
    assert data["title"] == "Election night"
    frame = Elements(data["html"]).find("iframe")
    assert len(frame) == 1 and frame[0]["src"] == f"{SITE}/embed/{slug}"
    assert int(frame[0]["width"]) == data["width"] and int(frame[0]["height"]) == data["height"]
    # What the snippet points at is really there.
    assert (await client.get(frame[0]["src"])).status_code == 200


async def test_oembed_honours_maxwidth_and_maxheight(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    slug = await make_story(client, editor)
    url = f"{SITE}/stories/{slug}"
    narrow = (await client.get("/oembed", params={"url": url, "maxwidth": 320})).json()
    assert narrow["width"] == 320
    assert 'width="320"' in narrow["html"]
    assert "embed-resizer.js" in narrow["html"]  # no height limit: the frame may grow

    wide = (await client.get("/oembed", params={"url": url, "maxwidth": 5000})).json()
    assert 0 < wide["width"] <= 5000

    short = (await client.get("/oembed", params={"url": url, "maxheight": 300})).json()
    assert short["height"] == 300 and 'height="300"' in short["html"]
    # The resizer would grow the frame past the consumer's limit, so it stays out.
    assert "<script" not in short["html"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"url": "{site}/stories/{slug}", "format": "xml"}, 501),
        ({}, 400),
        ({"url": ""}, 400),
        ({"url": "not a url"}, 400),
        ({"url": "javascript:alert(1)"}, 400),
        ({"url": "{site}/stories/{slug}", "maxwidth": "wide"}, 400),
        ({"url": "https://elsewhere.example/stories/{slug}"}, 404),
        ({"url": "http://testserver.evil.example/stories/{slug}"}, 404),
        ({"url": "{site}/desk"}, 404),
        ({"url": "{site}/stories/{slug}/feed.atom"}, 404),
        ({"url": "{site}/stories/no-such-story"}, 404),
    ],
)
async def test_oembed_errors(
    client: httpx.AsyncClient, editor: Editor, params: dict[str, str], status: int
) -> None:
    slug = await make_story(client, editor)
    filled = {key: value.format(site=SITE, slug=slug) for key, value in params.items()}
    response = await client.get("/oembed", params=filled)
    assert response.status_code == status, response.text


async def test_oembed_accepts_the_story_permalink_and_embed_addresses(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    slug = await make_story(client, editor)
    update_id = await post(client, editor, slug, body="Hello")
    for path in (f"/stories/{slug}/", f"/stories/{slug}/updates/{update_id}", f"/embed/{slug}"):
        response = await client.get("/oembed", params={"url": SITE + path, "format": "json"})
        assert response.status_code == 200, path
        assert f"{SITE}/embed/{slug}" in response.json()["html"]


# --- the desk ------------------------------------------------------------------------


async def test_desk_story_page_shows_both_snippets_ready_to_copy(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    slug = await make_story(client, editor, title="Flood & rain")
    await login(client, editor)
    page = await client.get(f"/desk/stories/{slug}")
    assert page.status_code == 200
    elements = Elements(page.text)
    widget_code = elements.textareas["embed-widget"]
    iframe_code = elements.textareas["embed-iframe"]
    assert elements.find("button", **{"data-copy": "embed-widget"})
    assert elements.find("button", **{"data-copy": "embed-iframe"})

    widget = Elements(widget_code)
    [script] = widget.find("script")
    assert script["src"] == f"{SITE}/static/widget.js" and "async" in script
    assert widget.find("live-blog", story=slug, src=SITE, limit="10")
    assert "Flood &amp; rain" in widget_code  # escaped inside the snippet itself

    frame = Elements(iframe_code)
    [iframe] = frame.find("iframe")
    assert iframe["src"] == f"{SITE}/embed/{slug}"
    assert frame.find("script", src=f"{SITE}/static/embed-resizer.js")
    # Both snippets point at things that exist.
    for url in (script["src"], iframe["src"], f"{SITE}/static/embed-resizer.js"):
        assert (await client.get(url)).status_code == 200, url


@pytest.fixture
async def public_site(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Editor]]:
    """The app configured with a public address other than the one requests arrive at."""
    app = create_app(settings.model_copy(update={"base_url": "https://live.example.org/"}))
    async with app.router.lifespan_context(app):
        editor = await make_editor(app, "bob")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=SITE) as client:
            yield client, editor


async def test_snippets_use_the_configured_public_address(
    public_site: tuple[httpx.AsyncClient, Editor],
) -> None:
    client, editor = public_site
    slug = await make_story(client, editor)
    data = (
        await client.get("/oembed", params={"url": f"https://live.example.org/stories/{slug}"})
    ).json()
    assert f'src="https://live.example.org/embed/{slug}"' in data["html"]
    assert data["provider_url"] == "https://live.example.org/"
    page = (await client.get(f"/stories/{slug}")).text
    assert "https://live.example.org/oembed?url=https%3A%2F%2Flive.example.org" in page
    # The request's own host is not this site's public address.
    elsewhere = await client.get("/oembed", params={"url": f"{SITE}/stories/{slug}"})
    assert elsewhere.status_code == 404
