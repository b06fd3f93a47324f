"""The embeddable widget and the iframe embed in a real browser, on a host page served
from another origin (its own port), against a real server."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect
from pydantic import SecretStr
from sse_starlette.sse import AppStatus
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from liveblog.app import create_app
from liveblog.settings import Settings
from tests.browser.desk import log_in_on_desk
from tests.support import Editor, LiveServer, bearer, make_editor, run_server

WITHIN = 2_000  # ms: an update must be visible this soon after it is posted


class HostSite:
    """A partner's site: static pages on an origin of its own."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.policies: dict[str, str] = {}
        self.url = ""

    def app(self) -> Starlette:
        async def page(request: Request) -> Response:
            name = request.path_params["name"]
            if name == "favicon.ico":  # asked for by every page; not part of the test
                return Response(status_code=204)
            html = self.pages.get(name)
            if html is None:
                return HTMLResponse("", 404)
            csp = self.policies.get(name)
            return HTMLResponse(html, headers={"Content-Security-Policy": csp} if csp else None)

        return Starlette(routes=[Route("/{name}", page)])

    def add(
        self, name: str, body: str, *, style: str = "", script_src: str = "", csp: str = ""
    ) -> str:
        script = f'<script src="{script_src}" async></script>' if script_src else ""
        style = f"<style>{style}</style>" if style else ""
        self.pages[name] = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>Partner site</title>{style}</head><body>{body}{script}</body></html>"
        )
        if csp:
            self.policies[name] = csp
        return f"{self.url}/{name}"


@pytest.fixture
def host() -> Iterator[HostSite]:
    site = HostSite()
    with run_server(site.app()) as live:
        site.url = live.url
        yield site


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Console errors (a CORS refusal shows up here, not as a page error)."""
    errors: list[str] = []

    def collect(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", collect)
    return errors


# Each widget reports what it applied; the host page keeps the time it saw each event.
RECORD_EVENTS = """
window.__seen = {};
document.addEventListener("liveblog:event", (event) => {
  window.__seen[event.detail.kind + ":" + event.detail.id] = {
    at: Date.now(), story: event.target.getAttribute("story"),
  };
});
"""


class Api:
    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(base_url=base_url, headers=bearer(token), timeout=10)

    def story(self, title: str) -> str:
        response = self.http.post("/api/stories", json={"title": title, "status": "live"})
        assert response.status_code == 201, response.text
        slug: str = response.json()["slug"]
        return slug

    def post(self, slug: str, body: str, **fields: Any) -> int:
        response = self.http.post(f"/api/stories/{slug}/updates", json={"body": body, **fields})
        assert response.status_code == 201, response.text
        update_id: int = response.json()["id"]
        return update_id

    def last_seq(self, slug: str) -> int:
        seq: int = self.http.get(f"/api/stories/{slug}").json()["last_seq"]
        return seq


@pytest.fixture
def api(server: LiveServer, editor: Editor) -> Iterator[Api]:
    """The editor's API client on ``server``."""
    client = Api(server.url, editor.token)
    yield client
    client.http.close()


def article(page: Page, slug: str, update_id: int) -> Any:
    # Playwright's CSS selectors pierce open shadow roots.
    return page.locator(f'live-blog[story="{slug}"] article[data-update-id="{update_id}"]')


