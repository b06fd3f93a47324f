"""What a stream takes from its request and its connection, read from the ASGI scope
without a Request object: every reader of a breaking story comes through here at once."""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import QueryParams
from starlette.requests import HTTPConnection
from starlette.types import Scope

from liveblog.auth import SESSION_COOKIE
from liveblog.server import CONNECTION_EXTENSION


def last_event_id(scope: Scope) -> int | None:
    """The ``Last-Event-ID`` header, else the ``last_event_id`` query parameter."""
    raw = ""
    for name, value in scope["headers"]:
        if name == b"last-event-id":
            raw = value.decode("latin-1")
            break
    if not raw and scope["query_string"]:
        raw = QueryParams(scope["query_string"]).get("last_event_id", "")
    raw = raw.strip()
    # Malformed ids are ignored (the stream starts live), never an error.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # "²".isdigit() is True
        return None
    return int(raw)


def session_token(scope: Scope) -> str | None:
    """The login cookie's token, if any (asked for only when the story is a draft)."""
    return HTTPConnection(scope).cookies.get(SESSION_COOKIE)


Start = Callable[[list[tuple[bytes, bytes]], bytes], bool]


def hold(scope: Scope) -> tuple[Callable[[], None] | None, Start | None]:
    """Ready the connection to be a stream, and return how to drop it at once and how to
    start the response in one write, where the server offers them (``liveblog.server``
    does): a bounded send buffer, and a reader dropped for not reading frees its socket
    and that buffer now, not when its own side finally goes away."""
    connection = (scope.get("extensions") or {}).get(CONNECTION_EXTENSION, {})
    hold_stream: Callable[[], None] | None = connection.get("stream")
    if hold_stream is not None:
        hold_stream()
    abort: Callable[[], None] | None = connection.get("abort")
    start: Start | None = connection.get("start")
    return abort, start
