"""The way in: Starlette for everything, except the reader stream, taken out of its stack.

Every request goes through Starlette (its error pages, the app's middleware list, the
router) except ``GET``/``HEAD`` on the stream's path (``liveblog.live.path``), the
reader hot path, which goes straight to the stream endpoint. A stream is a suspended
ASGI call for as long as the reader stays, and every layer between the server and the
endpoint wraps ``send`` and keeps a frame alive: measured with ``bench/`` at 10,000
readers, Starlette's two layers, the router and the app's four middlewares cost about
6 KiB per idle reader and a coroutine call each per reader per event
(``docs/performance.md``).

What those layers do for a stream, the stream endpoint does itself, from the same
sources: its headers are ``liveblog.headers``' policy for the path plus the public-read
CORS header (``stream_headers``), it applies the per-client stream cap
(``liveblog.live.cap``), and it answers its own errors (404, 204). A request body is
never read. ``tests/test_stream_path.py`` checks that stream responses carry what the
middleware would have added. Anything else on that path (``OPTIONS`` preflights, other
methods) still goes through Starlette, by the route ``route`` makes (which also gives
``url_for`` the path).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from liveblog import cors, headers
from liveblog.live.cap import StreamCap
from liveblog.live.endpoint import StoryEvents
from liveblog.live.path import METHODS, PATH, PATTERN


def stream_headers(*, https: bool, frame_src: str = "'self'") -> list[tuple[bytes, bytes]]:
    """What the app's middleware adds to a response on the stream's path."""
    added = headers.headers_for(PATH, https=https, frame_src=frame_src)  # by path prefix
    pairs = [(name.lower().encode(), value.encode()) for name, value in added.items()]
    return [*pairs, *cors.PUBLIC_READ_HEADERS]


def endpoint(*, max_streams_per_client: int, site_headers: list[tuple[bytes, bytes]]) -> ASGIApp:
    """The stream endpoint, behind the per-client cap if there is one."""
    if max_streams_per_client <= 0:  # no cap: not even a layer (a frame per open stream)
        return StoryEvents()
    return StreamCap(StoryEvents(), max_per_client=max_streams_per_client, headers=site_headers)


def route(stream_endpoint: ASGIApp) -> Route:
    """The stream's route in Starlette's router: ``url_for("story_events", slug=...)``,
    and what the shortcut does not take (405 for a POST, the CORS preflight)."""
    return Route(PATH, stream_endpoint, methods=["GET"], name="story_events")


class LiveblogApp(Starlette):
    def __init__(self, *, stream_endpoint: ASGIApp, **options: Any) -> None:
        super().__init__(**options)
        self.stream_endpoint = stream_endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.liveblog_dispatch(scope, receive, send)

    def liveblog_dispatch(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """What ``__call__`` awaits: the endpoint's coroutine (or Starlette's). Not a
        coroutine itself, so a server that calls it (``liveblog.server``) keeps no frame
        of it for as long as a stream lasts."""
        if scope["type"] == "http" and scope["method"] in METHODS:
            match = PATTERN.match(scope["path"])
            if match is not None:
                scope["app"] = self
                scope["path_params"] = {"slug": match["slug"]}
                return self.stream_endpoint(scope, receive, send)
        return super().__call__(scope, receive, send)
