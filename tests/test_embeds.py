"""Link embeds end to end (docs/embeds.md): a link on its own line in an update becomes a
card, fetched once from a fake provider on loopback (``tests/embed_provider.py``),
allowed by ``LIVEBLOG_FETCH_ALLOW_HOSTS`` as an operator would allow a local service.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser
from selectolax.lexbor import LexborNode as Node
from starlette.applications import Starlette

from liveblog.app import create_app
from liveblog.settings import Settings
from tests.embed_provider import FakeProvider, serving, settings_with
from tests.factories import create_story
from tests.support import Editor, bearer, make_editor, migrated_settings_for

pytestmark = pytest.mark.anyio
FETCH_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with serving() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, provider: FakeProvider) -> Settings:
    return settings_with(provider, tmp_path, fetch_timeout=FETCH_TIMEOUT)


@pytest.fixture
async def api(app: Starlette, editor: Editor) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(editor.token)
    ) as client:
        await create_story(client, "storm")
        yield client


async def post(api: httpx.AsyncClient, body: str) -> dict[str, Any]:
    response = await api.post("/api/stories/storm/updates", json={"body": body})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def card(update: dict[str, Any]) -> Node:
    figure = HTMLParser(update["body_html"]).css_first("figure.embed")
    assert figure is not None, update["body_html"]
    return figure


def text_of(node: Node, selector: str) -> str | None:
    found = node.css_first(selector)
    return None if found is None else found.text()


# (path of the link, kind, title, author, provider name, click-through?, thumbnail?)
SHAPES = [
    ("/video/abc", "video", "Press conference abc", "Fake Channel", "Fake Video", True, True),
    ("/rich/p1", "rich", "A post p1", "@minister", "Fake Rich", True, False),
    ("/photo/1", "photo", "Flood photo", None, "Fake Photo", False, True),
    ("/link/1", "link", "Just a link", "Someone", "Fake Link", False, False),
    ("/page/og", "link", "Storm reaches the coast", "Jo Reporter", "Coast News", False, True),
    ("/page/twitter", "link", "Twitter card title", None, "127.0.0.1", False, True),
    ("/page/title", "link", "Only a title", None, "127.0.0.1", False, False),
    ("/page/discovery", "rich", "A post toot", "@minister", "mastodon.example", True, False),
]


@pytest.mark.parametrize(("path", "kind", "title", "author", "name", "frame", "thumb"), SHAPES)
async def test_each_provider_shape_renders_its_card(
    api: httpx.AsyncClient,
    provider: FakeProvider,
    path: str,
    kind: str,
    title: str,
    author: str | None,
    name: str,
    frame: bool,
    thumb: bool,
) -> None:
    link = provider.base + path
    update = await post(api, f"Watch this:\n\n{link}\nThe caption, under the link.\n\nAfter.")
    figure = card(update)
    assert figure.attributes["class"] == f"embed embed--{kind}"
    assert text_of(figure, ".embed__title") == title
    assert text_of(figure, ".embed__author") == author
    assert text_of(figure, ".embed__provider") == name
    assert text_of(figure, "figcaption") == "The caption, under the link."
    anchor = figure.css_first("a.embed__card")
    assert anchor is not None and anchor.attributes["href"] == link
    assert ("data-embed-frame" in figure.attributes) is frame
    image = figure.css_first("img")
    assert (image is not None) is thumb
    if image is not None:  # re-hosted: our media store, never the provider's address
        assert str(image.attributes["src"]).startswith("/media/")
        assert image.attributes["width"] == "640" and image.attributes["height"] == "360"
    # The text around the link stays as it was; the API gives the card as data too.
    assert "<p>Watch this:</p>" in update["body_html"]
    assert "<p>After.</p>" in update["body_html"]
    (embed,) = update["embeds"]
    assert embed["url"] == link and embed["title"] == title and embed["kind"] == kind
    assert embed["caption"] == "The caption, under the link."
    assert (embed["frame"] is not None) is frame


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/slow/1", "did not answer within"),
        ("/huge/1", "larger than"),
        ("/metadata/1", "private or local"),
        ("/loopback/1", "private or local"),
        ("/broken/1", "not JSON"),
    ],
)
async def test_a_provider_that_fails_leaves_a_link_card_without_blocking_the_post(
    api: httpx.AsyncClient, provider: FakeProvider, path: str, why: str
) -> None:
    link = provider.base + path
    started = time.monotonic()
    update = await post(api, link)
    elapsed = time.monotonic() - started
    assert elapsed < FETCH_TIMEOUT + 1.5, elapsed
    figure = card(update)
    assert figure.attributes["class"] == "embed embed--link"
    assert "data-embed-frame" not in figure.attributes
    assert figure.css_first("img") is None
    anchor = figure.css_first("a.embed__card")
    assert anchor is not None and anchor.attributes["href"] == link
    # The reason is kept for the desk.
    app_embeds = await api.post("/api/embeds", json={"url": link})
    assert app_embeds.status_code == 200, app_embeds.text
    assert why in app_embeds.json()["problem"]


@pytest.mark.parametrize(
    "line",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/_x",
        "javascript:alert(1)",
        "http://user:secret@example.org/",
        "ftp://example.org/file",
    ],
)
async def test_links_we_never_fetch_stay_text(api: httpx.AsyncClient, line: str) -> None:
    update = await post(api, line)
    assert "<figure" not in update["body_html"]
    assert update["embeds"] == []


async def test_a_link_inside_a_sentence_is_not_an_embed(
    api: httpx.AsyncClient, provider: FakeProvider
) -> None:
    update = await post(api, f"See {provider.base}/video/abc for the clip.")
    assert "<figure" not in update["body_html"]
    assert provider.hits["/oembed"] == 0


async def test_the_same_link_is_fetched_once(
    api: httpx.AsyncClient, provider: FakeProvider
) -> None:
    link = f"{provider.base}/video/shared"
    # Fifty editors paste it at once, then once more.
    async with anyio.create_task_group() as group:
        for _ in range(50):
            group.start_soon(post, api, link)
    await post(api, link)
    assert provider.hits["/oembed"] == 1
    assert provider.hits["/thumb.png"] == 1


async def test_provider_markup_only_in_the_sandboxed_frame(
    api: httpx.AsyncClient, provider: FakeProvider
) -> None:
    update = await post(api, f"{provider.base}/video/frame")
    assert "<iframe" not in update["body_html"] and "<script" not in update["body_html"]
    frame_path = card(update).attributes["data-embed-frame"]
    assert frame_path is not None and frame_path.startswith("/embed-frame/")
    page = await api.get(frame_path)
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert policy.startswith("sandbox allow-scripts ")
    assert "allow-same-origin" not in policy
    assert f"frame-src {provider.base}" in policy
    assert "x-frame-options" not in page.headers
    tree = HTMLParser(page.text)
    (iframe,) = tree.css("body iframe")
    assert iframe.attributes["src"] == f"{provider.base}/player/frame"
    assert "onload" not in iframe.attributes
    # The provider's inline script is gone; only our size reporter is a script here.
    scripts = [s.attributes.get("src") for s in tree.css("script")]
    assert len(scripts) == 1 and str(scripts[0]).endswith("/js/provider-frame.js")
    assert (await api.get("/embed-frame/nope")).status_code == 404


async def test_story_page_frames_only_the_click_through(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    page = await api.get("/stories/storm")
    # The site's address unknown: its own origin, where every other page refuses frames.
    assert "frame-src 'self';" in page.headers["content-security-policy"]
    app = create_app(migrated_settings_for(tmp_path / "b", base_url="https://news.example.org"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            for path in ("/", "/stories/nothing", "/embed/nothing"):
                policy = (await client.get(path)).headers["content-security-policy"]
                assert "frame-src https://news.example.org/embed-frame/;" in policy, path


async def test_feeds_and_json_ld_carry_the_card_not_the_provider(
    api: httpx.AsyncClient, provider: FakeProvider
) -> None:
    link = f"{provider.base}/rich/feed"
    await post(api, link)
    feed = await api.get("/stories/storm/feed.atom")
    assert feed.status_code == 200
    assert "A post feed" in feed.text and "widgets.js" not in feed.text
    page = await api.get("/stories/storm")
    blocks = HTMLParser(page.text).css('script[type="application/ld+json"]')
    data = json.dumps([json.loads(block.text()) for block in blocks])
    assert link in data


async def test_a_frames_host_of_their_own(tmp_path: Path, provider: FakeProvider) -> None:
    """With ``LIVEBLOG_EMBED_FRAME_URL`` the frames live on a second host name, where
    they may keep an origin of their own: that host serves nothing else."""
    settings = settings_with(provider, tmp_path / "frames", embed_frame_url="http://frames.test")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        frames_editor = await make_editor(app, "frank")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer(frames_editor.token)
        ) as api:
            await create_story(api, "storm")
            update = await post(api, f"{provider.base}/video/own")
            frame = str(card(update).attributes["data-embed-frame"])
            assert frame.startswith("http://frames.test/embed-frame/")
            page = await api.get("/stories/storm")
            assert (
                "frame-src http://frames.test/embed-frame/;"
                in (page.headers["content-security-policy"])
            )
            there = await api.get(frame)
            assert there.status_code == 200
            assert "allow-same-origin" in there.headers["content-security-policy"]
            assert "script-src http://frames.test " in there.headers["content-security-policy"]
            # The same frame on the site's own host keeps an opaque origin.
            here = await api.get(urlsplit(frame).path)
            assert here.status_code == 200
            assert "allow-same-origin" not in here.headers["content-security-policy"]
            # The frames' host holds nothing else of the site: no pages, no desk, no API.
            for path in ("/stories/storm", "/desk", "/api/stories", "/login"):
                refused = await api.get(f"http://frames.test{path}")
                assert refused.status_code == 404, path
            static = await api.get("http://frames.test/static/js/provider-frame.js")
            assert static.status_code == 200
