"""Export and import of one story (issue 17): ``liveblog export SLUG`` / ``liveblog import``.

One versioned JSON document holds everything readers see of a story and what the
newsroom kept of it: the story and its article fields, every update (drafts, deleted
ones and their revisions too), the event log verbatim (what readers replay), the link
embeds its updates show, the users it names and the media files it links, inline as
base64. Importing it elsewhere reproduces every reader-visible output byte for byte
(apart from the host): update ids, sequence numbers, timestamps and the stored HTML are
kept exactly, since the HTML and the event log carry them (docs/integrations.md,
"Export and import").

An import is one transaction: the document is checked first, and any problem (a slug or
an update id already taken here, a malformed field) refuses the whole of it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from liveblog import articles, store
from liveblog.auth import USERNAME_RE
from liveblog.embeds.resolver import url_hash
from liveblog.media import WIDTHS
from liveblog.models import (
    MAX_BYLINE,
    MAX_CAPTION,
    MAX_CATEGORY,
    MAX_HEADLINE,
    MAX_SLUG,
    MAX_TAG,
    MAX_TITLE,
    MAX_URL,
    SLUG_RE,
    AuditAction,
    AuditEntry,
    Category,
    EventKind,
    LinkEmbed,
    Role,
    Story,
    StoryByline,
    StoryCategory,
    StoryEvent,
    StoryStatus,
    StoryTag,
    StoryTeam,
    Update,
    UpdateRevision,
    UpdateState,
    User,
    utcnow,
)

FORMAT = "liveblog-story"
VERSION = 1
# An account created by an import has no password anyone can log in with: argon2 cannot
# verify against it (``auth.verify_password`` is False), and it is created inactive.
UNUSABLE_PASSWORD = "!imported"
# The media files a document may carry: our uploads' names, and their smaller widths.
MEDIA_NAME = re.compile(r"[0-9a-f]{24}(?:-[0-9]{2,5}w)?\.(?:jpg|png|webp)")
_KEY = r"([0-9a-f]{24})(?:-[0-9]{2,5}w)?\.(jpg|png|webp)"


class TransferError(Exception):
    """Why a story cannot be exported or a document imported, in one sentence."""


# --- the document ----------------------------------------------------------------------

Slug = Annotated[str, StringConstraints(pattern=SLUG_RE.pattern, max_length=MAX_SLUG)]
Username = Annotated[str, StringConstraints(pattern=USERNAME_RE)]
Moment = AwareDatetime


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class UserDoc(_Part):
    username: Username
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    role: Role
    active: bool
    bio: str
    photo_url: Annotated[str, StringConstraints(max_length=MAX_URL)] | None
    created_at: Moment


class StoryDoc(_Part):
    id: int | None = Field(default=None, ge=1)
    slug: Slug
    title: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE)]
    summary: str
    status: StoryStatus
    breaking: bool
    last_seq: int = Field(ge=0)
    created_at: Moment
    updated_at: Moment
    started_at: Moment | None
    ended_at: Moment | None
    starts_at: Moment | None
    page_views: int = Field(default=0, ge=0)
    peak_readers: int = Field(default=0, ge=0)
    created_by: Username | None


class BylineDoc(_Part):
    username: Username | None = None
    name: Annotated[str, StringConstraints(max_length=MAX_BYLINE)] | None = None


class CategoryDoc(_Part):
    slug: Slug
    name: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CATEGORY)]
    position: int


class ArticleDoc(_Part):
    lead: str
    lead_html: str
    authors: list[BylineDoc]
    categories: list[CategoryDoc]
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_TAG)]]


Caption = Annotated[str, StringConstraints(max_length=MAX_CAPTION)] | None
Headline = Annotated[str, StringConstraints(max_length=MAX_HEADLINE)] | None
Url = Annotated[str, StringConstraints(max_length=MAX_URL)] | None


class RevisionDoc(_Part):
    editor: Username | None
    headline: Headline
    body: str
    key_event: bool
    image_url: Url
    image_alt: Caption
    image_caption: Caption
    image_credit: Caption
    created_at: Moment


class UpdateDoc(_Part):
    id: int = Field(ge=1, lt=2**63)
    author: Username
    state: UpdateState
    version: int = Field(ge=1)
    headline: Headline
    body: str
    body_html: str
    embeds: str | None
    key_event: bool
    pinned: bool
    image_url: Url
    image_alt: Caption
    image_caption: Caption
    image_credit: Caption
    image_width: int | None
    image_height: int | None
    created_at: Moment
    edited_at: Moment | None
    deleted_at: Moment | None
    published_seq: int | None
    publish_at: Moment | None
    return_note: str | None
    revisions: list[RevisionDoc]


class EventDoc(_Part):
    seq: int = Field(ge=1)
    kind: EventKind
    update_id: int | None
    actor: Username | None
    data: str  # the payload readers receive, verbatim (JSON text)
    closes: bool
    created_at: Moment


class LinkEmbedDoc(_Part):
    url: str
    url_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
    kind: Annotated[str, StringConstraints(max_length=10)]
    provider: Annotated[str, StringConstraints(max_length=60)]
    provider_name: Annotated[str, StringConstraints(max_length=MAX_CAPTION)]
    title: Annotated[str, StringConstraints(max_length=MAX_CAPTION)]
    author_name: Caption
    thumbnail_url: Url
    thumbnail_width: int | None
    thumbnail_height: int | None
    frame_html: str | None
    frame_origins: Url
    ratio: Annotated[str, StringConstraints(max_length=20)] | None
    problem: Caption
    fetched_at: Moment


class TeamDoc(_Part):
    username: Username
    added_at: Moment


class AuditDoc(_Part):
    update_id: int | None
    actor: Username | None
    action: AuditAction
    detail: str
    at: Moment


class StoryDocument(_Part):
    format: Literal["liveblog-story"]
    version: int
    exported_at: Moment
    story: StoryDoc
    article: ArticleDoc
    users: list[UserDoc]
    team: list[TeamDoc]
    updates: list[UpdateDoc]
    events: list[EventDoc]
    audit: list[AuditDoc]
    link_embeds: list[LinkEmbedDoc]
    media: dict[str, str]  # file name -> base64


# --- export ----------------------------------------------------------------------------


async def export_story(
    session: AsyncSession, slug: str, *, media_dir: Path, media_url: str
) -> dict[str, Any]:
    """The document of the story ``slug`` (a JSON-ready dict)."""
    story = await store.get_story(session, slug)
    if story is None or story.id is None:
        raise TransferError(f"no story with slug {slug!r}")
    users: dict[int, User] = {}

    async def name(user_id: int | None) -> str | None:
        if user_id is None:
            return None
        if user_id not in users:
            user = await session.get(User, user_id)
            if user is None:
                return None
            users[user_id] = user
        return users[user_id].username

    updates = list(
        (
            await session.exec(
                select(Update).where(Update.story_id == story.id).order_by(col(Update.id))
            )
        ).all()
    )
    update_docs = []
    for update in updates:
        rows = await session.exec(
            select(UpdateRevision)
            .where(UpdateRevision.update_id == update.id)
            .order_by(col(UpdateRevision.id))
        )
        revisions = [
            {
                "editor": await name(row.editor_id),
                **_fields(row, RevisionDoc, skip={"editor"}),
            }
            for row in rows
        ]
        update_docs.append(
            {
                "author": await name(update.author_id),
                **_fields(update, UpdateDoc, skip={"author", "revisions"}),
                "revisions": revisions,
            }
        )
    events = [
        {"actor": await name(event.actor_id), **_fields(event, EventDoc, skip={"actor"})}
        for event in await session.exec(
            select(StoryEvent).where(StoryEvent.story_id == story.id).order_by(col(StoryEvent.seq))
        )
    ]
    audit_rows = await session.exec(
        select(AuditEntry).where(AuditEntry.story_id == story.id).order_by(col(AuditEntry.id))
    )
    audit = [
        {"actor": await name(row.actor_id), **_fields(row, AuditDoc, skip={"actor"})}
        for row in audit_rows
    ]
    team = [
        {"username": await name(row.user_id), "added_at": row.added_at}
        for row in await session.exec(
            select(StoryTeam).where(StoryTeam.story_id == story.id).order_by(col(StoryTeam.user_id))
        )
    ]
    byline_rows = await session.exec(
        select(StoryByline)
        .where(StoryByline.story_id == story.id)
        .order_by(col(StoryByline.position))
    )
    authors = [
        {"username": await name(row.user_id), "name": None}
        if row.user_id is not None
        else {"username": None, "name": row.name}
        for row in byline_rows
    ]
    categories = (await articles.categories_of(session, [story.id])).get(story.id, [])
    tags = (await articles.tags_of(session, [story.id])).get(story.id, [])
    story_doc = {
        **_fields(story, StoryDoc, skip={"created_by"}),
        "created_by": await name(story.created_by_id),
    }
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": utcnow(),
        "story": story_doc,
        "article": {
            "lead": story.lead,
            "lead_html": story.lead_html,
            "authors": authors,
            "categories": [
                {"slug": c.slug, "name": c.name, "position": c.position} for c in categories
            ],
            "tags": tags,
        },
        "users": [],
        "team": team,
        "updates": update_docs,
        "events": events,
        "audit": audit,
        "link_embeds": [],
        "media": {},
    }
    document["link_embeds"] = [
        _fields(embed, LinkEmbedDoc) for embed in await _link_embeds(session, update_docs, events)
    ]
    document["users"] = [
        _fields(user, UserDoc) for user in sorted(users.values(), key=lambda u: u.username)
    ]
    # Check and normalise through the same model an import reads it with.
    checked = StoryDocument.model_validate(document).model_dump(mode="json")
    checked["media"] = _media_files(json.dumps(checked), media_dir, media_url)
    return checked


def _fields(row: Any, shape: type[BaseModel], *, skip: Iterable[str] = ()) -> dict[str, Any]:
    skipped = set(skip)
    return {name: getattr(row, name) for name in shape.model_fields if name not in skipped}


_FRAME_KEY = re.compile(r"/embed-frame/([A-Za-z0-9_-]{1,32})")


async def _link_embeds(
    session: AsyncSession, updates: list[dict[str, Any]], events: list[dict[str, Any]]
) -> list[LinkEmbed]:
    """The link embeds the story's updates show: by their links (``Update.embeds``) and
    by the frame addresses in its HTML (the event log keeps older versions' cards)."""
    hashes: set[str] = set()
    for update in updates:
        for card in json.loads(update["embeds"] or "[]"):
            hashes.add(url_hash(card["url"]))
    text_parts = [u["body_html"] for u in updates] + [e["data"] for e in events]
    keys = set(_FRAME_KEY.findall("\n".join(text_parts)))
    found: dict[int, LinkEmbed] = {}
    for chunk in _chunks(sorted(hashes)):
        for embed in await session.exec(
            select(LinkEmbed).where(col(LinkEmbed.url_hash).in_(chunk))
        ):
            found[embed.id or 0] = embed
    for chunk in _chunks(sorted(keys)):
        for embed in await session.exec(select(LinkEmbed).where(col(LinkEmbed.key).in_(chunk))):
            found[embed.id or 0] = embed
    return [found[key] for key in sorted(found)]


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _media_files(text_of_document: str, media_dir: Path, media_url: str) -> dict[str, str]:
    """Every file of the media directory the document links (``media_url`` + name),
    with each upload's smaller widths, as base64."""
    pattern = re.compile(re.escape(media_url) + _KEY)
    wanted: set[str] = set()
    for key, ext in pattern.findall(text_of_document.replace("\\/", "/")):
        wanted.add(f"{key}.{ext}")
        wanted.update(f"{key}-{width}w.{ext}" for width in WIDTHS)
    files = {}
    for name in sorted(wanted):
        path = media_dir / name
        if path.is_file():
            files[name] = base64.b64encode(path.read_bytes()).decode("ascii")
    return files


def dumps(document: dict[str, Any], *, compact: bool = False) -> str:
    if compact:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(document, ensure_ascii=False, indent=2)


# --- import ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    slug: str
    updates: int
    revisions: int
    events: int
    users_created: list[str]
    categories_created: list[str]
    media_files: int

    def summary(self) -> str:
        created = ", ".join(self.users_created) or "none"
        return (
            f"imported {self.slug}: {self.updates} updates, {self.revisions} revisions, "
            f"{self.events} events, {self.media_files} media files; "
            f"users created (inactive, no password): {created}"
        )


def parse(document: Any) -> StoryDocument:
    """``document`` (parsed JSON) checked: its format, version, every field's type, and
    that its parts agree with each other. A ``TransferError`` says what is wrong."""
    if not isinstance(document, dict):
        raise TransferError("not a liveblog story document: expected a JSON object")
    if document.get("format") != FORMAT:
        raise TransferError(f'not a liveblog story document: "format" is not "{FORMAT}"')
    if document.get("version") != VERSION:
        raise TransferError(
            f"this document is version {document.get('version')!r}; this liveblog reads "
            f"version {VERSION}"
        )
    try:
        parsed = StoryDocument.model_validate(document)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False)[:5]
        )
        raise TransferError(f"the document is malformed: {problems}") from None
    _check_consistent(parsed)
    return parsed


