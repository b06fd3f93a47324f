"""``python -m bench.embed_weight``: what five link embeds cost a reader of the demo
story before any click, against the same embeds loaded the providers' usual way.

The product as a user starts it (``liveblog demo --no-serve`` to seed the demo story,
``liveblog token demo`` for an API token, then ``liveblog serve``, default logging:
bench/crowd/server.py). Two settings are set for it, and only because the providers here
are fake and on loopback: ``LIVEBLOG_OEMBED_PROVIDERS`` (a providers list in oembed.com's
format claiming the fake's links) and ``LIVEBLOG_FETCH_ALLOW_HOSTS`` (the fetcher refuses
loopback otherwise). The fake provider (tests/embed_provider.py) runs on 127.0.0.1 and is
addressed as ``http://localhost:PORT``, another host than the app's ``127.0.0.1:PORT``;
its video thumbnails are like a YouTube ``maxresdefault.jpg``: 1280x720 JPEGs of about
160 KB with photographic-like content (a smooth gradient plus noise), one per video.

In headless Chromium (Playwright), at a desktop viewport (1280x900) and a phone one
(412x915 at 2.625 device pixels per CSS pixel, a Pixel-class phone), the story page is
loaded cold (a new browser context: no cache, no storage) until the network is idle
(no request in flight for 500 ms, the page's live stream aside), then scrolled to the
bottom a screen at a time (lazy images load as they come into view) and measured again.
Bytes are Chromium's own count of what came over the wire for each request (CDP
``Network.loadingFinished`` ``encodedDataLength``: headers and compressed bodies), by
type and by host. This is done for the demo story as seeded, then again after five
updates posted through the JSON API, each a link on its own line and a caption: three
"video" links (YouTube-like) and two "rich" ones (posts, X-like, with no thumbnail, as
X's oEmbed gives none). The difference is what the five cards cost. The provider's own
request counter must not move while the browser reads the page: it gets no request.

Measured here: everything under "measured". Cited, not measured (this sandbox cannot
reach the providers): the usual way's figures,

- a standard YouTube embed downloads around 1 MB on page load: Fershad Irani, "YouTube
  facades with Cloudflare Workers",
  https://fershad.com/writing/youtube-facades-with-cloudflare-workers/
- one embedded tweet makes about 27 requests and downloads about 600 KB over the wire,
  1.6 MB of JavaScript: Misko Hevery, "How To Embed Tweets Without a Performance
  Penalty", Builder.io blog, 19 January 2023,
  https://www.builder.io/blog/how-to-embed-tweets-without-a-performance-penalty

so three videos and two posts, embedded the usual way, cost about 3 x 1 MB + 2 x 600 KB
= 4.2 MB and 54 requests or more to third parties before the reader chose anything.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from PIL import Image, ImageChops
from playwright.sync_api import Browser, CDPSession, Page, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.crowd.server import Server, liveblog_command
from liveblog.demo import DEMO_SLUG, DEMO_USERNAME
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.embed_provider import FakeProvider
from tests.support import run_server

VIEWPORTS = {
    "desktop 1280x900": {"width": 1280, "height": 900, "scale": 1.0, "mobile": False},
    "phone 412x915 @2.625": {"width": 412, "height": 915, "scale": 2.625, "mobile": True},
}
KINDS = {
    "Document": "document",
    "Stylesheet": "CSS",
    "Script": "JS",
    "Image": "images",
    "Font": "fonts",
}
KIND_ORDER = ("document", "CSS", "JS", "images", "fonts", "other")
QUIET_MS = 500  # "network idle": nothing in flight for this long
IDLE_LIMIT_S = 20.0
EMBED_UPDATES = [
    ("video", "minister-statement", "The minister's statement at 14:00, in full."),
    ("rich", "minister-post", "The minister, a few minutes ago."),
    ("video", "harbour-wall", "Waves over the harbour wall, filmed by a reader."),
    ("video", "coastguard-briefing", "The coastguard's briefing on the evacuation."),
    ("rich", "fire-service-post", "The fire service on the closed roads."),
]
FIGURE_RE = re.compile(r'<figure class="embed\b.*?</figure>', re.S)
# Published figures (see the module docstring for the sources).
YOUTUBE_BYTES = 1_000_000
YOUTUBE_SOURCE = (
    'Fershad Irani, "YouTube facades with Cloudflare Workers", '
    "fershad.com/writing/youtube-facades-with-cloudflare-workers"
)
TWEET_BYTES = 600_000
TWEET_REQUESTS = 27
TWEET_JS_BYTES = 1_600_000
TWEET_SOURCE = (
    'Misko Hevery, "How To Embed Tweets Without a Performance Penalty", '
    "Builder.io blog, 19 Jan 2023"
)


# --- the fake provider, with thumbnails like a real video's ----------------------------


def photo_like_jpeg(name: str, width: int = 1280, height: int = 720) -> bytes:
    """A JPEG about as heavy as a YouTube ``maxresdefault.jpg`` (~160 KB): smooth
    gradients (one per channel, turned by ``name``) under coarse noise, like a photo's
    shapes and grain, rather than a flat colour that compresses to nothing."""
    turn = zlib.crc32(name.encode()) % 4
    linear = Image.linear_gradient("L").resize((width, height))
    radial = Image.radial_gradient("L").resize((width, height))
    across = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90)
    bases = [linear, radial, across.resize((width, height))]
    bases = bases[turn % 3 :] + bases[: turn % 3]
    channels = []
    for base in bases:
        coarse = Image.effect_noise((width // 8, height // 8), 30)
        channel = ImageChops.add(
            base, coarse.resize((width, height), Image.Resampling.BICUBIC), offset=-128
        )
        channels.append(
            ImageChops.add(channel, Image.effect_noise((width, height), 2), offset=-128)
        )
    buffer = io.BytesIO()
    Image.merge("RGB", channels).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


class VideoSiteProvider(FakeProvider):
    """The tests' fake provider, whose videos each have a thumbnail of their own, a
    1280x720 JPEG at ``/thumb/NAME.jpg``."""

    def __init__(self) -> None:
        super().__init__()
        self.thumbs: dict[str, bytes] = {}

    async def oembed(self, request: Request) -> Response:
        answer = await super().oembed(request)
        kind, _, name = urlsplit(request.query_params.get("url", "")).path.strip("/").partition("/")
        if kind != "video" or answer.status_code != 200:
            return answer
        data = json.loads(bytes(answer.body))
        data["thumbnail_url"] = f"{self.base}/thumb/{name}.jpg"
        data["width"], data["height"] = 1280, 720
        return Response(json.dumps(data), media_type="application/json")

    async def thumb_jpeg(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.hits["/thumb/"] += 1
        if name not in self.thumbs:
            self.thumbs[name] = photo_like_jpeg(name)
        return Response(self.thumbs[name], media_type="image/jpeg")

    def app(self) -> Starlette:
        app = super().app()
        app.router.routes.append(Route("/thumb/{name}.jpg", self.thumb_jpeg))
        return app


# --- what the browser downloads ---------------------------------------------------------


@dataclass
class Fetch:
    url: str
    kind: str
    bytes: int = 0
    done: bool = False


@dataclass
class Traffic:
    """Every request of one page, from Chromium's DevTools protocol."""

    fetches: dict[str, Fetch] = field(default_factory=dict)

    def attach(self, cdp: CDPSession) -> None:
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.dataReceived", self._data)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.loadingFailed", self._failed)
        cdp.send("Network.enable")

    def _sent(self, event: dict[str, Any]) -> None:
        if event.get("redirectResponse"):  # the same id goes on: the redirect is one more
            self.fetches[event["requestId"] + f"@{len(self.fetches)}"] = Fetch(
                event["redirectResponse"]["url"], "other", done=True
            )
        kind = KINDS.get(event.get("type", ""), "other")
        self.fetches[event["requestId"]] = Fetch(event["request"]["url"], kind)

    def _data(self, event: dict[str, Any]) -> None:
        fetch = self.fetches.get(event["requestId"])
        if fetch is not None and not fetch.done:  # a stream never finishes: its bytes so far
            fetch.bytes += int(event.get("encodedDataLength", 0))

    def _finished(self, event: dict[str, Any]) -> None:
        fetch = self.fetches.get(event["requestId"])
        if fetch is not None:
            fetch.bytes, fetch.done = int(event["encodedDataLength"]), True

    def _failed(self, event: dict[str, Any]) -> None:
        fetch = self.fetches.get(event["requestId"])
        if fetch is not None:
            fetch.done = True

    def in_flight(self) -> int:
        """Requests not finished, the page's live stream (an EventSource) aside."""
        return sum(1 for f in self.fetches.values() if not f.done and "/events" not in f.url)

    def snapshot(self) -> list[Fetch]:
        return [Fetch(f.url, f.kind, f.bytes, f.done) for f in self.fetches.values()]


