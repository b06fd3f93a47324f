"""Webhooks: endpoints told of every event of their stories (docs/integrations.md).

An admin registers an endpoint: its address, which event kinds (``update``, ``edit``,
``delete``, ``story``: the same kinds and payloads as the reader stream) and which
stories (or all). Each delivery is one event, as JSON, signed as the Standard Webhooks
specification says (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``:
HMAC-SHA256 over ``id.timestamp.body`` with the endpoint's secret), so a receiver can
check it with any Standard Webhooks library.

Delivery is durable and ordered per story because it reads the event log, not the hub:
each endpoint has a cursor in each story's log (``webhook_cursor``), which moves only
after the endpoint answered 2xx. The sender (``liveblog/webhook_sender.py``) does the
delivering; this module is the data: registering, cursors, signing, the payload.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from liveblog.models import (
    EventKind,
    Story,
    StoryEvent,
    User,
    Webhook,
    WebhookAttempt,
    WebhookCursor,
    iso,
)

SECRET_PREFIX = "whsec_"
KINDS = tuple(kind.value for kind in EventKind)
KEPT_ATTEMPTS = 20  # answers kept per endpoint, for the desk


class WebhookError(ValueError):
    """A registration the caller must change; the message says how."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def message_id(event: StoryEvent) -> str:
    """The same for every attempt at one event: receivers de-duplicate by it."""
    return f"evt_{event.story_id}_{event.seq}"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,`` and the base64 HMAC-SHA256 of
    ``{id}.{timestamp}.{body}`` under the secret's bytes (Standard Webhooks)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def body_of(event: StoryEvent, story: Story) -> bytes:
    """The delivery: ``type`` (the event's kind), ``timestamp`` (when it happened) and
    ``data``, the event as readers received it, with its story and seq."""
    data = {"story": story.slug, "seq": event.seq, **json.loads(event.data)}
    document = {"type": event.kind.value, "timestamp": iso(event.created_at), "data": data}
    return json.dumps(document, separators=(",", ":")).encode()


def wants(webhook: Webhook, kind: str) -> bool:
    kinds: list[str] = json.loads(webhook.events)
    return not kinds or kind in kinds


def story_ids(webhook: Webhook) -> list[int] | None:
    return None if webhook.stories is None else list(json.loads(webhook.stories))


async def create(
    session: AsyncSession,
    *,
    url: str,
    events: Sequence[str],
    stories: Sequence[str] | None,
    actor: User,
) -> Webhook:
    """Register an endpoint. It is told of what happens from now on: its cursor in each
    existing story starts at that story's last event (``replay`` goes back)."""
    unknown = sorted(set(events) - set(KINDS))
    if unknown:
        raise WebhookError(f"events: unknown kinds {unknown}; choose from {list(KINDS)}")
    found: list[Story] = []
    if stories is not None:
        for slug in dict.fromkeys(stories):
            story = (await session.exec(select(Story).where(Story.slug == slug))).first()
            if story is None:
                raise WebhookError(f"stories: no story {slug!r}")
            found.append(story)
    else:
        found = list((await session.exec(select(Story))).all())
    webhook = Webhook(
        url=url,
        secret=new_secret(),
        events=json.dumps(sorted(set(events))),
        stories=None if stories is None else json.dumps([s.id for s in found]),
        created_by_id=actor.id,
    )
    session.add(webhook)
    await session.flush()
    assert webhook.id is not None
    for story in found:
        assert story.id is not None
        session.add(
            WebhookCursor(webhook_id=webhook.id, story_id=story.id, last_seq=story.last_seq)
        )
    await session.flush()
    return webhook


async def track_new_story(session: AsyncSession, story: Story) -> None:
    """A new story: every endpoint for all stories gets a cursor at its start (in the
    story's creating transaction, so no event of it can come before its cursor)."""
    assert story.id is not None
    for webhook in (
        await session.exec(select(Webhook).where(col(Webhook.stories).is_(None)))
    ).all():
        assert webhook.id is not None
        session.add(WebhookCursor(webhook_id=webhook.id, story_id=story.id, last_seq=0))


