"""A request id for every request: taken from ``X-Request-ID`` when a proxy sent a sane
one, made up otherwise, sent back in the answer's ``X-Request-ID`` and put in every log
line written while the request runs (``liveblog.logs``), so a reader's report, the
proxy's log and ours can be matched. Pure ASGI: nothing is buffered.

The event stream is served outside the middleware stack (``liveblog.live.routing``), so
its answers carry none: a stream's lines name its story instead.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
# What a proxy's id may look like: short, and nothing that could forge a log line.
SANE = re.compile(rb"[A-Za-z0-9._-]{1,64}")

_current: ContextVar[str | None] = ContextVar("liveblog_request_id", default=None)


def current() -> str | None:
    """The id of the request being handled here, if any."""
    return _current.get()


def request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == HEADER:
            if SANE.fullmatch(value):
                sane: bytes = value
                return sane.decode("ascii")
            break
    return secrets.token_hex(8)


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = request_id(scope)
        header = (HEADER, value.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        token = _current.set(value)
        # Kept on a failure: the server logs the traceback after the app raised, in this
        # same task, and that line should name the request too. (Each request runs in a
        # task of its own, so the id goes with it.)
        await self.app(scope, receive, send_with_id)
        _current.reset(token)
