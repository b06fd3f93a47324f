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

from liveblog import events, store
from liveblog.models import StoryStatus
from liveblog.state import Liveblog, get_liveblog
from liveblog.views.common import current_user

REPLAY_BATCH = 500


def parse_last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None:
        return None
    raw = raw.strip()
    # Malformed ids are ignored (the stream starts live), never an error.
    if not raw.isdigit() or len(raw) > 18:
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
        headers={"Cache-Control": "no-store"},
    )


async def _frames(
    liveblog: Liveblog, story_id: int, last_event_id: int | None
) -> AsyncIterator[bytes]:
    async with liveblog.hub.subscribe(story_id) as subscription:
        yield events.retry_frame(liveblog.settings.retry_ms)
        async with liveblog.db.session() as session:
            story = await session.get(store.Story, story_id)
        if story is None:
            return
        # An id from the future (say, a database restored from backup) counts as "now".
        last = story.last_seq if last_event_id is None else min(last_event_id, story.last_seq)
        last_closes = False
        while True:
            async with liveblog.db.session() as session:
                batch = await store.events_after(session, story_id, last, limit=REPLAY_BATCH)
            for event in batch:
                yield events.encode(event).data
                last = event.seq
                last_closes = event.closes
            if len(batch) < REPLAY_BATCH:
                break
        if last_closes:
            return  # the log ends with the story's end: the stream ends too
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
