"""Screenshots of the demo story, to look at after changing the page's look.

    python bench/screenshots.py [OUT_DIR]     (default: ./screenshots)

Seeds the demo into a temporary data directory, serves it, and saves the first screen
and the whole page at 320, 375 and 1280 px wide, light and dark, with Debian's Chromium.
Prints any JavaScript error and any page wider than its viewport (sideways scrolling).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from playwright.sync_api import Error, sync_playwright
from pydantic import SecretStr

from liveblog.app import create_app
from liveblog.demo import DEMO_SLUG, seed_demo
from liveblog.settings import Settings
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support import run_server

Scheme = Literal["light", "dark"]
VIEWS: list[tuple[int, int, Scheme]] = [
    (320, 700, "light"), (375, 812, "light"), (375, 812, "dark"), (1280, 900, "light"),
    (1280, 900, "dark"),
]  # fmt: skip


def _collect(errors: list[str]) -> Callable[[Error], None]:
    """A page-error handler that appends to ``errors`` (one list per page)."""
    return lambda error: errors.append(str(error))


SCROLL_THROUGH = """async () => {
  for (let y = 0; y < document.body.scrollHeight; y += 500) {
    window.scrollTo(0, y);
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  window.scrollTo(0, 0);
}"""


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), secret_key=SecretStr("shots" * 8))
        app = create_app(settings)
        with run_server(app) as server, sync_playwright() as playwright:
            server.run(seed_demo(server.liveblog))
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            for width, height, scheme in VIEWS:
                context = browser.new_context(
                    viewport={"width": width, "height": height}, color_scheme=scheme
                )
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", _collect(errors))
                page.goto(f"{server.url}/stories/{DEMO_SLUG}")
                page.wait_for_timeout(300)
                name = f"story-{width}-{scheme}"
                page.screenshot(path=out / f"{name}.png")
                page.evaluate(SCROLL_THROUGH)  # lazy images load near the viewport
                page.wait_for_timeout(300)
                page.screenshot(path=out / f"{name}-full.png", full_page=True)
                scroll_width = page.evaluate("document.documentElement.scrollWidth")
                sideways = f" SIDEWAYS SCROLL ({scroll_width} px)" if scroll_width > width else ""
                print(f"{name}: errors={errors}{sideways}")
                context.close()
            browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("screenshots"))
