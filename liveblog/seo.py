"""What search engines and social networks read: JSON-LD, Open Graph, canonical URLs.

The story page describes itself as a schema.org ``LiveBlogPosting`` whose
``liveBlogUpdate`` entries are the updates on the page (``BlogPosting``). The JSON goes
into a ``<script type="application/ld+json">`` block, which browsers never execute; it
is still HTML-parsed, so ``<``, ``>`` and ``&`` are written as JSON escapes and no
string can close the element early.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup
from starlette.requests import Request

from liveblog.feed import first_words
from liveblog.models import Story, StoryStatus, Update, User, iso
from liveblog.plaintext import plain_text
from liveblog.urls import Absolute

HEADLINE_LIMIT = 110  # what search engines show of a headline


def base_url(request: Request, configured: str | None) -> str:
    return configured or str(request.base_url)


def site(request: Request, configured: str | None) -> Absolute:
    """Absolute addresses for what other sites read: against ``base_url``."""
    return Absolute(request, base_url(request, configured))


def update_headline(update: Update) -> str:
    return first_words(update.headline or plain_text(update.body_html), HEADLINE_LIMIT)


def blog_posting(update: Update, author: User, *, story: Story, site: Absolute) -> dict[str, Any]:
    url = site.page("update_page", slug=story.slug, update_id=update.id)
    posting: dict[str, Any] = {
        "@type": "BlogPosting",
        "@id": url,
        "url": url,
        "headline": update_headline(update),
        "datePublished": iso(update.created_at),
        "dateModified": iso(update.edited_at or update.created_at),
        "author": {
            "@type": "Person",
            "name": author.display_name,
            "url": site.page("author_page", username=author.username),
        },
        "articleBody": plain_text(update.body_html),
    }
    if update.image_url:
        posting["image"] = site.of(update.image_url)
    if update.embeds:
        # The links it embeds (docs/embeds.md): what it shares, by address and name.
        posting["sharedContent"] = [
            {"@type": "CreativeWork", "url": embed["url"], "name": embed["title"]}
            for embed in json.loads(update.embeds)
        ]
    return posting


@dataclass(frozen=True)
class Article:
    """What a story page says of the story as an article (liveblog/articles.py)."""

    authors: list[tuple[str, str | None]] = field(default_factory=list)  # (name, username)
    sections: list[str] = field(default_factory=list)  # category names, the first its own
    tags: list[str] = field(default_factory=list)  # the story's free tags: its keywords
    publisher: str = "liveblog"
    logo: str | None = None  # the publisher's logo, an absolute URL


def _person(name: str, username: str | None, site: Absolute) -> dict[str, Any]:
    if username is None:
        return {"@type": "Organization", "name": name}
    return {"@type": "Person", "name": name, "url": site.page("author_page", username=username)}


def live_blog_posting(
    story: Story,
    rows: list[tuple[Update, User]],
    *,
    site: Absolute,
    article: Article | None = None,
) -> dict[str, Any]:
    article = article or Article()
    url = site.page("story_page", slug=story.slug)
    # The real start; an announced story's announced one until its first update.
    started = story.started_at or story.starts_at or story.created_at
    modified = max(
        [update.edited_at or update.created_at for update, _ in rows] or [story.updated_at]
    )
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "@id": url,
        "url": url,
        "mainEntityOfPage": url,
        "headline": first_words(story.title, HEADLINE_LIMIT),
        "description": story.summary or story.title,
        "datePublished": iso(started),
        "dateModified": iso(modified),
        "coverageStartTime": iso(started),
        "liveBlogUpdate": [
            # Each update at its place in the live page: the URL's #fragment, no query.
            {
                **blog_posting(update, author, story=story, site=site),
                "url": f"{url}#update-{update.id}",
            }
            for update, author in rows
        ],
    }
    if article.authors:
        data["author"] = [_person(name, username, site) for name, username in article.authors]
    if article.sections:
        data["articleSection"] = article.sections
    if article.tags:
        data["keywords"] = article.tags
    publisher: dict[str, Any] = {"@type": "Organization", "name": article.publisher}
    if article.logo:
        publisher["logo"] = {"@type": "ImageObject", "url": article.logo}
    data["publisher"] = publisher
    if story.status == StoryStatus.ended and story.ended_at is not None:
        data["coverageEndTime"] = iso(story.ended_at)
    return data


def json_ld(data: dict[str, Any]) -> Markup:
    """JSON for a ``<script type="application/ld+json">`` element, safe in HTML."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return Markup(text)


@dataclass(frozen=True)
class PageMeta:
    """Canonical URL and the Open Graph / Twitter card of one page."""

    canonical: str
    title: str
    description: str
    image: str | None = None
    published: str | None = None
    modified: str | None = None
    # Open Graph's article:section and article:tag (a story's categories, then its tags).
    section: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def card(self) -> str:
        return "summary_large_image" if self.image else "summary"


def first_image(rows: list[tuple[Update, User]], site: Absolute) -> str | None:
    for update, _ in rows:
        if update.image_url:
            return site.of(update.image_url)
    return None
