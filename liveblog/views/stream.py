"""``GET /stories/{slug}/events``: the live stream of one story, as server-sent events.

Order of operations is what makes reconnects lossless: subscribe to the hub first,
then read the log after the client's ``Last-Event-ID`` and replay it, then pass on live
frames, skipping any sequence number already sent. An event committed while we read
the log therefore arrives twice at most (replay and live) and is sent once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liveblog import events, store
from liveblog.models import Story, StoryStatus
from liveblog.state import Liveblog, get_liveblog
from liveblog.views.common import current_user

REPLAY_BATCH = 500


def parse_last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None:
        return None
    raw = raw.strip()
    # Malformed ids are ignored (the stream starts live), never an error.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # "²".isdigit() is True
        return None
    return int(raw)


async def story_events(request: Request) -> Response:
    liveblog = get_liveblog(request)
    slug = request.path_params["slug"]
    async with liveblog.db.session() as session:
        story = await store.get_story(session, slug)
    if story is None or (story.status == StoryStatus.draft and await current_user(request) is None):
        raise HTTPException(404, "No such story.")
    assert story.id is not None
    last_event_id = parse_last_event_id(request)
    if story.status == StoryStatus.ended and (
        last_event_id is None or last_event_id >= story.last_seq
    ):
        # Nothing more will ever come: 204 tells EventSource not to reconnect.
        return Response(status_code=204)
    return EventSourceResponse(
        _frames(liveblog, story.id, last_event_id),
        ping=liveblog.settings.heartbeat_interval,
        ping_message_factory=lambda: ServerSentEvent(comment="heartbeat"),
        send_timeout=liveblog.settings.stream_send_timeout,
        sep="\n",
        headers={"Cache-Control": "no-store"},
    )


async def _replay(
    liveblog: Liveblog, story_id: int, after: int
) -> AsyncIterator[tuple[bytes, int]]:
    """Every logged event after ``after``, in order, with its sequence number."""
    while True:
        async with liveblog.db.session() as session:
            batch = await store.events_after(session, story_id, after, limit=REPLAY_BATCH)
        for event in batch:
            after = event.seq
            yield events.encode(event).data, after
        if len(batch) < REPLAY_BATCH:
            return


async def _frames(
    liveblog: Liveblog, story_id: int, last_event_id: int | None
) -> AsyncIterator[bytes]:
    async with liveblog.hub.subscribe(story_id) as subscription:
        # Read the story's position before the first byte: a client that has seen the
        # retry line must get every event committed after it.
        async with liveblog.db.session() as session:
            story = await session.get(Story, story_id)
        if story is None:
            return
        yield events.retry_frame(liveblog.settings.retry_ms)
        # An id from the future (say, a database restored from backup) counts as "now".
        last = story.last_seq if last_event_id is None else min(last_event_id, story.last_seq)
        async for frame_data, seq in _replay(liveblog, story_id, last):
            yield frame_data
            last = seq
        async with liveblog.db.session() as session:
            story = await session.get(Story, story_id)
        if story is None or story.status == StoryStatus.ended:
            # Ended (perhaps while we replayed): send what the log holds up to now,
            # which includes the end itself, and close.
            async for frame_data, _seq in _replay(liveblog, story_id, last):
                yield frame_data
            return
        while True:
            frame = await subscription.next()
            if frame is None:
                return  # overflowed or shutting down; the client resumes from `last`
            if frame.seq <= last:
                continue
            yield frame.data
            last = frame.seq
            if frame.closes:
                return


routes = [Route("/stories/{slug}/events", story_events)]
