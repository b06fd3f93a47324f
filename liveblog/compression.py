"""Pages, JSON and feeds sent gzipped, as pure ASGI middleware (Starlette's GZip).

Files under ``/static/`` are left alone: ``liveblog.assets`` sends them brotli- or
gzip-compressed already, with an ETag per encoding. The event stream never comes here
(it is served outside the middleware stack: ``liveblog/live/routing.py``), and GZip
would pass ``text/event-stream`` through untouched anyway, as it does images.
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from liveblog.headers import STATIC_PREFIX

MINIMUM_SIZE = 1024  # bytes; below this a gzip header costs more than it saves
LEVEL = 6  # zlib's default: nearly level 9's size at a fraction of its time


class CompressPages:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=MINIMUM_SIZE, compresslevel=LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(STATIC_PREFIX):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
