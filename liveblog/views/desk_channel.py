"""``GET /desk/stories/{slug}/channel``: the desk's own event stream, for staff only.

Events: ``presence`` (JSON list of ``{username, name, editing}``: who has this story's
desk open now, and the update each is editing), ``changed`` (JSON ``{topic}``: re-fetch
the queue, drafts or schedule), and a heartbeat comment. ``?editing=<update id>`` marks
this connection as editing that update (the soft lock others see).

A handful of staff per story, not a crowd: sse-starlette's ``EventSourceResponse`` is
used whole here (heartbeats, client disconnects, and ending at shutdown), where the
reader stream (``liveblog/live/``) writes its own bytes for tens of thousands of readers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liveblog import policy, store
from liveblog.desk_channel import DeskChannel, OnDesk
from liveblog.state import get_liveblog
from liveblog.views.common import desk_story, int_param

HEARTBEAT = 15.0  # seconds between heartbeat comments (proxies close idle connections)
SEND_TIMEOUT = 10.0  # seconds a write may block before the stream is dropped


async def desk_channel(request: Request) -> Response:
    user = policy.actor(request)
    # A contributor only on the stories whose team they are on (403; a draft story they
    # are not on: 404).
    story, _ = await desk_story(request)
    editing = int_param(request, "editing", minimum=1)
    liveblog = get_liveblog(request)
    async with liveblog.db.session() as session:
        if editing is not None:
            found = await store.staff_update(session, story, editing, viewer=user)
            editing = None if found is None else editing
    assert story.id is not None
    who = OnDesk(name=user.display_name, username=user.username, editing=editing)
    return EventSourceResponse(
        _events(liveblog.desk_channel, story.id, who),
        ping=HEARTBEAT,
        send_timeout=SEND_TIMEOUT,
    )


async def _events(channel: DeskChannel, story_id: int, who: OnDesk) -> AsyncIterator[Any]:
    with channel.seat(story_id, who) as seat:
        while True:
            for event, data in await seat.next():
                yield {"event": event, "data": data}


routes = [
    Route("/desk/stories/{slug}/channel", desk_channel, methods=["GET"], name="desk_channel"),
]
