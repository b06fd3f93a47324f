"""``GET /desk/stories/{slug}/stats``: the story's reader numbers, polled by the desk."""

from __future__ import annotations

from dataclasses import asdict

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from liveblog import store
from liveblog.state import get_liveblog
from liveblog.views.common import require_user


async def story_stats(request: Request) -> Response:
    await require_user(request)
    liveblog = get_liveblog(request)
    async with liveblog.db.session() as session:
        story = await store.get_story(session, request.path_params["slug"])
    if story is None:
        raise HTTPException(404, "No such story.")
    stats = asdict(liveblog.stats.stats(story))
    return JSONResponse(stats, headers={"Cache-Control": "no-store"})


routes = [Route("/desk/stories/{slug}/stats", story_stats, methods=["GET"], name="story_stats")]
