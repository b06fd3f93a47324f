"""A fake embed provider on loopback, for the link embed tests (docs/embeds.md).

One small Starlette app plays every kind of site a pasted link can lead to: oEmbed
providers of each ``type`` (their links are ``/video/...``, ``/rich/...``, ``/photo/...``,
``/link/...``, claimed by the providers file ``providers_file`` writes), pages with Open
Graph, Twitter card or only a ``<title>``, a page that names its oEmbed endpoint
(discovery, as Mastodon's do), and the hostile ones: a provider that sleeps past the
time limit, one that answers far too much, one that redirects to the cloud metadata
address, one whose every field is an XSS vector. ``hits`` counts the requests per path,
so a test can tell what the server (or a browser) asked for.
"""

from __future__ import annotations

import asyncio
import html
import io
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from liveblog.settings import Settings
from tests.support import migrated_settings_for, run_server

# Markup from a provider that wants to run script on our page, in every field.
HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def thumbnail_png(width: int = 640, height: int = 360) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


class FakeProvider:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.base = ""  # http://localhost:PORT, once served
        # The oEmbed answers for /xss/NAME links (and /page/xss-NAME pages), by NAME.
        self.xss: dict[str, dict[str, Any]] = {}
        self.slow_seconds = 30.0
        # Fields laid over the oEmbed answer of one kind ("video": {"title": ...}): a
        # provider that changed its answer since (a test sets it, and clears it after).
        self.changed: dict[str, dict[str, Any]] = {}

    def providers_file(self, directory: Path) -> Path:
        """A providers list in oembed.com's format: the fake's oEmbed links."""
        kinds = ["video", "rich", "photo", "link", "slow", "huge", "metadata", "loopback", "xss",
                 "broken"]  # fmt: skip
        entries = [
            {
                "provider_name": f"Fake {kind.title()}",
                "provider_url": f"{self.base}/",
                "endpoints": [{"schemes": [f"{self.base}/{kind}/*"], "url": f"{self.base}/oembed"}],
            }
            for kind in kinds
        ]
        path = directory / "providers.json"
        path.write_text(json.dumps(entries), encoding="utf-8")
        return path

    # --- routes ------------------------------------------------------------------------

    async def oembed(self, request: Request) -> Response:
        self.hits["/oembed"] += 1
        link = request.query_params.get("url", "")
        kind, _, name = urlsplit(link).path.strip("/").partition("/")
        base = self.base
        answers: dict[str, dict[str, Any]] = {
            "video": {
                "type": "video",
                "title": f"Press conference {name}",
                "author_name": "Fake Channel",
                "provider_name": "FakeTube",
                "width": 640,
                "height": 360,
                "thumbnail_url": f"{base}/thumb.png",
                "html": f'<iframe src="{base}/player/{name}" width="640" height="360" '
                'allowfullscreen onload="alert(1)"></iframe><script>alert(1)</script>',
            },
            "rich": {
                "type": "rich",
                "title": f"A post {name}",
                "author_name": "@minister",
                "html": f'<blockquote class="post"><p>We will act.</p><a href="{link}">'
                f'link</a></blockquote><script async src="{base}/widgets.js"></script>'
                "<script>document.cookie</script>",
            },
            "photo": {"type": "photo", "title": "Flood photo", "url": f"{base}/thumb.png"},
            "link": {"type": "link", "title": "Just a link", "author_name": "Someone"},
            "xss": self.xss.get(name, {}),
        }
        if kind == "slow":
            await asyncio.sleep(self.slow_seconds)
        if kind == "huge":
            return Response(b"{" + b" " * 5_000_000 + b"}", media_type="application/json")
        if kind == "metadata":
            return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)
        if kind == "loopback":  # another port of this machine, which nobody allowed
            return RedirectResponse("http://127.0.0.1:9/secret", status_code=307)
        if kind == "broken":
            return Response("<html>not json</html>", media_type="application/json")
        if kind not in answers:
            return JSONResponse({"error": "no such thing"}, status_code=404)
        return JSONResponse({**answers[kind], **self.changed.get(kind, {})})

    async def page(self, request: Request) -> Response:
        """HTML pages: what a link no provider claims leads to."""
        name = request.path_params["name"]
        self.hits[f"/page/{name}"] += 1
        base = self.base
        heads = {
            "og": f'<meta property="og:title" content="Storm reaches the coast">'
            f'<meta property="og:site_name" content="Coast News">'
            f'<meta property="og:image" content="{base}/thumb.png">'
            f'<meta name="author" content="Jo Reporter"><title>ignored</title>',
            "twitter": f'<meta name="twitter:title" content="Twitter card title">'
            f'<meta name="twitter:image" content="{base}/thumb.png">',
            "title": "<title>  Only a\n title </title>",
            "discovery": f'<link rel="alternate" type="application/json+oembed" '
            f'href="{base}/oembed?url={base}/rich/toot">'
            '<meta property="og:site_name" content="mastodon.example">',
            "hostile": f'<title>{HOSTILE}</title><meta property="og:site_name" '
            f'content="{HOSTILE.replace(chr(34), "&quot;")}">',
        }
        if name.startswith("xss-"):
            # A hostile page: the vector raw in <title>, escaped in the meta tags, and an
            # oEmbed endpoint of its own (discovery), so even the provider name is theirs.
            answer = self.xss.get(name[4:], {})
            vector = str(answer.get("title", ""))
            quoted = html.escape(vector, quote=True)
            heads[name] = (
                f"<title>{vector}</title>"
                f'<meta property="og:site_name" content="{quoted}">'
                f'<meta name="author" content="{quoted}">'
                f'<link rel="alternate" type="application/json+oembed" '
                f'href="{base}/oembed?url={base}/xss/{name[4:]}">'
            )
        if name not in heads:
            return HTMLResponse("<title>Not found</title>", status_code=404)
        return HTMLResponse(f"<!DOCTYPE html><html><head>{heads[name]}</head><body>x</body></html>")

    async def player(self, request: Request) -> Response:
        self.hits["/player"] += 1
        return HTMLResponse("<!DOCTYPE html><title>player</title><p id=player>Playing</p>")

    async def widgets(self, request: Request) -> Response:
        self.hits["/widgets.js"] += 1
        return Response("document.body.dataset.widgets = 'ran';", media_type="text/javascript")

    async def thumb(self, request: Request) -> Response:
        self.hits["/thumb.png"] += 1
        return Response(thumbnail_png(), media_type="image/png")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oembed", self.oembed),
                Route("/page/{name}", self.page),
                Route("/player/{name}", self.player),
                Route("/widgets.js", self.widgets),
                Route("/thumb.png", self.thumb),
            ]
        )


@contextmanager
def serving(name: str = "127.0.0.1") -> Iterator[FakeProvider]:
    """A fake provider on loopback, addressed as ``http://{name}:PORT`` (``localhost``
    makes it another site than an app on 127.0.0.1, as a real provider is)."""
    fake = FakeProvider()
    with run_server(fake.app()) as live:
        fake.base = live.url.replace("//127.0.0.1:", f"//{name}:")
        yield fake


def settings_with(fake: FakeProvider, data_dir: Path, **overrides: Any) -> Settings:
    """An app's settings that let it fetch from ``fake`` and know its providers, as an
    operator allows a local service; the fake's counters start again."""
    fake.hits.clear()
    fake.changed.clear()
    data_dir.mkdir(parents=True, exist_ok=True)
    return migrated_settings_for(
        data_dir,
        fetch_allow_hosts=urlsplit(fake.base).netloc,
        oembed_providers=fake.providers_file(data_dir),
        **overrides,
    )
