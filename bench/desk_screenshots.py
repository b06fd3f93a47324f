"""Screenshots of a story's desk, to look at after changing the desk's look.

    python bench/desk_screenshots.py [OUT_DIR]     (default: ./screenshots)

Seeds the demo story into a temporary data directory, gives it a newsroom (a contributor
on its team with submissions, a returned one and a draft; a scheduled update; an
editor's draft), serves it, logs in the demo editor and the contributor, and saves the
first screen and the whole desk at 375 and 1280 px wide (light; the editor's also
dark), with Debian's Chromium. Prints any JavaScript error and any page wider than its
viewport (sideways scrolling).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import httpx
from playwright.sync_api import Browser, Error, sync_playwright
from pydantic import SecretStr

from liveblog.app import create_app
from liveblog.demo import DEMO_SLUG, seed_demo
from liveblog.settings import Settings
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.desk import log_in_on_desk
from tests.support import Editor, LiveServer, bearer, make_editor, run_server

Scheme = Literal["light", "dark"]
VIEWS: list[tuple[int, int, Scheme]] = [
    (375, 812, "light"),
    (1280, 900, "light"),
    (1280, 900, "dark"),
]
DESK = f"/desk/stories/{DEMO_SLUG}"


SCROLL_THROUGH = """async () => {
  for (let y = 0; y < document.body.scrollHeight; y += 500) {
    window.scrollTo(0, y);
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  window.scrollTo(0, 0);
}"""


def _collect(errors: list[str]) -> Callable[[Error], None]:
    """A page-error handler that appends to ``errors`` (one list per page)."""
    return lambda error: errors.append(str(error))


def seed_newsroom(server: LiveServer) -> tuple[Editor, Editor]:
    """The demo story with work waiting: returns (editor, contributor) logins."""
    editor: Editor = server.run(make_editor(server.app, "priya"))
    carl: Editor = server.run(make_editor(server.app, "carl", role="contributor"))
    api = f"{server.url}/api/stories/{DEMO_SLUG}"
    assert httpx.put(f"{api}/team/carl", headers=bearer(editor.token)).status_code == 201

    def post(who: Editor, **fields: object) -> int:
        response = httpx.post(f"{api}/updates", json=fields, headers=bearer(who.token))
        assert response.status_code == 201, response.text
        update_id: int = response.json()["id"]
        return update_id

    def step(update_id: int, action: str, **fields: object) -> None:
        response = httpx.post(
            f"{api}/updates/{update_id}/{action}", json=fields, headers=bearer(editor.token)
        )
        assert response.status_code == 200, response.text

    post(
        carl,
        headline="Harbour Road under water",
        body="Water is over the quay wall at **Harbour Road**; two cars are stranded and the "
        "fire service has closed the road from the bridge to the ferry terminal.",
    )
    post(carl, body="A second landslip has closed the coast path north of Alder Point.")
    returned = post(carl, body="Power back in Upper Mill Lane, says a resident.")
    step(returned, "return", note="Who told you? Check with the power company first.")
    post(carl, state="draft", body="Notes from the evacuation centre: queues at the door.")
    due = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    post(
        editor,
        headline="High tide: what to expect tonight",
        body="The tide peaks at 21:40. The flood warning stays in force until morning.",
        publish_at=due,
    )
    post(editor, state="draft", body="Draft: the mayor's briefing, 17:00.")
    return editor, carl


def shoot(browser: Browser, server: LiveServer, who: str, login: Editor, out: Path) -> None:
    for width, height, scheme in VIEWS:
        if who == "contributor" and scheme == "dark":
            continue
        context = browser.new_context(
            viewport={"width": width, "height": height}, color_scheme=scheme
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", _collect(errors))
        log_in_on_desk(page, server.url, login.username, login.password, DESK)
        page.wait_for_timeout(500)
        name = f"desk-{who}-{width}-{scheme}"
        page.screenshot(path=out / f"{name}.png")
        page.evaluate(SCROLL_THROUGH)  # lazy images load near the viewport
        page.wait_for_timeout(300)
        page.screenshot(path=out / f"{name}-full.png", full_page=True)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        sideways = f" SIDEWAYS SCROLL ({scroll_width} px)" if scroll_width > width else ""
        print(f"{name}: errors={errors}{sideways}")
        context.close()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), secret_key=SecretStr("shots" * 8))
        app = create_app(settings)
        with run_server(app) as server, sync_playwright() as playwright:
            server.run(seed_demo(server.liveblog))
            editor, carl = seed_newsroom(server)
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            shoot(browser, server, "editor", editor, out)
            shoot(browser, server, "contributor", carl, out)
            browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("screenshots"))
