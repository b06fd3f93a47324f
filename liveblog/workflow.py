"""The newsroom workflow's data functions: the steps of an update's life, schedules,
and story teams (docs/newsroom.md).

Like ``liveblog.store``, each function runs inside the caller's transaction, on the
story's locked row, and returns the events it appended (only publishing appends one);
each records its audit entry (``liveblog.audit``) in that same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from liveblog import audit
from liveblog.models import (
    AuditAction,
    Story,
    StoryEvent,
    StoryStatus,
    StoryTeam,
    Update,
    UpdateState,
    User,
    iso,
    utcnow,
)
from liveblog.render import Renderer
from liveblog.store import (
    Conflict,
    Forbidden,
    NotFound,
    StoreError,
    check_version,
    on_team,
    publishing_event,
    workflow_target,
)

# --- the steps ----------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    sources: frozenset[UpdateState]
    target: UpdateState
    by_author: bool  # only the update's author (else: an editor)
    audit: AuditAction


_S = UpdateState
_A = AuditAction
TRANSITIONS: dict[str, Transition] = {
    "submit": Transition(frozenset({_S.draft, _S.returned}), _S.submitted, True, _A.submitted),
    "publish": Transition(
        frozenset({_S.draft, _S.submitted, _S.returned, _S.scheduled}),
        _S.published,
        False,
        _A.published,
    ),
    "return": Transition(frozenset({_S.submitted, _S.scheduled}), _S.returned, False, _A.returned),
    "reject": Transition(
        frozenset({_S.submitted, _S.returned, _S.scheduled}), _S.rejected, False, _A.rejected
    ),
    # ``publish_at`` is given; an update already scheduled gets the new time.
    "schedule": Transition(
        frozenset({_S.draft, _S.submitted, _S.returned, _S.scheduled}),
        _S.scheduled,
        False,
        _A.scheduled,
    ),
    # Back to its author's drafts if the editor is its author, else to the queue.
    "unschedule": Transition(frozenset({_S.scheduled}), _S.submitted, False, _A.unscheduled),
}


async def move_update(
    session: AsyncSession,
    *,
    story: Story,
    update_id: int,
    action: str,
    actor: User,
    renderer: Renderer,
    may_publish: bool,
    note: str | None = None,
    publish_at: datetime | None = None,
    expected_version: int | None = None,
) -> tuple[Update, list[StoryEvent]]:
    """One step of an update's life (``TRANSITIONS``): a step its state does not allow
    is a Conflict. Publishing appends the ``update`` event readers get, as a direct post
    does, with the time of publishing as the update's time. ``note``: the return's note;
    ``publish_at``: the schedule's time (a future moment, checked by the input shape)."""
    step = TRANSITIONS[action]
    if not step.by_author and not may_publish:
        raise Forbidden("only an editor may do that")
    update = await workflow_target(
        session, story, update_id, actor=actor, may_publish=may_publish, own=step.by_author
    )
    check_version(update, expected_version)
    if update.state not in step.sources:
        raise Conflict(
            f"an update that is {update.state.value} cannot be {step.target.value} ({action})"
        )
    if step.target in (_S.published, _S.scheduled) and story.status == StoryStatus.ended:
        raise Conflict("this story has ended; reopen it before publishing")
    if step.target == _S.scheduled and publish_at is None:
        raise StoreError("give publish_at: when to publish it")
    target = step.target
    if action == "unschedule" and update.author_id == actor.id:
        target = _S.draft
    detail = ""
    if target == _S.scheduled:
        detail = iso(publish_at) or ""
        update.publish_at = publish_at
    elif update.state == _S.scheduled and target != _S.published:
        # Unscheduled, returned or rejected: no longer due (the audit keeps the time).
        detail = f"was due {iso(update.publish_at)}; now {target.value}"
        update.publish_at = None
    if target == _S.returned:
        detail = f"{note} ({detail})" if detail else note or ""
    update.state = target
    update.version += 1
    update.return_note = note if target == _S.returned else None
    audit.record(session, story, step.audit, actor=actor, update=update, detail=detail)
    events: list[StoryEvent] = []
    if target == _S.published:
        update.created_at = utcnow()
        update.publish_at = None  # published by hand: no longer a schedule
        author = await session.get(User, update.author_id)
        assert author is not None
        events.append(
            await publishing_event(session, renderer, story, update, author=author, actor=actor)
        )
    session.add(update)
    await session.flush()
    return update, events


