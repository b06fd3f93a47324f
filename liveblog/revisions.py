"""Earlier versions of an update: kept by every correction, shown on the desk.

``store.edit_update`` takes a ``snapshot`` of the update before it changes anything and,
if the content did change, ``keep``s it in the same transaction as the correction and
its event: a correction without its previous version cannot be committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from liveblog.models import EventKind, StoryEvent, Update, UpdateRevision, User

# Every content field a revision records (image fields included), named as on Update.
REVISED_FIELDS = tuple(
    name
    for name in UpdateRevision.model_fields
    if name not in {"id", "update_id", "editor_id", "created_at"}
)


def snapshot(update: Update) -> UpdateRevision:
    """The update as readers see it now, as a revision row (not yet stored)."""
    assert update.id is not None
    return UpdateRevision(
        update_id=update.id,
        created_at=update.edited_at or update.created_at,
        **{name: getattr(update, name) for name in REVISED_FIELDS},
    )


async def last_editor_id(session: AsyncSession, update: Update) -> int | None:
    """Who wrote the update's current version: the last corrector, else its author."""
    query = (
        select(StoryEvent.actor_id)
        .where(
            StoryEvent.story_id == update.story_id,
            StoryEvent.update_id == update.id,
            StoryEvent.kind == EventKind.edit,
        )
        .order_by(col(StoryEvent.seq).desc())
        .limit(1)
    )
    found = (await session.exec(query)).first()
    return found if found is not None else update.author_id


async def keep(session: AsyncSession, revision: UpdateRevision, update: Update) -> None:
    """Store the version a correction replaces, with who wrote that version."""
    revision.editor_id = await last_editor_id(session, update)
    session.add(revision)


@dataclass(frozen=True)
class Version:
    """One version of an update, for the history page (newest first there)."""

    number: int
    current: bool
    at: datetime
    editor: str | None
    headline: str | None
    body: str
    key_event: bool
    image_url: str | None
    image_alt: str | None
    image_caption: str | None
    image_credit: str | None


async def history(session: AsyncSession, update: Update) -> list[Version]:
    """Every version of ``update``, the current one first."""
    rows = (
        await session.exec(
            select(UpdateRevision)
            .where(UpdateRevision.update_id == update.id)
            .order_by(col(UpdateRevision.id))
        )
    ).all()
    names: dict[int, str] = {}
    wanted = {row.editor_id for row in rows if row.editor_id is not None}
    current_editor = await last_editor_id(session, update)
    if current_editor is not None:
        wanted.add(current_editor)
    if wanted:
        users = await session.exec(select(User).where(col(User.id).in_(wanted)))
        names = {user.id: user.display_name for user in users if user.id is not None}

    def version(source: Update | UpdateRevision, number: int, current: bool) -> Version:
        editor_id = current_editor if current else getattr(source, "editor_id", None)
        at = (update.edited_at or update.created_at) if current else source.created_at
        return Version(
            number=number,
            current=current,
            at=at,
            editor=names.get(editor_id) if editor_id is not None else None,
            headline=source.headline,
            body=source.body,
            key_event=source.key_event,
            image_url=source.image_url,
            image_alt=source.image_alt,
            image_caption=source.image_caption,
            image_credit=source.image_credit,
        )

    versions = [version(row, number, False) for number, row in enumerate(rows, start=1)]
    versions.append(version(update, len(rows) + 1, True))
    return list(reversed(versions))
