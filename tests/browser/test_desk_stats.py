"""The desk's reader numbers change live as readers come and go, in a real browser."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from liveblog.settings import Settings
from tests.browser.desk import log_in_on_desk
from tests.support import Editor, LiveServer, bearer, migrated_settings_for


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Reports every 0.2 s (the desk polls at most once a second).
    return migrated_settings_for(tmp_path, presence_interval=0.2)


def test_desk_shows_readers_now_peak_and_views_live(
    server: LiveServer, browser: Browser, editor: Editor
) -> None:
    created = httpx.post(
        f"{server.url}/api/stories",
        json={"title": "Flood", "status": "live"},
        headers=bearer(editor.token),
    )
    assert created.status_code == 201
    desk_context = browser.new_context()
    desk = desk_context.new_page()
    log_in_on_desk(desk, server.url, editor.username, editor.password, "/desk/stories/flood")
    names = ("readers_now", "peak_readers", "page_views")
    stat = {name: desk.locator(f'[data-stat="{name}"]') for name in names}
    expect(stat["readers_now"]).to_have_text("1", timeout=5_000)  # the desk's own stream

    reader_context = browser.new_context()
    reader = reader_context.new_page()
    reader.goto(f"{server.url}/stories/flood")
    expect(stat["readers_now"]).to_have_text("2", timeout=5_000)
    expect(stat["peak_readers"]).to_have_text("2")
    expect(stat["page_views"]).to_have_text("1", timeout=5_000)

    reader_context.close()
    expect(stat["readers_now"]).to_have_text("1", timeout=5_000)
    expect(stat["peak_readers"]).to_have_text("2")
    desk_context.close()
