"""Tables and the input/output shapes around them.

Each entity has a storage shape (``table=True``) and, where the outside world sends or
receives it, separate input and public shapes, so what a client may set never blurs
with what is stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import Field as InputField
from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel

from liveblog.media import check_image_url
from liveblog.plaintext import check_plain_text

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_SLUG = 80
MAX_TITLE = 200
MAX_SUMMARY = 1000
MAX_HEADLINE = 200
MAX_BODY = 20_000
MAX_URL = 2000
MAX_CAPTION = 300
MAX_CATEGORY = 60
MAX_BYLINE = 100
MAX_LEAD = 20_000
MAX_BIO = 2000
MAX_AUTHORS = 10
MAX_CATEGORIES = 10
MAX_TAG = 50
MAX_TAGS = 20


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Role(StrEnum):
    contributor = "contributor"
    editor = "editor"
    admin = "admin"


class StoryStatus(StrEnum):
    draft = "draft"
    live = "live"
    ended = "ended"


class UpdateState(StrEnum):
    """Where an update is on its way to readers (docs/newsroom.md). Readers only ever
    see ``published`` ones."""

    draft = "draft"  # private to its author
    submitted = "submitted"  # waiting in the story's queue for an editor
    published = "published"
    returned = "returned"  # sent back to its author with a note
    rejected = "rejected"
    scheduled = "scheduled"  # published by the scheduler at ``publish_at``


class EventKind(StrEnum):
    update = "update"
    edit = "edit"
    delete = "delete"
    story = "story"


# --- storage -------------------------------------------------------------------------


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=40, unique=True, index=True)
    display_name: str = Field(max_length=100)
    password_hash: str
    role: Role = Field(default=Role.editor)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The author page's (migration 0007): a short bio and a photo (an upload or a link).
    bio: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    photo_url: str | None = Field(default=None, max_length=MAX_URL)


class Story(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=MAX_SLUG, unique=True, index=True)
    title: str = Field(max_length=MAX_TITLE)
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    status: StoryStatus = Field(default=StoryStatus.draft, index=True)
    breaking: bool = False
    # The newest sequence number in this story's event log; bumped in the same
    # transaction that appends an event, which is what keeps the log gap-free.
    last_seq: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Reader statistics for the desk, kept per story (the live count comes from the hub).
    page_views: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    peak_readers: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    # Who created the story (None: created before this was recorded, migration 0003).
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    # The lead (Markdown) and its sanitized HTML, shown above the timeline (0007).
    lead: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    lead_html: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # When coverage is announced to start; a live story with a future ``starts_at`` is
    # "announced" (``started_at`` None) until its first update is published.
    starts_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Update(SQLModel, table=True):
    __table_args__ = (
        # At most one pinned update per story, enforced by the database itself.
        Index(
            "uq_update_one_pinned_per_story",
            "story_id",
            unique=True,
            sqlite_where=text("pinned AND deleted_at IS NULL"),
            postgresql_where=text("pinned AND deleted_at IS NULL"),
        ),
        Index("ix_update_story_id_id", "story_id", "id"),
        # Readers' order: the moment each update was published (migration 0005).
        Index("ix_update_story_id_published_seq", "story_id", "published_seq"),
        # The scheduler's look-up of what is due.
        Index("ix_update_state_publish_at", "state", "publish_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    story_id: int = Field(foreign_key="story.id")
    author_id: int = Field(foreign_key="user.id")
    headline: str | None = Field(default=None, max_length=MAX_HEADLINE)
    body: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str = Field(sa_column=Column(Text, nullable=False))
    key_event: bool = False
    pinned: bool = False
    # An optional image: uploaded into the media directory or linked by URL.
    image_url: str | None = Field(default=None, max_length=MAX_URL)
    image_alt: str | None = Field(default=None, max_length=MAX_CAPTION)
    image_caption: str | None = Field(default=None, max_length=MAX_CAPTION)
    image_credit: str | None = Field(default=None, max_length=MAX_CAPTION)
    image_width: int | None = None
    image_height: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    edited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The newsroom workflow (migration 0004): only published updates reach readers.
    state: UpdateState = Field(
        default=UpdateState.published, sa_column_kwargs={"server_default": "published"}
    )
    # Bumped by every change to the update: the API's ETag / If-Match for edits.
    version: int = Field(default=1, sa_column_kwargs={"server_default": text("1")})
    # The editor's note when the update was returned to its author.
    return_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The seq of the story event that published it (None until published): readers see
    # updates in this order, the order they arrived live (migration 0005).
    published_seq: int | None = None
    # When a scheduled update is (or was) to be published; kept after publishing, so a
    # schedule that was missed while the service was down shows its intended time.
    publish_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The link embeds in the body as they were when it was rendered (JSON, a list of
    # ``embeds.cards.card_data``): what the API and JSON-LD give beside ``body_html``.
    embeds: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class LinkEmbed(SQLModel, table=True):
    """What a link pasted on its own line became: fetched once from its provider, kept
    for every update that shows it (liveblog/embeds/, docs/embeds.md)."""

    __tablename__ = "link_embed"

    id: int | None = Field(default=None, primary_key=True)
    # The link's address, and its SHA-256 (hex) as the unique look-up: an address may
    # be longer than an index entry may be.
    url: str = Field(sa_column=Column(Text, nullable=False))
    url_hash: str = Field(max_length=64, unique=True)
    # Public and unguessable: /embed-frame/{key} (an id would let anyone list the
    # links editors have previewed but not yet published).
    key: str = Field(max_length=32, unique=True)
    kind: str = Field(max_length=10)  # video, rich, photo or link
    provider: str = Field(max_length=60)  # the registry's key, or the host
    provider_name: str = Field(max_length=MAX_CAPTION)
    title: str = Field(max_length=MAX_CAPTION)
    author_name: str | None = Field(default=None, max_length=MAX_CAPTION)
    thumbnail_url: str | None = Field(default=None, max_length=MAX_URL)  # our media store
    thumbnail_width: int | None = None
    thumbnail_height: int | None = None
    # The provider's markup, cleaned, shown only inside /embed-frame/{key} after a click;
    # the origins it loads from (that frame's CSP); the player's shape ("16/9").
    frame_html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    frame_origins: str | None = Field(default=None, max_length=MAX_URL)
    ratio: str | None = Field(default=None, max_length=20)
    # Why it is only a link card, when the provider could not be asked (for the desk).
    problem: str | None = Field(default=None, max_length=MAX_CAPTION)
    fetched_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Webhook(SQLModel, table=True):
    """An endpoint told of every event of its stories (liveblog/webhooks.py)."""

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_column=Column(Text, nullable=False))
    # "whsec_" + base64: signs every delivery (Standard Webhooks); shown once, kept to sign.
    secret: str = Field(max_length=100)
    # JSON lists: the event kinds it wants (empty: all) and the story ids (None: all).
    events: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    stories: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    # Since when deliveries have failed for longer than the retry schedule's first hours
    # (the desk shows it); cleared by the next delivery that succeeds.
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookCursor(SQLModel, table=True):
    """How far one endpoint has got in one story's event log: delivery is in order, one
    event at a time, from here. A process delivers only while it holds the claim."""

    __tablename__ = "webhook_cursor"

    webhook_id: int = Field(foreign_key="webhook.id", primary_key=True)
    story_id: int = Field(foreign_key="story.id", primary_key=True)
    last_seq: int = 0  # delivered (or not wanted) up to and including this seq
    attempts: int = 0  # failed attempts at the next event
    first_failure_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    """One delivery's answer, kept (the last few per endpoint) for the desk."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_webhook_id_id", "webhook_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhook.id")
    story_id: int = Field(foreign_key="story.id")
    seq: int
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status: int | None = None  # the HTTP status; None: no answer (the error says why)
    error: str | None = Field(default=None, max_length=MAX_CAPTION)
    duration_ms: int = 0


