"""The ASGI application: Starlette, with the event stream taken out of its stack.

Every request goes through Starlette (its error pages, the app's middleware list, the
router) except ``GET``/``HEAD /stories/{slug}/events``, the reader hot path, which goes
straight to the stream endpoint. A stream is a suspended ASGI call for as long as the
reader stays, and every layer between the server and the endpoint wraps ``send`` and
keeps a frame alive: measured with ``bench/`` at 10,000 readers, Starlette's two
layers, the router and the app's four middlewares cost about 6 KiB per idle reader and
a coroutine call each per reader per event (``docs/performance.md``).

What those layers do for a stream, the stream endpoint does itself, from the same
sources: its headers are ``liveblog.headers``' policy for the path plus the public-read
CORS header (``stream_headers``), it applies the per-client stream cap
(``liveblog.streamcap``), and it answers its own errors (404, 204). A request body is
never read. ``tests/test_stream_path.py`` checks that stream responses carry what the
middleware would have added. Anything else on that path (``OPTIONS`` preflights, other
methods) still goes through Starlette.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from liveblog import cors, headers

# The same path Starlette's route "/stories/{slug}/events" matches ({slug}: no slash).
STREAM_PATH = re.compile(r"^/stories/(?P<slug>[^/]+)/events$")
STREAM_METHODS = frozenset({"GET", "HEAD"})


def stream_headers(*, https: bool) -> list[tuple[bytes, bytes]]:
    """What the app's middleware adds to a response on the stream's path."""
    added = headers.headers_for("/stories/", https=https)  # the policy by path prefix
    pairs = [(name.lower().encode(), value.encode()) for name, value in added.items()]
    return [*pairs, *cors.PUBLIC_READ_HEADERS]


class LiveblogApp(Starlette):
    def __init__(self, *, stream_endpoint: ASGIApp, **options: Any) -> None:
        super().__init__(**options)
        self.stream_endpoint = stream_endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in STREAM_METHODS:
            match = STREAM_PATH.match(scope["path"])
            if match is not None:
                scope["app"] = self
                scope["path_params"] = {"slug": match["slug"]}
                await self.stream_endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
