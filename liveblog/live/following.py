"""The stories this process's streams follow: what lets a reader join without a query.

Private to ``liveblog.live`` (``join`` reads and fills it, ``stream`` reports every
event that passes). Joining a live story that already has readers here costs no
database query: the hub knows the position to start from, and this remembers, per live
story with local streams, its id and that it is live, checked against every event that
passes: a ``story`` event (which may end or unpublish it) or a gap makes the next
reader read the story again. Readers arriving together at a story nobody here follows
yet share one read (``read_once``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from liveblog.events import Frame

T = TypeVar("T")
STORY_EVENT = b"\nevent: story\n"


@dataclass(eq=False, slots=True)
class LiveStory:
    """A live story with streams in this process: what a new reader needs to join it."""

    slug: str
    id: int
    # Every event up to ``checked`` was seen here, and none of them changed the story
    # since it was last read as live.
    checked: int
    live: bool = True
    streams: int = 0

    def saw(self, frame: Frame) -> None:
        """Called with each frame past ``checked``, by the first stream that writes it."""
        if frame.seq == self.checked + 1 and frame.data.find(STORY_EVENT, 0, 48) < 0:
            self.checked = frame.seq
        else:  # a story event (title, status, pin...) or a gap: read the story again
            self.live = False
            self.checked = max(self.checked, frame.seq)


class Following:
    """Slug to id for every story joined here (a slug never changes hands), and the live
    stories with streams here."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}  # slug -> id; a slug never changes hands
        self._live: dict[str, LiveStory] = {}
        self._reads: dict[int | str, asyncio.Future[Any]] = {}

    def story_id(self, slug: str) -> int | None:
        return self._ids.get(slug)

    def remember(self, slug: str, story_id: int) -> None:
        self._ids[slug] = story_id

    def live_story(self, slug: str) -> LiveStory | None:
        """The story, if it is live with streams here and nothing changed it since."""
        story = self._live.get(slug)
        return story if story is not None and story.live else None

    def current(self, story: LiveStory, position: int) -> bool:
        """Whether a reader subscribed at ``position`` may trust ``story`` unread."""
        return story.live and position <= story.checked and self._live.get(story.slug) is story

    def confirm_live(self, slug: str, story_id: int, seq: int) -> LiveStory:
        """The database says the story is live as of event ``seq``."""
        story = self._live.get(slug)
        if story is None:
            story = self._live[slug] = LiveStory(slug=slug, id=story_id, checked=seq)
        elif seq >= story.checked:
            story.checked = seq
            story.live = True
        return story

    def follow(self, story: LiveStory) -> None:
        """A stream follows ``story`` until ``leave``."""
        story.streams += 1

    def leave(self, story: LiveStory) -> None:
        story.streams -= 1
        if story.streams <= 0 and self._live.get(story.slug) is story:
            del self._live[story.slug]

    async def read_once(self, key: int | str, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``, shared by every reader asking for ``key`` (a story's id or slug)
        while it runs: a crowd arriving at a story nobody here follows yet makes one
        query, not thousands."""
        pending = self._reads.get(key)
        if pending is None:
            pending = self._reads[key] = asyncio.ensure_future(read())
            pending.add_done_callback(lambda _: self._reads.pop(key, None))
        result: T = await asyncio.shield(pending)
        return result
