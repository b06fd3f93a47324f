"""Real-browser tests: Playwright driving Debian's Chromium (no browser download).

Locally, without Chromium, these tests skip; under CI (``tests.services.under_ci``) a
missing Chromium is a failure, so a broken CI set-up can never pass by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.services import skip_unless_ci
from tests.support import Editor, LiveServer, make_editor

CHROMIUM = Path(os.environ.get("LIVEBLOG_CHROMIUM", "/usr/bin/chromium"))
# Flags for a root user in a sandbox with no outside network: no sandbox, and none of
# Chromium's background calls home (they would only fail and slow every start).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Module scope, not session: while Playwright's sync API is open it holds an event loop
# in this thread, which the async (anyio) tests of other modules cannot share.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        skip_unless_ci(f"Chromium not found at {CHROMIUM} (Debian package 'chromium')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def editor(server: LiveServer) -> Editor:
    """An editor on the real server (the browser tests' ``server``)."""
    editor: Editor = server.run(make_editor(server.app, "alice"))
    return editor


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