def wait_idle(page: Page, traffic: Traffic) -> None:
    deadline = time.monotonic() + IDLE_LIMIT_S
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        page.wait_for_timeout(50)
        if traffic.in_flight():
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_MS / 1000:
            return
    raise RuntimeError(f"the network was not idle within {IDLE_LIMIT_S:.0f} s")


@dataclass
class Visit:
    first: list[Fetch]  # loaded, network idle, not scrolled
    scrolled: list[Fetch]  # then scrolled to the bottom, network idle again


def visit(browser: Browser, url: str, viewport: dict[str, Any]) -> Visit:
    context = browser.new_context(
        viewport={"width": viewport["width"], "height": viewport["height"]},
        device_scale_factor=viewport["scale"],
        is_mobile=viewport["mobile"],
        has_touch=viewport["mobile"],
    )
    try:
        page = context.new_page()
        traffic = Traffic()
        traffic.attach(context.new_cdp_session(page))
        page.goto(url, wait_until="load")
        wait_idle(page, traffic)
        first = traffic.snapshot()
        # A reader reading down: a screen at a time, so every lazy image comes into view.
        for _ in range(200):
            at_bottom = page.evaluate(
                "() => { window.scrollBy(0, window.innerHeight);"
                " return window.scrollY + window.innerHeight >="
                " document.documentElement.scrollHeight - 2; }"
            )
            page.wait_for_timeout(150)
            if at_bottom:
                break
        wait_idle(page, traffic)
        return Visit(first, traffic.snapshot())
    finally:
        context.close()


