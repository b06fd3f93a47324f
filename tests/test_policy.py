"""The policy table (liveblog/policy.py) covers every route, and it is what decides.

The routes are read from ``app.routes`` of an app built by ``create_app``, so a route
added without an entry in ``policy.ROUTES``, or an entry left behind by a route that
went away, fails here. What each caller gets from each route is
tests/test_security_matrix.py, which reads its expectations from the same table.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from liveblog import app as app_module
from liveblog import policy
from liveblog.app import create_app
from liveblog.models import Role
from liveblog.policy import PERMISSIONS, ROLES, ROUTES, Permission, Via
from liveblog.settings import Settings
from tests.support import Editor, bearer, login

DOC = Path(__file__).resolve().parent.parent / "docs" / "security.md"


def named_routes(routes: Iterable[BaseRoute], prefix: str = "") -> dict[str, BaseRoute]:
    """Every route by its ``url_for`` name, recursing into Mounts that have routes."""
    found: dict[str, BaseRoute] = {}
    for route in routes:
        if isinstance(route, Mount) and route.routes:
            found |= named_routes(route.routes, f"{prefix}{route.name}:")
        elif isinstance(route, Route | Mount):
            name = f"{prefix}{route.name}"
            assert name not in found, f"two routes are named {name!r}"
            found[name] = route
        else:  # pragma: no cover - a new kind of route needs this test taught about it
            raise AssertionError(f"unknown route type {route!r}")
    return found


@pytest.fixture
def unguarded(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Starlette:
    """The app's routes as assembled, before ``policy.guard`` (which refuses to build
    an app with a route it has no entry for, so this test can list them all)."""
    monkeypatch.setattr(app_module, "guard", list)
    return create_app(settings)


def test_every_route_has_a_policy_entry_and_every_entry_a_route(unguarded: Starlette) -> None:
    routes = named_routes(unguarded.routes)
    missing = sorted(set(routes) - set(ROUTES))
    assert missing == [], "routes without an entry in liveblog.policy.ROUTES: decide who may"
    stale = sorted(set(ROUTES) - set(routes))
    assert stale == [], "entries in liveblog.policy.ROUTES for routes that do not exist"


def test_a_route_without_an_entry_is_not_served(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (A copy without it: ROUTES itself keeps its order, which the docs' table shows.)
    monkeypatch.setattr(policy, "ROUTES", {k: v for k, v in ROUTES.items() if k != "desk_home"})
    with pytest.raises(LookupError, match="desk_home"):
        create_app(settings)


def test_every_route_that_needs_a_caller_is_checked_by_its_rule(settings: Settings) -> None:
    for name, route in named_routes(create_app(settings).routes).items():
        assert isinstance(route, Route | Mount)
        if ROUTES[name].via is Via.ANYONE:
            assert not isinstance(route.app, policy.Checked), name
        else:
            assert isinstance(route.app, policy.Checked), name
            assert route.app.rule == ROUTES[name]


def test_api_routes_take_tokens_and_nothing_else_does(unguarded: Starlette) -> None:
    # Refusals under /api/ are JSON (liveblog.app.http_error goes by the path), and the
    # API never reads cookies: so a token route is an /api/ route and the reverse.
    # The one exception: the API's description and its page, public on purpose (they
    # say how to call the API, nothing of what is in it; generators read it before they
    # hold a token), and nothing else.
    described = {"api_openapi", "api_docs"}
    for name, route in named_routes(unguarded.routes).items():
        path = getattr(route, "path", "")
        if name in described:
            assert ROUTES[name] == policy.PUBLIC, name
            continue
        assert (ROUTES[name].via is Via.TOKEN) == path.startswith("/api/"), name


def test_the_stream_stays_public() -> None:
    # liveblog.live.routing serves GET /stories/{slug}/events outside Starlette's stack, where
    # no guard runs: only a public rule (the view checks drafts itself) is safe there.
    assert ROUTES["story_events"].via is Via.ANYONE


def test_every_role_and_permission_is_in_the_tables() -> None:
    assert set(ROLES) == set(Role), "every role needs its row in liveblog.policy.ROLES"
    assert set(PERMISSIONS) == set(Permission)
    used = {rule.permission for rule in ROUTES.values()}
    used |= {rule.view_checks for rule in ROUTES.values() if rule.view_checks is not None}
    assert used == set(Permission), "a permission that no route or view checks"


def test_read_only_tokens_never_write_and_nobody_lacks_the_public() -> None:
    for role in [None, *Role]:
        held = policy.permissions(role, read_only=True)
        assert not any(PERMISSIONS[permission].writes for permission in held), role
        assert Permission.READ_PUBLIC in held
    # What the API's reads need, a read-only token of staff has.
    assert Permission.READ_DRAFTS in policy.permissions(Role.editor, read_only=True)


@pytest.mark.anyio
async def test_the_table_decides(
    client: httpx.AsyncClient, editor: Editor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role's row is all there is: take manage_stories from editors (as a role that
    files updates but runs no stories would be) and both the desk and the API refuse,
    while the rest of the desk still works."""
    csrf = await login(client, editor)
    without = ROLES[Role.editor] - {Permission.MANAGE_STORIES}
    monkeypatch.setitem(ROLES, Role.editor, without)

    desk = await client.post("/desk/stories", data={"title": "Nope", "csrf_token": csrf})
    assert desk.status_code == 403
    assert PERMISSIONS[Permission.MANAGE_STORIES].refusal in desk.text
    api = await client.post("/api/stories", json={"title": "Nope"}, headers=bearer(editor.token))
    assert api.status_code == 403
    assert api.json() == {"error": "this token's user may not manage_stories"}
    assert (await client.get("/desk")).status_code == 200
    assert (await client.get("/api/stories", headers=bearer(editor.token))).status_code == 200