async def get(session: AsyncSession, webhook_id: int) -> Webhook | None:
    """The endpoint with that id (None for none, or an id no row can have)."""
    return await session.get(Webhook, webhook_id) if 0 < webhook_id < 2**63 else None


async def remove(session: AsyncSession, webhook_id: int) -> bool:
    webhook = await session.get(Webhook, webhook_id)
    if webhook is None:
        return False
    for table in (WebhookAttempt, WebhookCursor):
        await session.exec(delete(table).where(col(table.webhook_id) == webhook_id))
    await session.delete(webhook)
    return True


async def replay(session: AsyncSession, webhook_id: int, story: Story, from_seq: int) -> bool:
    """Deliver the story's events again from ``from_seq`` on (at the next round); False
    if the endpoint does not follow that story."""
    assert story.id is not None
    moved = await session.exec(
        update(WebhookCursor)
        .where(col(WebhookCursor.webhook_id) == webhook_id)
        .where(col(WebhookCursor.story_id) == story.id)
        .values(last_seq=max(0, from_seq - 1), attempts=0, next_attempt_at=None)
    )
    return bool(moved.rowcount)


async def list_all(session: AsyncSession) -> list[Webhook]:
    return list((await session.exec(select(Webhook).order_by(col(Webhook.id)))).all())


async def last_attempts(
    session: AsyncSession, webhook_id: int, *, limit: int = KEPT_ATTEMPTS
) -> list[WebhookAttempt]:
    query = (
        select(WebhookAttempt)
        .where(WebhookAttempt.webhook_id == webhook_id)
        .order_by(col(WebhookAttempt.id).desc())
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def backlog(session: AsyncSession, webhook_id: int) -> int:
    """Events not yet delivered to the endpoint, over all its stories."""
    query = (
        select(Story.last_seq, WebhookCursor.last_seq)
        .join(WebhookCursor, col(WebhookCursor.story_id) == col(Story.id))
        .where(WebhookCursor.webhook_id == webhook_id)
    )
    return sum(max(0, story - cursor) for story, cursor in (await session.exec(query)).all())


def public(
    webhook: Webhook, *, slugs: dict[int, str], backlog: int | None = None
) -> dict[str, Any]:
    """An endpoint as the API shows it: never its secret (that is shown once, at
    registration). ``slugs``: story id -> slug."""
    ids = story_ids(webhook)
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": json.loads(webhook.events),
        "stories": None if ids is None else [slugs[i] for i in ids if i in slugs],
        "created_at": iso(webhook.created_at),
        "failing_since": iso(webhook.failing_since),
        "backlog": backlog,
    }


def attempt_public(attempt: WebhookAttempt, slugs: dict[int, str]) -> dict[str, Any]:
    return {
        "story": slugs.get(attempt.story_id),
        "seq": attempt.seq,
        "at": iso(attempt.at),
        "status": attempt.status,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }


async def story_slugs(session: AsyncSession) -> dict[int, str]:
    rows = (await session.exec(select(Story.id, Story.slug))).all()
    return {story_id: slug for story_id, slug in rows if story_id is not None}


def retry_delay(attempts: int, jitter: float, first: float = 5.0) -> float:
    """Seconds before the next attempt after ``attempts`` failures in a row: ``first``
    (5 s), then doubling up to an hour, each +-20 % (``jitter`` in [0, 1)) so endpoints
    that failed together do not all come back at once."""
    base: float = min(first * 2 ** min(attempts - 1, 20), 3600.0)
    return base * (0.8 + 0.4 * jitter)


def is_failing(first_failure_at: datetime | None, now: datetime, after_seconds: float) -> bool:
    return (
        first_failure_at is not None and (now - first_failure_at).total_seconds() >= after_seconds
    )
