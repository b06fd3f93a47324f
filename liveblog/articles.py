"""Data functions of stories as articles (issue 14): bylines, categories, tags, the lead
and the announced start, and the author pages' profiles.

A story's changes still go through ``store.change_story`` (one audit entry, one ``story``
event): ``change`` here applies the article fields inside the same transaction and says
what changed, which the newsroom hands on to it (docs/reader.md).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from liveblog import store
from liveblog.models import (
    MAX_SLUG,
    BylineName,
    Category,
    CategoryCreate,
    CategoryRename,
    ProfilePatch,
    Story,
    StoryByline,
    StoryCategory,
    StoryCreate,
    StoryPatch,
    StoryStatus,
    StoryTag,
    User,
    iso,
)
from liveblog.render import MarkdownRenderer

READER_STATUSES = (StoryStatus.live, StoryStatus.ended)
# The lead: the updates' Markdown and sanitizer, with ``##`` sections and images kept.
render_lead = MarkdownRenderer(sections=True, images=True)


class Invalid(store.StoreError):
    """A name the request gives that does not exist (a username, a category)."""

    status = 422


@dataclass(frozen=True)
class Byline:
    name: str
    username: str | None  # None: a free-text name ("Staff and agencies")

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "username": self.username}


def category_public(category: Category) -> dict[str, Any]:
    return {"name": category.name, "slug": category.slug, "position": category.position}


# --- reading -----------------------------------------------------------------------------


async def bylines(session: AsyncSession, story_ids: Collection[int]) -> dict[int, list[Byline]]:
    """Each story's byline, in order (a story without one: absent)."""
    if not story_ids:
        return {}
    query = (
        select(StoryByline, User)
        .join(User, col(User.id) == StoryByline.user_id, isouter=True)
        .where(col(StoryByline.story_id).in_(story_ids))
        .order_by(col(StoryByline.story_id), col(StoryByline.position))
    )
    found: dict[int, list[Byline]] = {}
    for row, user in await session.exec(query):
        line = (
            Byline(user.display_name, user.username)
            if user is not None
            else Byline(row.name or "", None)
        )
        found.setdefault(row.story_id, []).append(line)
    return found


async def categories_of(
    session: AsyncSession, story_ids: Collection[int]
) -> dict[int, list[Category]]:
    """Each story's categories, in the story's order (its first is its section)."""
    if not story_ids:
        return {}
    query = (
        select(StoryCategory.story_id, Category)
        .join(Category, col(Category.id) == StoryCategory.category_id)
        .where(col(StoryCategory.story_id).in_(story_ids))
        .order_by(col(StoryCategory.story_id), col(StoryCategory.position))
    )
    found: dict[int, list[Category]] = {}
    for story_id, category in await session.exec(query):
        found.setdefault(story_id, []).append(category)
    return found


async def tags_of(session: AsyncSession, story_ids: Collection[int]) -> dict[int, list[str]]:
    """Each story's free tags, in order (a story without any: absent)."""
    if not story_ids:
        return {}
    query = (
        select(StoryTag)
        .where(col(StoryTag.story_id).in_(story_ids))
        .order_by(col(StoryTag.story_id), col(StoryTag.position))
    )
    found: dict[int, list[str]] = {}
    for row in await session.exec(query):
        found.setdefault(row.story_id, []).append(row.name)
    return found


async def list_categories(session: AsyncSession) -> list[Category]:
    query = select(Category).order_by(col(Category.position), col(Category.id))
    return list((await session.exec(query)).all())


async def get_category(session: AsyncSession, slug: str) -> Category | None:
    return (await session.exec(select(Category).where(Category.slug == slug))).first()


def _live_first(query: Any) -> Any:
    live = case((col(Story.status) == StoryStatus.live, 0), else_=1)
    return query.order_by(live, col(Story.updated_at).desc(), col(Story.id).desc())


async def category_stories(
    session: AsyncSession,
    category: Category,
    *,
    statuses: Sequence[StoryStatus] = READER_STATUSES,
    offset: int = 0,
    limit: int = 20,
) -> list[Story]:
    """The category's stories: live first, then the most recently active."""
    query = (
        select(Story)
        .join(StoryCategory, col(StoryCategory.story_id) == Story.id)
        .where(StoryCategory.category_id == category.id, col(Story.status).in_(statuses))
    )
    return list((await session.exec(_live_first(query).offset(offset).limit(limit))).all())


@dataclass(frozen=True)
class Front:
    """The home page as a newsroom front: live stories, then each category's others."""

    live: list[Story]
    sections: list[tuple[Category, list[Story]]]
    others: list[Story]  # recently ended stories in no section shown


