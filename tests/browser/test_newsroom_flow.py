"""The newsroom workflow end to end in a real browser, three people at once: a
contributor writes and submits on their desk; the editor's desk shows it live and
returns it with a note, which the contributor sees live; the contributor corrects it
and submits again; the editor edits it and publishes it from the edit form; the reader
page, open all along, shows it live; the contributor's desk shows it published.
Then two editors edit the same update: the second save is refused and loses nothing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.desk import log_in_on_desk
from tests.support import Editor, LiveServer, bearer, make_editor

WITHIN = 5_000  # ms
SLUG = "flood"
DESK = f"/desk/stories/{SLUG}"

# Stamps, in the reader's page, the moment each update's article appears (Date.now():
# every page of one browser reads the same clock).
WATCH_TIMELINE = """() => {
  window.arrived = {};
  const timeline = document.querySelector('[data-timeline]');
  new MutationObserver(() => {
    for (const article of timeline.querySelectorAll('article[data-update-id]')) {
      const id = article.dataset.updateId;
      if (!(id in window.arrived)) window.arrived[id] = Date.now();
    }
  }).observe(timeline, {childList: true, subtree: true});
}"""


@pytest.fixture
def carl(server: LiveServer, editor: Editor) -> Editor:
    """A contributor on the team of the live story "flood" (made by ``editor``)."""
    carl: Editor = server.run(make_editor(server.app, "carl", role="contributor"))
    made = httpx.post(
        f"{server.url}/api/stories",
        json={"title": "Flood", "slug": SLUG, "status": "live"},
        headers=bearer(editor.token),
    )
    assert made.status_code == 201
    added = httpx.put(f"{server.url}/api/stories/{SLUG}/team/carl", headers=bearer(editor.token))
    assert added.status_code == 201
    return carl


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[[], Page]]:
    """A page in a browser context of its own (its own cookies: its own person)."""
    contexts = []
    errors: list[str] = []

    def new() -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield new
    for context in contexts:
        context.close()
    assert errors == [], f"JavaScript errors: {errors}"


def test_contributor_editor_and_reader_run_an_update_through_the_newsroom(
    server: LiveServer, open_page: Callable[[], Page], editor: Editor, carl: Editor
) -> None:
    reader = open_page()
    reader.goto(f"{server.url}/stories/{SLUG}")
    expect(reader.locator("[data-live-status]")).to_contain_text("Live", timeout=WITHIN)
    reader.evaluate(WATCH_TIMELINE)
    desk = open_page()
    log_in_on_desk(desk, server.url, editor.username, editor.password, DESK)
    expect(desk).to_have_title(re.compile(r"^Desk: Flood"))
    mine = open_page()
    log_in_on_desk(mine, server.url, carl.username, carl.password, DESK)

    # The contributor writes and submits.
    mine.fill("textarea[name=body]", "Water at the bridge on Elm Street.")
    mine.get_by_role("button", name="Submit for publishing").click()
    own = mine.locator("li.queue-item", has_text="Water at the bridge")
    expect(own.locator(".badge--state")).to_have_text("submitted", timeout=WITHIN)

    # The editor's desk shows it live, with the count in the tab title.
    queued = desk.locator("li.queue-item", has_text="Water at the bridge")
    expect(queued).to_be_visible(timeout=WITHIN)
    expect(desk).to_have_title(re.compile(r"^\(1\) Desk: Flood"))
    assert "Water at the bridge" not in reader.locator("[data-timeline]").inner_text()

    # Returned with a note: the contributor sees the note live.
    queued.locator("summary", has_text="Return to Carl").click()
    queued.locator("textarea[name=note]").fill("Which bridge? Say who saw it.")
    queued.get_by_role("button", name="Return with this note").click()
    # It stays on the editor's desk as returned, no longer counted as waiting.
    returned = desk.locator("li.queue-item", has_text="Water at the bridge")
    expect(returned.locator(".badge--state")).to_have_text("returned", timeout=WITHIN)
    expect(desk).to_have_title(re.compile(r"^Desk: Flood"))
    expect(own.locator(".badge--state")).to_have_text("returned", timeout=WITHIN)
    expect(own.locator(".return-note")).to_contain_text("Which bridge? Say who saw it.")

    # The contributor corrects it and submits again.
    own.get_by_role("link", name="Edit").click()
    expect(mine.locator(".return-note")).to_contain_text("Which bridge?")
    mine.fill("textarea[name=body]", "Water over the Elm Street bridge, residents say.")
    mine.get_by_role("button", name="Save", exact=True).click()
    expect(mine).to_have_url(re.compile(re.escape(DESK)))
    own = mine.locator("li.queue-item", has_text="Elm Street bridge")
    own.get_by_role("button", name="Submit for publishing").click()
    expect(own.locator(".badge--state")).to_have_text("submitted", timeout=WITHIN)

    # The editor edits it and publishes it from the edit form; the reader sees it live.
    queued = desk.locator("li.queue-item", has_text="Elm Street bridge")
    expect(queued).to_be_visible(timeout=WITHIN)
    queued.get_by_role("link", name="Edit").click()
    # The soft lock: the contributor's desk marks their update as being edited.
    expect(own.locator(".desk-editing")).to_have_text("Alice is editing this", timeout=WITHIN)
    desk.fill("input[name=headline]", "Elm Street bridge flooded")
    clicked = desk.evaluate("Date.now()")
    desk.get_by_role("button", name="Save and publish").click()
    article = reader.locator("[data-timeline] article", has_text="Elm Street bridge flooded")
    expect(article).to_contain_text("residents say", timeout=WITHIN)
    update_id = article.get_attribute("data-update-id")
    shown = reader.evaluate(f"window.arrived['{update_id}']")
    print(f"publish latency (Save and publish click to reader display): {shown - clicked} ms")
    assert 0 <= shown - clicked < WITHIN

    # The contributor's desk shows it published, with a link for readers.
    own = mine.locator("li.queue-item", has_text="Elm Street bridge")
    expect(own.locator(".badge--state")).to_have_text("published", timeout=WITHIN)
    expect(own.get_by_role("link", name="Read it as readers do")).to_be_visible()


def test_two_editors_edit_one_update_and_the_second_save_loses_nothing(
    server: LiveServer, open_page: Callable[[], Page], editor: Editor, carl: Editor
) -> None:
    posted = httpx.post(
        f"{server.url}/api/stories/{SLUG}/updates",
        json={"body": "Levee holding."},
        headers=bearer(editor.token),
    )
    update_id = posted.json()["id"]
    priya: Editor = server.run(make_editor(server.app, "priya"))
    edit = f"{DESK}/updates/{update_id}/edit"
    first = open_page()
    log_in_on_desk(first, server.url, editor.username, editor.password, edit)
    second = open_page()
    log_in_on_desk(second, server.url, priya.username, priya.password, edit)
    # Each sees that the other is editing this update.
    expect(first.locator("[data-desk-also-editing]")).to_contain_text("Priya", timeout=WITHIN)
    expect(second.locator("[data-desk-also-editing]")).to_contain_text("Alice", timeout=WITHIN)

    first.fill("textarea[name=body]", "Levee breached at the north end.")
    first.get_by_role("button", name="Save correction").click()
    expect(first).to_have_url(re.compile(re.escape(DESK)))

    second.fill("textarea[name=body]", "Levee holding; sandbags arriving.")
    second.get_by_role("button", name="Save correction").click()
    conflict = second.locator("[data-edit-conflict]")
    expect(conflict).to_contain_text("Alice saved this update")
    # Both texts: theirs as saved, and what this editor typed, still in the form.
    expect(second.locator(".desk-saved-text")).to_have_text("Levee breached at the north end.")
    expect(second.locator("textarea[name=body]")).to_have_value("Levee holding; sandbags arriving.")
    saved = httpx.get(
        f"{server.url}/api/stories/{SLUG}/updates/{update_id}", headers=bearer(editor.token)
    ).json()
    assert saved["body"] == "Levee breached at the north end."
    # A deliberate second save goes through.
    second.fill("textarea[name=body]", "Levee breached at the north end; sandbags arriving.")
    second.get_by_role("button", name="Save correction").click()
    expect(second).to_have_url(re.compile(re.escape(DESK)))
    saved = httpx.get(
        f"{server.url}/api/stories/{SLUG}/updates/{update_id}", headers=bearer(editor.token)
    ).json()
    assert saved["body"] == "Levee breached at the north end; sandbags arriving."


def test_a_submission_made_before_the_desk_channel_opens_is_not_missed(
    server: LiveServer, open_page: Callable[[], Page], editor: Editor, carl: Editor
) -> None:
    desk = open_page()
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)  # the channel waits until the test lets it through

    desk.route("**/channel*", hold)
    log_in_on_desk(desk, server.url, editor.username, editor.password, DESK)
    made = httpx.post(
        f"{server.url}/api/stories/{SLUG}/updates",
        json={"body": "Filed while the desk was loading."},
        headers=bearer(carl.token),
    )
    assert made.status_code == 201
    for _ in range(50):
        if held:
            break
        desk.wait_for_timeout(100)
    assert held, "the desk never asked for its channel"
    # Nobody told this desk of the submission: the channel opening makes it look again.
    expect(desk.locator(f"#queue-{made.json()['id']}")).to_have_count(0)
    held[0].continue_()
    expect(desk.locator(f"#queue-{made.json()['id']}")).to_be_visible(timeout=WITHIN)
