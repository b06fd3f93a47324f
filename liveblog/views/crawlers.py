"""For search engines: ``/sitemap.xml``, ``/sitemap-news.xml`` and ``/robots.txt``.

Both sitemaps carry ``Last-Modified`` (the newest event they list) and an ``ETag`` made
from every listed story's ``last_seq`` (and the authors' newest updates), and answer a
revalidation (``If-None-Match``, or ``If-Modified-Since`` without one) with 304 before
building anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from liveblog import articles, caching, seo, sitemaps, urls
from liveblog.models import Story
from liveblog.state import get_liveblog

XML = "application/xml; charset=utf-8"
# Crawlers come back at their own pace; a minute keeps a CDN in front of the database.
CACHE_CONTROL = "public, max-age=60"


def _unchanged(request: Request, tag: str, modified: datetime | None) -> bool:
    if request.headers.get("if-none-match"):
        return caching.is_fresh(request.headers, tag)
    since = request.headers.get("if-modified-since")
    if since is None or modified is None:
        return False
    try:
        moment = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return modified.replace(microsecond=0) <= moment


def _validators(tag: str, modified: datetime | None) -> dict[str, str]:
    headers = caching.validator_headers(tag, CACHE_CONTROL)
    if modified is not None:
        headers["Last-Modified"] = format_datetime(modified.astimezone(UTC), usegmt=True)
    return headers


def _versions(stories: Sequence[Story]) -> list[str]:
    return [f"{story.id}.{story.last_seq}" for story in stories]


async def sitemap(request: Request) -> Response:
    liveblog = get_liveblog(request)
    async with liveblog.db.session() as session:
        stories = await sitemaps.listed_stories(session)
        authors = await sitemaps.published_authors(session)
        categories = await articles.listed_categories(session)
    base = seo.base_url(request, liveblog.settings.base_url)
    site = urls.Absolute(request, base)
    found = sitemaps.entries(stories, authors, site=site, categories=categories)
    modified = sitemaps.last_modified(found)
    tag = caching.etag(
        "sitemap",
        base,
        *_versions(stories),
        *(f"{author.username}@{author.lastmod.isoformat()}" for author in authors),
        *(f"{category.slug}@{category.lastmod.isoformat()}" for category in categories),
    )
    headers = _validators(tag, modified)
    if _unchanged(request, tag, modified):
        return Response(status_code=304, headers=headers)
    return Response(sitemaps.sitemap(found), media_type=XML, headers=headers)


async def news_sitemap(request: Request) -> Response:
    liveblog = get_liveblog(request)
    settings = liveblog.settings
    async with liveblog.db.session() as session:
        stories = await sitemaps.news_stories(session)
    base = seo.base_url(request, settings.base_url)
    modified = max((story.updated_at for story in stories), default=None)
    tag = caching.etag(
        "news-sitemap", base, settings.site_name, settings.site_language, *_versions(stories)
    )
    headers = _validators(tag, modified)
    if _unchanged(request, tag, modified):
        return Response(status_code=304, headers=headers)
    body = sitemaps.news_sitemap(
        stories,
        site=urls.Absolute(request, base),
        name=settings.site_name,
        language=settings.site_language,
    )
    return Response(body, media_type=XML, headers=headers)


async def robots(request: Request) -> Response:
    site = seo.site(request, get_liveblog(request).settings.base_url)
    text = sitemaps.robots(
        sitemaps=[site.page("sitemap"), site.page("news_sitemap")],
        # The desk, logins and search results are no pages for a search engine's index.
        disallow=[
            urls.path(request, "desk_home"),
            urls.path(request, "login_form"),
            urls.path(request, "search_page"),
            urls.path(request, "api_search"),
        ],
    )
    return PlainTextResponse(text, headers={"Cache-Control": "public, max-age=3600"})


routes = [
    Route("/sitemap.xml", sitemap, name="sitemap"),
    Route("/sitemap-news.xml", news_sitemap, name="news_sitemap"),
    Route("/robots.txt", robots, name="robots"),
]