# --- the figures ------------------------------------------------------------------------


@dataclass
class Totals:
    requests: int
    bytes: int
    by_kind: dict[str, tuple[int, int]]
    by_host: dict[str, tuple[int, int]]


def totals(fetches: list[Fetch]) -> Totals:
    kinds: Counter[str] = Counter()
    kind_bytes: Counter[str] = Counter()
    hosts: Counter[str] = Counter()
    host_bytes: Counter[str] = Counter()
    for fetch in fetches:
        host = urlsplit(fetch.url).netloc or urlsplit(fetch.url).scheme
        kinds[fetch.kind] += 1
        kind_bytes[fetch.kind] += fetch.bytes
        hosts[host] += 1
        host_bytes[host] += fetch.bytes
    return Totals(
        requests=len(fetches),
        bytes=sum(f.bytes for f in fetches),
        by_kind={kind: (kinds[kind], kind_bytes[kind]) for kind in KIND_ORDER},
        by_host={host: (hosts[host], host_bytes[host]) for host in sorted(hosts)},
    )


def kb(n: float) -> str:
    return f"{n / 1000:,.1f} KB"


def table(title: str, without: Totals, with_: Totals) -> None:
    print(f"  {title}")
    print(f"    {'':<22} {'demo story':>20} {'+ 5 embeds':>20} {'difference':>20}")

    def row(label: str, a: tuple[int, int], b: tuple[int, int]) -> None:
        cells = [f"{n:>3} req {kb(size):>11}" for n, size in (a, b)]
        cells.append(f"{b[0] - a[0]:>+3} req {('+' if b[1] >= a[1] else '') + kb(b[1] - a[1]):>11}")
        print(f"    {label:<22} " + " ".join(f"{cell:>20}" for cell in cells))

    row("total", (without.requests, without.bytes), (with_.requests, with_.bytes))
    for kind in KIND_ORDER:
        row(kind, without.by_kind[kind], with_.by_kind[kind])
    for host in sorted(set(without.by_host) | set(with_.by_host)):
        row(f"host {host}", without.by_host.get(host, (0, 0)), with_.by_host.get(host, (0, 0)))


