"""``GET /embed-frame/{key}``: a link embed's click-through, the only place where a
provider's player or script ever runs (docs/embeds.md).

The story page loads this into an iframe only after the reader asks. The document is
sandboxed by its own CSP (``sandbox``, without ``allow-same-origin``): it runs with an
opaque origin, so neither the provider's markup nor its scripts can read our cookies or
reach our pages, even when this address is opened directly. Its policy names what it
may load: the origins of the provider's iframes and scripts (kept when the link was
fetched), and our own stylesheet and size reporter.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liveblog import embedding
from liveblog.frame_host import on_frame_host
from liveblog.state import get_liveblog

SANDBOX = "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox allow-presentation"
# Only on the frames' own host (liveblog/frame_host.py), whose origin holds nothing of ours.
OWN_ORIGIN = " allow-same-origin"
CACHE = "public, max-age=300"


def frame_policy(site: str, origins: list[str], *, own_origin: bool = False) -> str:
    sources = " ".join(origins)
    return "; ".join(
        [
            SANDBOX + (OWN_ORIGIN if own_origin else ""),
            "default-src 'none'",
            f"script-src {site} {sources}",
            f"frame-src {sources}",
            f"style-src {site} 'unsafe-inline' {sources}",
            "img-src https: http: data:",
            "media-src https: http: blob:",
            "font-src https: http: data:",
            f"connect-src https: {sources}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors *",  # the widget frames it on other sites' pages
        ]
    )


async def embed_frame(request: Request) -> Response:
    liveblog = get_liveblog(request)
    embed = None
    if liveblog.embeds is not None:
        embed = await liveblog.embeds.by_key(request.path_params["key"])
    if embed is None or not embed.frame_html or not embed.frame_origins:
        raise HTTPException(404, "No such embed.")
    html = liveblog.renderer.templates.get_template("embed_frame.html").render(embed=embed)
    own_origin = on_frame_host(request.scope, liveblog.settings.embed_frame_url)
    site = str(request.base_url).rstrip("/") if own_origin else embedding.site_url(request)
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": frame_policy(
                site, embed.frame_origins.split(), own_origin=own_origin
            ),
            "Cache-Control": CACHE,
            "X-Robots-Tag": "noindex",
        },
    )


routes = [Route("/embed-frame/{key}", embed_frame, methods=["GET"], name="embed_frame")]
