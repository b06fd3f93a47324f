"""Data functions: every change to a story and the event it appends to the story's log.

Each change function runs inside the caller's transaction and returns the events it
appended; the caller commits and only then publishes them. The sequence number comes
from ``UPDATE story SET last_seq = last_seq + 1 ... RETURNING last_seq`` in that same
transaction, so a rolled-back change leaves no number behind and two concurrent
changes can never draw the same one (the row update serialises them; the unique
constraint on ``(story_id, seq)`` backs that up).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Table, and_, func, or_
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import update as sql_update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from liveblog import audit, revisions
from liveblog.events import dump_payload
from liveblog.models import (
    IMAGE_FIELDS,
    MAX_SLUG,
    SLUG_RE,
    AuditAction,
    EventKind,
    Role,
    Story,
    StoryCreate,
    StoryEvent,
    StoryPatch,
    StoryStatus,
    StoryTeam,
    Update,
    UpdateCreate,
    UpdatePatch,
    UpdateState,
    User,
    iso,
    story_public,
    utcnow,
)
from liveblog.render import Renderer

Order = Literal["newest", "oldest"]
# The story table, for Core statements (``_append_event``).
_STORY_TABLE = cast(Table, sa_inspect(Story).local_table)


class StoreError(Exception):
    status = 400


class NotFound(StoreError):
    status = 404


class Conflict(StoreError):
    status = 409


class Forbidden(StoreError):
    status = 403


class Stale(StoreError):
    """The client changed an older version of the update (``If-Match``)."""

    status = 412


# --- reading -------------------------------------------------------------------------


async def get_story(
    session: AsyncSession, slug: str, *, lock: bool = False, skip_locked: bool = False
) -> Story | None:
    """``lock``: hold the story's row until the transaction ends (every writer to a
    story does). ``skip_locked``: on PostgreSQL, None at once if another transaction
    holds it (the scheduler uses this to leave a story to whoever holds it)."""
    if not SLUG_RE.fullmatch(slug):
        return None  # no story has it; and PostgreSQL refuses some strings (NUL) outright
    query = select(Story).where(Story.slug == slug)
    if lock:
        # Postgres: serialise writers to one story. SQLite ignores FOR UPDATE; there
        # the first write of the transaction takes the database's write lock, so the
        # story is read by a no-op write (RETURNING the row: one statement): otherwise
        # it is read before the lock and checks on it (ended? which update is pinned?)
        # can be stale by the time it is written.
        if session.get_bind().dialect.name == "sqlite":
            locked = (
                sql_update(Story)
                .where(col(Story.slug) == slug)
                .values(last_seq=col(Story.last_seq))
                .returning(Story)
                .execution_options(synchronize_session=False)
            )
            story: Story | None = (await session.exec(locked)).scalars().first()
            return story
        query = query.with_for_update(skip_locked=skip_locked)
    return (await session.exec(query)).first()


async def visible_story(session: AsyncSession, slug: str, *, drafts: bool) -> Story | None:
    """The story ``slug`` if it may be shown: a draft only when ``drafts`` (the caller is
    staff); otherwise, like an unknown slug, None."""
    story = await get_story(session, slug)
    if story is None or (story.status == StoryStatus.draft and not drafts):
        return None
    return story


async def list_stories(
    session: AsyncSession, *, statuses: Sequence[StoryStatus], limit: int = 50
) -> list[Story]:
    query = (
        select(Story)
        .where(col(Story.status).in_(statuses))
        .order_by(col(Story.updated_at).desc(), col(Story.id).desc())
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def story_versions(
    session: AsyncSession, *, statuses: Sequence[StoryStatus], limit: int = 50
) -> list[tuple[int, int]]:
    """``(id, last_seq)`` of what ``list_stories`` returns, in its order: a cache validator
    for the list, read without loading the stories."""
    query = (
        select(Story.id, Story.last_seq)
        .where(col(Story.status).in_(statuses))
        .order_by(col(Story.updated_at).desc(), col(Story.id).desc())
        .limit(limit)
    )
    rows = (await session.exec(query)).all()
    return [(int(story_id or 0), last_seq) for story_id, last_seq in rows]


# What every query for updates readers may see has in it: deleted updates are kept (their
# events and revisions refer to them) but never shown, and only published updates are
# shown (drafts, submissions, returned and rejected ones are the newsroom's own).
_NOT_DELETED = col(Update.deleted_at).is_(None)
_PUBLISHED = and_(_NOT_DELETED, col(Update.state) == UpdateState.published)


def _shown_in(story: Story) -> ColumnElement[bool]:
    """The updates of ``story`` that are shown to readers (published, not deleted)."""
    return and_(col(Update.story_id) == story.id, _PUBLISHED)


def _with_authors() -> Select[Update, User]:
    return select(Update, User).join(User, col(User.id) == Update.author_id)


async def get_update(session: AsyncSession, story: Story, update_id: int) -> Update | None:
    if not 0 < update_id < 2**63:
        return None  # out of any database's integer range: no such update
    query = select(Update).where(Update.id == update_id, _shown_in(story))
    return (await session.exec(query)).first()


async def staff_update(
    session: AsyncSession, story: Story, update_id: int, *, viewer: User
) -> Update | None:
    """An update of ``story`` in any state, as staff see it: not deleted, and a draft
    only to its author (drafts are private)."""
    if not 0 < update_id < 2**63:
        return None
    query = select(Update).where(
        Update.id == update_id, col(Update.story_id) == story.id, _NOT_DELETED
    )
    update = (await session.exec(query)).first()
    if update is None or (update.state == UpdateState.draft and update.author_id != viewer.id):
        return None
    return update


async def staff_updates(
    session: AsyncSession,
    story: Story,
    *,
    viewer: User,
    states: Collection[UpdateState],
    only_own: bool = False,
    limit: int = 200,
) -> list[tuple[Update, User]]:
    """The story's updates in ``states`` as staff see them, with their authors: not
    deleted, and drafts only the viewer's own (drafts are private). ``only_own``: only
    the viewer's (what a contributor sees). Scheduled ones soonest first, the rest
    newest first."""
    query = (
        _with_authors()
        .where(
            col(Update.story_id) == story.id,
            _NOT_DELETED,
            col(Update.state).in_(list(states)),
            or_(col(Update.state) != UpdateState.draft, col(Update.author_id) == viewer.id),
        )
        .order_by(col(Update.publish_at).asc().nulls_last(), col(Update.id).desc())
        .limit(limit)
    )
    if only_own:
        query = query.where(col(Update.author_id) == viewer.id)
    return [(update, user) for update, user in (await session.exec(query)).all()]


async def team_stories(session: AsyncSession, user: User) -> list[Story]:
    """The stories whose team ``user`` is on, newest change first (a contributor's desk)."""
    query = (
        select(Story)
        .join(StoryTeam, col(StoryTeam.story_id) == Story.id)
        .where(StoryTeam.user_id == user.id)
        .order_by(col(Story.updated_at).desc(), col(Story.id).desc())
    )
    return list((await session.exec(query)).all())


async def team_members(session: AsyncSession, story: Story) -> list[User]:
    query = (
        select(User)
        .join(StoryTeam, col(StoryTeam.user_id) == User.id)
        .where(StoryTeam.story_id == story.id)
        .order_by(col(User.username))
    )
    return list((await session.exec(query)).all())


async def on_team(session: AsyncSession, story: Story, user: User) -> bool:
    """Is ``user`` on the team of ``story``?"""
    found = await session.get(StoryTeam, (story.id, user.id))
    return found is not None


async def updates_page(
    session: AsyncSession,
    story: Story,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 20,
    order: Order = "newest",
) -> list[tuple[Update, User]]:
    """Newest first (``before``: the cursor of "older updates"), or oldest first
    (``after``: the cursor of "newer updates"). The cursors are update ids; the order is
    the order of publishing (``Update.published_seq``), the order live readers saw."""
    position = col(Update.published_seq)
    query = (
        _with_authors()
        .where(_shown_in(story))
        .order_by(position.desc() if order == "newest" else position.asc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(position < _position_of(before))
    if after is not None:
        query = query.where(position > _position_of(after))
    return [(update, user) for update, user in (await session.exec(query)).all()]


def _position_of(update_id: int) -> Any:
    """The publishing position of the update ``update_id``, as a subquery (NULL for no
    such update, which matches nothing)."""
    if not 0 < update_id < 2**63:
        update_id = 0  # out of any database's integer range: no such update
    return select(Update.published_seq).where(Update.id == update_id).scalar_subquery()


async def get_user_by_username(session: AsyncSession, username: str) -> User | None:
    """The account named ``username`` (already normalised: stripped, lower case)."""
    return (await session.exec(select(User).where(User.username == username))).first()


async def updates_by_author(
    session: AsyncSession, author: User, *, statuses: Sequence[StoryStatus], limit: int = 30
) -> list[tuple[Update, Story]]:
    """An author's newest updates across the stories in ``statuses``."""
    query = (
        select(Update, Story)
        .join(Story, col(Story.id) == Update.story_id)
        .where(Update.author_id == author.id, _PUBLISHED, col(Story.status).in_(statuses))
        .order_by(col(Update.created_at).desc(), col(Update.id).desc())
        .limit(limit)
    )
    return [(update, story) for update, story in (await session.exec(query)).all()]


async def pinned_update(session: AsyncSession, story: Story) -> tuple[Update, User] | None:
    query = _with_authors().where(_shown_in(story), col(Update.pinned).is_(True))
    row = (await session.exec(query)).first()
    return None if row is None else (row[0], row[1])


async def key_events(session: AsyncSession, story: Story, *, limit: int = 50) -> list[Update]:
    query = (
        select(Update)
        .where(_shown_in(story), col(Update.key_event).is_(True))
        .order_by(col(Update.published_seq).desc())
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def last_updated(session: AsyncSession, story: Story) -> datetime | None:
    """When the newest update was posted or corrected (None: no updates yet)."""
    query = select(Update.created_at, Update.edited_at).where(_shown_in(story))
    latest = query.order_by(col(Update.published_seq).desc()).limit(1)
    edited = query.where(col(Update.edited_at).is_not(None))
    edited = edited.order_by(col(Update.edited_at).desc()).limit(1)
    moments = [
        moment
        for row in [*(await session.exec(latest)).all(), *(await session.exec(edited)).all()]
        for moment in row
        if moment is not None
    ]
    return max(moments, default=None)


async def count_updates(session: AsyncSession, story: Story) -> int:
    query = select(func.count()).where(_shown_in(story))
    return int((await session.exec(query)).one())


async def events_after(
    session: AsyncSession,
    story_id: int,
    after: int,
    *,
    before: int | None = None,
    limit: int = 500,
) -> list[StoryEvent]:
    query = (
        select(StoryEvent)
        .where(StoryEvent.story_id == story_id, col(StoryEvent.seq) > after)
        .order_by(col(StoryEvent.seq))
        .limit(limit)
    )
    if before is not None:
        query = query.where(col(StoryEvent.seq) < before)
    return list((await session.exec(query)).all())


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    if not 0 < user_id < 2**63:
        return None  # out of any database's integer range: no such user
    return await session.get(User, user_id)


async def usernames(session: AsyncSession, user_ids: Sequence[int | None]) -> dict[int, str]:
    """The usernames of these accounts, by id, in one query (``None`` ids are skipped)."""
    wanted = {user_id for user_id in user_ids if user_id is not None}
    if not wanted:
        return {}
    query = select(User.id, User.username).where(col(User.id).in_(wanted))
    rows = (await session.exec(query)).all()
    return {user_id: username for user_id, username in rows if user_id is not None}


async def list_users(session: AsyncSession) -> list[User]:
    """Every account, active or not, by username."""
    return list((await session.exec(select(User).order_by(col(User.username)))).all())


async def count_active_admins(
    session: AsyncSession,
    *,
    roles: Collection[Role] = (Role.admin,),
    excluding: User | None = None,
) -> int:
    """How many active users of ``roles`` (those who may manage users: see
    ``policy.keep_an_admin``) there are, ``excluding`` one (the account about to lose
    the role or be deactivated: is anyone left?)."""
    query = select(func.count()).where(col(User.role).in_(roles), col(User.active).is_(True))
    if excluding is not None:
        query = query.where(col(User.id) != excluding.id)
    return int((await session.exec(query)).one())


# --- the event log -------------------------------------------------------------------


async def _append_event(
    session: AsyncSession,
    story: Story,
    kind: EventKind,
    payload: dict[str, Any] | Callable[[], dict[str, Any]],
    *,
    actor: User | None,
    update_id: int | None = None,
    closes: bool = False,
) -> StoryEvent:
    assert story.id is not None
    # A Core statement on the table: the ORM's bulk-update machinery (it would leave the
    # session alone anyway) costs more than the statement itself on every event.
    table = _STORY_TABLE
    bump = (
        sql_update(table)
        .where(table.c.id == story.id)
        .values(last_seq=table.c.last_seq + 1, updated_at=utcnow())
        .returning(table.c.last_seq)
    )
    seq = int((await session.exec(bump)).scalar_one())
    set_committed_value(story, "last_seq", seq)
    if callable(payload):  # built after the bump when it shows the story's own state
        payload = payload()
    now = utcnow()
    event = StoryEvent(
        story_id=story.id,
        seq=seq,
        kind=kind,
        update_id=update_id,
        actor_id=None if actor is None else actor.id,
        data=dump_payload({"kind": kind.value, **payload, "at": iso(now)}),
        closes=closes,
        created_at=now,
    )
    session.add(event)
    return event


def _update_payload(
    renderer: Renderer, update: Update, story: Story, author: User
) -> dict[str, Any]:
    return {
        "id": update.id,
        "html": renderer.update_fragment(update, story, author),
        "headline": update.headline,
        "key_event": update.key_event,
        "pinned": update.pinned,
        "author": author.display_name,
        "created_at": iso(update.created_at),
        "edited_at": iso(update.edited_at),
    }


async def _update_event(
    session: AsyncSession,
    renderer: Renderer,
    story: Story,
    kind: EventKind,
    update: Update,
    *,
    author: User,
    actor: User,
) -> StoryEvent:
    """The event that shows readers ``update`` as it is now: posted or corrected."""
    payload = _update_payload(renderer, update, story, author)
    return await _append_event(session, story, kind, payload, actor=actor, update_id=update.id)


async def publishing_event(
    session: AsyncSession,
    renderer: Renderer,
    story: Story,
    update: Update,
    *,
    author: User,
    actor: User | None,
) -> StoryEvent:
    """The ``update`` event that shows readers ``update`` for the first time; its seq
    becomes the update's place in the story (``published_seq``). ``actor`` None: the
    scheduler."""
    payload = _update_payload(renderer, update, story, author)
    event = await _append_event(
        session, story, EventKind.update, payload, actor=actor, update_id=update.id
    )
    if story.started_at is None and story.status == StoryStatus.live:
        # An announced story starts with its first published update.
        story.started_at = event.created_at
        session.add(story)
    update.published_seq = event.seq
    session.add(update)
    return event


async def _pin_event(
    session: AsyncSession,
    renderer: Renderer,
    story: Story,
    *,
    actor: User,
    pinned: Update | None,
    unpinned_id: int | None,
) -> StoryEvent:
    html = None
    if pinned is not None:
        author = await session.get(User, pinned.author_id)
        assert author is not None
        html = renderer.update_fragment(pinned, story, author, anchor=False)
    pinned_id = None if pinned is None else pinned.id
    return await _append_event(
        session,
        story,
        EventKind.story,
        lambda: {
            "change": ["pin"],
            "story": story_public(story),
            "id": pinned_id,
            "pinned_id": pinned_id,
            "unpinned_id": unpinned_id,
            "html": html,
        },
        actor=actor,
        update_id=None if pinned is None else pinned.id,
    )


async def _unpin_current(session: AsyncSession, story: Story) -> int | None:
    current = await pinned_update(session, story)
    if current is None:
        return None
    update, _author = current
    update.pinned = False
    update.version += 1
    session.add(update)
    # Flush now so the one-pinned-per-story index sees the old pin gone before the
    # new one is written.
    await session.flush()
    return update.id


# --- stories -------------------------------------------------------------------------


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:MAX_SLUG].rstrip("-") or "story"


async def create_story(session: AsyncSession, *, data: StoryCreate, actor: User) -> Story:
    if data.slug is not None:
        if await get_story(session, data.slug) is not None:
            raise Conflict(f"a story with slug {data.slug!r} already exists")
        slug = data.slug
    else:
        base = slugify(data.title)
        slug, n = base, 1
        while await get_story(session, slug) is not None:
            n += 1
            suffix = f"-{n}"
            slug = base[: MAX_SLUG - len(suffix)] + suffix
    now = utcnow()
    story = Story(
        slug=slug,
        title=data.title,
        summary=data.summary,
        status=data.status,
        breaking=data.breaking,
        created_at=now,
        updated_at=now,
        started_at=now if _starts(data.status, data.starts_at, now) else None,
        starts_at=data.starts_at,
        ended_at=now if data.status == StoryStatus.ended else None,
        created_by_id=actor.id,
    )
    session.add(story)
    await session.flush()
    audit.record(session, story, AuditAction.story_created, actor=actor, detail=story.status)
    return story


def _starts(status: StoryStatus, starts_at: datetime | None, now: datetime) -> bool:
    """Does a story with this status start now? A live story announced for a later
    time (``starts_at``) starts with its first published update (docs/reader.md)."""
    if status == StoryStatus.ended:
        return True
    return status == StoryStatus.live and (starts_at is None or starts_at <= now)


async def change_story(
    session: AsyncSession,
    *,
    story: Story,
    patch: StoryPatch,
    actor: User,
    also: dict[str, str] | None = None,
    payload: dict[str, Any] | None = None,
) -> list[StoryEvent]:
    """``also``: the article fields ``articles.change`` changed in this transaction (the
    field and its audit detail), ``payload`` what the event carries for them."""
    changed: list[str] = list(also or {})
    now = utcnow()
    for field in ("title", "summary", "breaking"):
        value = getattr(patch, field)
        if value is not None and value != getattr(story, field):
            setattr(story, field, value)
            changed.append(field)
    if patch.status is not None and patch.status != story.status:
        story.status = patch.status
        changed.append("status")
        if patch.status == StoryStatus.live:
            if _starts(story.status, story.starts_at, now):
                story.started_at = story.started_at or now
            story.ended_at = None
        elif patch.status == StoryStatus.ended:
            story.started_at = story.started_at or now
            story.ended_at = now
    if not changed:
        return []
    session.add(story)
    await session.flush()
    audit.record(
        session, story, AuditAction.story_changed, actor=actor,
        detail=", ".join(
            (also or {}).get(field) or f"{field}: {getattr(story, field)}" for field in changed
        ),
    )  # fmt: skip
    # While a story is ended every change to it is final for a stream: it closes.
    closes = story.status == StoryStatus.ended
    event = await _append_event(
        session,
        story,
        EventKind.story,
        lambda: {"change": changed, "story": story_public(story), **(payload or {})},
        actor=actor,
        closes=closes,
    )
    return [event]


# --- updates -------------------------------------------------------------------------


async def post_update(
    session: AsyncSession,
    *,
    story: Story,
    data: UpdateCreate,
    author: User,
    renderer: Renderer,
    created_at: datetime | None = None,
    may_publish: bool = True,
) -> tuple[Update, list[StoryEvent]]:
    """``created_at`` backdates the update; only the demo uses it (for realistic times).
    ``may_publish``: the author is an editor (else a contributor, who must be on the
    story's team and whose update waits for an editor: submitted, or a draft). Only a
    published update appends an event."""
    if not may_publish:  # first: a contributor off the team learns nothing of the story
        await check_contributor(session, story, author)
    if story.status == StoryStatus.ended:
        raise Conflict("this story has ended; reopen it before posting")
    assert story.id is not None and author.id is not None
    state = data.state or (UpdateState.published if may_publish else UpdateState.submitted)
    if data.publish_at is not None:
        state = UpdateState.scheduled
    if not may_publish:
        if state == UpdateState.published:
            raise Forbidden("a contributor's update is published by an editor: submit it")
        if state == UpdateState.scheduled:
            raise Forbidden("only an editor schedules updates: submit it, with the time in it")
    if state != UpdateState.published and data.pinned:
        raise StoreError("only a published update can be pinned")
    unpinned_id = await _unpin_current(session, story) if data.pinned else None
    body_html, embeds = renderer.update_body(data.body)
    published = state == UpdateState.published
    update = Update(
        state=state,
        story_id=story.id,
        author_id=author.id,
        headline=data.headline,
        body=data.body,
        body_html=body_html,
        embeds=embeds,
        key_event=data.key_event,
        pinned=data.pinned,
        created_at=created_at or utcnow(),
        publish_at=data.publish_at,
        # Its publishing event is the story's next (the story is locked and no event
        # comes before it): inserted with its place, the update needs no second write.
        # (publishing_event sets the seq it drew; were it another, that is written.)
        published_seq=story.last_seq + 1 if published else None,
        **{name: getattr(data, name) for name in IMAGE_FIELDS},
    )
    session.add(update)
    await session.flush()
    audit.record(session, story, AuditAction.created, actor=author, update=update, detail=state)
    if state == UpdateState.scheduled:
        audit.record(
            session, story, AuditAction.scheduled, actor=author, update=update,
            detail=iso(data.publish_at) or "",
        )  # fmt: skip
    if not published:
        return update, []  # nothing for readers: no event
    events = [await publishing_event(session, renderer, story, update, author=author, actor=author)]
    if data.pinned:
        events.append(
            await _pin_event(
                session, renderer, story, actor=author, pinned=update, unpinned_id=unpinned_id
            )
        )
    return update, events


# A contributor's update in these states is in an editor's hands.
_EDITORS_ONLY = (UpdateState.published, UpdateState.rejected, UpdateState.scheduled)


async def edit_update(
    session: AsyncSession,
    *,
    story: Story,
    update_id: int,
    patch: UpdatePatch,
    actor: User,
    renderer: Renderer,
    may_publish: bool = True,
    expected_version: int | None = None,
) -> tuple[Update, list[StoryEvent]]:
    """``may_publish``: the actor is an editor (else a contributor, who may change only
    their own unpublished updates on their stories). ``expected_version``: the version
    the client changed (``If-Match``); another one is refused (``Stale``)."""
    update = await workflow_target(
        session, story, update_id, actor=actor, may_publish=may_publish, own=not may_publish
    )
    check_version(update, expected_version)
    published = update.state == UpdateState.published
    if not may_publish and update.state in _EDITORS_ONLY:
        raise Conflict(f"this update is {update.state.value}; only an editor can change it now")
    if patch.pinned is not None and patch.pinned != update.pinned and not published:
        raise StoreError("only a published update can be pinned")
    previous = revisions.snapshot(update)  # kept below if the content changes
    content_changed = False
    if patch.body is not None and patch.body != update.body:
        update.body = patch.body
        update.body_html, update.embeds = renderer.update_body(patch.body)
        content_changed = True
    elif patch.body is not None and renderer.embeds:
        # The same text, its embeds fetched again (the desk's "Refresh embeds").
        body_html, embeds = renderer.update_body(patch.body)
        if body_html != update.body_html:
            update.body_html, update.embeds = body_html, embeds
            content_changed = True
    if "headline" in patch.model_fields_set and (patch.headline or None) != update.headline:
        update.headline = patch.headline or None
        content_changed = True
    if patch.key_event is not None and patch.key_event != update.key_event:
        update.key_event = patch.key_event
        content_changed = True
    # Image fields change when given; an image_url of null removes the image.
    given = patch.model_fields_set
    image = {name: getattr(update, name) for name in IMAGE_FIELDS}
    if "image_url" in given and patch.image_url != update.image_url:
        image["image_width"] = image["image_height"] = None  # another image's size
    image.update({name: getattr(patch, name) for name in IMAGE_FIELDS if name in given})
    if image["image_url"] is None:
        image = dict.fromkeys(IMAGE_FIELDS)
    for name, value in image.items():
        if value != getattr(update, name):
            setattr(update, name, value)
            content_changed = True
    events: list[StoryEvent] = []
    author = await session.get(User, update.author_id)
    assert author is not None
    if content_changed or (patch.pinned is not None and patch.pinned != update.pinned):
        update.version += 1
    if content_changed and not published:
        session.add(update)  # not yet shown to readers: no revision, no event
        await session.flush()
    if content_changed:
        audit.record(
            session, story, AuditAction.edited, actor=actor, update=update,
            detail=f"version {update.version}",
        )  # fmt: skip
    if content_changed and published:
        await revisions.keep(session, previous, update)
        update.edited_at = utcnow()
        session.add(update)
        await session.flush()
        events.append(
            await _update_event(
                session, renderer, story, EventKind.edit, update, author=author, actor=actor
            )
        )
    if patch.pinned is not None and patch.pinned != update.pinned:
        action = AuditAction.pinned if patch.pinned else AuditAction.unpinned
        audit.record(session, story, action, actor=actor, update=update)
        if patch.pinned:
            unpinned_id = await _unpin_current(session, story)
            update.pinned = True
            session.add(update)
            await session.flush()
            events.append(
                await _pin_event(
                    session, renderer, story, actor=actor, pinned=update, unpinned_id=unpinned_id
                )
            )
        else:
            update.pinned = False
            session.add(update)
            await session.flush()
            events.append(
                await _pin_event(
                    session, renderer, story, actor=actor, pinned=None, unpinned_id=update.id
                )
            )
    return update, events


async def delete_update(
    session: AsyncSession, *, story: Story, update_id: int, actor: User, renderer: Renderer
) -> list[StoryEvent]:
    update = await staff_update(session, story, update_id, viewer=actor)
    if update is None:
        raise NotFound("no such update in this story")
    was_pinned = update.pinned
    audit.record(session, story, AuditAction.deleted, actor=actor, update=update)
    update.deleted_at = utcnow()
    update.pinned = False
    update.version += 1
    session.add(update)
    await session.flush()
    if update.state != UpdateState.published:
        return []  # readers never saw it
    events = [
        await _append_event(
            session,
            story,
            EventKind.delete,
            {"id": update.id},
            actor=actor,
            update_id=update.id,
        )
    ]
    if was_pinned:
        events.append(
            await _pin_event(
                session, renderer, story, actor=actor, pinned=None, unpinned_id=update.id
            )
        )
    return events


# --- checks shared with the workflow (liveblog/workflow.py) -------------------------


async def check_contributor(session: AsyncSession, story: Story, user: User) -> None:
    if not await on_team(session, story, user):
        raise Forbidden("you are not on this story's team")


def check_version(update: Update, expected: int | None) -> None:
    if expected is not None and expected != update.version:
        raise Stale(
            f"this update has changed: you sent version {expected}, it is now version "
            f"{update.version}; reload it and make your change again"
        )


async def workflow_target(
    session: AsyncSession,
    story: Story,
    update_id: int,
    *,
    actor: User,
    may_publish: bool,
    own: bool,
) -> Update:
    """The update a workflow step acts on: staff see it (else NotFound); a contributor
    must be on the story's team; ``own``: it must be the actor's (else Forbidden)."""
    update = await staff_update(session, story, update_id, viewer=actor)
    if update is None:
        raise NotFound("no such update in this story")
    if not may_publish:
        await check_contributor(session, story, actor)
    if own and update.author_id != actor.id:
        raise Forbidden("this update is someone else's")
    return update
