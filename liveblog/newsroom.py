"""The write path shared by the desk, the API and the CLI.

Every change: one transaction (lock the story, change it, append its events), commit,
and only then publish the events to the hub. If the process dies between commit and
publish, nothing is lost: the events are in the log, and the next event published for
that story lets every hub fill the gap from the log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from typing import TypeVar

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

T = TypeVar("T")
# A change made inside a story's transaction, called as ``change(session, story=story)``:
# what it made, and the events it appended (the store's own post_update and edit_update).
Change = Callable[..., Awaitable[tuple[T, list[StoryEvent]]]]


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
        async def change(session: AsyncSession, story: Story) -> tuple[Story, list[StoryEvent]]:
            return story, await store.change_story(session, story=story, patch=patch, actor=actor)

        return await self._in_story(slug, change)

    async def post_update(
        self,
        slug: str,
        data: UpdateCreate,
        *,
        author: User,
        created_at: datetime | None = None,
        may_publish: bool = True,
    ) -> Update:
        """``may_publish``: the author is an editor (see ``store.post_update``)."""
        post = partial(
            store.post_update,
            data=data,
            author=author,
            renderer=self.renderer,
            created_at=created_at,
            may_publish=may_publish,
        )
        return await self._in_story(slug, post, pins=True)

    async def edit_update(
        self,
        slug: str,
        update_id: int,
        patch: UpdatePatch,
        *,
        actor: User,
        may_publish: bool = True,
        expected_version: int | None = None,
    ) -> Update:
        edit = partial(
            store.edit_update,
            update_id=update_id,
            patch=patch,
            actor=actor,
            renderer=self.renderer,
            may_publish=may_publish,
            expected_version=expected_version,
        )
        return await self._in_story(slug, edit, pins=True)

    async def move_update(
        self,
        slug: str,
        update_id: int,
        action: str,
        *,
        actor: User,
        may_publish: bool,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> Update:
        """Submit, publish, return or reject an update (``store.TRANSITIONS``); publishing
        appends the ``update`` event readers get, published after the commit as always."""
        move = partial(
            store.move_update,
            update_id=update_id,
            action=action,
            actor=actor,
            renderer=self.renderer,
            may_publish=may_publish,
            note=note,
            expected_version=expected_version,
        )
        return await self._in_story(slug, move)

    async def set_team_member(self, slug: str, username: str, *, on: bool) -> bool:
        """Put ``username`` on the story's team (``on``) or take them off; True if they
        were added."""

        async def change(session: AsyncSession, story: Story) -> tuple[bool, list[StoryEvent]]:
            if on:
                return await store.add_to_team(session, story=story, username=username), []
            await store.remove_from_team(session, story=story, username=username)
            return False, []

        return await self._in_story(slug, change)

    async def delete_update(self, slug: str, update_id: int, *, actor: User) -> None:
        async def delete(session: AsyncSession, story: Story) -> tuple[None, list[StoryEvent]]:
            events = await store.delete_update(
                session, story=story, update_id=update_id, actor=actor, renderer=self.renderer
            )
            return None, events

        await self._in_story(slug, delete)

    async def _in_story(self, slug: str, change: Change[T], *, pins: bool = False) -> T:
        """One change to the story ``slug``: lock its row, make the change and append its
        events in one transaction, commit, then publish the events. ``pins``: the change
        may pin an update, and a race lost for the one pinned place is a Conflict."""
        try:
            async with self.db.transaction() as session:
                story = await _locked(session, slug)
                result, events = await change(session, story=story)
        except IntegrityError as exc:
            if not pins:
                raise
            # Two editors pinning at the same instant: the unique index refuses one.
            raise Conflict("another update was pinned at the same moment; try again") from exc
        await self._publish(events)
        return result


async def _locked(session: AsyncSession, slug: str) -> Story:
    story = await store.get_story(session, slug, lock=True)
    if story is None:
        raise NotFound("no such story")
    return story
