"""``GET``/``HEAD`` on the stream's path: one story's live stream, as server-sent events.

A plain ASGI app (a stream outlives any request object), served outside Starlette's
stack (``liveblog.live.routing``), so it answers its own errors and sends the site's
headers itself. Who may join, and from where their stream starts, is
``liveblog.live.join``'s to say; writing the stream, ``liveblog.live.stream``'s.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from liveblog.live import request
from liveblog.live.service import Live
from liveblog.live.stream import body_message, start_message


class StoryEvents:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        live: Live = scope["app"].state.live  # put there by the app's lifespan
        streams = live.streams
        joining = live.joins.join(
            scope["path_params"]["slug"],
            request.last_event_id(scope),
            lambda: request.session_token(scope),
        )
        try:
            async with joining as joined:
                if scope["method"] == "HEAD":  # the stream's headers, no stream
                    await send(start_message(streams.headers))
                    await send(body_message(b"", more=False))
                    return
                after, until = joined.after, joined.until
                replay = (
                    live.replays.replay(joined.story_id, after, until) if after < until else None
                )
                abort, start = request.hold(scope)
                stream = streams.open(
                    send,
                    joined.subscription,
                    last=max(after, until),
                    story=joined.story,
                    abort=abort,
                )
                await stream.run(receive, live.first, replay, start)
        except HTTPException as exc:  # raised joining, before anything was sent
            await _refuse(send, streams.site_headers, exc)


async def _refuse(send: Send, site_headers: list[tuple[bytes, bytes]], exc: HTTPException) -> None:
    """No stream (no such story, or nothing more to send): plain text, no page; an
    EventSource does not show it, and a script or a person reads it as it is."""
    headers = [(b"cache-control", b"no-store"), *site_headers]
    body = b""
    if exc.status_code != 204:  # a 204 has no body, and says so by having none
        body = exc.detail.encode()
        headers += [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
