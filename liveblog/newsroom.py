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

from liveblog import articles, store, webhooks, workflow
from liveblog.db import Database
from liveblog.desk_channel import DeskChannel
from liveblog.embeds.resolver import Embeds
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
from liveblog.render import Renderer, embed_links
from liveblog.store import Conflict, NotFound

T = TypeVar("T")
# Links past this many in one update stay links: each is a fetch the save waits on.
MAX_EMBEDS = 10
# A change made inside a story's transaction, called as ``change(session, story=story)``:
# what it made, and the events it appended (the store's own post_update and edit_update).
Change = Callable[..., Awaitable[tuple[T, list[StoryEvent]]]]


class Newsroom:
    def __init__(
        self,
        db: Database,
        hub: Hub,
        renderer: Renderer,
        *,
        desk_channel: DeskChannel | None = None,
        embeds: Embeds | None = None,
    ) -> None:
        self.db = db
        self.hub = hub
        self.renderer = renderer
        # Links on their own line become embeds, fetched before the story's transaction
        # (which must never wait on another site). None: links stay links.
        self.embeds = embeds
        # Told of every committed change to a story, for the staff's open desks.
        self.desk_channel = desk_channel
        # Called when a schedule is made, changed or cancelled (the scheduler's wake).
        self.on_schedule: Callable[[], None] | None = None
        # Called when events were committed (the webhook sender's wake).
        self.on_events: Callable[[], None] | None = None
        # Called when this process created, replayed or removed a webhook, once committed
        # (the webhook sender's "any endpoint?" answer is stale: it looks again, now).
        self.on_webhooks: Callable[[], None] | None = None

    def webhooks_changed(self) -> None:
        """A webhook was created, replayed or removed here (call after the commit)."""
        if self.on_webhooks is not None:
            self.on_webhooks()

    def _schedules_changed(self) -> None:
        if self.on_schedule is not None:
            self.on_schedule()

    async def renderer_for(self, body: str, *, refresh: bool = False) -> Renderer:
        """The renderer for ``body``: its links' embeds fetched (or taken from the cache)."""
        links = embed_links(body)[:MAX_EMBEDS]
        if self.embeds is None or not links:
            return self.renderer
        return self.renderer.with_embeds(await self.embeds.resolve_all(links, refresh=refresh))

    async def _publish(self, events: Sequence[StoryEvent]) -> None:
        if events:
            await self.hub.publish(events)
            if self.on_events is not None:
                self.on_events()

    async def create_story(self, data: StoryCreate, *, actor: User) -> Story:
        try:
            async with self.db.transaction() as session:
                story = await store.create_story(session, data=data, actor=actor)
                await articles.change(session, story, data)
                # Endpoints for every story follow this one from its first event.
                await webhooks.track_new_story(session, story)
        except IntegrityError as exc:  # lost a race for the same slug
            raise Conflict("a story with that slug already exists") from exc
        return story

    async def change_story(self, slug: str, patch: StoryPatch, *, actor: User) -> Story:
        async def change(session: AsyncSession, story: Story) -> tuple[Story, list[StoryEvent]]:
            # The article fields (byline, lead, categories, start) are part of the same
            # change: one audit entry, one ``story`` event (liveblog/articles.py).
            also, payload = await articles.change(session, story, patch)
            events = await store.change_story(
                session, story=story, patch=patch, actor=actor, also=also, payload=payload
            )
            return story, events

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
            renderer=await self.renderer_for(data.body),
            created_at=created_at,
            may_publish=may_publish,
        )
        update = await self._in_story(slug, post, pins=True)
        if data.publish_at is not None:
            self._schedules_changed()
        return update

    async def edit_update(
        self,
        slug: str,
        update_id: int,
        patch: UpdatePatch,
        *,
        actor: User,
        may_publish: bool = True,
        expected_version: int | None = None,
        refresh_embeds: bool = False,
    ) -> Update:
        """``refresh_embeds``: fetch the body's embeds again, even if fresh (the body must
        be in ``patch``; the same text re-renders with what the providers say now)."""
        renderer = self.renderer
        if patch.body is not None:
            renderer = await self.renderer_for(patch.body, refresh=refresh_embeds)
        edit = partial(
            store.edit_update,
            update_id=update_id,
            patch=patch,
            actor=actor,
            renderer=renderer,
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
        publish_at: datetime | None = None,
        expected_version: int | None = None,
    ) -> Update:
        """Submit, publish, return, reject, schedule or unschedule an update
        (``workflow.TRANSITIONS``); publishing appends the ``update`` event readers get,
        published after the commit as always."""
        move = partial(
            workflow.move_update,
            update_id=update_id,
            action=action,
            actor=actor,
            renderer=self.renderer,
            may_publish=may_publish,
            note=note,
            publish_at=publish_at,
            expected_version=expected_version,
        )
        moved = await self._in_story(slug, move)
        if action in ("schedule", "unschedule"):
            self._schedules_changed()
        return moved

    async def publish_due(self, slug: str, now: datetime) -> list[Update] | None:
        """Publish the story's schedules due at ``now`` (``workflow.publish_due``). None:
        another transaction holds the story (on PostgreSQL, another process's scheduler
        or an editor's change): it is left to them, and asked again on the next round."""
        async with self.db.transaction() as session:
            story = await store.get_story(session, slug, lock=True, skip_locked=True)
            if story is None:
                return None
            published, events = await workflow.publish_due(
                session, story=story, now=now, renderer=self.renderer
            )
        await self._publish(events)
        if published and self.desk_channel is not None and story.id is not None:
            await self.desk_channel.changed(story.id, "schedule")
        return published

    async def set_team_member(self, slug: str, username: str, *, on: bool, actor: User) -> bool:
        """Put ``username`` on the story's team (``on``) or take them off; True if they
        were added."""

        async def change(session: AsyncSession, story: Story) -> tuple[bool, list[StoryEvent]]:
            if on:
                added = await workflow.add_to_team(
                    session, story=story, username=username, actor=actor
                )
                return added, []
            await workflow.remove_from_team(session, story=story, username=username, actor=actor)
            return False, []

        return await self._in_story(slug, change)

    async def delete_update(self, slug: str, update_id: int, *, actor: User) -> None:
        async def delete(session: AsyncSession, story: Story) -> tuple[None, list[StoryEvent]]:
            events = await store.delete_update(
                session, story=story, update_id=update_id, actor=actor, renderer=self.renderer
            )
            return None, events

        await self._in_story(slug, delete)

    async def _in_story(
        self, slug: str, change: Change[T], *, pins: bool = False, topic: str = "updates"
    ) -> T:
        """One change to the story ``slug``: lock its row, make the change and append its
        events in one transaction, commit, then publish the events and tell the story's
        open desks (``topic``: what changed, for them). ``pins``: the change may pin an
        update, and a race lost for the one pinned place is a Conflict."""
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
        if self.desk_channel is not None and story.id is not None:
            await self.desk_channel.changed(story.id, topic)
        return result


async def _locked(session: AsyncSession, slug: str) -> Story:
    story = await store.get_story(session, slug, lock=True)
    if story is None:
        raise NotFound("no such story")
    return story
