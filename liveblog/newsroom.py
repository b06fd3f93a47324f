"""The write path shared by the desk, the API and the CLI.

Every change: one transaction (lock the story, change it, append its events), commit,
and only then publish the events to the hub. If the process dies between commit and
publish, nothing is lost: the events are in the log, and the next event published for
that story lets every hub fill the gap from the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from liveblog import store
from liveblog.db import Database
from liveblog.hub import Hub
from liveblog.models import (
    Story,
    StoryCreate,
    StoryEvent,
    StoryPatch,
    Update,
    UpdateCreate,
    UpdatePatch,
    User,
)
from liveblog.render import Renderer
from liveblog.store import Conflict, NotFound


class Newsroom:
    def __init__(self, db: Database, hub: Hub, renderer: Renderer) -> None:
        self.db = db
        self.hub = hub
        self.renderer = renderer

    async def _publish(self, events: Sequence[StoryEvent]) -> None:
        if events:
            await self.hub.publish(events)

    async def create_story(self, data: StoryCreate, *, actor: User) -> Story:
        try:
            async with self.db.transaction() as session:
                story = await store.create_story(session, data=data, actor=actor)
        except IntegrityError as exc:  # lost a race for the same slug
            raise Conflict("a story with that slug already exists") from exc
        return story

    async def change_story(self, slug: str, patch: StoryPatch, *, actor: User) -> Story:
        async with self.db.transaction() as session:
            story = await _locked(session, slug)
            events = await store.change_story(session, story=story, patch=patch, actor=actor)
        await self._publish(events)
        return story

    async def post_update(
        self, slug: str, data: UpdateCreate, *, author: User, created_at: datetime | None = None
    ) -> Update:
        try:
            async with self.db.transaction() as session:
                story = await _locked(session, slug)
                update, events = await store.post_update(
                    session,
                    story=story,
                    data=data,
                    author=author,
                    renderer=self.renderer,
                    created_at=created_at,
                )
        except IntegrityError as exc:  # two editors pinning at the same instant
            raise Conflict("another update was pinned at the same moment; try again") from exc
        await self._publish(events)
        return update

    async def edit_update(
        self, slug: str, update_id: int, patch: UpdatePatch, *, actor: User
    ) -> Update:
        try:
            async with self.db.transaction() as session:
                story = await _locked(session, slug)
                update, events = await store.edit_update(
                    session,
                    story=story,
                    update_id=update_id,
                    patch=patch,
                    actor=actor,
                    renderer=self.renderer,
                )
        except IntegrityError as exc:
            raise Conflict("another update was pinned at the same moment; try again") from exc
        await self._publish(events)
        return update

    async def delete_update(self, slug: str, update_id: int, *, actor: User) -> None:
        async with self.db.transaction() as session:
            story = await _locked(session, slug)
            events = await store.delete_update(
                session, story=story, update_id=update_id, actor=actor, renderer=self.renderer
            )
        await self._publish(events)


async def _locked(session: AsyncSession, slug: str) -> Story:
    story = await store.get_story(session, slug, lock=True)
    if story is None:
        raise NotFound("no such story")
    return story