def _check_consistent(doc: StoryDocument) -> None:
    usernames = {user.username for user in doc.users}
    if len(usernames) != len(doc.users):
        raise TransferError("the document lists a user twice")
    named = {doc.story.created_by} | {line.username for line in doc.article.authors}
    named |= {u.author for u in doc.updates} | {e.actor for e in doc.events}
    named |= {r.editor for u in doc.updates for r in u.revisions}
    named |= {t.username for t in doc.team} | {a.actor for a in doc.audit}
    missing = sorted(name for name in named - usernames if name is not None)
    if missing:
        raise TransferError(f"the document names users it does not list: {', '.join(missing)}")
    for line in doc.article.authors:
        if (line.username is None) == (not line.name):
            raise TransferError("a byline entry is a username or a name, one of them")
    ids = [update.id for update in doc.updates]
    if len(set(ids)) != len(ids):
        raise TransferError("the document has two updates with the same id")
    seqs = [event.seq for event in doc.events]
    if seqs != list(range(1, len(seqs) + 1)) or doc.story.last_seq != len(seqs):
        raise TransferError(
            "the event log must be gap-free: seqs 1 to the story's last_seq, in order"
        )
    for event in doc.events:
        try:
            payload = json.loads(event.data)
        except ValueError:
            raise TransferError(f"event {event.seq}: its data is not JSON") from None
        if not isinstance(payload, dict):
            raise TransferError(f"event {event.seq}: its data is not a JSON object")
    pinned = [u.id for u in doc.updates if u.pinned and u.deleted_at is None]
    if len(pinned) > 1:
        raise TransferError("more than one update is pinned")
    for name, data in doc.media.items():
        if not MEDIA_NAME.fullmatch(name):
            raise TransferError(f"media: {name!r} is not the name of a media file")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise TransferError(f"media: {name} is not valid base64") from None
    slugs = [c.slug for c in doc.article.categories]
    if len(set(slugs)) != len(slugs):
        raise TransferError("the story lists a category twice")


