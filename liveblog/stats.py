"""Story statistics for editors: page views, peak concurrent readers, readers now.

First-party and privacy-friendly: counts only, nothing about who read. Page views are
counted in memory and added to the story row in one UPDATE per story every
``interval``, so a busy story costs the database one write per interval rather than
one per reader; each process adds its own, so the sum is right with many workers.
Readers now come from presence (every process's open streams), and the peak is the
highest total any process saw, kept with ``peak = max(peak, n)`` in the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import update as sql_update
from sqlmodel import col

from liveblog import tasks
from liveblog.db import Database
from liveblog.hub.presence import Presence
from liveblog.models import Story

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoryStats:
    readers_now: int
    peak_readers: int
    page_views: int


class ReaderStats:
    def __init__(self, db: Database, presence: Presence, *, interval: float) -> None:
        self.db = db
        self.presence = presence
        self.interval = interval
        self._views: Counter[int] = Counter()
        self._peaks: dict[int, int] = {}  # the highest peak this process has written
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="liveblog-reader-stats")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await tasks.stop(task)
        with contextlib.suppress(Exception):  # keep the last views if the DB is there
            await self.flush()

    def count_view(self, story_id: int) -> None:
        self._views[story_id] += 1

    def stats(self, story: Story) -> StoryStats:
        """``story`` freshly read: its row plus what this process has not written yet."""
        assert story.id is not None
        now = self.presence.readers(story.id)
        return StoryStats(
            readers_now=now,
            peak_readers=max(story.peak_readers, now),
            page_views=story.page_views + self._views[story.id],
        )

    async def flush(self) -> None:
        views, self._views = self._views, Counter()
        peaks = {
            story_id: total
            for story_id, total in self.presence.totals().items()
            if total > self._peaks.get(story_id, 0)
        }
        if not views and not peaks:
            return
        try:
            async with self.db.transaction() as session:
                for story_id, count in sorted(views.items()):
                    await session.exec(
                        sql_update(Story)
                        .where(col(Story.id) == story_id)
                        .values(page_views=col(Story.page_views) + count)
                        .execution_options(synchronize_session=False)
                    )
                for story_id, total in sorted(peaks.items()):
                    await session.exec(
                        sql_update(Story)
                        .where(col(Story.id) == story_id, col(Story.peak_readers) < total)
                        .values(peak_readers=total)
                        .execution_options(synchronize_session=False)
                    )
        except BaseException:
            self._views.update(views)  # not written: count them next time
            raise
        self._peaks.update(peaks)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:
                log.warning("stats: could not write reader statistics", exc_info=True)