@pytest.mark.anyio
async def test_drafts_follow_read_drafts_on_the_desk_and_the_api(
    client: httpx.AsyncClient, editor: Editor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role that may use the desk and write but not read drafts (what a contributor
    could be) sees no draft anywhere: not listed, not by its address, not to write to."""
    auth = bearer(editor.token)
    for slug, status in (("plans", "draft"), ("flood", "live")):
        made = await client.post(
            "/api/stories", json={"title": slug, "slug": slug, "status": status}, headers=auth
        )
        assert made.status_code == 201, made.text
    await login(client, editor)
    assert "/desk/stories/plans" in (await client.get("/desk")).text  # seen, before

    without = ROLES[Role.editor] - {Permission.READ_DRAFTS}
    monkeypatch.setitem(ROLES, Role.editor, without)
    home = await client.get("/desk")
    assert home.status_code == 200
    assert "/desk/stories/plans" not in home.text
    assert "/desk/stories/flood" in home.text
    assert (await client.get("/desk/stories/plans")).status_code == 404
    assert (await client.get("/desk/stories/flood")).status_code == 200
    write = await client.post("/api/stories/plans/updates", json={"body": "Leaked?"}, headers=auth)
    assert write.status_code == 404
    wrote = await client.post("/api/stories/flood/updates", json={"body": "Fine."}, headers=auth)
    assert wrote.status_code == 201
    assert (await client.get("/stories/plans")).status_code == 404  # the reader page too


# --- the docs ------------------------------------------------------------------------


def policy_markdown() -> str:
    """The "Who may do what" tables of docs/security.md, as liveblog/policy.py has them."""
    callers: list[tuple[str, Role | None]] = [("anyone", None), *((r.value, r) for r in Role)]
    lines = [
        "| Permission | Allows | Read-only token | " + " | ".join(n for n, _ in callers) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in callers) + " |",
    ]
    for permission, about in PERMISSIONS.items():
        cells = ["yes" if permission in policy.permissions(role) else "" for _, role in callers]
        token = "no (writes)" if about.writes else "yes"
        lines.append(f"| `{permission}` | {about.covers} | {token} | " + " | ".join(cells) + " |")
    lines += ["", "| Routes | Need | Caller |", "| --- | --- | --- |"]
    groups: dict[policy.Rule, list[str]] = {}
    for name, rule in ROUTES.items():
        groups.setdefault(rule, []).append(name)
    for rule, names in groups.items():
        need = f"`{rule.permission}`"
        if rule.view_checks is not None:
            need += f" (more with `{rule.view_checks}`)"
        listed = ", ".join(f"`{name}`" for name in names)
        lines.append(f"| {listed} | {need} | {rule.via} |")
    return "\n".join(lines) + "\n"


def test_the_security_doc_shows_the_policy() -> None:
    expected = policy_markdown()
    assert expected in DOC.read_text(), (
        "docs/security.md's 'Who may do what' tables differ from liveblog/policy.py; "
        "they should read:\n\n" + expected
    )
