"""The reader's story page in a real browser: nothing jumps, times read naturally, key
events follow live, the order toggle, images, sharing, and the page without JavaScript."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support import LiveServer, bearer, make_editor

WITHIN = 3_000  # ms for a posted update to show up in the page


class Newsroom:
    """An editor's API client for one live story on the test server."""

    def __init__(self, server: LiveServer, slug: str = "storm") -> None:
        editor = server.run(make_editor(server.app, "alice"))
        self.url = server.url
        self.slug = slug
        self.http = httpx.Client(base_url=f"{server.url}/api", headers=bearer(editor.token))
        created = self.http.post(
            "/stories",
            json={"title": "Storm over the bay", "slug": slug, "status": "live"},
        )
        assert created.status_code == 201, created.text

    @property
    def page_url(self) -> str:
        return f"{self.url}/stories/{self.slug}"

    def post(self, body: str = "Rain is heavy.", **fields: Any) -> dict[str, Any]:
        response = self.http.post(f"/stories/{self.slug}/updates", json={"body": body, **fields})
        assert response.status_code == 201, response.text
        update: dict[str, Any] = response.json()
        return update

    def patch(self, update_id: int, **fields: Any) -> None:
        response = self.http.patch(f"/stories/{self.slug}/updates/{update_id}", json=fields)
        assert response.status_code == 200, response.text

    def delete(self, update_id: int) -> None:
        assert self.http.delete(f"/stories/{self.slug}/updates/{update_id}").status_code == 204


