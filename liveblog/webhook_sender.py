"""Delivering webhooks: every event of an endpoint's stories, in order, at least once.

One ``WebhookSender`` runs in every process. Each round it looks for cursors behind
their story (``story.last_seq > webhook_cursor.last_seq``) whose retry time has come,
and claims each one before delivering: a conditional ``UPDATE`` that only one process
can win (the claim expires after ``CLAIM_SECONDS``, so a process that died mid-delivery
leaves nothing stuck). So each event goes to each endpoint from one process at a time,
in the order of the story's log, and the cursor moves past an event only after the
endpoint answered 2xx, in its own commit. An event committed just before a crash is
still in the log, and its cursor still before it: the next round delivers it. A crash
between the endpoint's 2xx and the cursor's commit delivers that one event again, with
the same ``webhook-id`` (receivers de-duplicate by it): at least once, never lost.

A failure (no answer, not 2xx, refused by the fetcher's rules) leaves the cursor where
it is and retries that event later: 5 s, 10 s, 20 s, ... up to an hour apart, with
jitter, for as long as it takes. After ``failing_after`` seconds of failure the endpoint
is marked failing (the desk shows it); the next success clears that.

Stories still in draft are not delivered: their events reach readers only once they go
live, and so do the endpoint's (from where its cursor stood).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from liveblog import store, tasks, webhooks
from liveblog.db import Database
from liveblog.fetcher import Fetcher, FetchError
from liveblog.metrics import Metrics
from liveblog.models import (
    Story,
    StoryEvent,
    StoryStatus,
    Webhook,
    WebhookAttempt,
    WebhookCursor,
    utcnow,
)

log = logging.getLogger(__name__)

CLAIM_SECONDS = 60.0  # a claim outlives any one delivery (timeout below) many times
DELIVERY_TIMEOUT = 10.0  # seconds an endpoint gets to answer one event
BATCH = 100  # events read from the log at a time for one cursor
MAX_AT_ONCE = 8  # cursors delivered side by side in one process
RESPONSE_BYTES = 64_000  # what is read of an answer (only its status matters)
FAILING_AFTER = 6 * 3600.0  # seconds of failure before an endpoint is marked failing
RETRY_FAILED = 2.0  # a round that failed (the database is down): wait, then again


class WebhookSender:
    def __init__(
        self,
        db: Database,
        fetcher: Fetcher,
        *,
        poll: float = 1.0,
        retry_base: float = 5.0,
        failing_after: float = FAILING_AFTER,
        clock: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.fetcher = fetcher
        self.poll = poll
        self.retry_base = retry_base
        self.failing_after = failing_after
        self._clock = clock
        self.metrics = metrics
        # Who holds a claim: this process (host, pid and a random part, for restarts).
        self.host = socket.gethostname()[:30]
        self.name = f"{self.host}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._random = random.Random()
        # Whether any endpoint exists, as last seen: True (some), None (not known), or
        # the monotonic time a round found none. While none were seen less than a
        # ``poll`` ago, a wake for committed events costs no query: nobody would be
        # told. This process's own changes (``webhooks_changed``) forget the answer at
        # once; another process's new endpoint is seen by the next round, a ``poll`` at
        # most later, which looks again, and delivers its events from the log.
        self._seen: bool | float | None = None
        self._changes = 0  # bumped by ``webhooks_changed``: a look it overlapped is stale
        self.delivered = 0  # events this process delivered (2xx)
        self.failed = 0  # attempts that failed

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="liveblog-webhooks")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await tasks.stop(task)

    def wake(self) -> None:
        """Events were committed here: deliver now rather than at the next poll (unless
        a round found no endpoint at all less than a ``poll`` ago)."""
        seen = self._seen
        if seen is None or seen is True or time.monotonic() - seen >= self.poll:
            self._wake.set()

    def webhooks_changed(self) -> None:
        """This process created, replayed or removed an endpoint (committed): whether any
        exists is not known any more; look, and deliver what is due, now."""
        self._changes += 1
        self._seen = None
        self._wake.set()

    async def _any_webhook(self, session: AsyncSession, changes: int) -> bool:
        """Whether an endpoint exists; remembered (see ``_seen``) unless this process
        changed its endpoints meanwhile (``changes``: the count when the round began)."""
        found = (await session.exec(select(Webhook.id).limit(1))).first() is not None
        if changes == self._changes:
            self._seen = True if found else time.monotonic()
        return found

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
                pause = self.poll
            except Exception as exc:
                log.warning("webhooks: a round failed (%r); trying again shortly", exc)
                pause = RETRY_FAILED
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()

    async def run_once(self) -> int:
        """Deliver what is due; the number of cursors this round worked on."""
        now = self._clock()
        changes = self._changes
        async with self.db.session() as session:
            if self._seen is not True and not await self._any_webhook(session, changes):
                # No endpoint, so no cursor: nothing is due, and nothing is behind.
                if self.metrics is not None:
                    self.metrics.set_webhook_backlog(0)
                return 0
            behind = col(Story.last_seq) > col(WebhookCursor.last_seq)
            query = (
                select(
                    WebhookCursor.webhook_id,
                    WebhookCursor.story_id,
                    WebhookCursor.claimed_by,
                    WebhookCursor.claimed_until,
                )
                .join(Story, col(Story.id) == col(WebhookCursor.story_id))
                .where(behind)
                .where(Story.status != StoryStatus.draft)
                .where(
                    or_(
                        col(WebhookCursor.next_attempt_at).is_(None),
                        col(WebhookCursor.next_attempt_at) <= now,
                    )
                )
            )
            ready = list((await session.exec(query)).all())
            if self.metrics is not None:
                lag = func.sum(col(Story.last_seq) - col(WebhookCursor.last_seq))
                backlog = (
                    select(lag)
                    .select_from(WebhookCursor)
                    .join(Story, col(Story.id) == col(WebhookCursor.story_id))
                )
                total = (await session.exec(backlog.where(behind))).one()
                self.metrics.set_webhook_backlog(int(total or 0))
        due = [row for row in ready if self._claimable(row[2], row[3], now)]
        if not due:
            return 0
        limit = asyncio.Semaphore(MAX_AT_ONCE)

        async def one(
            webhook_id: int, story_id: int, by: str | None, until: datetime | None
        ) -> None:
            async with limit:
                try:
                    await self._deliver(webhook_id, story_id, by, until)
                except Exception:
                    # One endpoint's trouble (or a bug) must not stop the others.
                    log.exception("webhooks: delivering to %s failed", webhook_id)

        async with asyncio.TaskGroup() as group:
            for webhook_id, story_id, by, until in due:
                group.create_task(one(webhook_id, story_id, by, until))
        return len(due)

    # --- one cursor ------------------------------------------------------------------

    def _is_mine(self, webhook_id: int, story_id: int) -> list[ColumnElement[bool]]:
        return [
            col(WebhookCursor.webhook_id) == webhook_id,
            col(WebhookCursor.story_id) == story_id,
            col(WebhookCursor.claimed_by) == self.name,
        ]

    def _claimable(self, by: str | None, until: datetime | None, now: datetime) -> bool:
        """Free, expired, or held by a process of this host that no longer runs (killed:
        its claim would otherwise hold the cursor for up to ``CLAIM_SECONDS``)."""
        if by is None or until is None or until < now:
            return True
        host, _, rest = by.partition(":")
        pid = rest.partition(":")[0]
        if host != self.host or by == self.name or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except OSError:  # it runs, as someone else
            return False
        return False

    async def _claim(
        self, webhook_id: int, story_id: int, by: str | None, until: datetime | None
    ) -> bool:
        """Take the cursor, if it is still as it was seen (``by``, ``until``): a
        compare-and-set that only one process can win."""
        now = self._clock()
        seen_by = (
            col(WebhookCursor.claimed_by).is_(None)
            if by is None
            else col(WebhookCursor.claimed_by) == by
        )
        seen_until = (
            col(WebhookCursor.claimed_until).is_(None)
            if until is None
            else col(WebhookCursor.claimed_until) == until
        )
        async with self.db.transaction() as session:
            claimed = await session.exec(
                update(WebhookCursor)
                .where(col(WebhookCursor.webhook_id) == webhook_id)
                .where(col(WebhookCursor.story_id) == story_id)
                .where(seen_by)
                .where(seen_until)
                .values(claimed_by=self.name, claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
            )
            return bool(claimed.rowcount)

    async def _release(self, webhook_id: int, story_id: int) -> None:
        async with self.db.transaction() as session:
            await session.exec(
                update(WebhookCursor)
                .where(*self._is_mine(webhook_id, story_id))
                .values(claimed_by=None, claimed_until=None)
            )

    async def _deliver(
        self, webhook_id: int, story_id: int, by: str | None, until: datetime | None
    ) -> None:
        if not await self._claim(webhook_id, story_id, by, until):
            return  # another process has it
        try:
            while await self._deliver_batch(webhook_id, story_id):
                pass
        finally:
            await self._release(webhook_id, story_id)

    async def _deliver_batch(self, webhook_id: int, story_id: int) -> bool:
        """Deliver the next events; True if there may be more to deliver now."""
        async with self.db.session() as session:
            webhook = await session.get(Webhook, webhook_id)
            story = await session.get(Story, story_id)
            cursor = await session.get(WebhookCursor, (webhook_id, story_id))
            if webhook is None or story is None or cursor is None:
                return False  # removed meanwhile
            if cursor.claimed_by != self.name:
                return False
            events = await store.events_after(session, story_id, cursor.last_seq, limit=BATCH)
        for event in events:
            if webhooks.wants(webhook, event.kind.value):
                delivered = await self._send(webhook, story, event)
                if not delivered:
                    return False  # retried later, from this event
            if not await self._advance(webhook, story_id, event.seq):
                return False  # the claim was lost (it expired): another process goes on
        return len(events) == BATCH

    async def _send(self, webhook: Webhook, story: Story, event: StoryEvent) -> bool:
        assert webhook.id is not None and story.id is not None
        body = webhooks.body_of(event, story)
        msg_id = webhooks.message_id(event)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": webhooks.sign(webhook.secret, msg_id, timestamp, body),
        }
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            answer = await self.fetcher.post(
                webhook.url,
                content=body,
                headers=headers,
                max_bytes=RESPONSE_BYTES,
                timeout=DELIVERY_TIMEOUT,
            )
            status = answer.status
            if not 200 <= status < 300:
                error = f"answered {status}"
        except FetchError as exc:
            error = str(exc)
        duration_ms = round((time.monotonic() - started) * 1000)
        await self._record(webhook.id, story.id, event.seq, status, error, duration_ms)
        if error is None:
            self.delivered += 1
            if self.metrics is not None:
                self.metrics.webhook_delivered()
            return True
        self.failed += 1
        if self.metrics is not None:
            self.metrics.webhook_failed()
        await self._failed(webhook, story.id, error)
        return False

    async def _advance(self, webhook: Webhook, story_id: int, seq: int) -> bool:
        assert webhook.id is not None
        now = self._clock()
        async with self.db.transaction() as session:
            moved = await session.exec(
                update(WebhookCursor)
                .where(*self._is_mine(webhook.id, story_id))
                .values(
                    last_seq=seq,
                    attempts=0,
                    first_failure_at=None,
                    next_attempt_at=None,
                    claimed_until=now + timedelta(seconds=CLAIM_SECONDS),
                )
            )
            if webhook.failing_since is not None:
                await session.exec(
                    update(Webhook).where(col(Webhook.id) == webhook.id).values(failing_since=None)
                )
                webhook.failing_since = None
            return bool(moved.rowcount)

    async def _failed(self, webhook: Webhook, story_id: int, error: str) -> None:
        assert webhook.id is not None
        now = self._clock()
        async with self.db.transaction() as session:
            cursor = await session.get(WebhookCursor, (webhook.id, story_id))
            if cursor is None or cursor.claimed_by != self.name:
                return
            cursor.attempts += 1
            cursor.first_failure_at = cursor.first_failure_at or now
            delay = webhooks.retry_delay(cursor.attempts, self._random.random(), self.retry_base)
            cursor.next_attempt_at = now + timedelta(seconds=delay)
            session.add(cursor)
            if webhook.failing_since is None and webhooks.is_failing(
                cursor.first_failure_at, now, self.failing_after
            ):
                await session.exec(
                    update(Webhook)
                    .where(col(Webhook.id) == webhook.id)
                    .values(failing_since=cursor.first_failure_at)
                )
                log.warning("webhooks: %s is failing since %s: %s", webhook.url, now, error)
            log.info(
                "webhooks: delivery to %s failed (%s); attempt %d, next in %.0f s",
                webhook.url,
                error,
                cursor.attempts,
                delay,
            )

    async def _record(
        self,
        webhook_id: int,
        story_id: int,
        seq: int,
        status: int | None,
        error: str | None,
        duration_ms: int,
    ) -> None:
        async with self.db.transaction() as session:
            session.add(
                WebhookAttempt(
                    webhook_id=webhook_id,
                    story_id=story_id,
                    seq=seq,
                    status=status,
                    error=None if error is None else error[:300],
                    duration_ms=duration_ms,
                )
            )
            await session.flush()
            # Only the last few answers are kept.
            keep = (
                select(WebhookAttempt.id)
                .where(WebhookAttempt.webhook_id == webhook_id)
                .order_by(col(WebhookAttempt.id).desc())
                .limit(webhooks.KEPT_ATTEMPTS)
            )
            kept = [i for i in (await session.exec(keep)).all() if i is not None]
            if len(kept) == webhooks.KEPT_ATTEMPTS:
                await session.exec(
                    delete(WebhookAttempt)
                    .where(col(WebhookAttempt.webhook_id) == webhook_id)
                    .where(col(WebhookAttempt.id) < min(kept))
                )
