"""The reads handed to the services that do not hold the app: the hub and the reader
stream (``liveblog.live``) take these functions, never the database or the container.

Each is written once here and bound to where its sessions come from (``Reads``): the
hub's to the site's pool (``Database.session``), the reader stream's to the stream
path's own few connections (``Database.stream_session``), so that a crowd of readers
waits for those and never takes an editor's connection.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from liveblog import auth, events, policy, store
from liveblog.events import Frame
from liveblog.models import Story

Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True, slots=True)
class Reads:
    """The reads, each in a session of its own from ``sessions``."""

    sessions: Sessions

    async def story_by_slug(self, slug: str) -> Story | None:
        async with self.sessions() as session:
            return await store.get_story(session, slug)

    async def story_by_id(self, story_id: int) -> Story | None:
        async with self.sessions() as session:
            return await session.get(Story, story_id)

    async def frames(self, story_id: int, after: int, before: int) -> list[Frame]:
        """The story's events after ``after`` and before ``before`` (500 at most), each
        encoded as the frame every stream sends."""
        async with self.sessions() as session:
            found = await store.events_after(session, story_id, after, before=before)
        return [events.encode(event) for event in found]

    async def last_seq(self, story_id: int) -> int:
        """The story's newest event (0: none, or no such story)."""
        story = await self.story_by_id(story_id)
        return story.last_seq if story is not None else 0

    async def may_read_drafts(self, token: str) -> bool:
        """Whether the login whose session token this is may see draft stories
        (``liveblog.policy`` decides)."""
        async with self.sessions() as session:
            user = await auth.user_for_login(session, token)
        return policy.allows(user, policy.Permission.READ_DRAFTS)
