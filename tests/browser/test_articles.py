"""Stories as articles in a real browser, at 320 px and 1280 px: the byline and the
categories are visible, the lead folds and opens, the search box is there, a lead,
byline and categories changed on the desk arrive live, and an announced story turns
live by itself."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from liveblog.demo import DEMO_SLUG, DEMO_USERNAME, seed_demo
from tests.support import LiveServer, bearer, make_editor

WITHIN = 5_000
WIDTHS = (320, 1280)


@pytest.fixture
def demo(server: LiveServer) -> Iterator[LiveServer]:
    server.run(seed_demo(server.liveblog))
    yield server


def open_at(browser: Browser, width: int) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(WITHIN)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def no_errors(page: Page) -> None:
    assert page.errors == [], page.errors  # type: ignore[attr-defined]
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_byline_categories_lead_and_search_box(
    demo: LiveServer, browser: Browser, width: int
) -> None:
    page = open_at(browser, width)
    page.goto(f"{demo.url}/stories/{DEMO_SLUG}")
    byline = page.locator("[data-story-byline]")
    expect(byline).to_be_visible()
    expect(byline).to_contain_text("By Demo Desk and Staff and agencies")
    expect(byline.get_by_role("link", name="Demo Desk")).to_have_attribute(
        "href", f"/authors/{DEMO_USERNAME}"
    )
    # The date line is a date, in the reader's time zone (times.js's data-date).
    expect(byline.locator("time")).to_contain_text(str(datetime.now(UTC).year))
    for name in ("Weather", "Coast"):
        expect(byline.get_by_role("link", name=name)).to_be_visible()
    expect(page.get_by_role("search").get_by_role("searchbox")).to_be_visible()

    lead = page.locator("[data-lead]")
    section = lead.get_by_role("heading", name="What to expect")
    expect(section).to_be_visible()  # open: the demo has fewer than LEAD_FOLD updates
    lead.locator("summary").click()
    expect(section).to_be_hidden()
    lead.locator("summary").click()
    expect(section).to_be_visible()
    expect(lead.get_by_role("heading", name="How to stay safe")).to_be_visible()
    # Nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    no_errors(page)


@pytest.mark.parametrize("width", WIDTHS)
def test_lead_changes_and_the_first_update_arrive_live(
    server: LiveServer, browser: Browser, width: int
) -> None:
    editor = server.run(make_editor(server.app, "alice"))
    starts = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    with httpx.Client(base_url=f"{server.url}/api", headers=bearer(editor.token)) as api:
        created = api.post(
            "/stories",
            json={"title": "Summit", "slug": "summit", "status": "live", "starts_at": starts},
        )
        assert created.status_code == 201, created.text
        page = open_at(browser, width)
        page.goto(f"{server.url}/stories/summit")
        expect(page.locator("[data-live-status]")).to_contain_text("Live")
        expect(page.locator("[data-prelive]")).to_contain_text("Coverage starts at")
        expect(page.locator("[data-story-status]")).to_have_text("Coming up")
        expect(page.locator("[data-lead]")).to_be_hidden()

        patched = api.patch("/stories/summit", json={"lead": "## Agenda\n\nTrade, then climate."})
        assert patched.status_code == 200, patched.text
        expect(page.locator("[data-lead]").get_by_role("heading", name="Agenda")).to_be_visible()
        expect(page.locator("[data-story-status]")).to_have_text("Coming up")

        # The byline and the categories follow too; names are text, never markup.
        world = api.post("/categories", json={"name": "World <b>news</b>"}).json()["slug"]
        patched = api.patch(
            "/stories/summit",
            json={"authors": ["alice", {"name": "<i>Staff</i>"}], "categories": [world]},
        )
        assert patched.status_code == 200, patched.text
        byline = page.locator("[data-story-byline]")
        expect(byline.locator(".story-byline__authors")).to_have_text("By Alice and <i>Staff</i>")
        expect(byline.get_by_role("link", name="Alice")).to_have_attribute("href", "/authors/alice")
        expect(byline.get_by_role("link", name="World <b>news</b>")).to_have_attribute(
            "href", f"/categories/{world}"
        )
        expect(byline.locator("i, b")).to_have_count(0)
        expect(byline.locator(".story-byline__sep")).to_have_count(2)
        patched = api.patch("/stories/summit", json={"authors": [], "categories": []})
        assert patched.status_code == 200, patched.text
        expect(byline.locator(".story-byline__authors")).to_have_count(0)
        expect(byline.locator(".story-byline__sections")).to_have_count(0)
        expect(byline.locator(".story-byline__sep")).to_have_count(0)
        expect(byline.locator("[data-date]")).to_be_visible()

        posted = api.post("/stories/summit/updates", json={"body": "Leaders arrive."})
        assert posted.status_code == 201, posted.text
        expect(page.locator(f"#update-{posted.json()['id']}")).to_be_visible()
        expect(page.locator("[data-prelive]")).to_be_hidden()
        expect(page.locator("[data-story-status]")).to_have_text("Live")
    no_errors(page)
