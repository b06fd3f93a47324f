"""The reader page and the desk in a real browser, against a real server."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.desk import log_in_on_desk
from tests.support import Editor, LiveServer, bearer

WITHIN = 2_000  # ms: an update must be visible this soon after the API answers


@pytest.fixture
def slug(server: LiveServer, editor: Editor) -> str:
    """A live story by ``editor``."""
    response = httpx.post(
        f"{server.url}/api/stories",
        json={"title": "Harbour fire", "summary": "Crews at the docks.", "status": "live"},
        headers=bearer(editor.token),
    )
    assert response.status_code == 201
    slug: str = response.json()["slug"]
    return slug


@pytest.fixture
def api(server: LiveServer, editor: Editor, slug: str) -> Iterator[httpx.Client]:
    """The editor's API client, at the story's URL."""
    base_url = f"{server.url}/api/stories/{slug}"
    with httpx.Client(base_url=base_url, headers=bearer(editor.token)) as client:
        yield client


def test_reader_page_applies_updates_edits_deletes_pins_and_the_end(
    server: LiveServer, page: Page, editor: Editor, slug: str, api: httpx.Client
) -> None:
    first = api.post("/updates", json={"body": "Smoke seen over **pier 4**."}).json()

    page.goto(f"{server.url}/stories/{slug}")
    expect(page.locator(f"#update-{first['id']}")).to_contain_text("pier 4")
    expect(page.locator("[data-live-status]")).to_contain_text("Live", timeout=5_000)

    second = api.post("/updates", json={"body": "Two engines arrive.", "headline": "Engines"})
    second_id = second.json()["id"]
    article = page.locator(f"#update-{second_id}")
    expect(article).to_contain_text("Two engines arrive.", timeout=WITHIN)
    # Newest first: the new update sits above the first one.
    ids = page.locator("[data-timeline] > article").evaluate_all(
        "els => els.map(e => Number(e.dataset.updateId))"
    )
    assert ids == [second_id, first["id"]]

    api.patch(f"/updates/{second_id}", json={"body": "Three engines arrive."})
    expect(article).to_contain_text("Three engines arrive.", timeout=WITHIN)
    expect(article.locator(".update__edited")).to_be_visible()

    api.patch(f"/updates/{first['id']}", json={"pinned": True})
    expect(page.locator("[data-pinned-slot]")).to_contain_text("pier 4", timeout=WITHIN)
    expect(page.locator("[data-pinned]")).to_be_visible()

    api.delete(f"/updates/{first['id']}")
    expect(page.locator(f"#update-{first['id']}")).to_have_count(0, timeout=WITHIN)
    expect(page.locator("[data-pinned]")).to_be_hidden()

    ended = httpx.patch(
        f"{server.url}/api/stories/{slug}",
        json={"title": "Harbour fire under control", "status": "ended"},
        headers=bearer(editor.token),
    )
    assert ended.status_code == 200
    expect(page.locator("[data-story-title]")).to_have_text(
        "Harbour fire under control", timeout=WITHIN
    )
    expect(page.locator("[data-ended-note]")).to_be_visible()
    expect(page.locator("[data-live-status]")).to_contain_text("ended")


def test_reader_page_catches_up_on_what_was_posted_before_it_connected(
    server: LiveServer, page: Page, slug: str, api: httpx.Client
) -> None:
    # Hold the page's stream back so the update lands between render and connect.
    page.route(re.compile(r".*/events\?.*"), lambda route: route.abort())
    page.goto(f"{server.url}/stories/{slug}")
    missed = api.post("/updates", json={"body": "Posted while the page was loading."}).json()
    page.unroute(re.compile(r".*/events\?.*"))
    # The script retries from the sequence number the page was rendered at.
    expect(page.locator(f"#update-{missed['id']}")).to_be_visible(timeout=10_000)


def test_desk_posts_with_ctrl_enter_without_reloading(
    server: LiveServer, page: Page, editor: Editor, slug: str
) -> None:
    # Ctrl+Enter needs desk.js listening: the helper waits for the page to load.
    log_in_on_desk(page, server.url, editor.username, editor.password, f"/desk/stories/{slug}")

    page.evaluate("window.__sameDocument = true")
    page.fill("[data-compose] input[name=headline]", "Road closed")
    page.fill("[data-compose] textarea[name=body]", "Dock Road is closed to traffic.")
    page.press("[data-compose] textarea[name=body]", "Control+Enter")
    entry = page.locator("[data-desk-update] article", has_text="Dock Road is closed")
    expect(entry).to_be_visible(timeout=WITHIN)
    expect(entry.locator("xpath=..").locator(".desk-controls")).to_be_visible()
    # Its controls are addressed to it: the server's addresses, with its id put in.
    update_id = entry.get_attribute("data-update-id")
    controls = entry.locator("xpath=..").locator(".desk-controls")
    edit = f"/desk/stories/{slug}/updates/{update_id}/edit"
    expect(controls.locator("a", has_text="Edit")).to_have_attribute("href", edit)
    pin = f"/desk/stories/{slug}/updates/{update_id}/pin"
    expect(controls.locator("form[data-desk-action]").first).to_have_attribute("action", pin)
    # No navigation happened, and the form is ready for the next update.
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator("[data-compose] textarea[name=body]")).to_have_value("")

    # A validation error keeps what the editor typed.
    page.fill("[data-compose] input[name=headline]", "Kept")
    page.fill("[data-compose] textarea[name=body]", "   ")
    page.click("[data-compose] button[type=submit]")
    expect(page.locator("[data-compose-error]")).to_be_visible(timeout=WITHIN)
    expect(page.locator("[data-compose] input[name=headline]")).to_have_value("Kept")
