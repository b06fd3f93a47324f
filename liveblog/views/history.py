"""The desk's revision history of one update: every version, who wrote it and when."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liveblog import revisions, store
from liveblog.state import get_liveblog
from liveblog.views.common import desk_story, render


async def update_history(request: Request) -> Response:
    liveblog = get_liveblog(request)
    story, _ = await desk_story(request)  # a contributor: only their stories
    async with liveblog.db.session() as session:
        update = await store.get_update(session, story, request.path_params["update_id"])
        if update is None:
            raise HTTPException(404, "No such update.")
        versions = await revisions.history(session, update)
    # Earlier bodies are shown as readers saw them: Markdown through the same sanitizer.
    rendered = [(version, liveblog.renderer.markdown(version.body)) for version in versions]
    return await render(
        request,
        "desk/history.html",
        {"story": story, "update": update, "versions": rendered},
    )


routes = [
    Route(
        "/desk/stories/{slug}/updates/{update_id:int}/history",
        update_history,
        methods=["GET"],
        name="update_history",
    ),
]
