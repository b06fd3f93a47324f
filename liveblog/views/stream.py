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
in ``docs/performance.md``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from liveblog import events, store
from liveblog.hub import Subscription
from liveblog.models import Story, StoryStatus
from liveblog.state import Liveblog
from liveblog.streamcap import StreamCap
from liveblog.streams import LiveStory
from liveblog.views.common import current_user

REPLAY_BATCH = 500


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


async def _visible(scope: Scope, receive: Receive, story: Story | None) -> Story:
    if story is None or (
        story.status == StoryStatus.draft and await current_user(Request(scope, receive)) is None
    ):
        raise HTTPException(404, "No such story.")
    return story


async def _replay(
    liveblog: Liveblog, story_id: int, after: int, until: int | None = None
) -> AsyncIterator[bytes]:
    """The logged events after ``after`` (up to ``until``), in order, a batch per write."""
    while until is None or after < until:
        async with liveblog.db.session() as session:
            batch = await store.events_after(
                session,
                story_id,
                after,
                before=None if until is None else until + 1,
                limit=REPLAY_BATCH,
            )
        if batch:
            after = batch[-1].seq
            yield b"".join(events.encode(event).data for event in batch)
        if len(batch) < REPLAY_BATCH:
            return


async def _find_story(liveblog: Liveblog, slug: str) -> Story | None:
    async with liveblog.db.session() as session:
        return await store.get_story(session, slug)


async def _read_story(liveblog: Liveblog, story_id: int) -> Story | None:
    async with liveblog.db.session() as session:
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
            story = await _visible(scope, receive, found)
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
                story = await _visible(scope, receive, found)
                if story.status == StoryStatus.ended:
                    await _ended(scope, receive, send, liveblog, story, last_event_id)
                    return
                if story.status == StoryStatus.live:
                    live = streams.confirm_live(slug, story_id, story.last_seq)
                newest = max(newest, story.last_seq)
            if last_event_id is not None and last_event_id > newest:
                # Ahead of this process (another one delivered it first), or an id from
                # the future (a restored backup): the log says how far it can be.
                async with liveblog.db.session() as session:
                    story = await _visible(scope, receive, await session.get(Story, story_id))
                newest = max(newest, story.last_seq)
            # No id counts as "now", and so does one past the log's end.
            last = position if last_event_id is None else min(last_event_id, newest)
            if scope["method"] == "HEAD":
                await _head(send, liveblog)
                return
            replay = _replay(liveblog, story_id, last, position) if last < position else None
            first = events.retry_frame(liveblog.settings.retry_ms)
            stream = streams.open(send, subscription, last=max(last, position), story=live)
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
    stream = liveblog.streams.open(send, nothing_live, last=story.last_seq, story=None)
    replay = _replay(liveblog, story.id, last_event_id)
    await stream.run(receive, events.retry_frame(liveblog.settings.retry_ms), replay)


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
routes = [Route("/stories/{slug}/events", StoryEvents(), methods=["GET"])]