async def import_story(session: AsyncSession, document: Any, *, media_dir: Path) -> Imported:
    """Create the story ``document`` describes, in the caller's transaction (which must
    roll back on any error: nothing is half imported)."""
    doc = parse(document)
    if await store.get_story(session, doc.story.slug) is not None:
        raise TransferError(
            f"a story with slug {doc.story.slug!r} already exists here; delete or rename it "
            "first (an import never changes an existing story)"
        )
    ids = [update.id for update in doc.updates]
    taken: list[int] = []
    for chunk in _int_chunks(ids):
        taken += [
            i
            for i in (await session.exec(select(Update.id).where(col(Update.id).in_(chunk))))
            if i is not None
        ]
    if taken:
        shown = ", ".join(str(i) for i in sorted(taken)[:10])
        raise TransferError(
            f"update ids {shown} are already used in this database. An import keeps every "
            "update's id, because the stored HTML and the event log readers replay carry "
            "them (permalinks, anchors): import into a database where they are free"
        )
    users, created = await _users(session, doc)
    await _embeds(session, doc)
    categories, new_categories = await _categories(session, doc)
    story_id = doc.story.id
    if story_id is not None and await session.get(Story, story_id) is not None:
        story_id = None  # taken: a new one (only ETags carry it)
    story = Story(
        id=story_id,
        **doc.story.model_dump(exclude={"id", "created_by"}),
        created_by_id=None if doc.story.created_by is None else users[doc.story.created_by],
        lead=doc.article.lead,
        lead_html=doc.article.lead_html,
    )
    session.add(story)
    await session.flush()
    assert story.id is not None
    for position, line in enumerate(doc.article.authors):
        session.add(
            StoryByline(
                story_id=story.id,
                position=position,
                user_id=None if line.username is None else users[line.username],
                name=line.name if line.username is None else None,
            )
        )
    for position, category in enumerate(doc.article.categories):
        session.add(
            StoryCategory(
                story_id=story.id, category_id=categories[category.slug], position=position
            )
        )
    for position, tag in enumerate(doc.article.tags):
        session.add(StoryTag(story_id=story.id, position=position, name=tag))
    for member in doc.team:
        session.add(
            StoryTeam(story_id=story.id, user_id=users[member.username], added_at=member.added_at)
        )
    # Pinned last: the one-pin index must never see two (a deleted one may be pinned).
    for update in sorted(doc.updates, key=lambda u: (u.pinned, u.id)):
        session.add(
            Update(
                story_id=story.id,
                author_id=users[update.author],
                **update.model_dump(exclude={"author", "revisions"}),
            )
        )
    await session.flush()
    revisions = 0
    for update in doc.updates:
        for revision in update.revisions:
            session.add(
                UpdateRevision(
                    update_id=update.id,
                    editor_id=None if revision.editor is None else users[revision.editor],
                    **revision.model_dump(exclude={"editor"}),
                )
            )
            revisions += 1
    for event in doc.events:
        session.add(
            StoryEvent(
                story_id=story.id,
                actor_id=None if event.actor is None else users[event.actor],
                **event.model_dump(exclude={"actor"}),
            )
        )
    known = set(ids)
    for entry in doc.audit:
        session.add(
            AuditEntry(
                story_id=story.id,
                update_id=entry.update_id if entry.update_id in known else None,
                actor_id=None if entry.actor is None else users[entry.actor],
                **entry.model_dump(exclude={"actor", "update_id"}),
            )
        )
    await session.flush()
    await _advance_sequences(session)
    written = _write_media(doc.media, media_dir)
    return Imported(
        slug=story.slug,
        updates=len(doc.updates),
        revisions=revisions,
        events=len(doc.events),
        users_created=created,
        categories_created=new_categories,
        media_files=written,
    )


