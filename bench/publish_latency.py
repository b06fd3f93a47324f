"""``python -m bench.publish_latency [--samples N]``: from an editor's "Publish" click on
the desk to the update on a reader's page, in Chromium.

The product as a user starts it (``liveblog serve``, default logging: bench/crowd/
server.py). A contributor's submissions are made through the API; the editor's desk and a
reader's story page are open in two browser contexts of one Chromium. Each sample waits
until the submission is in the desk's queue (it arrives live, through the desk channel),
takes ``Date.now()`` in the desk page, clicks the item's "Publish" button (a form POST:
the desk reloads), and reads the moment the reader page's timeline got the update's
article (a MutationObserver stamping ``Date.now()``; one browser, one clock).

Two patterns: ``quiet`` (the editor and one reader), and ``crowd`` (the same while 300
readers hold the story's stream open, from a raw-socket client in another process,
and 50 more reconnect with ``Last-Event-ID: 0`` in a loop, replaying the whole log).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from bench.crowd.server import Server
from liveblog import auth
from liveblog.app import create_app
from liveblog.models import Role, StoryCreate, StoryStatus
from liveblog.settings import Settings
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_newsroom_flow import WATCH_TIMELINE

SLUG = "bench-desk"
PASSWORD = "bench desk password"

# The hostile part of the "crowd" pattern, run in a process of its own so that its work
# never delays the browser's: raw sockets holding streams open, and replay loops.
CROWD = r"""
import asyncio, sys
HOST, PORT, SLUG = "127.0.0.1", int(sys.argv[1]), sys.argv[2]
HOLD, REPLAY = int(sys.argv[3]), int(sys.argv[4])
REQUEST = ("GET /stories/%s/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
           "%s\r\n")
async def hold():
    reader, writer = await asyncio.open_connection(HOST, PORT)
    writer.write((REQUEST % (SLUG, "")).encode())
    while await reader.read(65536):
        pass
async def replay():
    while True:
        try:
            reader, writer = await asyncio.open_connection(HOST, PORT)
            writer.write((REQUEST % (SLUG, "Last-Event-ID: 0\r\n")).encode())
            await asyncio.wait_for(reader.read(65536), 5)
            writer.close()
        except Exception:
            await asyncio.sleep(0.1)
async def main():
    tasks = [asyncio.create_task(hold()) for _ in range(HOLD)]
    tasks += [asyncio.create_task(replay()) for _ in range(REPLAY)]
    await asyncio.gather(*tasks, return_exceptions=True)
asyncio.run(main())
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def seed(data_dir: Path) -> tuple[str, str]:
    """An editor (with a password, for the desk) and a contributor's API token, and a
    live story with the contributor on its team."""
    app = create_app(Settings(data_dir=data_dir))
    async with app.router.lifespan_context(app):
        liveblog = app.state.liveblog
        async with liveblog.db.transaction() as session:
            editor = await auth.create_user(
                session, username="editor", password=PASSWORD, role=Role.editor,
                display_name="Bench Editor",
            )  # fmt: skip
            contributor = await auth.create_user(
                session, username="stringer", password=PASSWORD, role=Role.contributor,
                display_name="Bench Stringer",
            )  # fmt: skip
            token: str = await auth.create_api_token(session, contributor, name="bench")
        story = StoryCreate(slug=SLUG, title="Desk bench", status=StoryStatus.live)
        await liveblog.newsroom.create_story(story, actor=editor)
        await liveblog.newsroom.set_team_member(SLUG, "stringer", on=True, actor=editor)
        # The editor's token: it posts the log the crowd replays (``seed_log``).
        async with liveblog.db.transaction() as session:
            editor_token: str = await auth.create_api_token(session, editor, name="seed")
    return token, editor_token


def log_in(page: Page, base_url: str, path: str) -> None:
    page.goto(f"{base_url}{path}")
    page.fill("input[name=username]", "editor")
    page.fill("input[name=password]", PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_url(f"{base_url}{path}")
    page.wait_for_load_state("load")


def run_pattern(base_url: str, token: str, samples: int) -> list[float]:
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
    latencies: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        reader = browser.new_context().new_page()
        reader.goto(f"{base_url}/stories/{SLUG}")
        reader.wait_for_selector("[data-live-status]:has-text('Live')")
        reader.evaluate(WATCH_TIMELINE)
        desk = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        log_in(desk, base_url, f"/desk/stories/{SLUG}")
        for n in range(samples):
            made = api.post(f"/api/stories/{SLUG}/updates", json={"body": f"Sample {n}."})
            update_id = made.json()["id"]
            publish = desk.locator(f"#queue-{update_id}").get_by_role("button", name="Publish")
            publish.wait_for(timeout=10_000)
            clicked = desk.evaluate("Date.now()")
            publish.click()
            reader.wait_for_function("id => window.arrived[id]", arg=str(update_id), timeout=10_000)
            latencies.append(reader.evaluate(f"window.arrived['{update_id}']") - clicked)
            desk.wait_for_load_state("load")
        browser.close()
    api.close()
    return latencies


def seed_log(base_url: str, editor_token: str, updates: int) -> None:
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {editor_token}"}
    ) as api:
        for n in range(updates):
            api.post(f"/api/stories/{SLUG}/updates", json={"body": f"Earlier update {n}."})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.publish_latency", description=__doc__)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--hold", type=int, default=300, help="crowd: streams held open")
    parser.add_argument("--replay", type=int, default=50, help="crowd: replay loops")
    args = parser.parse_args()
    print(
        f"Machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    for pattern in ("quiet", "crowd"):
        data_dir = Path(tempfile.mkdtemp(prefix="publish-latency-"))
        try:
            token, editor_token = asyncio.run(seed(data_dir))
            server = Server(data_dir, data_dir / "server.log")
            server.start()
            asyncio.run(server.answering())
            base_url = f"http://127.0.0.1:{server.port}"
            crowd = None
            try:
                seed_log(base_url, editor_token, 300)
                if pattern == "crowd":
                    crowd = subprocess.Popen(
                        [sys.executable, "-c", CROWD, str(server.port), SLUG,
                         str(args.hold), str(args.replay)],
                    )  # fmt: skip
                    time.sleep(3)  # the crowd connects
                latencies = run_pattern(base_url, token, args.samples)
            finally:
                if crowd is not None:
                    crowd.kill()
                    crowd.wait()
                server.stop()
            note = (
                f" ({args.hold} streams held, {args.replay} replay loops)"
                if pattern == "crowd"
                else ""
            )
            print(
                f"{pattern}{note}: {len(latencies)} samples, "
                f"median {statistics.median(latencies):.0f} ms, "
                f"p95 {percentile(latencies, 0.95):.0f} ms, max {max(latencies):.0f} ms "
                "(Publish click on the desk to the update on a reader's page)"
            )
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