@pytest.fixture
def newsroom(server: LiveServer) -> Iterator[Newsroom]:
    room = Newsroom(server)
    yield room
    room.http.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """New pages with their own context options; any JavaScript error fails the test."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def open_(**options: Any) -> Page:
        context = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **options})
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield open_
    for context in contexts:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def long_body(n: int) -> str:
    return f"Update {n}. " + "Crews are working through the night to clear the roads. " * 8


def live(page: Page) -> None:
    expect(page.locator("[data-live-status]")).to_contain_text("Live", timeout=5_000)


def timeline_ids(page: Page) -> list[int]:
    ids: list[int] = page.locator("[data-timeline] > article").evaluate_all(
        "els => els.map(e => Number(e.dataset.updateId))"
    )
    return ids


def test_new_updates_wait_behind_a_button_while_the_reader_is_scrolled_down(
    newsroom: Newsroom, page: Page
) -> None:
    for n in range(12):
        newsroom.post(long_body(n))
    page.goto(newsroom.page_url)
    live(page)
    title = page.title()
    page.evaluate("window.scrollTo(0, 1500)")
    reading = page.locator("[data-timeline] > article").nth(4)
    top_before = reading.evaluate("e => e.getBoundingClientRect().top")

    first = newsroom.post("Bridge reopened.", headline="Bridge reopened")
    second = newsroom.post("Trains are running again.")
    button = page.locator("[data-new-updates]")
    expect(button).to_have_text(re.compile(r"2 new updates"), timeout=WITHIN)
    expect(page).to_have_title(f"(2) {title}")
    # Nothing moved under the reader, and the new updates are not shown yet.
    assert page.evaluate("window.scrollY") == 1500
    assert reading.evaluate("e => e.getBoundingClientRect().top") == top_before
    expect(page.locator(f"#update-{first['id']}")).to_be_hidden()
    expect(page.locator("[data-announcer]")).to_contain_text("2 new updates")

    button.click()
    expect(page.locator(f"#update-{second['id']}")).to_be_in_viewport()
    expect(page.locator(f"#update-{second['id']}")).to_be_focused()
    assert timeline_ids(page)[:2] == [second["id"], first["id"]]
    expect(button).to_be_hidden()
    expect(page).to_have_title(title)

    # Scrolled away again: held back; back at the top: shown without a click.
    page.evaluate("window.scrollTo(0, 1500)")
    third = newsroom.post("Schools will open tomorrow.")
    expect(button).to_have_text(re.compile(r"1 new update$"), timeout=WITHIN)
    newsroom.delete(third["id"])  # deleted while waiting: the count follows
    expect(button).to_be_hidden(timeout=WITHIN)
    expect(page).to_have_title(title)
    fourth = newsroom.post("Power is back in the harbour district.")
    expect(button).to_be_visible(timeout=WITHIN)
    page.evaluate("window.scrollTo(0, 0)")
    expect(page.locator(f"#update-{fourth['id']}")).to_be_visible()
    expect(button).to_be_hidden()
    assert timeline_ids(page)[0] == fourth["id"]

    # At the top, an update slides straight in, and is announced politely.
    fifth = newsroom.post("Ferries sail again.", headline="Ferries sail again")
    expect(page.locator(f"#update-{fifth['id']}")).to_be_visible(timeout=WITHIN)
    expect(button).to_be_hidden()
    expect(page.locator("[data-announcer]")).to_have_text("New update: Ferries sail again")
    assert page.locator("[data-announcer]").get_attribute("aria-live") == "polite"


def test_key_events_box_follows_the_story_live(newsroom: Newsroom, page: Page) -> None:
    newsroom.post("Just rain so far.")
    page.goto(newsroom.page_url)
    live(page)
    box = page.locator("[data-key-events]")
    expect(box).to_be_hidden()

    landfall = newsroom.post("The storm is ashore.", headline="Landfall", key_event=True)
    entries = box.locator("li")
    expect(box).to_be_visible(timeout=WITHIN)
    expect(entries).to_have_text([re.compile("Landfall")])
    link = entries.first.locator("a")
    assert link.get_attribute("href") == f"/stories/storm/updates/{landfall['id']}"

    warning = newsroom.post("Evacuate the harbour now.", key_event=True)  # no headline
    expect(entries).to_have_count(2, timeout=WITHIN)
    expect(entries.first).to_contain_text("Evacuate the harbour now.")

    newsroom.patch(landfall["id"], headline="Storm makes landfall")
    expect(entries.nth(1)).to_contain_text("Storm makes landfall", timeout=WITHIN)
    newsroom.patch(warning["id"], key_event=False)
    expect(entries).to_have_count(1, timeout=WITHIN)
    newsroom.delete(landfall["id"])
    expect(box).to_be_hidden(timeout=WITHIN)

    # A key event on the page: its link scrolls there instead of leaving the page.
    flood = newsroom.post("Flood warning issued.", headline="Flood warning", key_event=True)
    expect(entries).to_have_count(1, timeout=WITHIN)
    page.evaluate("window.__samePage = true")
    entries.first.locator("a").click()
    expect(page.locator(f"#update-{flood['id']}")).to_be_focused()
    assert page.evaluate("window.__samePage") is True
    assert page.url.endswith(f"#update-{flood['id']}")


def test_times_are_relative_keep_current_and_show_local_time(
    newsroom: Newsroom, open_page: Callable[..., Page]
) -> None:
    update = newsroom.post("Wind picks up.")
    posted = datetime.fromisoformat(update["created_at"])
    page = open_page(timezone_id="Asia/Tokyo", locale="en-GB")
    page.clock.install(time=posted + timedelta(seconds=20))
    page.goto(newsroom.page_url)
    stamp = page.locator(f"#update-{update['id']} a.update__time")
    time = stamp.locator("time")
    expect(time).to_have_text("just now")
    # The machine-readable time stays exact, in UTC, to the millisecond (HTML's limit).
    assert time.get_attribute("datetime") == posted.isoformat(timespec="milliseconds")
    expect(page.locator("[data-last-updated]")).to_have_text("just now")

    page.clock.fast_forward("07:00")
    expect(time).to_have_text("7 min ago")
    page.clock.fast_forward("01:10:00")
    expect(time).to_have_text("1 h 17 min ago")

    # Hover and keyboard focus show the absolute time in the reader's time zone.
    tokyo = posted.astimezone(ZoneInfo("Asia/Tokyo"))
    absolute = stamp.get_attribute("data-absolute") or ""
    assert f"{tokyo:%H}:{tokyo:%M}" in absolute and "GMT+9" in absolute
    assert time.get_attribute("title") == absolute
    stamp.hover()
    shown = "e => getComputedStyle(e, '::after').content"
    assert stamp.evaluate(shown) == f'"{absolute}"'
    page.mouse.move(0, 0)
    assert stamp.evaluate(shown) == "none"
    stamp.focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # focused from the keyboard: :focus-visible
    assert stamp.evaluate(shown) == f'"{absolute}"'


def test_oldest_first_toggle_is_remembered_and_live(newsroom: Newsroom, page: Page) -> None:
    posted = [newsroom.post(f"Update {n}.")["id"] for n in range(3)]
    page.goto(newsroom.page_url)
    assert timeline_ids(page) == posted[::-1]
    newest, oldest = page.locator(".order-toggle a").all()
    assert newest.get_attribute("aria-current") == "true"

    oldest.click()
    expect(page).to_have_url(f"{newsroom.page_url}?order=oldest")
    assert timeline_ids(page) == posted
    # Remembered by this browser: the plain address now opens oldest first.
    page.goto(newsroom.page_url)
    assert timeline_ids(page) == posted
    expect(page.locator(".order-toggle a[aria-current]")).to_have_text("Oldest first")
    live(page)
    later = newsroom.post("Posted while reading oldest first.")
    expect(page.locator(f"#update-{later['id']}")).to_be_visible(timeout=WITHIN)
    assert timeline_ids(page) == [*posted, later["id"]]

    page.locator(".order-toggle a", has_text="Newest first").click()
    assert timeline_ids(page) == [later["id"], *posted[::-1]]
    page.goto(newsroom.page_url)
    assert timeline_ids(page)[0] == later["id"]


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 60, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def test_image_with_caption_and_credit(newsroom: Newsroom, page: Page) -> None:
    uploaded = newsroom.http.post(
        "/media", content=png(1200, 800), headers={"Content-Type": "image/png"}
    )
    assert uploaded.status_code == 201, uploaded.text
    image = uploaded.json()
    page.goto(newsroom.page_url)
    live(page)
    update = newsroom.post(
        "The harbour wall, this morning.",
        image_url=image["url"],
        image_alt="Waves over the harbour wall",
        image_caption="Waves break over the harbour wall",
        image_credit="Photo: Ana Reyes",
    )
    figure = page.locator(f"#update-{update['id']} figure")
    expect(figure).to_be_visible(timeout=WITHIN)
    img = figure.locator("img")
    expect(img).to_have_attribute("alt", "Waves over the harbour wall")
    assert (img.get_attribute("width"), img.get_attribute("height")) == ("1200", "800")
    assert img.get_attribute("loading") == "lazy"
    assert "480w" in (img.get_attribute("srcset") or "")
    img.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    expect(figure.locator("figcaption .update__caption")).to_have_text(
        "Waves break over the harbour wall"
    )
    expect(figure.locator("figcaption .update__credit")).to_have_text("Photo: Ana Reyes")
    # Laid out within the column, keeping its shape.
    box = img.bounding_box()
    assert box is not None and box["width"] <= 720
    assert abs(box["width"] / box["height"] - 1.5) < 0.02


def test_share_copies_or_shares_the_permalink(
    newsroom: Newsroom, open_page: Callable[..., Page]
) -> None:
    update = newsroom.post("Roads reopen.", headline="Roads reopen")
    permalink = f"{newsroom.page_url}/updates/{update['id']}"

    page = open_page(permissions=["clipboard-read", "clipboard-write"])
    page.goto(newsroom.page_url)
    share = page.locator(f"#update-{update['id']} button[data-share]")
    expect(share).to_be_visible()
    share.click()
    expect(share).to_have_text("Link copied")
    assert page.evaluate("navigator.clipboard.readText()") == permalink
    expect(page.locator("[data-announcer]")).to_have_text("Link to this update copied.")

    # Where the browser has a share sheet (phones), that is used instead. Headless
    # Chromium on Linux has none, so the page gets one that records what it was given.
    sharing = open_page()
    sharing.add_init_script(
        "window.__shared = []; navigator.share = async (data) => { window.__shared.push(data); };"
    )
    sharing.goto(newsroom.page_url)
    sharing.locator(f"#update-{update['id']} button[data-share]").click()
    sharing.wait_for_function("window.__shared.length === 1")
    assert sharing.evaluate("window.__shared") == [{"title": "Roads reopen", "url": permalink}]

    # The permalink shows the update in context, with the way back to the live story.
    sharing.goto(permalink)
    expect(sharing.locator("article[data-update-id]")).to_have_count(1)
    expect(sharing.locator("article .update__headline")).to_have_text("Roads reopen")
    sharing.locator(".permalink__back a").click()
    expect(sharing).to_have_url(f"{newsroom.page_url}#update-{update['id']}")


def test_the_page_without_javascript(newsroom: Newsroom, open_page: Callable[..., Page]) -> None:
    per_page = 20  # LIVEBLOG_PAGE_SIZE
    posted = [newsroom.post(f"Update {n}.", key_event=n == 2)["id"] for n in range(per_page + 2)]
    page = open_page(java_script_enabled=False)
    page.goto(newsroom.page_url)
    assert timeline_ids(page) == posted[::-1][:per_page]
    # Server-rendered times (UTC), no script-only controls.
    stamp = page.locator(f"#update-{posted[-1]} time")
    expect(stamp).to_have_text(re.compile(r"^\d\d:\d\d UTC$"))
    expect(page.locator("button[data-share]").first).to_be_hidden()
    expect(page.locator("[data-new-updates]")).to_be_hidden()
    expect(page.locator("[data-live-status]")).to_have_text("")
    # Key events link to their updates' own pages.
    page.locator("[data-key-events] a").click()
    expect(page).to_have_url(f"{newsroom.page_url}/updates/{posted[2]}")
    page.go_back()
    # Older updates, by a plain link.
    page.get_by_role("link", name="Older updates").click()
    assert timeline_ids(page) == posted[::-1][per_page:]
    # The order toggle works with links and a cookie alone.
    page.goto(newsroom.page_url)
    page.get_by_role("link", name="Oldest first").click()
    assert timeline_ids(page) == posted[:per_page]
    page.get_by_role("link", name="Newer updates").click()
    assert timeline_ids(page) == posted[per_page:]
    page.goto(newsroom.page_url)
    assert timeline_ids(page) == posted[:per_page]


def test_times_before_today_show_the_date(newsroom: Newsroom, page: Page) -> None:
    update = newsroom.post("Yesterday's forecast.")
    posted = datetime.fromisoformat(update["created_at"]).astimezone(UTC)
    page.clock.install(time=posted + timedelta(days=2))
    page.goto(newsroom.page_url)
    time = page.locator(f"#update-{update['id']} time")
    expect(time).not_to_have_text(re.compile("ago|just now"))
    expect(time).to_contain_text(str(posted.day))
