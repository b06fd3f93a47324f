"""Link embeds in a real browser (docs/embeds.md): nothing reaches the provider before
the reader asks, and then only through our sandboxed ``/embed-frame/`` page.

The fake provider (``tests/embed_provider.py``) is served on 127.0.0.1 but addressed as
``http://localhost:PORT``: another host and another site than the app's 127.0.0.1, as
a real provider is, so every request the browser makes to it can be told apart by its
address. On the story page, in the ``<live-blog>`` widget on a partner's page (with a
strict policy of its own) and in the ``/embed/`` iframe on a partner's page:

* before any click the page shows the server's card, a thumbnail from our own host, and
  the consent row, and the browser makes no request at all to the provider;
* the click makes a sandboxed iframe (no ``allow-same-origin``) of our frame page, in
  which the provider's player loads; a video keeps its 16/9 shape and a rich post's
  frame is fitted to its content;
* no Content-Security-Policy violation happens, in any frame;
* "Always load" is remembered per provider: after a reload the video loads without a
  click (and only then does the provider hear from the browser), while another
  provider's post still waits; a new browser profile asks again and stays silent.

Without JavaScript the card is a plain link to the provider's page, and again nothing
is requested from the provider.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, FrameLocator, Locator, Page, expect
from playwright.sync_api import Request as BrowserRequest

from liveblog.app import create_app
from liveblog.settings import Settings
from tests.browser.test_widget import HostSite, host
from tests.embed_provider import FakeProvider, serving, settings_with
from tests.support import Editor, LiveServer, bearer, make_editor, run_server

__all__ = ["host"]  # a fixture, the widget tests' partner site

SANDBOX = {"allow-scripts", "allow-popups", "allow-popups-to-escape-sandbox", "allow-presentation"}
# Installed before any script of every frame (Playwright runs init scripts in child
# frames too): each frame keeps the violations its own policy reported.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sample}`);
});
"""
CSP_WORDS = re.compile(r"Content Security Policy|Refused to", re.IGNORECASE)
# Time for a request that was going to happen on its own to have been made: an eager
# frame starts loading as soon as the consent row is made, its player tens of ms later.
SETTLE_MS = 500


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    # "localhost" is another site than the app's "127.0.0.1", so the browser treats the
    # provider as a third party.
    with serving("localhost") as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, provider: FakeProvider) -> Settings:
    """The browser ``server`` fixture's settings: the provider is allowed and known."""
    return settings_with(provider, tmp_path)


@pytest.fixture
def story(server: LiveServer, editor: Editor, provider: FakeProvider) -> dict[str, str]:
    """A live story with a rich post, then a video (newest first: the video on top)."""
    links = {"rich": f"{provider.base}/rich/post", "video": f"{provider.base}/video/clip"}
    with httpx.Client(base_url=server.url, headers=bearer(editor.token), timeout=10) as api:
        created = api.post(
            "/api/stories", json={"title": "Storm", "slug": "storm", "status": "live"}
        )
        assert created.status_code == 201, created.text
        for kind in ("rich", "video"):
            body = f"From the scene:\n\n{links[kind]}\nWhat the minister said.\n\nMore soon."
            response = api.post("/api/stories/storm/updates", json={"body": body})
            assert response.status_code == 201, response.text
            assert 'data-embed-frame="/embed-frame/' in response.json()["body_html"]
    return links


