"""The newsroom workflow on the desk (docs/newsroom.md), through its HTML forms as a
browser without JavaScript sends them: a contributor's desk (their stories, compose,
their own updates and where each stands), the editor's queue, scheduled updates and
drafts with their steps, the queue fragment the desk's script swaps in, the story's
team and its audit trail; and every refusal changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import select
from starlette.applications import Starlette

from liveblog.models import Update, UpdateState
from liveblog.state import Liveblog
from tests.factories import new_story, new_update
from tests.htmltree import Node, parse
from tests.support import Editor, bearer, login, make_editor

pytestmark = pytest.mark.anyio

SLUG = "flood"
DESK = f"/desk/stories/{SLUG}"


@pytest.fixture
async def carl(app: Starlette) -> Editor:
    """A contributor, on the team of the story "flood"."""
    return await make_editor(app, "carl", role="contributor")


@pytest.fixture
async def story(client: httpx.AsyncClient, editor: Editor, carl: Editor) -> str:
    await new_story(client, editor, SLUG)
    added = await client.put(f"/api/stories/{SLUG}/team/carl", headers=bearer(editor.token))
    assert added.status_code == 201
    return SLUG


@pytest.fixture
async def carl_browser(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        yield browser


@pytest.fixture
async def carl_csrf(carl_browser: httpx.AsyncClient, carl: Editor, story: str) -> str:
    return await login(carl_browser, carl)


@pytest.fixture
async def csrf(client: httpx.AsyncClient, editor: Editor, story: str) -> str:
    return await login(client, editor)


async def updates(app: Starlette) -> dict[int, tuple[UpdateState, int, str | None]]:
    """Every update: (state, version, return note), by id."""
    liveblog: Liveblog = app.state.liveblog
    async with liveblog.db.session() as session:
        rows = (await session.exec(select(Update))).all()
    return {u.id or 0: (u.state, u.version, u.return_note) for u in rows}


async def compose(browser: httpx.AsyncClient, csrf: str, **fields: str) -> httpx.Response:
    form = {"csrf_token": csrf, "body": "From the scene.", **fields}
    return await browser.post(f"{DESK}/updates", data=form)


async def step(
    browser: httpx.AsyncClient, csrf: str, update_id: int, action: str, **fields: str
) -> httpx.Response:
    path = f"{DESK}/updates/{update_id}/" + ("submit" if action == "submit" else f"steps/{action}")
    return await browser.post(path, data={"csrf_token": csrf, **fields})


def item(page: str, update_id: int) -> Node:
    """The desk's entry of one update (queue, scheduled, drafts or a contributor's own)."""
    found = [
        node
        for node in parse(page).find_all("li", class_="queue-item")
        if (node.attrs.get("id") or "").endswith(f"-{update_id}")
    ]
    assert len(found) == 1, f"update {update_id} is listed {len(found)} times"
    return found[0]


def buttons(node: Node) -> list[str]:
    return [button.text() for button in node.find_all("button")]


def future(minutes: int = 90) -> datetime:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).replace(second=0, microsecond=0)


# --- a contributor's desk ------------------------------------------------------------


async def test_a_contributors_desk_lists_only_their_stories_and_no_story_form(
    client: httpx.AsyncClient,
    editor: Editor,
    story: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    await new_story(client, editor, "other")
    await new_story(client, editor, "secret", status="draft")
    home = await carl_browser.get("/desk")
    assert home.status_code == 200
    assert f'href="{DESK}"' in home.text
    assert "/desk/stories/other" not in home.text and "/desk/stories/secret" not in home.text
    assert 'action="/desk/stories"' not in home.text  # no new-story form
    page = await carl_browser.get(DESK)
    assert page.status_code == 200
    tree = parse(page.text)
    assert tree.find("form", action=f"{DESK}/updates")
    assert "data-timeline" not in page.text and "Story settings" not in page.text
    assert 'name="pinned"' not in page.text  # never published: nothing to pin
    # Another story: 403; a draft story they are not on: no such story.
    assert (await carl_browser.get("/desk/stories/other")).status_code == 403
    assert (await carl_browser.get("/desk/stories/secret")).status_code == 404
    assert (await carl_browser.get("/desk/stories/other/queue")).status_code == 403
    assert (await carl_browser.get("/desk/stories/secret/stats")).status_code == 404


async def test_a_contributor_on_a_draft_story_has_its_desk(
    app: Starlette,
    client: httpx.AsyncClient,
    editor: Editor,
    carl: Editor,
    carl_browser: httpx.AsyncClient,
) -> None:
    await new_story(client, editor, "plans", status="draft")
    await client.put("/api/stories/plans/team/carl", headers=bearer(editor.token))
    await login(carl_browser, carl)
    assert (await carl_browser.get("/desk/stories/plans")).status_code == 200
    assert "/desk/stories/plans" in (await carl_browser.get("/desk")).text


async def test_contributor_submits_keeps_a_draft_and_submits_it(
    app: Starlette, carl_browser: httpx.AsyncClient, carl_csrf: str
) -> None:
    sent = await compose(carl_browser, carl_csrf, body="Crowds at the bridge.")
    assert sent.status_code == 303
    kept = await compose(
        carl_browser, carl_csrf, body="Unconfirmed: a second breach.", state="draft"
    )
    assert kept.status_code == 303
    states = await updates(app)
    (submitted_id,) = [i for i, (state, *_) in states.items() if state == UpdateState.submitted]
    (draft_id,) = [i for i, (state, *_) in states.items() if state == UpdateState.draft]
    assert sent.headers["location"] == f"{DESK}#mine-{submitted_id}"
    page = (await carl_browser.get(DESK)).text
    assert "Crowds at the bridge." in item(page, submitted_id).text()
    assert "submitted" in item(page, submitted_id).text()
    assert "Submit for publishing" in buttons(item(page, draft_id))
    assert "Submit for publishing" not in buttons(item(page, submitted_id))
    submitted = await step(carl_browser, carl_csrf, draft_id, "submit", version="1")
    assert submitted.status_code == 303
    assert (await updates(app))[draft_id][0] == UpdateState.submitted


async def test_a_returned_note_is_shown_to_the_contributor_and_they_resubmit(
    app: Starlette,
    client: httpx.AsyncClient,
    csrf: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    await compose(carl_browser, carl_csrf, body="The mayor resigned.")
    (update_id,) = await updates(app)
    returned = await step(
        client, csrf, update_id, "return", note="Who confirmed this? Add the source."
    )
    assert returned.status_code == 303
    assert (await updates(app))[update_id][:1] == (UpdateState.returned,)
    mine = item((await carl_browser.get(DESK)).text, update_id)
    note = mine.find("p", class_="return-note")
    assert "Who confirmed this? Add the source." in note.text()
    assert "Edit" in [a.text() for a in mine.find_all("a")]
    again = await step(carl_browser, carl_csrf, update_id, "submit")
    assert again.status_code == 303
    assert (await updates(app))[update_id][0] == UpdateState.submitted


async def test_the_contributor_sees_their_update_published_with_its_link(
    app: Starlette,
    client: httpx.AsyncClient,
    csrf: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    await compose(carl_browser, carl_csrf, body="Bridge reopened.")
    (update_id,) = await updates(app)
    assert (await step(client, csrf, update_id, "publish", version="1")).status_code == 303
    mine = item((await carl_browser.get(DESK)).text, update_id)
    assert "published" in mine.text()
    links = [a.attrs.get("href") for a in mine.find_all("a")]
    assert f"/stories/{SLUG}/updates/{update_id}" in links
    assert "Edit" not in [a.text() for a in mine.find_all("a")]


async def test_a_contributor_is_refused_editor_steps_and_other_stories_changing_nothing(
    app: Starlette,
    client: httpx.AsyncClient,
    editor: Editor,
    csrf: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    await compose(carl_browser, carl_csrf, body="Mine.")
    await new_update(client, editor, SLUG, body="The editor's own.", state="submitted")
    await new_story(client, editor, "other")
    await client.put("/api/stories/other/team/carl", headers=bearer(editor.token))
    await client.delete("/api/stories/other/team/carl", headers=bearer(editor.token))
    before = await updates(app)
    mine, theirs = sorted(before)
    for action in ("publish", "return", "reject", "schedule", "unschedule"):
        refused = await step(carl_browser, carl_csrf, mine, action, note="x")
        assert refused.status_code == 403, action  # the policy: editors only
    # Someone else's update: not theirs to submit.
    assert (await step(carl_browser, carl_csrf, theirs, "submit")).status_code == 403
    # Another story's desk, compose and queue: not on its team.
    other = {"csrf_token": carl_csrf, "body": "Sneaky."}
    assert (await carl_browser.post("/desk/stories/other/updates", data=other)).status_code == 403
    # A schedule from a contributor: only editors schedule.
    when = future().strftime("%Y-%m-%dT%H:%M")
    scheduled = await compose(carl_browser, carl_csrf, body="Later.", publish_at=when)
    assert scheduled.status_code == 403
    assert "only an editor schedules" in scheduled.text
    # The team: editors only.
    team = await carl_browser.post(
        f"{DESK}/team", data={"csrf_token": carl_csrf, "username": "carl"}
    )
    assert team.status_code == 403
    assert await updates(app) == before


# --- the editor's queue --------------------------------------------------------------


async def test_the_editors_queue_shows_submissions_with_author_text_and_steps(
    client: httpx.AsyncClient,
    app: Starlette,
    csrf: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    await compose(carl_browser, carl_csrf, body="**Water** over the road.", headline="Flooding")
    (update_id,) = await updates(app)
    page = (await client.get(DESK)).text
    entry = item(page, update_id)
    assert entry.attrs["id"] == f"queue-{update_id}"
    assert "Carl" in entry.text() and "Flooding" in entry.text()
    assert entry.find("strong", id=f"item-{update_id}")
    assert "<strong>Water</strong> over the road." in page  # rendered Markdown
    assert entry.find_all("time")
    assert {"Publish", "Reject", "Return with this note"} <= set(buttons(entry))
    assert "Edit" in [a.text() for a in entry.find_all("a")]
    assert parse(page).find("div", data_desk_queue=True).attrs["data-waiting"] == "1"
    # Not in the reader's timeline until published.
    assert f'id="update-{update_id}"' not in page


async def test_publish_from_the_queue_reaches_readers(
    client: httpx.AsyncClient,
    app: Starlette,
    csrf: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    await compose(carl_browser, carl_csrf, body="Evacuation ordered.")
    (update_id,) = await updates(app)
    assert "Evacuation ordered." not in (await client.get(f"/stories/{SLUG}")).text
    published = await step(client, csrf, update_id, "publish", version="1")
    assert published.status_code == 303
    assert published.headers["location"] == f"{DESK}#update-{update_id}"
    assert "Evacuation ordered." in (await client.get(f"/stories/{SLUG}")).text
    page = (await client.get(DESK)).text
    assert f'id="queue-{update_id}"' not in page
    assert f'id="update-{update_id}"' in page


async def test_reject_from_the_queue(
    client: httpx.AsyncClient,
    app: Starlette,
    csrf: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    await compose(carl_browser, carl_csrf, body="Rumour.")
    (update_id,) = await updates(app)
    assert (await step(client, csrf, update_id, "reject")).status_code == 303
    assert (await updates(app))[update_id][0] == UpdateState.rejected
    assert f'id="queue-{update_id}"' not in (await client.get(DESK)).text
    mine = item((await carl_browser.get(DESK)).text, update_id)
    assert "rejected" in mine.text() and buttons(mine) == []


async def test_schedule_change_time_and_unschedule_from_the_desk(
    client: httpx.AsyncClient,
    app: Starlette,
    csrf: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    await compose(carl_browser, carl_csrf, body="At noon: the press conference.")
    (update_id,) = await updates(app)
    when = future(120)
    # The browser's wall clock and its offset (UTC+2 here): the schedule is in UTC.
    local = (when + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    done = await step(client, csrf, update_id, "schedule", publish_at=local, tz_offset="120")
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{DESK}#scheduled-{update_id}"
    page = (await client.get(DESK)).text
    entry = item(page, update_id)
    assert entry.attrs["id"] == f"scheduled-{update_id}"
    times = [t.attrs.get("datetime") for t in entry.find_all("time", data_schedule_time=True)]
    assert times == [when.isoformat(timespec="milliseconds")]
    assert {"Publish now", "Cancel schedule", "Change time"} <= set(buttons(entry))
    # Change the time, without the script: the time is read as UTC.
    later = future(240)
    changed = await step(
        client, csrf, update_id, "schedule", publish_at=later.strftime("%Y-%m-%dT%H:%M")
    )
    assert changed.status_code == 303
    entry = item((await client.get(DESK)).text, update_id)
    times = [t.attrs.get("datetime") for t in entry.find_all("time", data_schedule_time=True)]
    assert times == [later.isoformat(timespec="milliseconds")]
    assert "At noon" not in (await client.get(f"/stories/{SLUG}")).text
    cancelled = await step(client, csrf, update_id, "unschedule")
    assert cancelled.status_code == 303
    assert (await updates(app))[update_id][0] == UpdateState.submitted
    assert item((await client.get(DESK)).text, update_id).attrs["id"] == f"queue-{update_id}"


async def test_the_compose_form_keeps_drafts_and_schedules(
    client: httpx.AsyncClient, app: Starlette, csrf: str
) -> None:
    draft = await compose(client, csrf, body="My own notes.", state="draft")
    assert draft.status_code == 303
    when = future(60)
    scheduled = await compose(
        client,
        csrf,
        body="Curfew lifts.",
        intent="schedule",
        publish_at=when.strftime("%Y-%m-%dT%H:%M"),
    )
    assert scheduled.status_code == 303
    (draft_id, draft_state), (scheduled_id, scheduled_state) = [
        (i, state) for i, (state, *_) in sorted((await updates(app)).items())
    ]
    assert (draft_state, scheduled_state) == (UpdateState.draft, UpdateState.scheduled)
    assert draft.headers["location"] == f"{DESK}#draft-{draft_id}"
    page = (await client.get(DESK)).text
    assert item(page, draft_id).attrs["id"] == f"draft-{draft_id}"
    assert {"Publish", "Schedule"} <= set(buttons(item(page, draft_id)))
    assert item(page, scheduled_id).attrs["id"] == f"scheduled-{scheduled_id}"
    reader = (await client.get(f"/stories/{SLUG}")).text
    assert "My own notes." not in reader and "Curfew lifts." not in reader
    # Publishing the draft from "My drafts".
    assert (await step(client, csrf, draft_id, "publish")).status_code == 303
    assert "My own notes." in (await client.get(f"/stories/{SLUG}")).text


async def test_desk_step_errors_are_shown_with_what_was_typed(
    client: httpx.AsyncClient,
    app: Starlette,
    csrf: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    await compose(carl_browser, carl_csrf, body="Check me.")
    (update_id,) = await updates(app)
    # A time in the past: 422, the form open again with the time as typed.
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    refused = await step(client, csrf, update_id, "schedule", publish_at=past)
    assert refused.status_code == 422
    assert "must be in the future" in refused.text
    entry = item(refused.text, update_id)
    assert "open" in entry.find("details", data_key=f"schedule-{update_id}").attrs
    assert entry.find("input", name="publish_at").attrs["value"] == past
    # A return without a note: 422, nothing changes.
    empty = await step(client, csrf, update_id, "return", note="  ")
    assert empty.status_code == 422
    # A stale version: someone acted since the page was shown (412), the note is kept.
    stale = await step(client, csrf, update_id, "return", note="Needs a source.", version="7")
    assert stale.status_code == 412
    assert "has changed" in stale.text
    assert "Needs a source." in item(stale.text, update_id).find("textarea", name="note").text()
    # A step its state does not allow: 409.
    assert (await step(client, csrf, update_id, "unschedule")).status_code == 409
    assert (await updates(app))[update_id] == (UpdateState.submitted, 1, None)
    # No such step.
    assert (await step(client, csrf, update_id, "submit-twice")).status_code == 404


async def test_compose_errors_keep_the_typed_schedule(
    client: httpx.AsyncClient, app: Starlette, csrf: str
) -> None:
    refused = await compose(client, csrf, body="Soon.", intent="schedule", publish_at="tomorrow")
    assert refused.status_code == 422
    assert 'value="tomorrow"' in refused.text and "Soon." in refused.text
    missing = await compose(client, csrf, body="When?", intent="schedule")
    assert missing.status_code == 422
    assert await updates(app) == {}


# --- the fragment, the team, the audit trail ----------------------------------------


async def test_the_queue_fragment_and_its_count(
    client: httpx.AsyncClient,
    app: Starlette,
    editor: Editor,
    csrf: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    empty = await client.get(f"{DESK}/queue")
    assert empty.status_code == 200
    assert empty.headers["x-queue-waiting"] == "0"
    assert empty.headers["cache-control"] == "no-store"
    assert "<html" not in empty.text
    await compose(carl_browser, carl_csrf, body="One.")
    await compose(carl_browser, carl_csrf, body="Two.")
    await compose(carl_browser, carl_csrf, body="Three.", state="draft")
    fragment = await client.get(f"{DESK}/queue")
    assert fragment.headers["x-queue-waiting"] == "2"
    root = parse(fragment.text).find("div", data_desk_queue=True)
    assert root.attrs["data-waiting"] == "2"
    assert "One." in fragment.text and "Two." in fragment.text
    assert "Three." not in fragment.text  # a draft is its author's alone
    # A returned update stays in the queue but waits for its author, not an editor.
    two = max(await updates(app)) - 1
    assert (await step(client, csrf, two, "return", note="Source?")).status_code == 303
    fragment = await client.get(f"{DESK}/queue")
    assert fragment.headers["x-queue-waiting"] == "1" and "Two." in fragment.text
    # The contributor's fragment: their own updates, nobody else's.
    await new_update(client, editor, SLUG, body="From the editor.", state="submitted")
    theirs = await carl_browser.get(f"{DESK}/queue")
    assert theirs.status_code == 200 and "Three." in theirs.text
    assert "From the editor." not in theirs.text
    assert theirs.headers["x-queue-waiting"] == "0"
    # The desk loads the script that keeps it current.
    assert '/js/desk-queue.js"' in (await client.get(DESK)).text


async def test_the_desk_region_links_each_lead_to_a_region(
    client: httpx.AsyncClient,
    csrf: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    """The row of links above the desk's regions (docs/newsroom.md): each leads to one
    element of the page; a contributor's only to the regions they have."""
    editor_regions = [
        "compose-title", "queue-title", "scheduled-title", "drafts-title", "timeline-title",
        "settings-title", "team-title", "embed-title", "stats-title", "story-history",
    ]  # fmt: skip
    for browser, regions in (
        (client, editor_regions),
        (carl_browser, ["compose-title", "mine-title"]),
    ):
        page = parse((await browser.get(DESK)).text)
        links = page.find("nav", class_="desk-nav").find_all("a")
        assert [link.attrs["href"] for link in links] == [f"#{region}" for region in regions]
        for region in regions:
            page.find(id=region)  # exactly one