def test_two_widgets_on_another_origin_stay_live_with_posts_edits_and_deletes(
    server: LiveServer, host: HostSite, page: Page, console_errors: list[str], api: Api
) -> None:
    storm, match = api.story("Storm Aurelia"), api.story("Cup final")
    storm_first = api.post(storm, "Winds reach [100 km/h](/stories/x/updates/1).")
    match_first = api.post(match, "Teams are out.")
    url = host.add(
        "two.html",
        f'<h1>Partner news</h1><live-blog story="{storm}" src="{server.url}" limit="3">'
        f'</live-blog><live-blog story="{match}" src="{server.url}" order="oldest" theme="dark">'
        "</live-blog>",
        script_src=f"{server.url}/static/widget.js",
        # A strict partner: no eval, no inline script or style, Trusted Types enforced.
        # Any violation by the widget would show as a console error (checked at the end).
        csp=(
            f"default-src 'none'; script-src {server.url}; connect-src {server.url}; "
            f"img-src {server.url}; style-src 'self'; "
            "require-trusted-types-for 'script'; trusted-types liveblog-widget"
        ),
    )
    assert urlsplit(url).netloc != urlsplit(server.url).netloc  # really another origin
    page.add_init_script(RECORD_EVENTS)
    page.goto(url)
    expect(article(page, storm, storm_first)).to_contain_text("100 km/h")
    expect(article(page, match, match_first)).to_be_visible()
    expect(page.locator(f'live-blog[story="{storm}"] .title')).to_have_text("Storm Aurelia")
    expect(page.locator(f'live-blog[story="{storm}"][state="live"]')).to_have_count(1)
    expect(page.locator(f'live-blog[story="{match}"][state="live"]')).to_have_count(1)
    # Links in the fragments point at our server, not at the partner's site.
    link = article(page, storm, storm_first).locator(".update__body a")
    assert link.get_attribute("href") == f"{server.url}/stories/x/updates/1"
    assert link.get_attribute("target") == "_blank"

    # Post to each story in turn: each update shows in its own widget only, in time.
    latencies = []
    posted: dict[str, list[int]] = {storm: [storm_first], match: [match_first]}
    for n in range(8):
        slug, other = (storm, match) if n % 2 == 0 else (match, storm)
        started = time.time() * 1000
        update_id = api.post(slug, f"Live update number {n}")
        page.wait_for_function(
            "key => window.__seen[key]", arg=f"update:{update_id}", timeout=WITHIN
        )
        seen = page.evaluate("key => window.__seen[key]", f"update:{update_id}")
        assert seen["story"] == slug
        latencies.append(seen["at"] - started)
        expect(article(page, slug, update_id)).to_contain_text(f"number {n}")
        expect(article(page, other, update_id)).to_have_count(0)
        posted[slug].append(update_id)
    print(
        f"\nwidget post-to-visible over {len(latencies)} updates: "
        f"median {statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms, "
        f"all {[round(x) for x in latencies]}"
    )
    assert max(latencies) < WITHIN

    def shown(slug: str) -> list[int]:
        ids: list[int] = page.locator(
            f'live-blog[story="{slug}"] .timeline > article'
        ).evaluate_all("els => els.map(e => Number(e.dataset.updateId))")
        return ids

    # Newest first and trimmed to limit=3; oldest first keeps the latest 10 (the default).
    assert shown(storm) == posted[storm][::-1][:3]
    assert shown(match) == posted[match]

    newest = posted[storm][-1]
    api.http.patch(f"/api/stories/{storm}/updates/{newest}", json={"body": "Corrected text"})
    expect(article(page, storm, newest)).to_contain_text("Corrected text", timeout=WITHIN)
    expect(article(page, storm, newest).locator(".update__edited")).to_be_visible()
    api.http.delete(f"/api/stories/{match}/updates/{match_first}")
    expect(article(page, match, match_first)).to_have_count(0, timeout=WITHIN)
    expect(article(page, match, posted[match][1])).to_be_visible()
    assert console_errors == []


HOSTILE_CSS = """
* { color: red !important; font-family: "Comic Sans MS", cursive !important;
    font-size: 31px !important; font-style: italic !important; font-weight: 900 !important;
    line-height: 3 !important; letter-spacing: 3px !important; word-spacing: 12px !important;
    text-transform: uppercase !important; text-align: right !important;
    text-decoration: line-through !important; text-shadow: 2px 2px red !important;
    text-indent: 50px !important; white-space: pre !important; visibility: hidden;
    direction: rtl; list-style: square !important; cursor: wait !important; }
article, div, p, h1, h2, h3, header, footer, section, a, span, time, ol, ul, li, img,
strong, em, blockquote, figure { display: none !important; margin: 40px !important;
    padding: 40px !important; border: 9px solid red !important; background: red !important;
    position: fixed !important; opacity: .1 !important; }
live-blog { display: none; }
a:link, a:visited { color: lime !important; }
"""

# Everything inside the widget that styles could change: computed styles and layout.
SNAPSHOT = """
host => {
  const box = host.shadowRoot.querySelector(".lb");
  const origin = box.getBoundingClientRect();
  const props = ["display", "visibility", "color", "background-color", "font-family",
    "font-size", "font-style", "font-weight", "line-height", "letter-spacing",
    "word-spacing", "text-transform", "text-align", "text-indent", "text-shadow",
    "white-space", "direction", "margin-top", "padding-top", "border-top-width",
    "position", "opacity", "cursor"];
  return [box, ...box.querySelectorAll("*")].map((el) => {
    const style = getComputedStyle(el);
    const rect = el.getBoundingClientRect();
    return [el.localName, el.className, ...props.map((p) => style.getPropertyValue(p)),
      Math.round(rect.x - origin.x), Math.round(rect.y - origin.y),
      Math.round(rect.width), Math.round(rect.height)];
  });
}
"""