# --- the run ----------------------------------------------------------------------------


def user_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("LIVEBLOG_")}


def liveblog(*args: str) -> str:
    """``liveblog ARGS`` as a user types it; its stdout."""
    done = subprocess.run(
        [liveblog_command(), *args], env=user_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"liveblog {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def post_embeds(api: httpx.Client, provider_base: str) -> list[dict[str, Any]]:
    """The five updates; the cards the API says they got."""
    cards: list[dict[str, Any]] = []
    for kind, name, caption in EMBED_UPDATES:
        body = f"Latest from the coast:\n\n{provider_base}/{kind}/{name}\n{caption}"
        answer = api.post(f"/api/stories/{DEMO_SLUG}/updates", json={"body": body})
        answer.raise_for_status()
        embeds = answer.json().get("embeds") or []
        if len(embeds) != 1 or embeds[0].get("frame") is None:
            raise RuntimeError(f"{kind}/{name} did not become a playable embed: {embeds}")
        cards.append(embeds[0])
    return cards


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.embed_weight",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"Chromium not found at {CHROMIUM} (Debian package 'chromium')")
    work = Path(tempfile.mkdtemp(prefix="embed-weight-"))
    provider = VideoSiteProvider()
    try:
        with run_server(provider.app()) as fake:
            provider.base = fake.url.replace("127.0.0.1", "localhost")
            providers = provider.providers_file(work)
            data_dir = work / "data"
            liveblog("demo", "--no-serve", "--data-dir", str(data_dir))
            token = liveblog("token", DEMO_USERNAME, "--data-dir", str(data_dir), "--name", "bench")
            server = Server(
                data_dir,
                work / "server.log",
                env={
                    "LIVEBLOG_OEMBED_PROVIDERS": str(providers),
                    "LIVEBLOG_FETCH_ALLOW_HOSTS": urlsplit(provider.base).netloc,
                },
            )
            server.start()
            try:
                asyncio.run(server.answering())
                run(provider, f"http://127.0.0.1:{server.port}", token.strip())
            finally:
                server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(provider: VideoSiteProvider, base_url: str, token: str) -> None:
    page_url = f"{base_url}/stories/{DEMO_SLUG}"
    provider_host = urlsplit(provider.base).netloc
    visits: dict[str, dict[str, Visit]] = {"without": {}, "with": {}}
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        for name, viewport in VIEWPORTS.items():
            visits["without"][name] = visit(browser, page_url, viewport)
        server_fetches = sum(provider.hits.values())
        cards = post_embeds(api, provider.base)
        server_fetches = sum(provider.hits.values()) - server_fetches
        hits_before = sum(provider.hits.values())
        for name, viewport in VIEWPORTS.items():
            visits["with"][name] = visit(browser, page_url, viewport)
        browser_hits = sum(provider.hits.values()) - hits_before
        browser.close()
    html = api.get(f"/stories/{DEMO_SLUG}").text
    api.close()

    print(f"Demo story {page_url}, cold load in headless Chromium ({CHROMIUM}).")
    print(f"Fake provider at {provider.base} (another host than the app's).")
    print(
        f"The server fetched from the provider {server_fetches} times while the 5 updates "
        "were saved (oEmbed and thumbnails, once each)."
    )
    print()
    print("MEASURED here (bytes over the wire as Chromium counts them: headers + bodies):")
    provider_requests = 0
    for name in VIEWPORTS:
        without, with_ = visits["without"][name], visits["with"][name]
        print(f"\n{name}")
        table("page loaded, network idle, not scrolled", totals(without.first), totals(with_.first))
        table("then scrolled to the bottom", totals(without.scrolled), totals(with_.scrolled))
        for visit_ in (without, with_):
            provider_requests += sum(
                1 for f in visit_.scrolled if urlsplit(f.url).netloc == provider_host
            )
        thumbs = [
            f
            for f in with_.scrolled
            if any(
                card["thumbnail_url"]
                and urlsplit(f.url).path.startswith(card["thumbnail_url"].rsplit(".", 1)[0])
                for card in cards
            )
        ]
        print("  card thumbnails the browser fetched (srcset candidate picked, bytes):")
        for fetch in thumbs:
            path = urlsplit(fetch.url).path
            match = re.search(r"-(\d+)w\.\w+$", path)
            width = f"{match[1]}w" if match else "full size (1280w)"
            print(f"    {path:<52} {width:>18} {kb(fetch.bytes):>11}")
    print()
    if provider_requests or browser_hits:
        raise SystemExit(
            f"FAIL: the browser reached the provider: {provider_requests} requests seen, "
            f"{browser_hits} counted by the provider"
        )
    print(
        f"Requests from the browser to the provider's host {provider_host}: 0 "
        f"(the provider's own counter agrees: {browser_hits} while the pages were read)."
    )

    figures = FIGURE_RE.findall(html)
    if len(figures) != len(EMBED_UPDATES):
        raise SystemExit(f"FAIL: {len(figures)} embed cards on the page, not {len(EMBED_UPDATES)}")
    print("\nCard markup in the page (each <figure>, as served, before compression):")
    for (kind, name, _), figure in zip(EMBED_UPDATES, figures[::-1], strict=False):
        print(f"  {kind:<6} {name:<22} {len(figure.encode()):>6} bytes")
    print("Card thumbnails in our media store:")
    for card in cards:
        if card["thumbnail_url"]:
            full = httpx.get(base_url + card["thumbnail_url"]).content
            print(
                f"  {card['thumbnail_url']}: {card['thumbnail_width']}x"
                f"{card['thumbnail_height']}, {kb(len(full))} (full size; srcset has smaller)"
            )
        else:
            print(f"  {card['url']}: no thumbnail (the provider gives none)")

    print("\nOURS vs THE PROVIDERS' USUAL WAY, 3 videos + 2 posts, before the reader clicks:")
    for name in VIEWPORTS:
        for label, attr in (("first view", "first"), ("scrolled to the bottom", "scrolled")):
            a = totals(getattr(visits["without"][name], attr))
            b = totals(getattr(visits["with"][name], attr))
            print(
                f"  measured, ours, {name}, {label}: {kb(b.bytes - a.bytes)} more, "
                f"{b.requests - a.requests:+d} requests, all to our own host; 0 to providers"
            )
    usual = 3 * YOUTUBE_BYTES + 2 * TWEET_BYTES
    print(
        f"  published, usual way: 3 x {kb(YOUTUBE_BYTES)} (YouTube embed) + 2 x "
        f"{kb(TWEET_BYTES)} (embedded tweet) = {kb(usual)}, and {2 * TWEET_REQUESTS}+ "
        f"requests to third parties (2 x {TWEET_REQUESTS} for the tweets, plus YouTube's); "
        f"the tweets alone bring 2 x {kb(TWEET_JS_BYTES)} of JavaScript to run"
    )
    print(f"    YouTube: {YOUTUBE_SOURCE}")
    print(f"    tweets:  {TWEET_SOURCE}")
    print("  (published figures are cited, not measured here: this machine has no way out)")


if __name__ == "__main__":
    main()
