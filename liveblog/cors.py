"""Cross-origin reads for embeds, as pure ASGI middleware scoped by path and method.

The widget runs on other sites, so the few read-only resources it fetches (its first
render, the event stream, oEmbed, and its own script files) answer any origin with
``Access-Control-Allow-Origin: *``. Nothing else does: no other path, and no method but
GET and HEAD even on these paths, so no cross-origin page can ever read an answer from
something that changes state. Without ``Allow-Credentials`` browsers send no cookies on
these requests and never let a page read a credentialed answer, so a logged-in editor's
view (drafts) cannot leak through them either.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from liveblog.live import path as stream_path

CORS_PATHS = re.compile(
    r"^/(?:stories/[^/]+/updates\.json|oembed|static/(?:widget|embed-resizer)\.js)$"
    f"|{stream_path.PATTERN.pattern}"
)
READ_METHODS = frozenset({"GET", "HEAD"})
# What EventSource and fetch may send on a reconnect or revalidation.
ALLOWED_HEADERS = "Last-Event-ID, Cache-Control, Accept"
PREFLIGHT_MAX_AGE = "86400"
# What a read of one of these paths gets (the stream adds it to its own: live.routing).
PUBLIC_READ_HEADERS = [(b"access-control-allow-origin", b"*")]


class PublicReadCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or CORS_PATHS.match(scope["path"]) is None:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "OPTIONS":
            requested = Headers(scope=scope).get("access-control-request-method", "")
            if requested in READ_METHODS:
                await self._preflight(send)
                return
        if method not in READ_METHODS:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                for name, value in PUBLIC_READ_HEADERS:
                    headers[name.decode()] = value.decode()
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-origin", b"*"),
                    (b"access-control-allow-methods", b"GET, HEAD"),
                    (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                    (b"access-control-max-age", PREFLIGHT_MAX_AGE.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})
