"""The desk's newsroom sections in a real browser (static/js/desk-queue.js): the queue
swapped in live without losing what the editor types, the count in the tab title, and
the compose form's draft and schedule buttons sent by desk.js, in the browser's time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.desk import log_in_on_desk
from tests.support import Editor, LiveServer, bearer, make_editor

WITHIN = 5_000  # ms


@pytest.fixture
def carl(server: LiveServer, editor: Editor) -> Editor:
    """A contributor on the team of the live story "flood" (made by ``editor``)."""
    carl: Editor = server.run(make_editor(server.app, "carl", role="contributor"))
    made = httpx.post(
        f"{server.url}/api/stories",
        json={"title": "Flood", "slug": "flood", "status": "live"},
        headers=bearer(editor.token),
    )
    assert made.status_code == 201
    added = httpx.put(f"{server.url}/api/stories/flood/team/carl", headers=bearer(editor.token))
    assert added.status_code == 201
    return carl


def submit(server: LiveServer, who: Editor, body: str) -> int:
    response = httpx.post(
        f"{server.url}/api/stories/flood/updates", json={"body": body}, headers=bearer(who.token)
    )
    assert response.status_code == 201, response.text
    update_id: int = response.json()["id"]
    return update_id


CHANGED = (
    "document.dispatchEvent(new CustomEvent('liveblog:desk-changed', {detail: {topic: 'queue'}}))"
)


def test_the_queue_is_swapped_in_live_keeping_what_is_typed_and_the_count(
    server: LiveServer, page: Page, editor: Editor, carl: Editor
) -> None:
    first = submit(server, carl, "Crowds at the bridge.")
    log_in_on_desk(page, server.url, editor.username, editor.password, "/desk/stories/flood")
    expect(page).to_have_title(re.compile(r"^\(1\) Desk: Flood"))
    item = page.locator(f"#queue-{first}")
    item.locator("summary", has_text="Return to Carl").click()
    note = item.locator("textarea[name=note]")
    note.fill("Who says so")
    note.focus()

    second = submit(server, carl, "Water over the road.")
    # The desk channel says so in the running app; here the event is sent as it sends it.
    page.evaluate(CHANGED)
    expect(page.locator(f"#queue-{second}")).to_contain_text("Water over the road.", timeout=WITHIN)
    expect(page).to_have_title(re.compile(r"^\(2\) Desk: Flood"))
    # The same note, still open, still focused: the swap took nothing from the editor.
    note = page.locator(f"#queue-{first} textarea[name=note]")
    expect(note).to_have_value("Who says so")
    expect(note).to_be_visible()
    expect(note).to_be_focused()

    # Publishing one from the queue: gone from it, and the count follows.
    page.locator(f"#queue-{second} button", has_text="Publish").click()
    expect(page.locator(f"#update-{second}")).to_be_visible(timeout=WITHIN)
    expect(page.locator(f"#queue-{second}")).to_have_count(0)
    expect(page).to_have_title(re.compile(r"^\(1\) Desk: Flood"))


@pytest.fixture
def kolkata(browser: Browser) -> Iterator[Page]:
    """A browser whose clock is in India (UTC+05:30 all year: no summer time)."""
    context = browser.new_context(
        timezone_id="Asia/Kolkata", viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], errors


def test_compose_saves_drafts_and_schedules_in_the_browsers_time(
    server: LiveServer, kolkata: Page, editor: Editor, carl: Editor
) -> None:
    page = kolkata
    log_in_on_desk(page, server.url, editor.username, editor.password, "/desk/stories/flood")
    compose = page.locator("[data-compose]")
    expect(compose.locator("[data-tz-label]")).to_have_text("(your time, UTC+05:30)")

    compose.locator("textarea[name=body]").fill("Notes for later.")
    compose.locator("button", has_text="Save as draft").click()
    expect(page.locator("#drafts-title + ol")).to_contain_text("Notes for later.", timeout=WITHIN)
    expect(compose.locator("textarea[name=body]")).to_have_value("")
    expect(page.locator("[data-timeline]")).not_to_contain_text("Notes for later.")

    due = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    local = due + timedelta(hours=5, minutes=30)
    compose.locator("textarea[name=body]").fill("The curfew lifts.")
    compose.locator("input[name=publish_at]").fill(local.strftime("%Y-%m-%dT%H:%M"))
    compose.locator("button", has_text="Schedule").click()
    scheduled = page.locator("#scheduled-title + ol")
    expect(scheduled).to_contain_text("The curfew lifts.", timeout=WITHIN)
    times = scheduled.locator("time[data-schedule-time]")
    expect(times).to_have_attribute("datetime", due.isoformat(timespec="milliseconds"))
    # Its "change the time" field shows it back in the browser's time.
    field = scheduled.locator("input[name=publish_at]")
    expect(field).to_have_value(local.strftime("%Y-%m-%dT%H:%M"))


def test_coverage_start_is_set_in_the_browsers_time(
    server: LiveServer, kolkata: Page, editor: Editor
) -> None:
    page = kolkata
    made = httpx.post(
        f"{server.url}/api/stories",
        json={"title": "Flood", "slug": "flood", "status": "live"},
        headers=bearer(editor.token),
    )
    assert made.status_code == 201, made.text
    log_in_on_desk(page, server.url, editor.username, editor.password, "/desk/stories/flood")
    settings = page.locator("form", has=page.locator("input[name=starts_at]"))
    expect(settings.locator("[data-tz-label]")).to_have_text("(your time, UTC+05:30)")
    settings.locator("input[name=starts_at]").fill("2031-06-01T14:00")
    settings.locator("button", has_text="Save story settings").click()
    # Read as 14:00 in India: 08:30 UTC; shown back in the browser's time.
    with httpx.Client(base_url=f"{server.url}/api", headers=bearer(editor.token)) as api:
        for _ in range(50):
            starts = api.get("/stories/flood").json()["starts_at"]
            if starts:
                break
            page.wait_for_timeout(100)
    assert starts is not None
    assert datetime.fromisoformat(starts) == datetime(2031, 6, 1, 8, 30, tzinfo=UTC)
    expect(page.locator("input[name=starts_at]")).to_have_value("2031-06-01T14:00")