async def front_page(session: AsyncSession, *, per_section: int = 5, others: int = 20) -> Front:
    live = await store.list_stories(session, statuses=[StoryStatus.live])
    shown = {story.id for story in live}
    sections = []
    for category in await list_categories(session):
        stories = await category_stories(
            session, category, statuses=[StoryStatus.ended], limit=per_section
        )
        fresh = [story for story in stories if story.id not in shown]
        shown.update(story.id for story in fresh)
        if fresh:
            sections.append((category, fresh))
    ended = await store.list_stories(session, statuses=[StoryStatus.ended], limit=others)
    return Front(live, sections, [story for story in ended if story.id not in shown])


async def stories_by_author(
    session: AsyncSession, user: User, *, statuses: Sequence[StoryStatus], limit: int = 20
) -> list[Story]:
    """The stories with ``user`` in their byline: live first, then the latest."""
    query = (
        select(Story)
        .join(StoryByline, col(StoryByline.story_id) == Story.id)
        .where(StoryByline.user_id == user.id, col(Story.status).in_(statuses))
    )
    return list((await session.exec(_live_first(query).limit(limit))).all())


async def article_json(
    session: AsyncSession, stories: Sequence[Story]
) -> dict[int, dict[str, Any]]:
    """The article fields of each story as the API shows them."""
    ids = [story.id for story in stories if story.id is not None]
    names = await bylines(session, ids)
    sections = await categories_of(session, ids)
    tags = await tags_of(session, ids)
    return {
        story.id: {
            "authors": [line.public() for line in names.get(story.id, [])],
            "categories": [category_public(c) for c in sections.get(story.id, [])],
            "tags": tags.get(story.id, []),
            "lead": story.lead,
            "lead_html": story.lead_html,
            "starts_at": iso(story.starts_at),
        }
        for story in stories
        if story.id is not None
    }


@dataclass(frozen=True)
class CategoryLine:
    slug: str
    lastmod: datetime


async def listed_categories(session: AsyncSession) -> list[CategoryLine]:
    """Categories with a story readers may see, with that story's newest event (sitemaps)."""
    newest = func.max(col(Story.updated_at))
    query = (
        select(Category.slug, newest)
        .join(StoryCategory, col(StoryCategory.category_id) == Category.id)
        .join(Story, col(Story.id) == StoryCategory.story_id)
        .where(col(Story.status).in_(READER_STATUSES))
        .group_by(col(Category.id), col(Category.slug))
        .order_by(col(Category.slug))
    )
    return [CategoryLine(slug, moment) for slug, moment in await session.exec(query)]


# --- changing ----------------------------------------------------------------------------


async def change(
    session: AsyncSession, story: Story, data: StoryCreate | StoryPatch
) -> tuple[dict[str, str], dict[str, Any]]:
    """Apply the article fields ``data`` gives to ``story`` (in the caller's transaction).
    Returns what changed (field: the audit trail's detail) and what the ``story`` event
    carries besides the story (the lead's HTML, the byline, the categories, the tags)."""
    assert story.id is not None
    changed: dict[str, str] = {}
    payload: dict[str, Any] = {}
    if data.lead is not None and data.lead != story.lead:
        story.lead = data.lead
        story.lead_html = render_lead(data.lead) if data.lead else ""
        changed["lead"] = "lead"
        payload["lead_html"] = story.lead_html
    if "starts_at" in data.model_fields_set and data.starts_at != story.starts_at:
        story.starts_at = data.starts_at
        changed["starts_at"] = f"starts_at: {iso(data.starts_at)}"
    if changed:
        session.add(story)
    if data.authors is not None:
        wanted = await _resolve_authors(session, data.authors)
        if wanted != await _byline_rows(session, story.id):
            await session.exec(delete(StoryByline).where(col(StoryByline.story_id) == story.id))
            for position, (user_id, name) in enumerate(wanted):
                session.add(
                    StoryByline(story_id=story.id, position=position, user_id=user_id, name=name)
                )
            lines = await _preview_bylines(session, wanted)
            changed["authors"] = "authors: " + ", ".join(line.name for line in lines)
            payload["authors"] = [line.public() for line in lines]
    if data.categories is not None:
        found = {c.slug: c for c in await _categories_by_slug(session, data.categories)}
        unknown = [slug for slug in data.categories if slug not in found]
        if unknown:
            raise Invalid(f"no such category: {', '.join(unknown)}")
        wanted_ids = [found[slug].id for slug in data.categories]
        current = await categories_of(session, [story.id])
        if wanted_ids != [c.id for c in current.get(story.id, [])]:
            await session.exec(delete(StoryCategory).where(col(StoryCategory.story_id) == story.id))
            for position, category_id in enumerate(wanted_ids):
                assert category_id is not None
                session.add(
                    StoryCategory(story_id=story.id, category_id=category_id, position=position)
                )
            changed["categories"] = "categories: " + ", ".join(data.categories)
            payload["categories"] = [category_public(found[s]) for s in data.categories]
    current_tags = (await tags_of(session, [story.id])).get(story.id, [])
    if data.tags is not None and data.tags != current_tags:
        await session.exec(delete(StoryTag).where(col(StoryTag.story_id) == story.id))
        for position, name in enumerate(data.tags):
            session.add(StoryTag(story_id=story.id, position=position, name=name))
        changed["tags"] = "tags: " + ", ".join(data.tags)
        payload["tags"] = data.tags
    await session.flush()
    return changed, payload