def _int_chunks(items: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _users(session: AsyncSession, doc: StoryDocument) -> tuple[dict[str, int], list[str]]:
    """Each username's account here: the existing one of that name (as it is here), or a
    new one that cannot log in (inactive, no password) but shows as author and byline."""
    ids: dict[str, int] = {}
    created = []
    for user in doc.users:
        found = await store.get_user_by_username(session, user.username)
        if found is None:
            found = User(
                **user.model_dump(exclude={"active"}),
                active=False,
                password_hash=UNUSABLE_PASSWORD,
            )
            session.add(found)
            await session.flush()
            created.append(user.username)
        assert found.id is not None
        ids[user.username] = found.id
    return ids, created


async def _embeds(session: AsyncSession, doc: StoryDocument) -> int:
    """The document's link embeds, added where missing. One already here (the same
    link) must have the same key, the one its frame address in the HTML carries."""
    added = 0
    for embed in doc.link_embeds:
        by_link = (
            await session.exec(select(LinkEmbed).where(LinkEmbed.url_hash == embed.url_hash))
        ).first()
        if by_link is not None:
            if by_link.key != embed.key:
                raise TransferError(
                    f"the link {embed.url} is already embedded here under another key: its "
                    "imported updates would show another frame address"
                )
            continue
        by_key = (await session.exec(select(LinkEmbed).where(LinkEmbed.key == embed.key))).first()
        if by_key is not None:
            raise TransferError(f"the embed key {embed.key} is used here by another link")
        session.add(LinkEmbed(**embed.model_dump()))
        added += 1
    await session.flush()
    return added


async def _categories(
    session: AsyncSession, doc: StoryDocument
) -> tuple[dict[str, int], list[str]]:
    """The story's categories by slug: existing ones as they are here, missing ones
    created with the document's name and position."""
    ids: dict[str, int] = {}
    created = []
    for category in doc.article.categories:
        found = await articles.get_category(session, category.slug)
        if found is None:
            found = Category(**category.model_dump())
            session.add(found)
            await session.flush()
            created.append(category.slug)
        assert found.id is not None
        ids[category.slug] = found.id
    return ids, created


async def _advance_sequences(session: AsyncSession) -> None:
    """PostgreSQL: past the ids given explicitly, so later rows do not collide with them
    (SQLite picks max(id) + 1 by itself)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    connection = await session.connection()
    for table in ("story", "update"):
        await connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                f'(SELECT COALESCE(MAX(id), 0) + 1 FROM "{table}"), false)'
            )
        )


def _write_media(files: dict[str, str], media_dir: Path) -> int:
    """The document's media files, into the media directory. Their names are hashes of
    their content, so a file already there is the same file, and kept."""
    written = 0
    for name, data in files.items():
        if not MEDIA_NAME.fullmatch(name):  # checked by ``parse``; never a path
            raise TransferError(f"media: {name!r} is not the name of a media file")
        path = media_dir / name
        if path.exists():
            continue
        media_dir.mkdir(parents=True, exist_ok=True)
        temporary = media_dir / f".{name}.{secrets.token_hex(6)}.tmp"
        temporary.write_bytes(base64.b64decode(data))
        os.replace(temporary, path)
        written += 1
    return written


def load(raw: bytes) -> Any:
    """A document file's bytes as JSON (a ``TransferError`` if they are not)."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TransferError(f"not a JSON document: {exc}") from None
