"""Scheduled updates and readers' order (docs/newsroom.md), on SQLite with one process:
the API's schedule steps and their refusals, the scheduler publishing at the time, a
schedule missed while the service was down published when it starts, the audit trail
of it all, and updates shown in the order they were published."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from liveblog import audit
from liveblog.app import create_app
from liveblog.models import AuditAction, Update, utcnow
from liveblog.newsroom import Newsroom
from liveblog.scheduler import Scheduler
from liveblog.settings import Settings
from liveblog.state import Liveblog
from tests.factories import new_story
from tests.support import Editor, bearer, make_editor

pytestmark = pytest.mark.anyio

SLUG = "storm"


def soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@pytest.fixture
async def story(client: httpx.AsyncClient, editor: Editor) -> str:
    await new_story(client, editor, SLUG)
    return SLUG


async def write(client: httpx.AsyncClient, who: Editor, **fields: Any) -> httpx.Response:
    body = {"body": "From the coast.", **fields}
    return await client.post(f"/api/stories/{SLUG}/updates", json=body, headers=bearer(who.token))


async def step(
    client: httpx.AsyncClient, who: Editor, update_id: int, action: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/api/stories/{SLUG}/updates/{update_id}/{action}",
        json=body or None,
        headers=bearer(who.token),
    )


async def state_of(client: httpx.AsyncClient, who: Editor, update_id: int) -> dict[str, Any]:
    response = await client.get(
        f"/api/stories/{SLUG}/updates/{update_id}", headers=bearer(who.token)
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def until_published(
    client: httpx.AsyncClient, who: Editor, update_id: int, *, within: float = 10
) -> dict[str, Any]:
    with anyio.fail_after(within):
        while True:
            update = await state_of(client, who, update_id)
            if update["state"] == "published":
                return update
            await anyio.sleep(0.05)


async def trail(app: Starlette) -> list[tuple[str, str | None, int | None, str]]:
    liveblog: Liveblog = app.state.liveblog
    async with liveblog.db.session() as session:
        story = await liveblog_story(liveblog, session)
        lines = await audit.trail(session, story)
    return [
        (line.entry.action.value, line.actor, line.entry.update_id, line.entry.detail)
        for line in reversed(lines)
    ]


async def liveblog_story(liveblog: Liveblog, session: Any) -> Any:
    from liveblog import store

    story = await store.get_story(session, SLUG)
    assert story is not None
    return story


def timeline(html: str) -> list[str]:
    """The update bodies of a reader page, top to bottom."""
    return re.findall(r"<p>(Update [A-Z])</p>", html)


async def test_readers_see_updates_in_the_order_they_were_published(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, story: str
) -> None:
    carl = await make_editor(app, "carl", role="contributor")
    assert (
        await client.put(f"/api/stories/{story}/team/carl", headers=bearer(editor.token))
    ).status_code == 201
    a = (await write(client, carl, body="Update A")).json()["id"]  # submitted first ...
    b = (await write(client, editor, body="Update B")).json()["id"]
    c = (await write(client, editor, body="Update C")).json()["id"]
    assert (await step(client, editor, a, "publish")).status_code == 200  # ... published last
    assert a < b < c

    page = (await client.get(f"/stories/{story}")).text
    assert timeline(page) == ["Update A", "Update C", "Update B"]  # newest first
    oldest = (await client.get(f"/stories/{story}", params={"order": "oldest"})).text
    assert timeline(oldest) == ["Update B", "Update C", "Update A"]
    # The cursors are update ids and follow the same order.
    older = (await client.get(f"/stories/{story}", params={"before": a})).text
    assert timeline(older) == ["Update C", "Update B"]
    newer = (await client.get(f"/stories/{story}", params={"after": b, "order": "oldest"})).text
    assert timeline(newer) == ["Update C", "Update A"]
    listing = await client.get(f"/api/stories/{story}/updates", headers=bearer(editor.token))
    assert [u["body"] for u in listing.json()["updates"]] == ["Update A", "Update C", "Update B"]
    snapshot = (await client.get(f"/stories/{story}/updates.json")).json()
    assert [u["id"] for u in snapshot["updates"]] == [a, c, b]


async def test_a_scheduled_update_is_published_at_its_time(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, story: str
) -> None:
    due = soon(1.0)
    made = await write(client, editor, body="SCHEDULED text", publish_at=due)
    assert made.status_code == 201, made.text
    update = made.json()
    assert (update["state"], update["publish_at"]) == ("scheduled", due)
    assert "SCHEDULED" not in (await client.get(f"/stories/{story}")).text
    before = (await client.get(f"/api/stories/{story}", headers=bearer(editor.token))).json()

    published = await until_published(client, editor, update["id"])
    assert "SCHEDULED text" in (await client.get(f"/stories/{story}")).text
    # Its time is the moment it went out, not before its schedule; the schedule is kept.
    assert datetime.fromisoformat(published["created_at"]) >= datetime.fromisoformat(due)
    assert published["publish_at"] == due
    after = (await client.get(f"/api/stories/{story}", headers=bearer(editor.token))).json()
    assert after["last_seq"] == before["last_seq"] + 1  # one event: the publishing
    actions = [(action, actor) for action, actor, uid, _ in await trail(app) if uid]
    assert actions == [
        ("created", "Alice"),
        ("scheduled", "Alice"),
        ("published", None),  # the scheduler
    ]


async def test_schedules_are_changed_cancelled_and_refused_when_wrong(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, story: str
) -> None:
    carl = await make_editor(app, "carl", role="contributor")
    await client.put(f"/api/stories/{story}/team/carl", headers=bearer(editor.token))
    draft = (await write(client, editor, state="draft")).json()["id"]
    later = soon(3600)
    scheduled = await step(client, editor, draft, "schedule", publish_at=later)
    assert scheduled.status_code == 200, scheduled.text
    assert (scheduled.json()["state"], scheduled.json()["publish_at"]) == ("scheduled", later)
    even_later = soon(7200)
    moved = await step(client, editor, draft, "schedule", publish_at=even_later)
    assert moved.json()["publish_at"] == even_later
    # Cancelled by its author: back to their drafts, without a time.
    cancelled = await step(client, editor, draft, "unschedule")
    assert (cancelled.json()["state"], cancelled.json()["publish_at"]) == ("draft", None)
    # A contributor's submission scheduled by an editor, then cancelled: back to the queue.
    submitted = (await write(client, carl)).json()["id"]
    await step(client, editor, submitted, "schedule", publish_at=later)
    assert (await step(client, editor, submitted, "unschedule")).json()["state"] == "submitted"

    before = await state_of(client, editor, submitted)
    refusals = {
        "in the past": await step(client, editor, submitted, "schedule", publish_at=soon(-60)),
        "no time zone": await step(
            client, editor, submitted, "schedule", publish_at="2099-01-01T10:00:00"
        ),
        "no time": await step(client, editor, submitted, "schedule", when=later),
        "by a contributor": await step(client, carl, submitted, "schedule", publish_at=later),
        "unschedule what is not": await step(client, editor, submitted, "unschedule"),
        "post scheduled by a contributor": await write(client, carl, publish_at=later),
        "post with both": await write(client, editor, publish_at=later, state="draft"),
        "post in the past": await write(client, editor, publish_at=soon(-1)),
    }
    statuses = {name: response.status_code for name, response in refusals.items()}
    assert statuses == {
        "in the past": 422,
        "no time zone": 422,
        "no time": 422,
        "by a contributor": 403,
        "unschedule what is not": 409,
        "post scheduled by a contributor": 403,
        "post with both": 422,
        "post in the past": 422,
    }
    assert "publish_at must be in the future" in refusals["in the past"].json()["error"]
    assert "time zone" in refusals["no time zone"].json()["error"]
    assert await state_of(client, editor, submitted) == before  # refusals change nothing
    # A scheduled update is in an editor's hands: its contributor cannot change it.
    await step(client, editor, submitted, "schedule", publish_at=later)
    edit = await client.patch(
        f"/api/stories/{story}/updates/{submitted}",
        json={"body": "Changed."},
        headers=bearer(carl.token),
    )
    assert edit.status_code == 409
    # Returned from its schedule: no longer due, so no time; the note says what it was.
    returned = await step(client, editor, submitted, "return", note="Hold it")
    assert (returned.json()["state"], returned.json()["publish_at"]) == ("returned", None)
    entries = await trail(app)
    assert entries[-1][0] == "returned"
    assert entries[-1][3] == f"Hold it (was due {later}; now returned)"


async def test_a_schedule_missed_while_down_is_published_on_start(
    settings: Settings, tmp_path: Any
) -> None:
    first = create_app(settings)
    async with first.router.lifespan_context(first):
        editor = await make_editor(first, "alice", role="editor")
        transport = httpx.ASGITransport(app=first)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await new_story(client, editor, SLUG)
            due = soon(0.5)
            made = (await write(client, editor, body="MISSED text", publish_at=due)).json()
    await anyio.sleep(1.6)  # it falls due while no process runs

    second = create_app(settings)
    async with second.router.lifespan_context(second):
        transport = httpx.ASGITransport(app=second)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            published = await until_published(client, editor, made["id"], within=5)
            assert "MISSED text" in (await client.get(f"/stories/{SLUG}")).text
        entries = await trail(second)
    assert published["publish_at"] == due
    late = [detail for action, _, uid, detail in entries if uid and action == "published"]
    assert len(late) == 1
    assert late[0].startswith(f"scheduled for {due}; published ")
    assert "s late" in late[0]


async def test_the_audit_trail_records_the_life_of_an_update(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, story: str
) -> None:
    carl = await make_editor(app, "carl", role="contributor")
    await client.put(f"/api/stories/{story}/team/carl", headers=bearer(editor.token))
    update = (await write(client, carl, state="draft")).json()["id"]
    await step(client, carl, update, "submit")
    await step(client, editor, update, "return", note="Source?")
    await client.patch(
        f"/api/stories/{story}/updates/{update}",
        json={"body": "With a source."},
        headers=bearer(carl.token),
    )
    await step(client, carl, update, "submit")
    await step(client, editor, update, "publish")
    await client.patch(
        f"/api/stories/{story}/updates/{update}",
        json={"pinned": True},
        headers=bearer(editor.token),
    )
    await client.delete(f"/api/stories/{story}/updates/{update}", headers=bearer(editor.token))
    refused = await step(client, carl, update, "submit")  # refused: nothing recorded
    assert refused.status_code == 404
    entries = await trail(app)
    assert [(action, actor, detail) for action, actor, uid, detail in entries if uid] == [
        ("created", "Carl", "draft"),
        ("submitted", "Carl", ""),
        ("returned", "Alice", "Source?"),
        ("edited", "Carl", "version 4"),
        ("submitted", "Carl", ""),
        ("published", "Alice", ""),
        ("pinned", "Alice", ""),
        ("deleted", "Alice", ""),
    ]
    story_level = [(action, detail) for action, _, uid, detail in entries if uid is None]
    assert story_level == [("story_created", "live"), ("team_added", "carl")]
    assert {action for action, *_ in entries} <= {a.value for a in AuditAction}


async def test_one_story_that_cannot_be_published_does_not_hold_back_the_others(
    settings: Settings,
) -> None:
    class BrokenFor(Newsroom):
        """The newsroom, failing for one story (as a bug in one update would)."""

        async def publish_due(self, slug: str, now: datetime) -> list[Update] | None:
            if slug == "broken":
                raise RuntimeError("cannot render this story's update")
            return await super().publish_due(slug, now)

    # The app's own scheduler looks only once an hour: this test runs its own rounds.
    app = create_app(settings.model_copy(update={"scheduler_poll": 3600}))
    async with app.router.lifespan_context(app):
        liveblog: Liveblog = app.state.liveblog
        editor = await make_editor(app, "alice", role="editor")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ids = {}
            for slug in ("broken", "fine"):
                await new_story(client, editor, slug)
                made = await client.post(
                    f"/api/stories/{slug}/updates",
                    json={"body": f"Due on {slug}", "publish_at": soon(3600)},
                    headers=bearer(editor.token),
                )
                ids[slug] = made.json()["id"]
            await anyio.sleep(1.0)  # the app's scheduler, woken by the posts, goes back to sleep
            # Both fall due now, the broken story's first.
            for slug, seconds in (("broken", 20), ("fine", 10)):
                async with liveblog.db.transaction() as session:
                    update = await session.get(Update, ids[slug])
                    assert update is not None
                    update.publish_at = utcnow() - timedelta(seconds=seconds)
                    session.add(update)
            newsroom = BrokenFor(liveblog.db, liveblog.hub, liveblog.renderer)
            scheduler = Scheduler(newsroom, liveblog.db, poll=3600)
            assert await scheduler.run_once() is False  # one story is left: look again soon
            assert scheduler.published == 1
            states = {
                slug: (
                    await client.get(
                        f"/api/stories/{slug}/updates/{update_id}", headers=bearer(editor.token)
                    )
                ).json()["state"]
                for slug, update_id in ids.items()
            }
    assert states == {"broken": "scheduled", "fine": "published"}