# --- schedules -----------------------------------------------------------------------

# A schedule published this much after its time is called late in the audit trail.
LATE = timedelta(seconds=1)


async def next_due(session: AsyncSession) -> datetime | None:
    """The earliest time any scheduled update is due (None: nothing is scheduled)."""
    query = select(func.min(Update.publish_at)).where(
        Update.state == _S.scheduled, col(Update.deleted_at).is_(None)
    )
    return (await session.exec(query)).one()


async def stories_due(session: AsyncSession, now: datetime) -> list[str]:
    """The slugs of the stories that have a schedule due at ``now``, most overdue first."""
    query = (
        select(Story.slug, func.min(Update.publish_at))
        .join(Update, col(Update.story_id) == Story.id)
        .where(
            Update.state == _S.scheduled,
            col(Update.deleted_at).is_(None),
            col(Update.publish_at) <= now,
        )
        .group_by(col(Story.slug))
        .order_by(func.min(Update.publish_at))
    )
    return [slug for slug, _ in (await session.exec(query)).all()]


async def publish_due(
    session: AsyncSession, *, story: Story, now: datetime, renderer: Renderer
) -> tuple[list[Update], list[StoryEvent]]:
    """Publish the story's schedules due at ``now``, oldest time first; the caller holds
    the story's row lock, so each is published once, whoever else tries. The update's
    time is the moment it is published; ``publish_at`` keeps the intended time, and the
    audit entry says both. On an ended story nothing is published: those schedules go
    back to the queue (submitted), said so in the audit trail."""
    query = (
        select(Update)
        .where(
            Update.story_id == story.id,
            Update.state == _S.scheduled,
            col(Update.deleted_at).is_(None),
            col(Update.publish_at) <= now,
        )
        .order_by(col(Update.publish_at), col(Update.id))
    )
    due = list((await session.exec(query)).all())
    events: list[StoryEvent] = []
    for update in due:
        update.version += 1
        intended = iso(update.publish_at)
        if story.status == StoryStatus.ended:
            update.state = _S.submitted
            update.publish_at = None  # no longer due; the audit entry keeps the time
            audit.record(
                session, story, _A.unscheduled, actor=None, update=update,
                detail=f"was due {intended}; not published: the story had ended",
            )  # fmt: skip
            session.add(update)
            continue
        update.state = _S.published
        # The moment it goes out (this transaction's, not the round's start: a round
        # may have waited for the story's lock).
        update.created_at = utcnow()
        assert update.publish_at is not None
        late = update.created_at - update.publish_at
        detail = f"scheduled for {intended}"
        if late >= LATE:
            detail += f"; published {late.total_seconds():.1f} s late"
        audit.record(session, story, _A.published, actor=None, update=update, detail=detail)
        author = await session.get(User, update.author_id)
        assert author is not None
        events.append(
            await publishing_event(session, renderer, story, update, author=author, actor=None)
        )
    await session.flush()
    return due, events


# --- teams ---------------------------------------------------------------------------


async def add_to_team(session: AsyncSession, *, story: Story, username: str, actor: User) -> bool:
    """Put the user ``username`` on the story's team: True if they were not on it."""
    user = (await session.exec(select(User).where(User.username == username))).first()
    if user is None:
        raise NotFound("no such user")
    if await on_team(session, story, user):
        return False
    assert story.id is not None and user.id is not None
    session.add(StoryTeam(story_id=story.id, user_id=user.id))
    audit.record(session, story, _A.team_added, actor=actor, detail=username)
    await session.flush()
    return True


async def remove_from_team(
    session: AsyncSession, *, story: Story, username: str, actor: User
) -> None:
    """Take the user ``username`` off the story's team (nothing if they were not on it)."""
    user = (await session.exec(select(User).where(User.username == username))).first()
    if user is None:
        raise NotFound("no such user")
    found = await session.get(StoryTeam, (story.id, user.id))
    if found is not None:
        await session.delete(found)
        audit.record(session, story, _A.team_removed, actor=actor, detail=username)
        await session.flush()