def test_hostile_host_page_css_does_not_change_the_widget(
    server: LiveServer, host: HostSite, page: Page, tmp_path: Path, api: Api
) -> None:
    slug = api.story("Harbour fire")
    api.post(slug, "Crews **arrive** at [pier 4](/stories/x).", headline="Engines")
    api.post(slug, "> Stay indoors\n\n- one\n- two", key_event=True)
    widget = f'<live-blog story="{slug}" src="{server.url}"></live-blog>'
    script = f"{server.url}/static/widget.js"
    plain = host.add("plain.html", widget, script_src=script)
    hostile = host.add("hostile.html", widget, style=HOSTILE_CSS, script_src=script)

    views: list[Page] = []
    for url in (plain, hostile):
        view = page if not views else page.context.new_page()
        view.goto(url)
        expect(view.locator("live-blog[state=live]")).to_have_count(1)
        expect(view.locator("live-blog article")).to_have_count(2)
        views.append(view)
    plain_view, hostile_view = views
    # The hostile rules really are in force on the page (and on the element itself)...
    outside = hostile_view.locator("live-blog").evaluate(
        "el => [getComputedStyle(el).color, getComputedStyle(el).visibility]"
    )
    assert outside == ["rgb(255, 0, 0)", "hidden"]
    # ...but inside the widget nothing differs: styles, layout, pixels.
    assert hostile_view.locator("live-blog").evaluate(SNAPSHOT) == plain_view.locator(
        "live-blog"
    ).evaluate(SNAPSHOT)
    expect(hostile_view.locator("live-blog article").first).to_be_visible()
    shots = [view.locator("live-blog .lb").screenshot() for view in views]
    if shots[0] != shots[1]:
        for name, shot in zip(("plain", "hostile"), shots, strict=True):
            (tmp_path / f"{name}.png").write_bytes(shot)
    assert shots[0] == shots[1], f"the widget looks different on the hostile page: {tmp_path}"


@contextmanager
def restartable_server(settings: Settings, *, port: int = 0) -> Iterator[LiveServer]:
    """A server that ends its open streams when it stops, as a real one does on SIGTERM.

    uvicorn in a test thread gets no signal, and the signal is what tells sse-starlette
    to end open streams (else shutdown waits for them, then cancels them). So do what
    its handler does, through sse-starlette's documented switch, and reset it after.
    """
    try:
        with run_server(create_app(settings), port=port) as live:
            yield live
            AppStatus.should_exit = True
    finally:
        AppStatus.should_exit = False


def test_widget_catches_up_on_everything_posted_while_its_stream_was_down(
    host: HostSite, page: Page, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", secret_key=SecretStr("test-secret-key"), retry_ms=250
    )
    with restartable_server(settings) as first:
        port = urlsplit(first.url).port
        assert port is not None
        editor = first.run(make_editor(first.app, "alice"))
        api = Api(first.url, editor.token)
        slug = api.story("Night of the count")
        kept, doomed = api.post(slug, "Polls close."), api.post(slug, "Turnout at 61%.")
        url = host.add(
            "one.html",
            f'<live-blog story="{slug}" src="{first.url}"></live-blog>',
            script_src=f"{first.url}/static/widget.js",
        )
        api.http.close()
        page.goto(url)
        expect(page.locator("live-blog[state=live]")).to_have_count(1)
        expect(article(page, slug, doomed)).to_be_visible()
    # The server is gone: the widget notices and keeps trying the same address.
    expect(page.locator("live-blog[state=reconnecting]")).to_have_count(1, timeout=10_000)

    # Meanwhile the newsroom works on (through another server on the same data).
    with run_server(create_app(settings)) as elsewhere:
        api = Api(elsewhere.url, editor.token)
        missed = [api.post(slug, f"Missed update {n}") for n in range(3)]
        api.http.patch(f"/api/stories/{slug}/updates/{kept}", json={"body": "Polls closed."})
        api.http.delete(f"/api/stories/{slug}/updates/{doomed}")
        last_seq = api.last_seq(slug)
        api.http.close()

    with restartable_server(settings, port=port):
        restarted = time.monotonic()
        for n, update_id in enumerate(missed):
            expect(article(page, slug, update_id)).to_contain_text(
                f"Missed update {n}", timeout=10_000
            )
        expect(article(page, slug, kept)).to_contain_text("Polls closed.")
        expect(article(page, slug, doomed)).to_have_count(0)
        expect(page.locator("live-blog[state=live]")).to_have_count(1)
        caught_up = time.monotonic() - restarted
        assert page.locator("live-blog").evaluate("el => el.lastSeq") == last_seq
        shown = page.locator("live-blog .timeline > article").evaluate_all(
            "els => els.map(e => Number(e.dataset.updateId))"
        )
        assert shown == [*missed[::-1], kept]  # each once, newest first
        print(f"\nwidget caught up {len(missed)} missed updates {caught_up:.2f} s after restart")


