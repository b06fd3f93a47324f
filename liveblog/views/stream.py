"""``GET /stories/{slug}/events``: the live stream of one story, as server-sent events.

Order of operations is what makes reconnects lossless: subscribe to the hub first,
then read the log after the client's ``Last-Event-ID`` and replay it, then pass on live
frames, skipping any sequence number already sent. An event committed while we read
the log therefore arrives twice at most (replay and live) and is sent once.

A reader joining a live story that already has readers in this process reads nothing
from the database: the hub knows the position to start from and ``liveblog.streams``
knows the story is still live. Everyone else (the first reader, a story that changed,
a draft, an ended story, a reader with events to catch up on) reads the log as before.
The streams themselves (``liveblog.streams``) are pure ASGI, for the measured reasons
in ``docs/performance.md``; replays come from ``liveblog.replay`` (memory first, then
shared pages of the log). Every database read here goes through
``Database.stream_session``: a crowd of readers waits for the stream path's own few
connections and never takes an editor's.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from liveblog import auth, events, store
from liveblog.hub import Subscription
from liveblog.models import Story, StoryStatus
from liveblog.server import CONNECTION_EXTENSION
from liveblog.state import Liveblog
from liveblog.streamcap import StreamCap
from liveblog.streams import LiveStory


def parse_last_event_id(scope: Scope) -> int | None:
    """The ``Last-Event-ID`` header, else the ``last_event_id`` query parameter.

    Read from the scope, without a Request: every reader of a breaking story comes
    through here at once."""
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


async def _visible(
    scope: Scope, receive: Receive, liveblog: Liveblog, story: Story | None
) -> Story:
    """The story, unless there is none or it is a draft and no editor is logged in.

    The login is looked up here rather than with ``views.common.current_user``, whose
    read would take a connection from the editors' pool: a crowd asking for a draft
    with made-up cookies must wait on the stream path's own connections."""
    if story is not None and story.status == StoryStatus.draft:
        token = Request(scope, receive).cookies.get(auth.SESSION_COOKIE)
        user = None
        if token:
            async with liveblog.db.stream_session() as session:
                user = await auth.user_for_login(session, token)
        if user is None:
            story = None
    if story is None:
        raise HTTPException(404, "No such story.")
    return story


async def _find_story(liveblog: Liveblog, slug: str) -> Story | None:
    async with liveblog.db.stream_session() as session:
        return await store.get_story(session, slug)


async def _read_story(liveblog: Liveblog, story_id: int) -> Story | None:
    async with liveblog.db.stream_session() as session:
        return await session.get(Story, story_id)