class Watch:
    """A browser profile (context) of its own, and everything it does: each request any
    of its frames makes, console messages from all frames, and script errors."""

    def __init__(self, browser: Browser, provider: FakeProvider, *, javascript: bool = True):
        self.provider = urlsplit(provider.base).netloc
        self.context: BrowserContext = browser.new_context(
            viewport={"width": 1280, "height": 900}, java_script_enabled=javascript
        )
        self.requests: list[tuple[str, str]] = []  # (url, the asking document)
        self.console: list[str] = []
        self.errors: list[str] = []
        self.context.add_init_script(RECORD_VIOLATIONS)
        self.context.on("request", self._request)
        self.context.on("console", lambda message: self.console.append(message.text))
        self.context.on("weberror", lambda error: self.errors.append(str(error.error)))
        self.page: Page = self.context.new_page()

    def _request(self, request: BrowserRequest) -> None:
        # The document that asked: a frame's own navigation is asked for by its parent.
        frame = request.frame
        if request.is_navigation_request():
            frame = frame.parent_frame or frame
        self.requests.append((request.url, frame.url))

    def to_provider(self) -> list[tuple[str, str]]:
        return [entry for entry in self.requests if urlsplit(entry[0]).netloc == self.provider]

    def violations(self) -> list[str]:
        """Every frame's recorded violations, and the console's reports of them."""
        found: list[str] = []
        for frame in self.page.frames:
            found += frame.evaluate("window.__cspViolations || ['no recorder in this frame']")
        return found + [text for text in self.console if CSP_WORDS.search(text)]

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], f"JavaScript errors: {self.errors}"


@pytest.fixture
def watches(browser: Browser, provider: FakeProvider) -> Iterator[Callable[..., Watch]]:
    made: list[Watch] = []

    def make(**options: Any) -> Watch:
        made.append(Watch(browser, provider, **options))
        return made[-1]

    yield make
    for watch in made:
        watch.close()


Root = Page | FrameLocator


def where(kind: str, server: LiveServer, host: HostSite) -> tuple[str, Callable[[Page], Root], str]:
    """The page to open, where the updates are in it, and where their images come from."""
    if kind == "story":
        return f"{server.url}/stories/storm", lambda page: page, server.url
    if kind == "widget":
        # A strict partner: the policy docs/embedding.md asks for, plus frame-src for
        # the embeds' click-through frames (and Trusted Types, as test_widget.py has).
        url = host.add(
            "widget.html",
            f'<live-blog story="storm" src="{server.url}"></live-blog>',
            script_src=f"{server.url}/static/widget.js",
            csp=(
                f"default-src 'none'; script-src {server.url}; connect-src {server.url}; "
                f"img-src {server.url}; frame-src {server.url}/embed-frame/; "
                "style-src 'self'; require-trusted-types-for 'script'; "
                "trusted-types liveblog-widget"
            ),
        )
        return url, lambda page: page, server.url
    url = host.add(
        "frame.html",
        f'<iframe src="{server.url}/embed/storm" width="1000" height="880" '
        'title="Storm (live updates)" data-liveblog-embed></iframe>',
    )
    return url, lambda page: page.frame_locator("iframe[data-liveblog-embed]"), server.url


