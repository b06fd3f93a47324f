"""CSRF: every state-changing form refuses a missing, foreign or cross-site token.

The list of forms is read from the app's routes, so a new POST route is covered the
day it is added. The JSON API takes only bearer tokens, so a browser's cookies get
nothing there: no CSRF token needed.
"""

from __future__ import annotations

import re

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from liveblog.settings import Settings
from tests.factories import new_story, new_update
from tests.security_support import Account, add_account, browser, db_state, log_in, logged_in

pytestmark = pytest.mark.anyio

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def state_changing_routes(app: Starlette) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if isinstance(route, Route) and route.methods:
            found += [(method, route.path) for method in sorted(route.methods & STATE_CHANGING)]
    return found


def concrete(path: str, ids: dict[str, int]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "username":  # a story team's member
            return "bob"
        if name == "action":  # a workflow step on the desk
            return "publish"
        return "storm" if name == "slug" else str(ids[name])

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, path)


@pytest.fixture
async def world(app: Starlette) -> tuple[Account, dict[str, int]]:
    admin = await add_account(app, "ada", role="admin")
    other = await add_account(app, "bob")
    async with browser(app) as client:
        await new_story(client, admin, "storm")
        posted = await new_update(client, admin, "storm", body="One")
    ids = {"update_id": posted["id"], "user_id": other.user_id, "token_id": 2, "webhook_id": 1}
    return admin, ids


FORM = {
    "title": "Changed",
    "body": "Changed",
    "status": "live",
    "pinned": "on",
    "username": "mallory",
    "password": "a long enough password",
    "role": "admin",
    "active": "off",
    "name": "x",
}


def cases(app: Starlette) -> list[tuple[str, str]]:
    forms = [(m, p) for m, p in state_changing_routes(app) if not p.startswith("/api/")]
    assert ("POST", "/desk/stories") in forms and ("POST", "/login") in forms
    return forms


async def test_every_form_refuses_requests_without_a_valid_token(
    app: Starlette, settings: Settings, world: tuple[Account, dict[str, int]]
) -> None:
    admin, ids = world
    forms = cases(app)
    async with browser(app) as client, browser(app) as attacker:
        csrf = await log_in(client, admin)
        # A token that is valid, but for the attacker's own CSRF cookie.
        foreign = re.search(
            r'name="csrf_token" value="([^"]+)"', (await attacker.get("/login")).text
        )
        assert foreign is not None
        before = db_state(settings)
        for method, template in forms:
            path = concrete(template, ids)
            attempts: dict[str, tuple[dict[str, str], dict[str, str]]] = {
                "no token": (FORM, {}),
                "empty token": ({**FORM, "csrf_token": ""}, {}),
                "foreign token": ({**FORM, "csrf_token": foreign.group(1)}, {}),
                "cross-site fetch": (
                    {**FORM, "csrf_token": csrf},
                    {"Sec-Fetch-Site": "cross-site"},
                ),
                "same-site fetch": ({**FORM, "csrf_token": csrf}, {"Sec-Fetch-Site": "same-site"}),
                "foreign origin": (
                    {**FORM, "csrf_token": csrf},
                    {"Origin": "https://evil.example"},
                ),
                "null origin": ({**FORM, "csrf_token": csrf}, {"Origin": "null"}),
            }
            for name, (data, headers) in attempts.items():
                response = await client.request(method, path, data=data, headers=headers)
                assert response.status_code == 403, (method, path, name, response.status_code)
        assert db_state(settings) == before
        # The same forms with the page's token go through (so the 403s above were CSRF's).
        story = await client.post(
            "/desk/stories",
            data={"csrf_token": csrf, "title": "Fine"},
            headers={"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},
        )
        assert story.status_code == 303


async def test_the_api_never_accepts_the_session_cookie(
    app: Starlette, settings: Settings, world: tuple[Account, dict[str, int]]
) -> None:
    admin, ids = world
    api = [(m, p) for m, p in state_changing_routes(app) if p.startswith("/api/")]
    assert len(api) >= 5
    async with logged_in(app, admin) as (client, csrf):
        before = db_state(settings)
        for method, template in api:
            response = await client.request(
                method,
                concrete(template, ids),
                json={"title": "x", "body": "x"},
                headers={"X-CSRF-Token": csrf},
            )
            assert response.status_code == 401, (method, template)
        assert db_state(settings) == before


async def test_a_cross_site_form_is_refused_before_login_too(app: Starlette) -> None:
    await add_account(app, "alice")
    async with browser(app) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get("/login")).text)
        assert token is not None
        # Login CSRF: another site logging the victim's browser into the attacker's account.
        response = await client.post(
            "/login",
            data={"username": "alice", "password": "x" * 10, "csrf_token": token.group(1)},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
    assert response.status_code == 403
