"""The embeds' own host name (``LIVEBLOG_EMBED_FRAME_URL``), when a site has one.

A provider's player runs inside our click-through frame (docs/embeds.md). On the site's
own host that frame must stay sandboxed with an opaque origin: if it shared the site's
origin, the provider's script could read the site's pages with a reader's cookies. Some
players refuse to work without an origin of their own (their cookies, their storage).
A second host name that serves nothing but those frames gives them one: there the frame
may be ``allow-same-origin``, because that origin holds nothing of ours. This
middleware makes sure it holds nothing: on that host only the frames and the static
files they load are served; every other path is 404.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

FRAME_HOST_PATHS = ("/embed-frame/", "/static/")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def frame_host(frame_url: str | None) -> str | None:
    """The frames' host as a Host header names it (no default port), lowercased."""
    if not frame_url:
        return None
    parts = urlsplit(frame_url)
    host = (parts.hostname or "").lower()
    port = parts.port
    return (
        host if port is None or str(port) == _DEFAULT_PORTS.get(parts.scheme) else f"{host}:{port}"
    )


def request_host(scope: Scope) -> str:
    host = next((value for name, value in scope.get("headers", ()) if name == b"host"), b"")
    text = host.decode("latin-1").lower()
    name, colon, port = text.rpartition(":")
    if colon and port == _DEFAULT_PORTS.get(scope.get("scheme", "http")) and "]" not in port:
        return name
    return text


def on_frame_host(scope: Scope, frame_url: str | None) -> bool:
    wanted = frame_host(frame_url)
    return wanted is not None and request_host(scope) == wanted


class FrameHostOnly:
    def __init__(self, app: ASGIApp, *, frame_url: str | None) -> None:
        self.app = app
        self.frame_url = frame_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and on_frame_host(scope, self.frame_url)
            and not scope["path"].startswith(FRAME_HOST_PATHS)
        ):
            response = PlainTextResponse(
                "Not found: this host serves only embeds' frames.", status_code=404
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
