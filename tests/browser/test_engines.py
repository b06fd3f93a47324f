"""The reader page, the widget and the embeds' privacy facade in Firefox and WebKit
(Safari's engine), against a real server. Chromium has the full suite (the other files
here, through Playwright); these are the same checks, in the other two engines:

* Firefox: Debian's ``firefox-esr``, driven by npm's ``puppeteer-core`` over WebDriver
  BiDi (no driver, no browser download), from the Node script ``engine_driver.mjs``
  through a line of JSON per command on its stdin and stdout.
* WebKit: WebKitGTK's MiniBrowser, driven by Selenium through Debian's
  ``WebKitWebDriver`` (``webkit2gtk-driver``), on a private ``Xvfb`` display (WebKitGTK
  needs one; it has no headless mode).

Locally a missing engine skips its tests; under CI it fails them (.ci/run installs them).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.webkitgtk.service import Service

from tests.browser.test_embeds_browser import host, provider, settings
from tests.browser.test_widget import HostSite
from tests.embed_provider import FakeProvider
from tests.services import skip_unless_ci
from tests.support import Editor, LiveServer, bearer

# Fixtures: the fake provider on "localhost", the app settings that allow it, a partner site.
__all__ = ["host", "provider", "settings"]

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("engine_driver.mjs")
# Where .ci/run installs puppeteer-core (npm --prefix; git-ignored).
PUPPETEER = Path(os.environ.get("LIVEBLOG_PUPPETEER", ROOT / ".cache" / "puppeteer"))
FIREFOX = Path(os.environ.get("LIVEBLOG_FIREFOX", "/usr/bin/firefox-esr"))
WEBKIT_DRIVER = Path("/usr/bin/WebKitWebDriver")
MINIBROWSER = Path("/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser")

WITHIN = 2.0  # s: an update must be visible this soon after the API answers (as in Chromium)
START = 30.0  # s: for a browser to start, or a page to load
SETTLE = 0.5  # s: for a request that was going to happen on its own to have been made


class Engine:
    """One browser with one page; scripts run in the page's main frame."""

    name = ""
    version = ""

    def goto(self, url: str) -> None:
        raise NotImplementedError

    def evaluate(self, js: str) -> Any:
        """The value of the JavaScript expression ``js`` (JSON-able)."""
        raise NotImplementedError

    def wait(self, js: str, what: str, timeout: float = WITHIN) -> None:
        """Until the expression ``js`` is truthy; fails with ``what`` after ``timeout``."""
        raise NotImplementedError

    def click(self, selector: str) -> None:
        """A real click on the element (scrolled into view first)."""
        raise NotImplementedError

    def errors(self) -> list[str]:
        """Uncaught script errors on the page, where the engine's driver reports them."""
        return []

    def close(self) -> None:
        raise NotImplementedError


class Firefox(Engine):
    """firefox-esr through puppeteer-core (engine_driver.mjs) over WebDriver BiDi."""

    name = "firefox"

    def __init__(self, log: Path) -> None:
        self.log = log
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                ["node", str(DRIVER), str(PUPPETEER), str(FIREFOX)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                bufsize=0,
            )
        self.buffer = b""
        try:
            self.version = str(self._answer(START))
        except BaseException:
            self.process.kill()
            self.process.wait()
            self._close_pipes()
            raise

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()

    def _answer(self, timeout: float) -> Any:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"engine_driver.mjs did not answer in {timeout} s")
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                stderr = self.log.read_text(errors="replace")[-3000:]
                raise AssertionError(f"engine_driver.mjs exited: {stderr}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        answer = json.loads(line)
        if not answer["ok"]:
            raise AssertionError(answer["error"])
        return answer["value"]

    def _do(self, op: str, limit: float = START, **fields: Any) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **fields}).encode() + b"\n")
        return self._answer(limit + 5)

    def goto(self, url: str) -> None:
        self._do("goto", url=url)

    def evaluate(self, js: str) -> Any:
        return self._do("eval", js=js)

    def wait(self, js: str, what: str, timeout: float = WITHIN) -> None:
        try:
            self._do("wait", timeout, js=js, timeout=int(timeout * 1000))
        except AssertionError as error:
            raise AssertionError(f"firefox: not within {timeout} s: {what}") from error

    def click(self, selector: str) -> None:
        self._do("click", selector=selector)

    def errors(self) -> list[str]:
        # Firefox reports, as a page error, the partner page's own policy refusing its
        # favicon.ico (the browser's request, not the page's): not the widget's doing.
        errors: list[str] = self._do("errors")
        return [error for error in errors if "/favicon.ico " not in error]

    def close(self) -> None:
        try:
            self._do("close")
        finally:
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self._close_pipes()


