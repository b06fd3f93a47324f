"""Scheduled updates: publish each at its time, exactly once (docs/newsroom.md).

One ``Scheduler`` runs in every process. It sleeps until the earliest schedule is due
(woken at once when a schedule is made or changed in this process, and at least every
``poll`` seconds for those made in other processes), then publishes what is due story
by story through the newsroom's write path.

Exactly once: a story's due schedules are published in one transaction holding the
story's row lock, and only those still ``scheduled`` are published, so whoever comes
second finds nothing to do. On PostgreSQL the lock is taken with ``SKIP LOCKED``: a
story another process (or an editor) is changing is left to it, and looked at again a
moment later. On SQLite there is one process, and the database's write lock serialises
the rest.

A schedule that fell due while no process ran is published by the first process that
starts: the first round runs at once. Its update's time is then the moment it is
published, and its intended time stays in ``publish_at`` and the audit trail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from liveblog import tasks, workflow
from liveblog.db import Database
from liveblog.models import utcnow
from liveblog.newsroom import Newsroom

log = logging.getLogger(__name__)

# After a round that had to leave a story to another transaction: look again this soon.
RETRY_SKIPPED = 0.05  # seconds
# After a round that failed (the database is down): wait this long, then try again.
RETRY_FAILED = 2.0


class Scheduler:
    def __init__(
        self,
        newsroom: Newsroom,
        db: Database,
        *,
        poll: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.newsroom = newsroom
        self.db = db
        self.poll = poll
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0  # updates this process published on schedule

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="liveblog-scheduler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await tasks.stop(task)

    def wake(self) -> None:
        """A schedule was made, changed or cancelled here: look again now."""
        self._wake.set()

    async def run_once(self) -> bool:
        """Publish everything due now. False if a story was left to another
        transaction (then it is worth looking again soon)."""
        now = self._clock()
        async with self.db.session() as session:
            slugs = await workflow.stories_due(session, now)
        complete = True
        for slug in slugs:
            try:
                published = await self.newsroom.publish_due(slug, now)
            except Exception:
                # One story that cannot be published (a bug, a broken update) must not
                # hold back every other story's schedules: log it, go on, retry soon.
                log.exception("scheduler: could not publish the due updates of %s", slug)
                complete = False
                continue
            if published is None:
                complete = False
                continue
            self.published += len(published)
            for update in published:
                log.info(
                    "scheduler: published update %s of %s (due %s)",
                    update.id,
                    slug,
                    update.publish_at.isoformat() if update.publish_at else "?",
                )
        return complete

    async def _pause(self) -> float:
        """Seconds until the earliest schedule is due, at most ``poll``."""
        async with self.db.session() as session:
            due = await workflow.next_due(session)
        if due is None:
            return self.poll
        # A millisecond past the time, so that the round finds it due.
        return max(0.0, min(self.poll, (due - self._clock()).total_seconds() + 0.001))

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                pause = self.poll if await self.run_once() else RETRY_SKIPPED
                pause = min(pause, await self._pause())
            except Exception as exc:
                log.warning("scheduler: a round failed (%r); trying again shortly", exc)
                pause = RETRY_FAILED
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await self._wake.wait()