async def test_team_add_and_remove_from_the_desk(
    client: httpx.AsyncClient, app: Starlette, csrf: str
) -> None:
    await make_editor(app, "dora", role="contributor")
    added = await client.post(f"{DESK}/team", data={"csrf_token": csrf, "username": " Dora "})
    assert added.status_code == 303
    team = parse((await client.get(DESK)).text).find("ul", class_="team-list")
    assert "Dora" in team.text() and "Carl" in team.text()
    removed = await client.post(f"{DESK}/team/dora/remove", data={"csrf_token": csrf})
    assert removed.status_code == 303
    team = parse((await client.get(DESK)).text).find("ul", class_="team-list")
    assert "Dora" not in team.text()
    unknown = await client.post(f"{DESK}/team", data={"csrf_token": csrf, "username": "nobody"})
    assert unknown.status_code == 404
    assert "There is no user named" in unknown.text and 'value="nobody"' in unknown.text


async def test_the_audit_trail_lists_who_did_what_newest_first(
    client: httpx.AsyncClient,
    app: Starlette,
    csrf: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    await compose(carl_browser, carl_csrf, body="First report.")
    (update_id,) = await updates(app)
    await step(client, csrf, update_id, "return", note="Add the source")
    await step(carl_browser, carl_csrf, update_id, "submit")
    await step(client, csrf, update_id, "publish")
    details = parse((await client.get(DESK)).text).find("details", data_key="audit")
    assert "open" not in details.attrs
    assert details.find("summary").text() == "History of this story"
    rows = [[td.text() for td in tr.find_all("td")] for tr in details.find("tbody").find_all("tr")]
    said = [(who, what) for _when, who, what, _detail in rows]
    assert said[:4] == [
        ("Alice", f"published update {update_id}"),
        ("Carl", f"submitted update {update_id}"),
        ("Alice", f"returned update {update_id}"),
        ("Carl", f"wrote update {update_id}"),
    ]
    assert rows[2][3] == "Add the source"
    assert ("Alice", "added to the team") in said
    assert all(details.find_all("time")) and len(details.find_all("time")) == len(rows)
    # The contributor's desk has no audit trail.
    assert 'data-key="audit"' not in (await carl_browser.get(DESK)).text


async def test_the_scheduler_is_named_in_the_audit_trail(
    client: httpx.AsyncClient, app: Starlette, csrf: str
) -> None:
    await compose(client, csrf, body="Due.", state="draft")
    (update_id,) = await updates(app)
    await step(client, csrf, update_id, "schedule", publish_at=future(5).strftime("%Y-%m-%dT%H:%M"))
    liveblog: Liveblog = app.state.liveblog
    await liveblog.newsroom.publish_due(SLUG, datetime.now(UTC) + timedelta(hours=1))
    details = parse((await client.get(DESK)).text).find("details", data_key="audit")
    first = [td.text() for td in details.find("tbody").find_all("tr")[0].find_all("td")]
    assert first[1:3] == ["Scheduled publishing", f"published update {update_id}"]


# --- editing unpublished updates on the desk -------------------------------------------


async def test_a_contributor_edits_their_own_unpublished_update_and_only_that(
    app: Starlette,
    client: httpx.AsyncClient,
    editor: Editor,
    story: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    await compose(carl_browser, carl_csrf, body="First take.")
    (mine,) = [i for i, (state, *_) in (await updates(app)).items() if state == "submitted"]
    form = await carl_browser.get(f"{DESK}/updates/{mine}/edit")
    assert form.status_code == 200
    assert "readers do not see it yet" in form.text
    assert "Save and publish" not in form.text  # a contributor never publishes
    version = (await updates(app))[mine][1]
    saved = await carl_browser.post(
        f"{DESK}/updates/{mine}/edit",
        data={"csrf_token": carl_csrf, "body": "Second take.", "version": str(version)},
    )
    assert saved.status_code == 303
    state, new_version, _ = (await updates(app))[mine]
    assert (state, new_version) == ("submitted", version + 1)

    # The editor's update, and the contributor's own once published: refused, unchanged.
    theirs = (await new_update(client, editor, story, body="The editor's."))["id"]
    await step(client, await login(client, editor), mine, "publish")
    before = await updates(app)
    for update_id in (theirs, mine):
        assert (await carl_browser.get(f"{DESK}/updates/{update_id}/edit")).status_code == 403
    refused = await carl_browser.post(
        f"{DESK}/updates/{theirs}/edit", data={"csrf_token": carl_csrf, "body": "Mine!"}
    )
    assert refused.status_code == 403
    # Their own, published while they typed: nothing to save, and nothing they typed lost.
    taken = await carl_browser.post(
        f"{DESK}/updates/{mine}/edit",
        data={"csrf_token": carl_csrf, "body": "Third take.", "version": str(version + 1)},
    )
    assert taken.status_code == 409
    page = parse(taken.text)
    assert "Alice published this update" in page.find(data_edit_conflict=True).text()
    assert "Third take." in page.find("textarea", name="body").text()
    edit_form = page.find("form", action=f"{DESK}/updates/{mine}/edit")
    assert edit_form.find_all("button") == []
    assert await updates(app) == before


async def test_an_editor_edits_a_submission_then_publishes_it_in_one_step(
    app: Starlette,
    client: httpx.AsyncClient,
    csrf: str,
    story: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    await compose(carl_browser, carl_csrf, body="Water at the bridge.")
    (submitted,) = list(await updates(app))
    form = await client.get(f"{DESK}/updates/{submitted}/edit")
    assert form.status_code == 200
    assert [b.text() for b in parse(form.text).find_all("button") if b.attrs.get("name") == "then"]
    saved = await client.post(
        f"{DESK}/updates/{submitted}/edit",
        data={
            "csrf_token": csrf,
            "body": "Water over the bridge.",
            "version": "1",
            "then": "publish",
        },
    )
    assert saved.status_code == 303
    assert (await updates(app))[submitted][:2] == ("published", 3)  # edited, then published
    page = (await client.get(f"/stories/{story}")).text
    assert "Water over the bridge." in page and "Water at the bridge." not in page


async def test_save_and_publish_on_an_ended_story_saves_and_says_it_did_not_publish(
    app: Starlette,
    client: httpx.AsyncClient,
    editor: Editor,
    csrf: str,
    story: str,
    carl_browser: httpx.AsyncClient,
    carl_csrf: str,
) -> None:
    await compose(carl_browser, carl_csrf, body="Late report.")
    (submitted,) = list(await updates(app))
    ended = await client.patch(
        f"/api/stories/{story}", json={"status": "ended"}, headers=bearer(editor.token)
    )
    assert ended.status_code == 200
    answer = await client.post(
        f"{DESK}/updates/{submitted}/edit",
        data={
            "csrf_token": csrf,
            "body": "Late report, checked.",
            "version": "1",
            "then": "publish",
        },
    )
    assert answer.status_code == 409
    notice = parse(answer.text).find(data_edit_conflict=True).text()
    assert "Your text was saved but not published: this story has ended" in notice
    # Saved (version 2), still waiting; the form now carries version 2 for the next try.
    assert (await updates(app))[submitted][:2] == ("submitted", 2)
    assert parse(answer.text).find("input", name="version").attrs["value"] == "2"
