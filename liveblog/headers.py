"""Security headers on every response, as pure ASGI middleware (it never buffers a body).

* ``Content-Security-Policy``: scripts, styles, fonts and connections only from this
  site, and no inline script or style at all (every script is a file under /static/),
  so markup that slipped past the sanitizer still could not run. Images may come from
  any http(s) address because editors link images by URL; they cannot run script.
* ``X-Content-Type-Options: nosniff``: a JSON or text response is never sniffed into HTML.
* ``Referrer-Policy``: other sites learn our origin at most, never a desk or draft URL.
* Framing is denied (``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``) on every
  page except the embed pages under ``/embed/`` and the link embeds' click-through
  frames under ``/embed-frame/`` (made to be framed by any site; those views set their
  own policies) and the files under ``/static/`` (the widget's scripts are loaded by
  other sites; framing means nothing for a script or stylesheet).
* A page may frame only those click-through frames (``frame-src``: the site's
  ``/embed-frame/``, or ``'self'`` while the site's address is not configured): a
  provider's player never loads into our page itself, only into that sandboxed frame,
  and only after the reader asks (docs/embeds.md).
* ``Strict-Transport-Security`` when the site is configured as served over HTTPS.

A header the view set itself is kept: the view knows better than this blanket policy.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EMBED_PREFIX = "/embed/"
FRAME_PREFIX = "/embed-frame/"
STATIC_PREFIX = "/static/"

_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: https: http:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "media-src": "'self' https:",
    "frame-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
}


def frame_source(frame_base: str | None) -> str:
    """What a page may frame: ``/embed-frame/`` under ``frame_base`` (the frames' own
    host, else ``LIVEBLOG_BASE_URL``); with neither, ``'self'`` (every other page of
    ours refuses to be framed, so that still leaves only the frames and the embed page)."""
    return frame_base.rstrip("/") + FRAME_PREFIX if frame_base else "'self'"


def content_security_policy(*, framing: bool, frame_src: str = "'self'") -> str:
    """The policy for a page; ``framing`` is True for pages other sites may frame;
    ``frame_src``: what it may frame (``frame_source``)."""
    directives = dict(_POLICY)
    directives["frame-src"] = frame_src
    if not framing:
        directives["frame-ancestors"] = "'none'"
    return "; ".join(f"{name} {value}" for name, value in directives.items())


PAGE_CSP = content_security_policy(framing=False)
EMBED_CSP = content_security_policy(framing=True)
HSTS = "max-age=31536000"


def headers_for(path: str, *, https: bool, frame_src: str = "'self'") -> dict[str, str]:
    """The security headers a response to ``path`` gets (unless the view set its own)."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }
    if https:
        headers["Strict-Transport-Security"] = HSTS
    if path.startswith(STATIC_PREFIX):
        return headers
    if path.startswith(FRAME_PREFIX):
        return headers  # the frame's view sets its own policy (liveblog/views/embed_frame.py)
    if path.startswith(EMBED_PREFIX):
        headers["Content-Security-Policy"] = (
            EMBED_CSP
            if frame_src == "'self'"
            else content_security_policy(framing=True, frame_src=frame_src)
        )
        return headers
    headers["Content-Security-Policy"] = (
        PAGE_CSP
        if frame_src == "'self'"
        else content_security_policy(framing=False, frame_src=frame_src)
    )
    headers["X-Frame-Options"] = "DENY"
    return headers


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, https: bool, frame_base: str | None = None) -> None:
        self.app = app
        self.https = https
        self.frame_src = frame_source(frame_base)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = headers_for(scope["path"], https=self.https, frame_src=self.frame_src)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                for name, value in wanted.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