class WebKit(Engine):
    """WebKitGTK's MiniBrowser through WebKitWebDriver (Selenium), on an X display."""

    name = "webkit"

    def __init__(self, display: str) -> None:
        options = webdriver.WebKitGTKOptions()
        options.binary_location = str(MINIBROWSER)
        options.add_argument("--automation")
        service = Service(
            executable_path=str(WEBKIT_DRIVER), env={**os.environ, "DISPLAY": display}
        )
        with warnings.catch_warnings():
            # Selenium's own WebKitGTK class still hands its driver's address over the
            # deprecated way; nothing here to change.
            warnings.filterwarnings("ignore", "setting remote_server_addr", DeprecationWarning)
            self.driver = webdriver.WebKitGTK(options=options, service=service)
        self.driver.set_page_load_timeout(START)
        self.driver.set_window_size(1280, 900)
        self.version = str(self.driver.capabilities.get("browserVersion", ""))

    def goto(self, url: str) -> None:
        self.driver.get(url)

    def evaluate(self, js: str) -> Any:
        return self.driver.execute_script(f"return ({js});")

    def wait(self, js: str, what: str, timeout: float = WITHIN) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(js):
            if time.monotonic() > deadline:
                raise AssertionError(f"webkit: not within {timeout} s: {what}")
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        self.driver.find_element(By.CSS_SELECTOR, selector).click()

    def close(self) -> None:
        self.driver.quit()


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A private X display (Xvfb picks a free number and tells it on a pipe)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        skip_unless_ci("Xvfb not found (Debian package 'xvfb')")
    read, write = os.pipe()
    process = subprocess.Popen(
        [xvfb, "-displayfd", str(write), "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
        pass_fds=[write],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 10)
        number = os.read(read, 64).decode().strip() if ready else ""
        assert number.isdigit(), "Xvfb did not start"
        yield f":{number}"
    finally:
        os.close(read)
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module", params=["firefox", "webkit"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    browser: Engine
    if request.param == "firefox":
        for needed, why in [
            (FIREFOX, "Debian package 'firefox-esr'"),
            (PUPPETEER / "node_modules" / "puppeteer-core", "npm puppeteer-core (.ci/run)"),
        ]:
            if not needed.exists():
                skip_unless_ci(f"{needed} not found ({why})")
        if shutil.which("node") is None:
            skip_unless_ci("node not found (Debian package 'nodejs')")
        browser = Firefox(tmp_path_factory.mktemp("firefox") / "driver.log")
    else:
        for needed, why in [
            (WEBKIT_DRIVER, "Debian package 'webkit2gtk-driver'"),
            (MINIBROWSER, "Debian package 'libwebkit2gtk-4.1-0'"),
        ]:
            if not needed.exists():
                skip_unless_ci(f"{needed} not found ({why})")
        browser = WebKit(request.getfixturevalue("display"))
    yield browser
    browser.close()


@pytest.fixture
def page(engine: Engine) -> Iterator[Engine]:
    """The engine, its page left on a blank document after the test (no stream open)."""
    errors_before = len(engine.errors())
    yield engine
    errors = engine.errors()[errors_before:]
    engine.goto("about:blank")
    assert errors == [], f"{engine.name}: JavaScript errors on the page: {errors}"


@pytest.fixture
def api(server: LiveServer, editor: Editor) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=bearer(editor.token), timeout=10) as client:
        yield client


def story(api: httpx.Client, title: str) -> str:
    response = api.post("/api/stories", json={"title": title, "status": "live"})
    assert response.status_code == 201, response.text
    slug: str = response.json()["slug"]
    return slug


def post(api: httpx.Client, slug: str, body: str) -> int:
    response = api.post(f"/api/stories/{slug}/updates", json={"body": body})
    assert response.status_code == 201, response.text
    update_id: int = response.json()["id"]
    return update_id


def js(value: Any) -> str:
    """A JavaScript literal of ``value``."""
    return json.dumps(value)


