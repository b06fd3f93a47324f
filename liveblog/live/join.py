"""A reader joining a story's stream: which story, whether they may see it, and from
where their stream starts (the replay range), for a live story and an ended one.

Order of operations is what makes reconnects lossless: subscribe to the hub first,
then read the log after the client's ``Last-Event-ID`` and replay it, then pass on live
frames, skipping any sequence number already sent. An event committed while we read
the log therefore arrives twice at most (replay and live) and is sent once.

A reader joining a live story that already has readers in this process reads nothing
from the database: the hub knows the position to start from and ``Following`` knows
the story is still live. Everyone else (the first reader, a story that changed, a
draft, an ended story, a reader with events to catch up on) reads the story. Every read
is a function the app hands over (``liveblog.loaders``), on the stream path's own
database connections: a crowd of readers waits for those and never takes an editor's.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Protocol

from starlette.exceptions import HTTPException

from liveblog.hub import Hub, Subscription
from liveblog.live.following import Following, LiveStory
from liveblog.models import Story, StoryStatus


class StoryReads(Protocol):
    """What joining reads, handed over by the app (``liveblog.loaders.Reads``)."""

    async def story_by_slug(self, slug: str) -> Story | None: ...

    async def story_by_id(self, story_id: int) -> Story | None: ...

    async def may_read_drafts(self, token: str) -> bool:
        """Whether the login with this session token may see draft stories."""
        ...


class Joins:
    """Where readers join: the hub, the stories followed here, and the reads it is given."""

    def __init__(
        self,
        hub: Hub,
        following: Following,
        reads: StoryReads,
    ) -> None:
        self.hub = hub
        self.following = following
        self.reads = reads

    def join(self, slug: str, last_event_id: int | None, login: Callable[[], str | None]) -> Join:
        """``async with`` it for as long as the stream runs. Entering it raises
        ``HTTPException``: 404 (no such story, or a draft and ``login()``, the reader's
        session token if any, may not see drafts), 204 (ended, nothing more to send)."""
        return Join(self, slug, last_event_id, login)

    async def visible(self, story: Story | None, login: Callable[[], str | None]) -> Story:
        """The story, unless there is none or it is a draft the reader may not see."""
        if story is not None and story.status == StoryStatus.draft:
            token = login()
            if not (token and await self.reads.may_read_drafts(token)):
                story = None
        if story is None:
            raise HTTPException(404, "No such story.")
        return story


class Join:
    """Once entered: replay the events ``after+1 .. until`` of ``story_id``, then pass
    on what ``subscription`` brings (nothing, for an ended story), checking it against
    ``story`` (a live story followed here) if there is one."""

    __slots__ = (
        "_joins",
        "_last_event_id",
        "_login",
        "_slug",
        "_subscribing",
        "after",
        "story",
        "story_id",
        "subscription",
        "until",
    )
    story_id: int
    subscription: Subscription
    after: int
    until: int

    def __init__(
        self, joins: Joins, slug: str, last_event_id: int | None, login: Callable[[], str | None]
    ) -> None:
        self._joins = joins
        self._slug = slug
        self._last_event_id = last_event_id
        self._login: Callable[[], str | None] | None = login
        self._subscribing: AbstractAsyncContextManager[Subscription] | None = None
        self.story: LiveStory | None = None

    async def __aenter__(self) -> Join:
        joins, slug = self._joins, self._slug
        login = self._login
        assert login is not None
        self._login = None  # kept no longer than the join: it holds the request
        story_id = joins.following.story_id(slug)
        if story_id is None:
            found = await joins.following.read_once(slug, lambda: joins.reads.story_by_slug(slug))
            story = await joins.visible(found, login)
            assert story.id is not None
            story_id = story.id
            joins.following.remember(slug, story_id)
            if story.status == StoryStatus.ended:
                self._ended(story)
                return self
        known = joins.following.live_story(slug)
        subscribing = joins.hub.subscribe(story_id)
        subscription = await subscribing.__aenter__()
        try:
            await self._live(story_id, subscription, known, login)
        except BaseException as exc:  # refused, or the reader left: unsubscribe now
            await subscribing.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._subscribing = subscribing  # left by __aexit__, once the stream is over
        if self.story is not None:
            joins.following.follow(self.story)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.story is not None:
            self._joins.following.leave(self.story)
        if self._subscribing is not None:
            await self._subscribing.__aexit__(exc_type, exc, traceback)

    async def _live(
        self,
        story_id: int,
        subscription: Subscription,
        known: LiveStory | None,
        login: Callable[[], str | None],
    ) -> None:
        """Subscribed: where the stream starts (the hub's position, or the reader's id),
        and whether the story is live, known here or read again."""
        joins, slug, last_event_id = self._joins, self._slug, self._last_event_id
        position = joins.hub.position(story_id)
        assert position is not None  # the hub reads it when a story gets its first reader
        live: LiveStory | None = None
        newest = position  # the newest event that may exist, as far as we know
        if known is not None and joins.following.current(known, position):
            live = known
        else:
            found = await joins.following.read_once(
                story_id, lambda: joins.reads.story_by_id(story_id)
            )
            if found is not None and found.last_seq < position:
                # That shared read began before this reader subscribed: it may have
                # missed a change (the end) that the hub has already fanned out.
                found = await joins.reads.story_by_id(story_id)
            story = await joins.visible(found, login)
            if story.status == StoryStatus.ended:
                self._ended(story)  # the hub's subscription stays, as for any stream
                return
            if story.status == StoryStatus.live:
                live = joins.following.confirm_live(slug, story_id, story.last_seq)
            newest = max(newest, story.last_seq)
        if last_event_id is not None and last_event_id > newest:
            # Ahead of this process (another one delivered it first), or an id from
            # the future (a restored backup): the log says how far it can be.
            story = await joins.visible(await joins.reads.story_by_id(story_id), login)
            newest = max(newest, story.last_seq)
        # No id counts as "now", and so does one past the log's end.
        self.story_id = story_id
        self.subscription = subscription
        self.after = position if last_event_id is None else min(last_event_id, newest)
        self.until = position
        self.story = live

    def _ended(self, story: Story) -> None:
        """An ended story: replay what the reader missed, including the end, and close."""
        last_event_id = self._last_event_id
        if last_event_id is None or last_event_id >= story.last_seq:
            # Nothing more will ever come: 204 tells EventSource not to reconnect.
            raise HTTPException(204)
        assert story.id is not None
        # Nothing live will come: an already closed subscription ends the stream as soon
        # as the replay is written.
        self.subscription = Subscription(story.id, 1)
        self.subscription.close()
        self.story_id = story.id
        self.after = last_event_id
        self.until = story.last_seq
