"""``python -m bench.widget_latency [--samples N]``: post-to-visible time of the widget.

A real server, a partner page on another origin with two widgets (two stories), and
Debian's Chromium. Each sample posts one update through the API and takes the time from
just before the request to the moment the widget has put the update into its shadow
root (its ``liveblog:event``, stamped in the page with ``Date.now()``; one machine, one
clock). Prints median, 90th percentile and max, and the API's own answer time for
comparison. tests/browser/test_widget.py asserts the 2 s bound on a few samples.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright
from pydantic import SecretStr

from liveblog.app import create_app
from liveblog.settings import Settings
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_widget import RECORD_EVENTS, HostSite
from tests.support import bearer, make_editor, run_server


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.widget_latency", description=__doc__)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    settings = Settings(data_dir=Path(tempfile.mkdtemp()), secret_key=SecretStr("bench" * 8))
    site = HostSite()
    with run_server(create_app(settings)) as server, run_server(site.app()) as host:
        site.url = host.url
        editor = server.run(make_editor(server.app, "bench"))
        api = httpx.Client(base_url=server.url, headers=bearer(editor.token), timeout=10)
        slugs = [
            api.post("/api/stories", json={"title": title, "status": "live"}).json()["slug"]
            for title in ("First story", "Second story")
        ]
        widgets = "".join(f'<live-blog story="{s}" src="{server.url}"></live-blog>' for s in slugs)
        url = site.add("bench.html", widgets, script_src=f"{server.url}/static/widget.js")
        visible: list[float] = []
        answered: list[float] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page()
            page.add_init_script(RECORD_EVENTS)
            page.goto(url)
            page.wait_for_selector("live-blog[state=live] >> nth=1", state="attached")
            for n in range(args.samples):
                slug = slugs[n % 2]
                started = time.time() * 1000
                response = api.post(f"/api/stories/{slug}/updates", json={"body": f"Sample {n}"})
                answered.append(time.time() * 1000 - started)
                key = f"update:{response.json()['id']}"
                page.wait_for_function("key => window.__seen[key]", arg=key, timeout=10_000)
                visible.append(page.evaluate("key => window.__seen[key].at", key) - started)
            browser.close()
        api.close()
    for name, values in (("post-to-visible", visible), ("API answer", answered)):
        print(
            f"{name}: {len(values)} samples, median {statistics.median(values):.0f} ms, "
            f"p90 {percentile(values, 0.9):.0f} ms, max {max(values):.0f} ms"
        )


if __name__ == "__main__":
    main()
