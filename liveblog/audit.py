"""The audit trail: who created, submitted, published, edited, scheduled or deleted
what in a story, and when (docs/newsroom.md).

An entry is added in the transaction of the change it records, by the data functions
that make the change (``liveblog.store``, ``liveblog.workflow``): the change and its
entry are committed together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from liveblog.models import AuditAction, AuditEntry, Story, Update, User, utcnow


def record(
    session: AsyncSession,
    story: Story,
    action: AuditAction,
    *,
    actor: User | None,
    update: Update | None = None,
    detail: str = "",
    at: datetime | None = None,
) -> AuditEntry:
    """Add an entry to the session (flushed with the change). ``actor`` None: the
    service itself (the scheduler)."""
    assert story.id is not None
    entry = AuditEntry(
        story_id=story.id,
        update_id=None if update is None else update.id,
        actor_id=None if actor is None else actor.id,
        action=action,
        detail=detail,
        at=at or utcnow(),
    )
    session.add(entry)
    return entry


@dataclass(frozen=True)
class Line:
    """One entry as the desk shows it."""

    entry: AuditEntry
    actor: str | None  # the actor's display name; None: the service


async def trail(session: AsyncSession, story: Story, *, limit: int = 200) -> list[Line]:
    """The story's newest ``limit`` entries, newest first."""
    query = (
        select(AuditEntry, User)
        .outerjoin(User, col(User.id) == AuditEntry.actor_id)
        .where(AuditEntry.story_id == story.id)
        .order_by(col(AuditEntry.id).desc())
        .limit(limit)
    )
    rows = (await session.exec(query)).all()
    return [Line(entry, None if user is None else user.display_name) for entry, user in rows]


async def latest(session: AsyncSession, update: Update) -> Line | None:
    """The newest entry about ``update``: who last did something to it, and what."""
    query = (
        select(AuditEntry, User)
        .outerjoin(User, col(User.id) == AuditEntry.actor_id)
        .where(AuditEntry.update_id == update.id)
        .order_by(col(AuditEntry.id).desc())
        .limit(1)
    )
    row = (await session.exec(query)).first()
    return None if row is None else Line(row[0], None if row[1] is None else row[1].display_name)
