"""``GET /desk/stories/{slug}/stats``: the story's reader numbers, polled by the desk."""

from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from liveblog.state import get_liveblog
from liveblog.views.common import desk_story


async def story_stats(request: Request) -> Response:
    story, _ = await desk_story(request)  # a contributor: only their stories
    stats = asdict(get_liveblog(request).stats.stats(story))
    return JSONResponse(stats, headers={"Cache-Control": "no-store"})


routes = [Route("/desk/stories/{slug}/stats", story_stats, methods=["GET"], name="story_stats")]
