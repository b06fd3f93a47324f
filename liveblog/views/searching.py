"""Search for readers: the page ``/search?q=`` (paged by ``?page=``, no script needed) and
the same hits as JSON at ``/api/search?q=`` (with any API token, as every /api/ route:
docs/search.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from liveblog import caching, feed, search, seo
from liveblog.models import StoryStatus, iso
from liveblog.plaintext import plain_text
from liveblog.search import Hit
from liveblog.state import get_liveblog
from liveblog.urls import Absolute
from liveblog.views.common import current_user, int_param, render

PAGE_SIZE = 20
MAX_PAGE = search.MAX_RESULTS // PAGE_SIZE
EXCERPT = 240  # characters of an update's text shown under its hit


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HitStory(_Output):
    slug: str
    title: str
    status: StoryStatus


class HitOut(_Output):
    """``_shown``: a story (``update_id`` None) or one of its published updates."""

    kind: Literal["story", "update"]
    url: str
    title: str
    excerpt: str
    story: HitStory
    update_id: int | None
    published: datetime | None


class SearchResults(_Output):
    """``api_search``: ``next_page`` is the next ``?page=``, None on the last."""

    query: str
    page: int
    results: list[HitOut]
    next_page: int | None


async def _hits(request: Request) -> tuple[str, int, list[Hit], bool]:
    """The query, the page, its hits, and whether there is a next page."""
    liveblog = get_liveblog(request)
    query = request.query_params.get("q", "")[: search.MAX_QUERY].strip()
    page = int_param(request, "page", default=1, minimum=1, maximum=MAX_PAGE)
    engine = search.engine_for(
        liveblog.db.engine.dialect.name, language=liveblog.settings.search_language
    )
    async with liveblog.db.session() as session:
        hits = await search.search(
            session, engine, query, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
        )
    more = len(hits) > PAGE_SIZE and page < MAX_PAGE
    return query, page, hits[:PAGE_SIZE], more


def _shown(hit: Hit, site: Absolute) -> dict[str, Any]:
    """A hit as the page and the API show it."""
    story, update = hit.story, hit.update
    if update is None:
        return {
            "kind": "story",
            "url": site.page("story_page", slug=story.slug),
            "title": story.title,
            "excerpt": feed.first_words(story.summary, EXCERPT) if story.summary else "",
            "story": {"slug": story.slug, "title": story.title, "status": story.status.value},
            "update_id": None,
            "published": iso(story.started_at or story.created_at),
        }
    return {
        "kind": "update",
        "url": site.page("update_page", slug=story.slug, update_id=update.id),
        "title": seo.update_headline(update),
        "excerpt": feed.first_words(plain_text(update.body_html), EXCERPT),
        "story": {"slug": story.slug, "title": story.title, "status": story.status.value},
        "update_id": update.id,
        "published": iso(update.created_at),
    }


async def search_page(request: Request) -> Response:
    liveblog = get_liveblog(request)
    query, page, hits, more = await _hits(request)
    site = seo.site(request, liveblog.settings.base_url)
    context = {
        "query": query,
        "page": page,
        "first_rank": (page - 1) * PAGE_SIZE + 1,
        "results": [_shown(hit, site) for hit in hits],
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if more else None,
    }
    response = await render(request, "search.html", context)
    anonymous = await current_user(request) is None
    response.headers["Cache-Control"] = caching.PUBLIC if anonymous else caching.LOGGED_IN
    response.headers["Vary"] = "Cookie"
    return response


async def api_search(request: Request) -> Response:
    liveblog = get_liveblog(request)
    query, page, hits, more = await _hits(request)
    site = seo.site(request, liveblog.settings.base_url)
    body = {
        "query": query,
        "page": page,
        "results": [_shown(hit, site) for hit in hits],
        "next_page": page + 1 if more else None,
    }
    return JSONResponse(body, headers={"Cache-Control": caching.PRIVATE})


routes = [
    Route("/search", search_page, name="search_page"),
    Route("/api/search", api_search, name="api_search"),
]