class StoryEvents:
    """The endpoint, as a plain ASGI app: a stream outlives any request object.

    ``liveblog.asgi`` calls it directly, outside Starlette's stack, so it answers its
    own errors and sends the site's headers itself."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        liveblog: Liveblog = scope["app"].state.liveblog
        try:
            await self._serve(scope, receive, send, liveblog)
        except HTTPException as exc:  # raised before anything was sent
            await _refuse(send, liveblog, exc)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, liveblog: Liveblog) -> None:
        streams = liveblog.streams
        slug: str = scope["path_params"]["slug"]
        last_event_id = parse_last_event_id(scope)
        story: Story | None = None
        found: Story | None = None

        story_id = streams.story_ids.get(slug)
        if story_id is None:
            found = await streams.read_once(slug, lambda: _find_story(liveblog, slug))
            story = await _visible(scope, receive, liveblog, found)
            assert story.id is not None
            story_id = streams.story_ids[slug] = story.id
            if story.status == StoryStatus.ended:
                await _ended(scope, receive, send, liveblog, story, last_event_id)
                return

        known = streams.live_story(slug)
        async with liveblog.hub.subscribe(story_id) as subscription:
            position = liveblog.hub.position(story_id)
            assert position is not None  # the hub reads it when a story gets its first reader
            live: LiveStory | None = None
            newest = position  # the newest event that may exist, as far as we know
            if known is not None and streams.current(known, position):
                live = known
            else:
                found = await streams.read_once(story_id, lambda: _read_story(liveblog, story_id))
                if found is not None and found.last_seq < position:
                    # That shared read began before this reader subscribed: it may have
                    # missed a change (the end) that the hub has already fanned out.
                    found = await _read_story(liveblog, story_id)
                story = await _visible(scope, receive, liveblog, found)
                if story.status == StoryStatus.ended:
                    await _ended(scope, receive, send, liveblog, story, last_event_id)
                    return
                if story.status == StoryStatus.live:
                    live = streams.confirm_live(slug, story_id, story.last_seq)
                newest = max(newest, story.last_seq)
            if last_event_id is not None and last_event_id > newest:
                # Ahead of this process (another one delivered it first), or an id from
                # the future (a restored backup): the log says how far it can be.
                found = await _read_story(liveblog, story_id)
                story = await _visible(scope, receive, liveblog, found)
                newest = max(newest, story.last_seq)
            # No id counts as "now", and so does one past the log's end.
            last = position if last_event_id is None else min(last_event_id, newest)
            if scope["method"] == "HEAD":
                await _head(send, liveblog)
                return
            replay = liveblog.replays.replay(story_id, last, position) if last < position else None
            first = events.retry_frame(liveblog.settings.retry_ms)
            stream = streams.open(
                send, subscription, last=max(last, position), story=live, abort=_hold(scope)
            )
            del story, found  # open for hours maybe: hold no more than it needs
            await stream.run(receive, first, replay)


async def _ended(
    scope: Scope,
    receive: Receive,
    send: Send,
    liveblog: Liveblog,
    story: Story,
    last_event_id: int | None,
) -> None:
    """An ended story: replay what the reader missed, including the end, and close."""
    if last_event_id is None or last_event_id >= story.last_seq:
        # Nothing more will ever come: 204 tells EventSource not to reconnect.
        raise HTTPException(204)
    if scope["method"] == "HEAD":
        await _head(send, liveblog)
        return
    assert story.id is not None
    # Nothing live will come: an already closed subscription ends the stream as soon
    # as the replay is written.
    nothing_live = Subscription(story.id, 1)
    nothing_live.close()
    stream = liveblog.streams.open(
        send, nothing_live, last=story.last_seq, story=None, abort=_hold(scope)
    )
    replay = liveblog.replays.replay(story.id, last_event_id, story.last_seq)
    await stream.run(receive, events.retry_frame(liveblog.settings.retry_ms), replay)


def _hold(scope: Scope) -> Callable[[], None] | None:
    """Ready the connection to be a stream, and return how to drop it at once, where the
    server offers both (``liveblog.server`` does): a bounded send buffer, and a reader
    dropped for not reading frees its socket and that buffer now, not when its own side
    finally goes away."""
    connection = (scope.get("extensions") or {}).get(CONNECTION_EXTENSION, {})
    hold: Callable[[], None] | None = connection.get("stream")
    if hold is not None:
        hold()
    abort: Callable[[], None] | None = connection.get("abort")
    return abort


async def _head(send: Send, liveblog: Liveblog) -> None:
    headers = liveblog.streams.headers
    await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _refuse(send: Send, liveblog: Liveblog, exc: HTTPException) -> None:
    """No stream (no such story, or nothing more to send): plain text, no page; an
    EventSource does not show it, and a script or a person reads it as it is."""
    headers = [(b"cache-control", b"no-store"), *liveblog.streams.site_headers]
    body = b""
    if exc.status_code != 204:  # a 204 has no body, and says so by having none
        body = exc.detail.encode()
        headers += [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def endpoint(*, max_streams_per_client: int, site_headers: list[tuple[bytes, bytes]]) -> ASGIApp:
    """What ``liveblog.asgi`` serves ``GET``/``HEAD /stories/{slug}/events`` with."""
    if max_streams_per_client <= 0:  # no cap: not even a layer (a frame per open stream)
        return StoryEvents()
    return StreamCap(StoryEvents(), max_per_client=max_streams_per_client, headers=site_headers)


# Routed by Starlette only for what ``liveblog.asgi`` does not take (405 for a POST, the
# CORS preflight) and for ``url_for``.
routes = [Route("/stories/{slug}/events", StoryEvents(), methods=["GET"], name="story_events")]
