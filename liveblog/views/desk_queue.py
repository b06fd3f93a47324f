"""The newsroom part of a story's desk (docs/newsroom.md): the editors' queue of
submissions, the scheduled updates, one's own drafts, a contributor's own updates, the
story's team and its audit trail.

``GET /desk/stories/{slug}/queue`` answers those sections as one HTML fragment, which
the desk's script (static/js/desk-queue.js) swaps in when the desk channel says the
story's queue, drafts or schedule changed. The story desk page renders the very same
template, so the page and the fragment never differ.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from liveblog import audit, policy, store
from liveblog.models import AuditAction, Story, Update, UpdateState, User
from liveblog.state import get_liveblog
from liveblog.views.common import desk_story, form_str, render
from liveblog.workflow import TRANSITIONS

_S = UpdateState
# What the editors' queue holds: waiting for a decision (returned ones wait for their
# author, but an editor may still publish or reject them).
QUEUE = (_S.submitted, _S.returned)

# How the audit trail says each action ("Priya published update 12").
AUDIT_WORDS: dict[AuditAction, str] = {
    AuditAction.created: "wrote",
    AuditAction.edited: "edited",
    AuditAction.submitted: "submitted",
    AuditAction.published: "published",
    AuditAction.returned: "returned",
    AuditAction.rejected: "rejected",
    AuditAction.scheduled: "scheduled",
    AuditAction.unscheduled: "cancelled the schedule of",
    AuditAction.deleted: "deleted",
    AuditAction.pinned: "pinned",
    AuditAction.unpinned: "unpinned",
    AuditAction.story_created: "created the story",
    AuditAction.story_changed: "changed the story",
    AuditAction.team_added: "added to the team",
    AuditAction.team_removed: "took off the team",
}
# Who the audit trail names for the service's own actions.
SCHEDULER = "Scheduled publishing"


def steps(update: Update, *, editor: bool, own: bool) -> set[str]:
    """The workflow steps (``workflow.TRANSITIONS``) the desk offers on ``update``."""
    return {
        name
        for name, step in TRANSITIONS.items()
        if update.state in step.sources and (own if step.by_author else editor)
    }


async def queue_context(
    request: Request, story: Story, *, editor: bool, step: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What ``desk/_queue.html`` shows: for an editor the queue, the scheduled updates,
    their own drafts, the team and the audit trail; for a contributor their own updates.
    ``step``: a step that failed (its update, action, errors and typed values)."""
    user = policy.actor(request)
    liveblog = get_liveblog(request)
    async with liveblog.db.session() as session:
        if editor:
            queue = await store.staff_updates(session, story, viewer=user, states=QUEUE)
            scheduled = await store.staff_updates(
                session, story, viewer=user, states=[_S.scheduled]
            )
            drafts = await store.staff_updates(
                session, story, viewer=user, states=[_S.draft], only_own=True
            )
            mine: list[tuple[Update, User]] = []
            team = await store.team_members(session, story)
            trail = await audit.trail(session, story)
        else:
            queue, scheduled, drafts, team, trail = [], [], [], [], []
            mine = await store.staff_updates(
                session, story, viewer=user, states=list(_S), only_own=True
            )
    return {
        "story": story,
        "editor": editor,
        "queue": queue,
        "waiting": sum(1 for update, _ in queue if update.state == _S.submitted),
        "scheduled": scheduled,
        "drafts": drafts,
        "mine": mine,
        "team": team,
        "trail": trail,
        "audit_words": AUDIT_WORDS,
        "scheduler": SCHEDULER,
        "steps": lambda update: steps(update, editor=editor, own=update.author_id == user.id),
        "step": step or {},
    }


async def desk_queue(request: Request) -> Response:
    """The queue, scheduled, drafts (or a contributor's own updates) and audit
    sections of the story's desk, as a fragment; ``X-Queue-Waiting``: how many
    submissions wait for an editor."""
    story, editor = await desk_story(request)
    context = await queue_context(request, story, editor=editor)
    return await render(
        request,
        "desk/_queue.html",
        context,
        headers={"Cache-Control": "no-store", "X-Queue-Waiting": str(context["waiting"])},
    )


# --- the schedule's time -------------------------------------------------------------

MAX_OFFSET = 18 * 60  # minutes: no time zone is further from UTC


def publish_at(form: FormData) -> datetime | None:
    """The schedule's time from the desk's form: ``publish_at`` (a datetime-local
    input's ``YYYY-MM-DDTHH:MM``, the browser's wall clock) and ``tz_offset`` (minutes
    east of UTC, filled in by the desk's script; without it, the time is UTC, as the
    form says). None when no time is given; ValueError for a time that cannot be
    read. Whether it is in the future is the input shape's check."""
    raw = form_str(form, "publish_at").strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError("publish_at: give the time as YYYY-MM-DDTHH:MM") from None
    if moment.tzinfo is not None:
        return moment
    offset = form_str(form, "tz_offset").strip()
    if not offset:
        return moment.replace(tzinfo=UTC)
    try:
        minutes = int(offset)
    except ValueError:
        raise ValueError("tz_offset: minutes east of UTC, as 60 or -300") from None
    if abs(minutes) > MAX_OFFSET:
        raise ValueError("tz_offset: minutes east of UTC, as 60 or -300")
    return moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))


def form_version(form: FormData) -> int | None:
    """The version of the update a step's form was shown (None: no version sent, the
    step is done whatever the version); ValueError for one that is no number."""
    raw = form_str(form, "version").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise ValueError("version: the form's version is not a whole number; reload the page")
    return int(raw)
