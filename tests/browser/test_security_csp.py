"""The Content-Security-Policy in a real browser: every page works with no violation.

Chromium enforces the policy the server sends; a listener installed before any page
script records every ``securitypolicyviolation`` event. The pages must both work (the
live timeline connects and applies an update, desk forms submit) and report nothing:
no inline script, style or handler was needed anywhere.
"""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from liveblog.models import Role
from tests.browser.desk import log_in_on_desk
from tests.support import PASSWORD, LiveServer, bearer, make_editor

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sample}`);
});
"""
HOSTILE = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"


def violations(page: Page) -> list[str]:
    found: list[str] = page.evaluate("window.__cspViolations")
    return found


def test_pages_run_under_the_policy_without_violations(server: LiveServer, page: Page) -> None:
    editor = server.run(make_editor(server.app, "ada", role=Role.admin.value))
    api = httpx.Client(base_url=server.url, headers=bearer(editor.token))
    created = api.post(
        "/api/stories",
        json={"title": "Storm " + HOSTILE, "slug": "storm", "status": "live"},
    )
    assert created.status_code == 201
    first = api.post("/api/stories/storm/updates", json={"body": "Calm " + HOSTILE}).json()
    page.add_init_script(RECORD_VIOLATIONS)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    page.goto(f"{server.url}/stories/storm")
    expect(page.locator("[data-live-status]")).to_contain_text("Live", timeout=5_000)
    second = api.post("/api/stories/storm/updates", json={"body": "Wind " + HOSTILE}).json()
    expect(page.locator(f"#update-{second['id']}")).to_contain_text("Wind", timeout=2_000)
    assert page.title() != "pwned"
    assert violations(page) == []

    # The desk: log in through the form, post with the compose form (desk.js), look at
    # every desk page.
    log_in_on_desk(page, server.url, "ada", PASSWORD, "/desk")
    page.goto(f"{server.url}/desk/stories/storm")
    expect(page.locator("[data-live-status]")).to_contain_text("Live", timeout=5_000)
    page.fill("textarea[name=body]", "From the desk")
    page.keyboard.press("Control+Enter")
    expect(page.locator("[data-timeline]")).to_contain_text("From the desk", timeout=2_000)
    assert violations(page) == []
    for path in [
        "/desk",
        "/desk/users",
        "/desk/tokens",
        f"/desk/stories/storm/updates/{first['id']}/edit",
        f"/desk/stories/storm/updates/{first['id']}/history",
        f"/stories/storm/updates/{first['id']}",
        "/embed/storm",
    ]:
        response = page.goto(f"{server.url}{path}")
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("load")
        assert page.title() != "pwned", path
        assert violations(page) == [], path
    api.close()
    assert not [text for text in console if "Content Security Policy" in text], console
