"""Accessibility of the reader's pages, checked by axe-core (WCAG 2.x A and AA rules,
colour contrast included) in Chromium: the demo story at phone and desktop widths, in
light and dark, and its permalink and author pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser

from liveblog.demo import DEMO_SLUG, DEMO_USERNAME, seed_demo
from tests.support import LiveServer

WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


@pytest.fixture
def demo(server: LiveServer) -> Iterator[LiveServer]:
    server.run(seed_demo(server.liveblog))
    yield server


def violations(results: Any) -> list[str]:
    return [
        f"{v['id']}: {v['help']} at {[node['target'] for node in v['nodes']]}"
        for v in results.response["violations"]
    ]


@pytest.mark.parametrize(
    ("width", "scheme"), [(320, "light"), (375, "dark"), (1280, "light"), (1280, "dark")]
)
def test_story_page_passes_axe(
    demo: LiveServer, browser: Browser, width: int, scheme: Literal["light", "dark"]
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    page.goto(f"{demo.url}/stories/{DEMO_SLUG}")
    page.locator("button[data-share]").first.wait_for()  # the script has run
    assert violations(Axe().run(page, options=WCAG_AA)) == []
    # Nothing wider than the screen: no sideways scrolling, even at 320 px.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()


def test_permalink_and_author_pages_pass_axe(demo: LiveServer, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    page.goto(f"{demo.url}/stories/{DEMO_SLUG}")
    page.locator("a.update__time").nth(3).click()
    page.wait_for_url("**/updates/*")
    assert violations(Axe().run(page, options=WCAG_AA)) == []
    page.goto(f"{demo.url}/authors/{DEMO_USERNAME}")
    assert violations(Axe().run(page, options=WCAG_AA)) == []
    context.close()
