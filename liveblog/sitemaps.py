"""What search engines crawl: ``/sitemap.xml``, the Google News sitemap and ``robots.txt``.

The sitemap lists the front page, every story readers may see (live or ended) and every
author page with a published update; each ``lastmod`` is the moment of the newest event
(a story's ``updated_at`` moves with every event in its log). The news sitemap lists the
stories that started in the last two days (Google News reads no older ones), with the
publication's name and language from the settings. Both are built with ElementTree
(which escapes) and validated against their XSD schemas in tests/test_sitemaps.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from liveblog.articles import CategoryLine
from liveblog.feed import xml_text
from liveblog.models import Story, StoryStatus, Update, UpdateState, User, iso, utcnow
from liveblog.urls import Absolute

SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS = "http://www.google.com/schemas/sitemap-news/0.9"
MAX_URLS = 50_000  # the protocol's limit per file
MAX_STORIES = 40_000
MAX_AUTHORS = 5_000
MAX_NEWS = 1_000  # Google News's limit per file
NEWS_WINDOW = timedelta(days=2)
READER_STATUSES = (StoryStatus.live, StoryStatus.ended)


@dataclass(frozen=True)
class Entry:
    loc: str
    lastmod: datetime | None


@dataclass(frozen=True)
class AuthorLine:
    username: str
    lastmod: datetime


# --- what is listed (data functions) --------------------------------------------------


async def listed_stories(session: AsyncSession, *, limit: int = MAX_STORIES) -> list[Story]:
    """Stories readers may see, newest event first (drafts never)."""
    query = (
        select(Story)
        .where(col(Story.status).in_(READER_STATUSES))
        .order_by(col(Story.updated_at).desc(), col(Story.id).desc())
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def news_stories(
    session: AsyncSession, *, now: datetime | None = None, limit: int = MAX_NEWS
) -> list[Story]:
    """Stories readers may see that started (or, never started, were created) in the
    last NEWS_WINDOW."""
    since = (now or utcnow()) - NEWS_WINDOW
    started = func.coalesce(col(Story.started_at), col(Story.created_at))
    query = (
        select(Story)
        .where(col(Story.status).in_(READER_STATUSES), started >= since)
        .order_by(started.desc(), col(Story.id).desc())
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def published_authors(session: AsyncSession, *, limit: int = MAX_AUTHORS) -> list[AuthorLine]:
    """Users with an update readers may see, with the time of their newest one."""
    newest = func.max(col(Update.created_at))
    query = (
        select(User.username, newest)
        .join(Update, col(Update.author_id) == User.id)
        .join(Story, col(Story.id) == Update.story_id)
        .where(
            col(Update.state) == UpdateState.published,
            col(Update.deleted_at).is_(None),
            col(Story.status).in_(READER_STATUSES),
        )
        .group_by(col(User.id), col(User.username))
        .order_by(newest.desc())
        .limit(limit)
    )
    return [AuthorLine(username, moment) for username, moment in (await session.exec(query))]


# --- the documents ---------------------------------------------------------------------


def entries(
    stories: Sequence[Story],
    authors: Sequence[AuthorLine],
    *,
    site: Absolute,
    categories: Sequence[CategoryLine] = (),
) -> list[Entry]:
    """Every address of the sitemap, the front page first."""
    newest = max((story.updated_at for story in stories), default=None)
    found = [Entry(site.page("home"), newest)]
    found += [Entry(site.page("story_page", slug=s.slug), s.updated_at) for s in stories]
    # Each category with a story readers may see, as of that story's newest event.
    found += [Entry(site.page("category_page", slug=c.slug), c.lastmod) for c in categories]
    found += [Entry(site.page("author_page", username=a.username), a.lastmod) for a in authors]
    return found[:MAX_URLS]


def last_modified(found: Sequence[Entry]) -> datetime | None:
    return max((entry.lastmod for entry in found if entry.lastmod), default=None)


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = xml_text(text)
    return element


def _document(root: ET.Element) -> bytes:
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def sitemap(found: Sequence[Entry]) -> bytes:
    ET.register_namespace("", SITEMAP)
    root = ET.Element(f"{{{SITEMAP}}}urlset")
    for entry in found:
        url = _sub(root, f"{{{SITEMAP}}}url")
        _sub(url, f"{{{SITEMAP}}}loc", entry.loc)
        if entry.lastmod is not None:
            _sub(url, f"{{{SITEMAP}}}lastmod", iso(entry.lastmod))
    return _document(root)


def news_sitemap(stories: Sequence[Story], *, site: Absolute, name: str, language: str) -> bytes:
    ET.register_namespace("", SITEMAP)
    ET.register_namespace("news", NEWS)
    root = ET.Element(f"{{{SITEMAP}}}urlset")
    for story in stories:
        url = _sub(root, f"{{{SITEMAP}}}url")
        _sub(url, f"{{{SITEMAP}}}loc", site.page("story_page", slug=story.slug))
        _sub(url, f"{{{SITEMAP}}}lastmod", iso(story.updated_at))
        news = _sub(url, f"{{{NEWS}}}news")
        publication = _sub(news, f"{{{NEWS}}}publication")
        _sub(publication, f"{{{NEWS}}}name", name)
        _sub(publication, f"{{{NEWS}}}language", language)
        _sub(news, f"{{{NEWS}}}publication_date", iso(story.started_at or story.created_at))
        _sub(news, f"{{{NEWS}}}title", story.title)
    return _document(root)


def robots(*, sitemaps: Sequence[str], disallow: Sequence[str]) -> str:
    lines = ["User-agent: *", *(f"Disallow: {path}" for path in disallow), ""]
    lines += [f"Sitemap: {url}" for url in sitemaps]
    return "\n".join(lines) + "\n"
