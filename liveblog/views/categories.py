"""Categories for readers: ``/categories/{slug}`` (its live stories first, then the most
recently active, paged by ``?page=`` without a script) and its Atom feed. Only live and
ended stories are ever listed (docs/reader.md)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liveblog import articles, caching, feed, seo
from liveblog.models import Category
from liveblog.state import get_liveblog
from liveblog.views.common import current_user, int_param, render

PAGE_SIZE = 20
MAX_PAGE = 500
FEED_SIZE = 50


async def _category(request: Request) -> Category:
    async with get_liveblog(request).db.session() as session:
        category = await articles.get_category(session, request.path_params["slug"])
    if category is None:
        raise HTTPException(404, "No such category.")
    return category


async def category_page(request: Request) -> Response:
    liveblog = get_liveblog(request)
    category = await _category(request)
    page = int_param(request, "page", default=1, minimum=1, maximum=MAX_PAGE)
    async with liveblog.db.session() as session:
        stories = await articles.category_stories(
            session, category, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1
        )
        names = await articles.bylines(session, [s.id for s in stories if s.id is not None])
    more = len(stories) > PAGE_SIZE
    stories = stories[:PAGE_SIZE]
    site = seo.site(request, liveblog.settings.base_url)
    canonical = site.page("category_page", slug=category.slug)
    context = {
        "category": category,
        "stories": stories,
        "bylines": names,
        "page": page,
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if more else None,
        "meta": seo.PageMeta(
            canonical=canonical if page == 1 else f"{canonical}?page={page}",
            title=category.name,
            description=f"Live and recent stories in {category.name}.",
            section=category.name,
        ),
    }
    response = await render(request, "category.html", context)
    anonymous = await current_user(request) is None
    response.headers["Cache-Control"] = caching.PUBLIC if anonymous else caching.LOGGED_IN
    return response


async def category_feed(request: Request) -> Response:
    liveblog = get_liveblog(request)
    category = await _category(request)
    async with liveblog.db.session() as session:
        stories = await articles.category_stories(session, category, limit=FEED_SIZE)
        names = await articles.bylines(session, [s.id for s in stories if s.id is not None])
    stories.sort(key=lambda story: story.updated_at, reverse=True)
    site = seo.site(request, liveblog.settings.base_url)
    xml = feed.stories_atom(
        stories,
        title=category.name,
        self_url=site.page("category_feed", slug=category.slug),
        alternate_url=site.page("category_page", slug=category.slug),
        site=site,
        authors={story_id: [line.name for line in lines] for story_id, lines in names.items()},
    )
    return Response(xml, media_type="application/atom+xml; charset=utf-8")


routes = [
    Route("/categories/{slug}", category_page, name="category_page"),
    Route("/categories/{slug}/feed.atom", category_feed, name="category_feed"),
]