def click(button: Locator) -> None:
    """Scroll to the button, then click it, as a reader does. Clicking at once (what
    ``click`` alone does) right after the page scrolled can send the click to a
    cross-site iframe that was at that spot before the scroll (headless Chromium routes
    input to out-of-process frames by hit-test data that lags a scroll): after the video
    loads, the click meant for the post's button lands in the provider's player."""
    button.scroll_into_view_if_needed()
    button.page.evaluate(
        "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )
    button.click()


def shows_the_card_and_asks(watch: Watch, root: Root, images_from: str) -> None:
    """The page is up, with both cards and their consent rows, and the thumbnail shown
    is ours; then nothing at all has gone to the provider."""
    for kind in ("video", "rich"):
        figure = root.locator(f"figure.embed--{kind}")
        name = figure.get_attribute("data-embed-provider-name")
        expect(figure.locator("button.embed__load")).to_have_text(f"Load content from {name}")
        expect(figure.locator("label.embed__always")).to_contain_text(f"Always load {name}")
    watch.page.wait_for_timeout(SETTLE_MS)
    assert watch.to_provider() == []
    assert not [url for url, _ in watch.requests if "/embed-frame/" in url]
    expect(root.locator("iframe")).to_have_count(0)
    thumb = root.locator("figure.embed--video img.embed__thumb")
    # decode() waits until the image is loaded (and fails if it cannot be).
    shown = thumb.evaluate("img => img.decode().then(() => img.currentSrc)")
    assert shown.startswith(f"{images_from}/media/"), shown


def player_plays(root: Root, provider: FakeProvider) -> None:
    """The video's frame is our sandboxed page, with the provider's player inside,
    filling it, in the video's shape."""
    figure = root.locator("figure.embed--video")
    iframe = figure.locator("iframe.embed__frame")
    expect(iframe).to_have_count(1)
    sandbox = (iframe.get_attribute("sandbox") or "").split()
    assert set(sandbox) == SANDBOX and "allow-same-origin" not in sandbox, sandbox
    assert str(iframe.get_attribute("src")).endswith(str(figure.get_attribute("data-embed-frame")))
    frame = iframe.content_frame
    player = frame.locator("iframe")
    expect(player).to_have_attribute("src", f"{provider.base}/player/clip")
    expect(player.content_frame.locator("#player")).to_have_text("Playing")
    # Our frame page runs with an opaque origin: no cookie or storage of ours in reach.
    # (The player inside inherits the sandbox too: an opaque origin, with no cookies or
    # storage of its own. This fake plays regardless; a real player may not.)
    assert frame.locator("body").evaluate("() => self.origin") == "null"
    expect(figure.locator("button.embed__load")).to_have_count(0)
    outer, inner = iframe.bounding_box(), player.bounding_box()
    assert outer is not None and inner is not None
    assert outer["width"] > 400, outer  # the column's width, not a default 300 x 150
    assert abs(outer["height"] - outer["width"] * 9 / 16) <= 2, outer
    assert abs(inner["width"] - outer["width"]) <= 1 and abs(inner["height"] - outer["height"]) <= 1


def post_is_fitted(root: Root) -> None:
    """The rich post's frame ran the provider's script and was fitted to its content
    (provider-frame.js reports it), not left at the 400 px it starts with."""
    iframe = root.locator("figure.embed--rich iframe.embed__frame")
    frame = iframe.content_frame
    expect(frame.locator("body[data-widgets=ran]")).to_have_count(1)
    expect(iframe).not_to_have_css("height", "400px")
    content = frame.locator("body").evaluate(
        "b => { const s = getComputedStyle(b); return b.getBoundingClientRect().height"
        " + parseFloat(s.marginTop) + parseFloat(s.marginBottom); }"
    )
    box = iframe.bounding_box()
    assert box is not None and abs(box["height"] - max(100, content)) <= 2, (box, content)


@pytest.mark.parametrize("kind", ["story", "widget", "iframe"])
def test_provider_hears_nothing_until_the_reader_asks(
    kind: str,
    server: LiveServer,
    host: HostSite,
    provider: FakeProvider,
    story: dict[str, str],
    watches: Callable[..., Watch],
) -> None:
    url, root_of, images_from = where(kind, server, host)
    hits = provider.hits.copy()
    watch = watches()
    page = watch.page
    root = root_of(page)
    page.goto(url)
    shows_the_card_and_asks(watch, root, images_from)
    assert provider.hits - hits == {}

    # The reader ticks "Always load" and loads the video; then loads the post, once.
    video = root.locator("figure.embed--video")
    video.locator("label.embed__always input").check()
    expect(video.locator("iframe")).to_have_count(0)  # ticking alone loads nothing
    click(video.locator("button.embed__load"))
    player_plays(root, provider)
    assert provider.hits["/player"] == hits["/player"] + 1
    rich = root.locator("figure.embed--rich")
    expect(rich.locator("label.embed__always input")).not_to_be_checked()  # per provider
    click(rich.locator("button.embed__load"))
    post_is_fitted(root)
    assert provider.hits["/widgets.js"] == hits["/widgets.js"] + 1
    # Every request to the provider came from inside our frame page.
    assert {parent for _, parent in watch.to_provider()} <= {
        f"{server.url}{video.get_attribute('data-embed-frame')}",
        f"{server.url}{rich.get_attribute('data-embed-frame')}",
    }, watch.to_provider()
    assert watch.violations() == []

    # Reloaded: the video loads with no click, and only then the provider is asked, for
    # the player only; the post of the other provider waits for its click again.
    watch.requests.clear()
    hits = provider.hits.copy()
    page.reload()
    player_plays(root, provider)
    expect(video.locator("label.embed__always input")).to_be_checked()
    expect(rich.locator("button.embed__load")).to_be_visible()
    expect(rich.locator("iframe")).to_have_count(0)
    page.wait_for_timeout(SETTLE_MS)
    frame_page = f"{server.url}{video.get_attribute('data-embed-frame')}"
    assert watch.to_provider() == [(f"{provider.base}/player/clip", frame_page)]
    assert provider.hits - hits == {"/player": 1}
    assert watch.violations() == []

    # Another profile (no stored choice): asked again, and silent until then.
    hits = provider.hits.copy()
    fresh = watches()
    fresh.page.goto(url)
    shows_the_card_and_asks(fresh, root_of(fresh.page), images_from)
    assert provider.hits - hits == {}
    assert fresh.violations() == []


def test_without_javascript_the_card_is_a_link_and_the_provider_hears_nothing(
    server: LiveServer,
    provider: FakeProvider,
    story: dict[str, str],
    watches: Callable[..., Watch],
) -> None:
    hits = provider.hits.copy()
    watch = watches(javascript=False)
    page = watch.page
    page.goto(f"{server.url}/stories/storm")
    for kind in ("video", "rich"):
        link = page.locator(f"figure.embed--{kind} > a.embed__card")
        expect(link).to_have_attribute("href", story[kind])
        expect(link.locator(".embed__title")).to_have_text(
            "Press conference clip" if kind == "video" else "A post post"
        )
    expect(page.locator("figure.embed button, figure.embed input")).to_have_count(0)
    expect(page.locator("iframe")).to_have_count(0)
    thumb = page.locator("figure.embed--video img.embed__thumb")
    expect(thumb).to_have_attribute("src", re.compile(r"^/media/"))
    page.wait_for_load_state("load")
    page.wait_for_timeout(SETTLE_MS)
    assert {urlsplit(url).netloc for url, _ in watch.requests} == {urlsplit(server.url).netloc}
    assert watch.to_provider() == []
    assert provider.hits - hits == {}


def test_on_a_frames_host_of_their_own_the_player_gets_an_origin(
    tmp_path: Path, provider: FakeProvider, watches: Callable[..., Watch]
) -> None:
    """``LIVEBLOG_EMBED_FRAME_URL``: the frames come from a second host name of the same
    server (here "localhost" for the site's "127.0.0.1"), where the frame, and the
    player inside it, have an origin of their own: that host's, which holds nothing of
    the site's (its pages are 404 there: tests/test_embeds.py)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    frames = f"http://localhost:{port}"
    settings = settings_with(provider, tmp_path / "frames", embed_frame_url=frames)
    with run_server(create_app(settings), port=port) as server:
        editor: Editor = server.run(make_editor(server.app, "alice"))
        with httpx.Client(base_url=server.url, headers=bearer(editor.token)) as api:
            made = api.post("/api/stories", json={"title": "S", "slug": "storm", "status": "live"})
            assert made.status_code == 201
            posted = api.post(
                "/api/stories/storm/updates", json={"body": f"{provider.base}/video/clip"}
            )
            assert posted.status_code == 201
        watch = watches()
        page = watch.page
        page.goto(f"{server.url}/stories/storm")
        video = page.locator("figure.embed--video")
        click(video.locator("button.embed__load"))
        iframe = video.locator("iframe.embed__frame")
        assert str(iframe.get_attribute("src")).startswith(f"{frames}/embed-frame/")
        assert set((iframe.get_attribute("sandbox") or "").split()) == SANDBOX | {
            "allow-same-origin"
        }
        frame = iframe.content_frame
        expect(frame.locator("iframe").content_frame.locator("#player")).to_have_text("Playing")
        assert frame.locator("body").evaluate("() => self.origin") == frames
        assert watch.violations() == []