def test_reader_page_shows_updates_live_and_holds_them_while_reading(
    server: LiveServer, page: Engine, api: httpx.Client
) -> None:
    slug = story(api, "Harbour fire")
    first = post(api, slug, "Smoke seen over **pier 4**.")
    page.goto(f"{server.url}/stories/{slug}")
    update = "document.querySelector('#update-' + {})"
    page.wait(f"{update.format(first)}?.textContent.includes('pier 4')", "the first update")
    page.wait(
        "document.querySelector('[data-live-status]')?.textContent.includes('Live')",
        "the page's stream connected",
        timeout=5,
    )

    second = post(api, slug, "Two engines arrive.")
    page.wait(
        f"{update.format(second)}?.textContent.includes('Two engines arrive.')",
        "the new update, live",
    )
    # Newest first, in the timeline itself (not held back: the reader is at the top).
    ids = page.evaluate(
        "[...document.querySelectorAll('[data-timeline] > article')]"
        ".map((e) => Number(e.dataset.updateId))"
    )
    assert ids == [second, first]

    api.patch(f"/api/stories/{slug}/updates/{second}", json={"body": "Three engines arrive."})
    page.wait(f"{update.format(second)}?.textContent.includes('Three engines arrive.')", "the edit")

    # A reader scrolled down into the timeline: the next update waits behind the button.
    page.evaluate(
        "(() => { document.body.style.paddingBottom = '3000px';"
        " const top = document.querySelector('[data-timeline]').getBoundingClientRect().top;"
        " window.scrollTo(0, window.scrollY + top + 200); return window.scrollY; })()"
    )
    third = post(api, slug, "Dock Road is closed.")
    button = "document.querySelector('[data-new-updates]')"
    page.wait(
        f"!{button}.hidden && {button}.textContent.includes('1 new update')",
        "the '1 new update' button",
    )
    assert page.evaluate(f"!!{update.format(third)}?.closest('[data-pending]')")
    assert page.evaluate("document.title").startswith("(1) ")
    page.click("[data-new-updates]")
    page.wait(
        f"{button}.hidden && !{update.format(third)}.closest('[data-pending]')",
        "the held update shown after the click",
    )
    ids = page.evaluate(
        "[...document.querySelectorAll('[data-timeline] > article')]"
        ".map((e) => Number(e.dataset.updateId))"
    )
    assert ids == [third, second, first]


def test_widget_on_a_partner_page_renders_and_stays_live(
    server: LiveServer, host: HostSite, page: Engine, api: httpx.Client
) -> None:
    slug = story(api, "Storm Aurelia")
    first = post(api, slug, "Winds reach 100 km/h.")
    url = host.add(
        "widget.html",
        f'<h1>Partner news</h1><live-blog story="{slug}" src="{server.url}"></live-blog>',
        script_src=f"{server.url}/static/widget.js",
        # The strict partner of test_widget.py: no inline script or style, Trusted Types.
        csp=(
            f"default-src 'none'; script-src {server.url}; connect-src {server.url}; "
            f"img-src {server.url}; style-src 'self'; "
            "require-trusted-types-for 'script'; trusted-types liveblog-widget"
        ),
    )
    page.goto(url)
    widget = f"document.querySelector('live-blog[story=\"{slug}\"]')"
    article = widget + "?.shadowRoot?.querySelector('article[data-update-id=\"{}\"]')"
    page.wait(
        f"{article.format(first)}?.textContent.includes('100 km/h')",
        "the widget's first update",
        timeout=5,
    )
    assert "Storm Aurelia" in page.evaluate(f"{widget}.shadowRoot.textContent")
    page.wait(f"{widget}.getAttribute('state') === 'live'", "the widget live", timeout=5)

    second = post(api, slug, "Trees down on the coast road.")
    page.wait(
        f"{article.format(second)}?.textContent.includes('Trees down')",
        "the new update in the widget, live",
    )
    ids = page.evaluate(
        f"[...{widget}.shadowRoot.querySelectorAll('.timeline > article')]"
        ".map((e) => Number(e.dataset.updateId))"
    )
    assert ids == [second, first]


def test_embed_loads_nothing_from_the_provider_before_the_click(
    server: LiveServer, page: Engine, api: httpx.Client, provider: FakeProvider
) -> None:
    slug = story(api, "Storm")
    post(api, slug, f"From the scene:\n\n{provider.base}/video/clip\n\nMore soon.")
    before = dict(provider.hits)  # what the server itself fetched (the oEmbed answer)
    page.goto(f"{server.url}/stories/{slug}")
    button = "figure.embed--video button.embed__load"
    page.wait(
        f"document.querySelector({js(button)})?.textContent.startsWith('Load content from ')",
        "the consent button",
    )
    time.sleep(SETTLE)
    assert dict(provider.hits) == before, "the browser asked the provider before the click"
    assert not page.evaluate("!!document.querySelector('figure.embed--video iframe')")

    page.click(button)
    page.wait(
        "!!document.querySelector('figure.embed--video iframe[sandbox]')",
        "the sandboxed frame",
    )
    sandbox = page.evaluate(
        "document.querySelector('figure.embed--video iframe').getAttribute('sandbox')"
    )
    assert "allow-same-origin" not in sandbox.split()
    deadline = time.monotonic() + 5
    while provider.hits["/player"] == before.get("/player", 0):
        assert time.monotonic() < deadline, "the provider's player was never asked for"
        time.sleep(0.05)
    assert provider.hits["/player"] == before.get("/player", 0) + 1