async def _resolve_authors(
    session: AsyncSession, authors: Sequence[str | BylineName]
) -> list[tuple[int | None, str | None]]:
    wanted: list[tuple[int | None, str | None]] = []
    for item in authors:
        username = item if isinstance(item, str) else item.username
        if username is None:
            wanted.append((None, item.name if isinstance(item, BylineName) else None))
            continue
        user = await store.get_user_by_username(session, username)
        if user is None:
            raise Invalid(f"no such user: {username}")
        wanted.append((user.id, None))
    return wanted


async def _byline_rows(session: AsyncSession, story_id: int) -> list[tuple[int | None, str | None]]:
    query = (
        select(StoryByline)
        .where(StoryByline.story_id == story_id)
        .order_by(col(StoryByline.position))
    )
    return [(row.user_id, row.name) for row in await session.exec(query)]


async def _preview_bylines(
    session: AsyncSession, rows: Sequence[tuple[int | None, str | None]]
) -> list[Byline]:
    lines = []
    for user_id, name in rows:
        user = None if user_id is None else await store.get_user(session, user_id)
        lines.append(Byline(user.display_name, user.username) if user else Byline(name or "", None))
    return lines


async def _categories_by_slug(session: AsyncSession, slugs: Sequence[str]) -> list[Category]:
    if not slugs:
        return []
    return list((await session.exec(select(Category).where(col(Category.slug).in_(slugs)))).all())


async def create_category(session: AsyncSession, data: CategoryCreate) -> Category:
    """A new category, last in the order; its slug made from its name unless given."""
    if data.slug is not None:
        if await get_category(session, data.slug) is not None:
            raise store.Conflict(f"a category with slug {data.slug!r} already exists")
        slug = data.slug
    else:
        base = store.slugify(data.name)
        slug, n = base, 1
        while await get_category(session, slug) is not None:
            n += 1
            suffix = f"-{n}"
            slug = base[: MAX_SLUG - len(suffix)] + suffix
    last = (await session.exec(select(func.max(col(Category.position))))).one()
    category = Category(name=data.name, slug=slug, position=(last or 0) + 1)
    session.add(category)
    await session.flush()
    return category


async def move_category(session: AsyncSession, slug: str, *, up: bool) -> None:
    """Swap the category with the one before it (``up``) or after it."""
    ordered = await list_categories(session)
    index = next((i for i, c in enumerate(ordered) if c.slug == slug), None)
    if index is None:
        raise store.NotFound("no such category")
    other = index - 1 if up else index + 1
    if not 0 <= other < len(ordered):
        return
    ordered[index], ordered[other] = ordered[other], ordered[index]
    for position, category in enumerate(ordered, start=1):
        category.position = position
        session.add(category)


async def rename_category(session: AsyncSession, slug: str, data: CategoryRename) -> Category:
    """Give the category a new name; its slug (and so its links) stays."""
    category = await get_category(session, slug)
    if category is None:
        raise store.NotFound("no such category")
    category.name = data.name
    session.add(category)
    await session.flush()
    return category


async def delete_category(session: AsyncSession, slug: str) -> None:
    """Delete the category; its stories simply lose it (in the caller's transaction)."""
    category = await get_category(session, slug)
    if category is None:
        raise store.NotFound("no such category")
    await session.exec(delete(StoryCategory).where(col(StoryCategory.category_id) == category.id))
    await session.delete(category)
    await session.flush()


async def change_profile(session: AsyncSession, user: User, data: ProfilePatch) -> User:
    user.bio = data.bio
    user.photo_url = data.photo_url
    session.add(user)
    await session.flush()
    return user