def test_iframe_embed_fits_its_content_and_stays_live(
    server: LiveServer, host: HostSite, page: Page, api: Api
) -> None:
    slug = api.story("Marathon")
    first = api.post(slug, "Runners are off.")
    # The oEmbed answer's HTML is exactly what a consumer pastes into its page.
    oembed = api.http.get("/oembed", params={"url": f"{server.url}/stories/{slug}"}).json()
    url = host.add("frame.html", f"<h1>Partner</h1>{oembed['html']}")
    page.goto(url)
    frame = page.frame_locator("iframe[data-liveblog-embed]")
    expect(frame.locator(f'article[data-update-id="{first}"]')).to_be_visible()
    iframe = page.locator("iframe[data-liveblog-embed]")

    def heights() -> tuple[float, float]:
        outer = iframe.evaluate("el => el.getBoundingClientRect().height")
        inner = frame.locator("body").evaluate("el => el.getBoundingClientRect().height")
        return outer, inner

    # The resizer fitted the frame to its content (not the snippet's 800 px).
    page.wait_for_function(
        "() => document.querySelector('iframe').style.height !== ''", timeout=WITHIN
    )
    expect(frame.locator("live-blog[state=live]")).to_have_count(1)
    outer, inner = heights()
    assert abs(outer - inner) <= 2 and outer < oembed["height"]

    second = api.post(slug, "Leaders pass 10 km.\n\nA long second paragraph.", headline="10 km")
    expect(frame.locator(f'article[data-update-id="{second}"]')).to_be_visible(timeout=WITHIN)
    page.wait_for_function(
        "h => document.querySelector('iframe').getBoundingClientRect().height > h",
        arg=outer,
        timeout=WITHIN,
    )
    grown, inner = heights()
    assert abs(grown - inner) <= 2
    # Links open outside the frame.
    assert frame.locator(".update__time").first.get_attribute("target") == "_blank"


def test_desk_copy_button_gives_a_snippet_that_works_on_another_site(
    server: LiveServer, host: HostSite, page: Page, editor: Editor, api: Api
) -> None:
    slug = api.story("Budget day")
    update_id = api.post(slug, "The speech begins.")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    # The buttons need copy-snippet.js: the helper waits for the page to load.
    log_in_on_desk(page, server.url, editor.username, editor.password, f"/desk/stories/{slug}")

    for kind in ("iframe", "widget"):
        page.click(f"[data-copy=embed-{kind}]")
        expect(page.locator(f'[data-copy-status="embed-{kind}"]')).to_have_text("Copied.")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.locator(f"#embed-{kind}").input_value()
    assert f'<live-blog story="{slug}"' in copied

    # Pasted as is into a partner's page, the widget snippet works, and takes the
    # partner's styling through the documented hooks only.
    hooks = (
        "live-blog { --liveblog-accent: rgb(0, 128, 0); }"
        " live-blog::part(title) { text-transform: uppercase; }"
    )
    page.goto(host.add("pasted.html", f"<h1>Partner</h1>{copied}", style=hooks))
    expect(article(page, slug, update_id)).to_contain_text("The speech begins.")
    widget = page.locator("live-blog")
    expect(widget.locator(".title")).to_have_css("text-transform", "uppercase")
    expect(widget.locator(".foot a")).to_have_css("color", "rgb(0, 128, 0)")
    box = widget.locator(".lb")
    expect(box).to_have_css("background-color", "rgb(255, 255, 255)")  # light by default
    page.emulate_media(color_scheme="dark")
    expect(box).to_have_css("background-color", "rgb(255, 255, 255)")
    widget.evaluate("el => el.setAttribute('theme', 'auto')")  # follows the reader's setting
    expect(box).to_have_css("background-color", "rgb(18, 18, 18)")
    widget.evaluate("el => el.setAttribute('theme', 'light')")
    expect(box).to_have_css("background-color", "rgb(255, 255, 255)")
    expect(article(page, slug, update_id)).to_be_visible()
    # Pointed at a story that is not there (yet), it says so instead of failing.
    widget.evaluate("el => el.setAttribute('story', 'not-live-yet')")
    expect(page.locator("live-blog[state=unavailable]")).to_have_count(1)
    expect(widget.locator(".title")).to_have_text("This live story is not available.")
    expect(widget.locator("article")).to_have_count(0)