class AuditAction(StrEnum):
    """What an audit entry records (docs/newsroom.md, "The audit trail")."""

    created = "created"  # an update written (its state in the detail)
    edited = "edited"
    submitted = "submitted"
    published = "published"
    returned = "returned"
    rejected = "rejected"
    scheduled = "scheduled"  # scheduled, or its time changed
    unscheduled = "unscheduled"
    deleted = "deleted"
    pinned = "pinned"
    unpinned = "unpinned"
    story_created = "story_created"
    story_changed = "story_changed"
    team_added = "team_added"
    team_removed = "team_removed"


class AuditEntry(SQLModel, table=True):
    """Who did what to a story and when; written in the transaction of the change."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_story_id_id", "story_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    story_id: int = Field(foreign_key="story.id")
    update_id: int | None = Field(default=None, foreign_key="update.id")
    # None: the service itself (the scheduler).
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    action: AuditAction
    # A short human sentence's details: a state, a note, a schedule time, a username.
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StoryTeam(SQLModel, table=True):
    """Who is on a story's team: contributors write updates only on their stories."""

    __tablename__ = "story_team"

    story_id: int = Field(foreign_key="story.id", primary_key=True)
    user_id: int = Field(foreign_key="user.id", primary_key=True, index=True)
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UpdateRevision(SQLModel, table=True):
    """An earlier version of an update, kept when it is corrected."""

    __tablename__ = "update_revision"

    id: int | None = Field(default=None, primary_key=True)
    update_id: int = Field(foreign_key="update.id", index=True)
    # Who wrote this version (the author, or the editor of the previous correction).
    editor_id: int | None = Field(default=None, foreign_key="user.id")
    headline: str | None = Field(default=None, max_length=MAX_HEADLINE)
    body: str = Field(sa_column=Column(Text, nullable=False))
    key_event: bool = False
    image_url: str | None = Field(default=None, max_length=MAX_URL)
    image_alt: str | None = Field(default=None, max_length=MAX_CAPTION)
    image_caption: str | None = Field(default=None, max_length=MAX_CAPTION)
    image_credit: str | None = Field(default=None, max_length=MAX_CAPTION)
    # When this version was first shown to readers.
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StoryEvent(SQLModel, table=True):
    __tablename__ = "story_event"
    __table_args__ = (UniqueConstraint("story_id", "seq", name="uq_story_event_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    story_id: int = Field(foreign_key="story.id")
    seq: int
    kind: EventKind
    update_id: int | None = Field(default=None)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    # The event's JSON payload exactly as readers receive it (minus seq), so replay
    # sends what live readers saw at the time.
    data: str = Field(sa_column=Column(Text, nullable=False))
    # True for the event that ends the story: streams close after sending it.
    closes: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Category(SQLModel, table=True):
    """A section of the site (Politics, World...), in the editors' order (0007)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=MAX_CATEGORY)
    slug: str = Field(max_length=MAX_SLUG, unique=True, index=True)
    position: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})


class StoryCategory(SQLModel, table=True):
    __tablename__ = "story_category"

    story_id: int = Field(foreign_key="story.id", primary_key=True)
    category_id: int = Field(foreign_key="category.id", primary_key=True, index=True)
    # The story's own order of its categories: the first is its section.
    position: int = 0


class StoryTag(SQLModel, table=True):
    """One of a story's free tags, in order (Open Graph's article:tag, JSON-LD keywords)."""

    __tablename__ = "story_tag"

    story_id: int = Field(foreign_key="story.id", primary_key=True)
    position: int = Field(primary_key=True)
    name: str = Field(max_length=MAX_TAG)


class StoryByline(SQLModel, table=True):
    """One name of a story's byline, in order: a user, or a free-text name."""

    __tablename__ = "story_byline"

    story_id: int = Field(foreign_key="story.id", primary_key=True)
    position: int = Field(primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    name: str | None = Field(default=None, max_length=MAX_BYLINE)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(default="", max_length=100)
    token_hash: str = Field(unique=True, index=True)
    read_only: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginSession(SQLModel, table=True):
    __tablename__ = "login_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


# --- input shapes --------------------------------------------------------------------


# Input fields that hold a moment: given as ISO 8601 text (pydantic would also take a
# number, as seconds since 1970, which the API's schema does not allow).
_MOMENTS = frozenset({"publish_at", "starts_at"})


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _moments_as_text(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name in _MOMENTS and isinstance(value, int | float):
            raise ValueError("give the time as text, e.g. 2026-12-03T10:00:00Z")
        return value

    @field_validator("*")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        # Control characters are refused in every text field (see liveblog/plaintext.py).
        return check_plain_text(value, "text") if isinstance(value, str) else value


def _check_slug(value: str | None) -> str | None:
    if value is None:
        return None
    if not SLUG_RE.fullmatch(value) or len(value) > MAX_SLUG:
        raise ValueError(f"slug must be 1-{MAX_SLUG} lowercase letters, digits and single hyphens")
    return value


def _non_empty(value: str, what: str) -> str:
    if not value:
        raise ValueError(f"{what} must not be empty")
    return value


class BylineName(_Input):
    """A byline's free-text name (``{"name": "Staff and agencies"}``) or a user's
    (``{"username": "alice"}``, the same as the bare string ``"alice"``)."""

    name: str | None = InputField(default=None, max_length=MAX_BYLINE)
    username: str | None = InputField(default=None, max_length=40)

    @model_validator(mode="after")
    def _one(self) -> BylineName:
        if bool(self.name) == bool(self.username):
            raise ValueError('a byline is a username or {"name": ...}, one of them')
        return self


class _Article(_Input):
    """The article fields of a story (issue 14): byline, lead, categories, tags, start."""

    authors: list[str | BylineName] | None = InputField(default=None, max_length=MAX_AUTHORS)
    lead: str | None = InputField(default=None, max_length=MAX_LEAD)
    categories: list[str] | None = InputField(default=None, max_length=MAX_CATEGORIES)
    tags: list[str] | None = InputField(default=None, max_length=MAX_TAGS)
    starts_at: datetime | None = None

    @field_validator("authors")
    @classmethod
    def _authors(cls, value: list[str | BylineName] | None) -> list[str | BylineName] | None:
        if value is None:
            return None
        return [_non_empty(item, "a username") if isinstance(item, str) else item for item in value]

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for slug in value:
            _check_slug(slug)
        return list(dict.fromkeys(value))

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        """Free words, in order; spaces tidied, the same tag in other case once."""
        if value is None:
            return None
        tags: dict[str, str] = {}
        for item in value:
            tag = _non_empty(" ".join(item.split()), "a tag")
            if len(tag) > MAX_TAG:
                raise ValueError(f"a tag is at most {MAX_TAG} characters")
            tags.setdefault(tag.casefold(), tag)
        return list(tags.values())

    @field_validator("starts_at")
    @classmethod
    def _starts_at(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("starts_at needs a time zone, e.g. 2026-12-03T14:00:00Z")
        return None if value is None else _in_utc(value)


class StoryCreate(_Article):
    title: str = InputField(max_length=MAX_TITLE)
    summary: str = InputField(default="", max_length=MAX_SUMMARY)
    slug: str | None = None
    status: StoryStatus = StoryStatus.draft
    breaking: StrictBool = False

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        return _check_slug(value or None)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return _non_empty(value, "title")


class StoryPatch(_Article):
    """Only the fields given change; ``"starts_at": null`` removes the announced start."""

    title: str | None = InputField(default=None, max_length=MAX_TITLE)
    summary: str | None = InputField(default=None, max_length=MAX_SUMMARY)
    status: StoryStatus | None = None
    breaking: StrictBool | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return None if value is None else _non_empty(value, "title")


IMAGE_FIELDS = (
    "image_url",
    "image_alt",
    "image_caption",
    "image_credit",
    "image_width",
    "image_height",
)


class _ImageInput(_Input):
    """An optional image: an upload's URL (``POST /api/media``) or any http(s) image."""

    image_url: str | None = InputField(default=None, max_length=MAX_URL)
    image_alt: str | None = InputField(default=None, max_length=MAX_CAPTION)
    image_caption: str | None = InputField(default=None, max_length=MAX_CAPTION)
    image_credit: str | None = InputField(default=None, max_length=MAX_CAPTION)
    # Filled in for uploads; for linked images they let the page reserve the space.
    image_width: StrictInt | None = InputField(default=None, ge=1, le=20_000)
    image_height: StrictInt | None = InputField(default=None, ge=1, le=20_000)

    @field_validator("image_url")
    @classmethod
    def _image_url(cls, value: str | None) -> str | None:
        return check_image_url(value) if value else None

    @field_validator("image_alt", "image_caption", "image_credit")
    @classmethod
    def _image_text(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _size_in_pairs(self) -> _ImageInput:
        if (self.image_width is None) != (self.image_height is None):
            raise ValueError("give image_width and image_height together")
        return self


class UpdateCreate(_ImageInput):
    body: str = InputField(max_length=MAX_BODY)
    headline: str | None = InputField(default=None, max_length=MAX_HEADLINE)
    key_event: StrictBool = False
    pinned: StrictBool = False
    # None: the caller's default (an editor publishes, a contributor submits).
    state: UpdateState | None = None
    # A future moment: an editor's update is scheduled for it (docs/newsroom.md).
    publish_at: datetime | None = None

    @field_validator("body")
    @classmethod
    def _body(cls, value: str) -> str:
        return _non_empty(value, "body")

    @field_validator("state")
    @classmethod
    def _state(cls, value: UpdateState | None) -> UpdateState | None:
        if value not in (None, UpdateState.draft, UpdateState.submitted, UpdateState.published):
            raise ValueError("state must be draft, submitted or published")
        return value

    @field_validator("publish_at")
    @classmethod
    def _publish_at(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _future(value)

    @field_validator("headline")
    @classmethod
    def _headline(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _image_parts_need_an_image(self) -> UpdateCreate:
        if self.publish_at is not None and self.state is not None:
            # A scheduled update's state is "scheduled": "state" cannot say otherwise.
            raise ValueError("give either publish_at or state, not both")
        parts = [name for name in IMAGE_FIELDS[1:] if getattr(self, name) is not None]
        if parts and self.image_url is None:
            raise ValueError(f"{', '.join(parts)} given without an image_url")
        return self


def _future(moment: datetime) -> datetime:
    """A schedule's time: with a zone (a bare local time is ambiguous), in the future."""
    if moment.tzinfo is None:
        raise ValueError("publish_at needs a time zone, e.g. 2026-12-03T10:00:00Z")
    moment = _in_utc(moment)
    if moment <= utcnow():
        raise ValueError("publish_at must be in the future")
    return moment


def _in_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a ValueError (422), not an OverflowError (500), when that
    falls outside years 1 to 9999 (``9999-12-31T23:59:59-23:00``)."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall within years 1 to 9999 in UTC") from None


class CategoryCreate(_Input):
    name: str = InputField(max_length=MAX_CATEGORY)
    slug: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _non_empty(value, "name")

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        return _check_slug(value or None)


class CategoryRename(_Input):
    """A category's new name; its slug stays, so its links keep working."""

    name: str = InputField(max_length=MAX_CATEGORY)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _non_empty(value, "name")


class ProfilePatch(_Input):
    """What a user changes of their own author page."""

    bio: str = InputField(default="", max_length=MAX_BIO)
    photo_url: str | None = InputField(default=None, max_length=MAX_URL)

    @field_validator("photo_url")
    @classmethod
    def _photo(cls, value: str | None) -> str | None:
        return check_image_url(value) if value else None


class Schedule(_Input):
    """``POST .../schedule``: when to publish."""

    publish_at: datetime

    @field_validator("publish_at")
    @classmethod
    def _when(cls, value: datetime) -> datetime:
        return _future(value)


class WebhookCreate(_Input):
    """``POST /api/webhooks``: where to deliver, which event kinds (none: all), which
    stories by slug (absent or null: all, those created later too)."""

    url: str = InputField(max_length=MAX_URL)
    events: list[str] = InputField(default_factory=list, max_length=10)
    stories: list[str] | None = InputField(default=None, max_length=1000)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http(s) address")
        if parts.username is not None or parts.password is not None:
            raise ValueError("url must not carry a user name or password")
        return value


class WebhookReplay(_Input):
    """``POST /api/webhooks/{id}/replay``: deliver a story's events again from a seq."""

    story: str = InputField(max_length=MAX_SLUG)
    from_seq: StrictInt = InputField(ge=1)


class EmbedRequest(_Input):
    """``POST /api/embeds``: a link, to see what it becomes in an update."""

    url: str = InputField(max_length=MAX_URL)


class ReturnNote(_Input):
    note: str = InputField(max_length=MAX_SUMMARY)

    @field_validator("note")
    @classmethod
    def _note(cls, value: str) -> str:
        return _non_empty(value, "note")


class UpdatePatch(_ImageInput):
    """Only the fields given change; ``"image_url": null`` removes the image."""

    body: str | None = InputField(default=None, max_length=MAX_BODY)
    headline: str | None = InputField(default=None, max_length=MAX_HEADLINE)
    key_event: StrictBool | None = None
    pinned: StrictBool | None = None

    @field_validator("body")
    @classmethod
    def _body(cls, value: str | None) -> str | None:
        return None if value is None else _non_empty(value, "body")


# --- public shapes -------------------------------------------------------------------


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def story_public(story: Story) -> dict[str, Any]:
    return {
        "slug": story.slug,
        "title": story.title,
        "summary": story.summary,
        "status": story.status.value,
        "breaking": story.breaking,
        "last_seq": story.last_seq,
        "created_at": iso(story.created_at),
        "started_at": iso(story.started_at),
        "ended_at": iso(story.ended_at),
        "starts_at": iso(story.starts_at),
    }


def story_for_staff(story: Story, usernames: Mapping[int, str]) -> dict[str, Any]:
    """A story as the API shows it (to staff only: never in streams or embeds): the
    public fields and ``created_by``, the username of whoever created it (None for a
    story created before that was recorded). ``usernames``: see ``store.usernames``."""
    creator = None if story.created_by_id is None else usernames.get(story.created_by_id)
    return {**story_public(story), "created_by": creator}


def update_public(update: Update, author: User | None) -> dict[str, Any]:
    return {
        "id": update.id,
        "headline": update.headline,
        "body": update.body,
        "body_html": update.body_html,
        "key_event": update.key_event,
        "pinned": update.pinned,
        "author": None if author is None else author.display_name,
        "created_at": iso(update.created_at),
        "edited_at": iso(update.edited_at),
        "image": None
        if update.image_url is None
        else {
            "url": update.image_url,
            "alt": update.image_alt,
            "caption": update.image_caption,
            "credit": update.image_credit,
            "width": update.image_width,
            "height": update.image_height,
        },
        # The link embeds in the body, as cards (never the provider's markup).
        "embeds": json.loads(update.embeds) if update.embeds else [],
    }


def update_for_staff(update: Update, author: User | None) -> dict[str, Any]:
    """An update as the API shows it to staff: the public fields and where it is in the
    newsroom workflow (never in streams or embeds: readers only get published ones)."""
    return {
        **update_public(update, author),
        "state": update.state.value,
        "version": update.version,
        "return_note": update.return_note,
        "publish_at": iso(update.publish_at),
    }


# --- output shapes, as the API documents them (liveblog/views/openapi.py) --------------
# One model per function above: every key it writes, nothing else (extra="forbid"), so
# tests/test_openapi.py fails when a function and its model part.


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageOut(_Output):
    url: str
    alt: str | None
    caption: str | None
    credit: str | None
    width: int | None
    height: int | None


class EmbedOut(_Output):
    """``render.card_data``: a link embed as its card shows it (docs/embeds.md)."""

    url: str
    kind: str
    provider: str
    provider_name: str
    title: str
    author_name: str | None
    thumbnail_url: str | None
    thumbnail_width: int | None
    thumbnail_height: int | None
    caption: str | None
    # Our click-through page (/embed-frame/{key}); None for a plain link card.
    frame: str | None


class WebhookOut(_Output):
    """``webhooks.public``: never the secret (shown once, at registration)."""

    id: int
    url: str
    events: list[str]
    stories: list[str] | None
    created_at: datetime
    failing_since: datetime | None
    backlog: int | None


class WebhookCreatedOut(WebhookOut):
    """``POST /api/webhooks``: the endpoint, and its secret, this once."""

    secret: str


class WebhookAttemptOut(_Output):
    """``webhooks.attempt_public``: one delivery's answer."""

    story: str | None
    seq: int
    at: datetime
    status: int | None
    error: str | None
    duration_ms: int


class WebhookDetailOut(WebhookOut):
    """``GET /api/webhooks/{id}``: the endpoint and its last answers, newest first."""

    attempts: list[WebhookAttemptOut]


class WebhookListOut(_Output):
    webhooks: list[WebhookOut]


class EmbedPreviewOut(EmbedOut):
    """``POST /api/embeds``: the card, and why it is only a link card (if it is)."""

    problem: str | None
    fetched_at: datetime


class UpdatePublicOut(_Output):
    """``update_public``."""

    id: int
    headline: str | None
    body: str
    body_html: str
    key_event: bool
    pinned: bool
    author: str | None
    created_at: datetime
    edited_at: datetime | None
    image: ImageOut | None
    embeds: list[EmbedOut]


class UpdateStaffOut(UpdatePublicOut):
    """``update_for_staff``."""

    state: UpdateState
    version: int
    return_note: str | None
    publish_at: datetime | None


class BylineOut(_Output):
    """``articles.Byline.public``: a user's (``username``) or a free-text name."""

    name: str
    username: str | None


class CategoryOut(_Output):
    """``articles.category_public``."""

    name: str
    slug: str
    position: int


class StoryStaffOut(_Output):
    """``story_for_staff`` with ``articles.article_json``: a story as the API shows it."""

    slug: str
    title: str
    summary: str
    status: StoryStatus
    breaking: bool
    last_seq: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    starts_at: datetime | None
    created_by: str | None
    authors: list[BylineOut]
    categories: list[CategoryOut]
    tags: list[str]
    lead: str
    lead_html: str
