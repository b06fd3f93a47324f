"""The desk in a real browser: logging in through its form, as an editor would."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def log_in_on_desk(page: Page, base_url: str, username: str, password: str, path: str) -> None:
    """Open the desk page at ``path``, log in on the form it sends the browser to, and wait
    until the browser is back at ``path`` with the page loaded (its scripts listening)."""
    page.goto(f"{base_url}{path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main form button[type=submit]")  # the login form's (the header has others)
    expect(page).to_have_url(f"{base_url}{path}")
    # The URL changes before the scripts run; whatever the test does next may need them.
    page.wait_for_load_state("load")
