"""The authorization matrix: every route x method x kind of caller, with the expected answer.

The list of (method, path) pairs is read from ``app.routes``; ``EXPECTED`` must have an
entry for each, so a route added without deciding who may call it fails this test.

Callers: ``anonymous``; ``editor`` and ``admin`` (a logged-in browser: session cookie +
CSRF token, no bearer token); ``deactivated`` (a session cookie AND an API token of a
user who has been deactivated); ``bearer`` (an editor's API token, no cookie);
``revoked`` (a revoked API token). Every caller has a valid CSRF cookie and token, so
what is measured is authorization, not CSRF (tests/test_security_csrf.py does that).

The story under test is a draft, so reader pages show who counts as an editor. Each
request gets fresh targets (an update, a user, a token) so no answer depends on order.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from PIL import Image
from sqlmodel import select
from starlette.routing import Mount, Route

from liveblog import auth
from liveblog.models import ApiToken, Role, StoryCreate, StoryStatus, UpdateCreate, User, utcnow
from tests.security_support import password_hash
from tests.support import PASSWORD, LiveServer

pytestmark = pytest.mark.anyio

PRINCIPALS = ("anonymous", "editor", "admin", "deactivated", "bearer", "revoked")
LOGIN = "login"  # a 303 to the login page (any other 303 is reported as 303)
Expected = tuple[int | str, int | str, int | str, int | str, int | str, int | str]


def everyone(status: int | str) -> Expected:
    return (status, status, status, status, status, status)


DESK_PAGE: Expected = (LOGIN, 200, 200, LOGIN, LOGIN, LOGIN)
DESK_FORM: Expected = (LOGIN, 303, 303, LOGIN, LOGIN, LOGIN)
ADMIN_PAGE: Expected = (LOGIN, 403, 200, LOGIN, LOGIN, LOGIN)
ADMIN_FORM: Expected = (LOGIN, 403, 303, LOGIN, LOGIN, LOGIN)
DRAFT_READ: Expected = (404, 200, 200, 404, 404, 404)


def api(status: int) -> Expected:
    # Cookies mean nothing to the API; only a live token of an active user counts.
    return (401, 401, 401, 401, status, 401)


@dataclass
class Targets:
    """Fresh things for one request to act on."""

    n: int
    slug: str
    update_id: int
    user_id: int
    username: str
    token_id: int


@dataclass(frozen=True)
class Case:
    expected: Expected
    form: Callable[[Targets], dict[str, str]] | None = None
    json: Callable[[Targets], dict[str, Any]] | None = None
    query: Callable[[Targets], str] | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Path parameters beyond the ids in Targets (e.g. a static file's path).
    params: dict[str, str] = field(default_factory=dict)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


UPDATE = "/stories/{slug}/updates/{update_id:int}"
DESK_UPDATE = "/desk/stories/{slug}/updates/{update_id:int}"
API_UPDATE = "/api/stories/{slug}/updates/{update_id:int}"
EXPECTED: dict[tuple[str, str], Case] = {
    # Reader pages, feeds and streams: drafts only for logged-in editors.
    ("GET", "/"): Case(everyone(200)),
    ("GET", "/healthz"): Case(everyone(200)),
    ("GET", "/stories/{slug}"): Case(DRAFT_READ),
    ("GET", "/stories/{slug}/feed.atom"): Case(DRAFT_READ),
    ("GET", UPDATE): Case(DRAFT_READ),
    ("GET", "/stories/{slug}/events"): Case(DRAFT_READ),
    ("GET", "/authors/{username}"): Case(everyone(200)),
    # The embed family is public and cookie-less: it never shows a draft to anyone.
    ("GET", "/stories/{slug}/updates.json"): Case(everyone(404)),
    ("GET", "/embed/{slug}"): Case(everyone(404)),
    ("GET", "/oembed"): Case(
        everyone(404), query=lambda t: "url=" + quote(f"{{base}}/stories/{t.slug}", safe="{}")
    ),
    ("GET", "/static/{path}"): Case(everyone(200), params={"path": "css/site.css"}),
    ("GET", "/media/{path}"): Case(everyone(200), params={"path": "probe.txt"}),
    # Logging in and out.
    ("GET", "/login"): Case((200, 303, 303, 200, 200, 200)),
    ("POST", "/login"): Case(
        everyone(303), form=lambda t: {"username": t.username, "password": PASSWORD}
    ),
    ("POST", "/logout"): Case(everyone(303), form=lambda t: {}),
    # The desk: any active editor.
    ("GET", "/desk"): Case(DESK_PAGE),
    ("POST", "/desk/stories"): Case(DESK_FORM, form=lambda t: {"title": f"New {t.n}"}),
    ("GET", "/desk/stories/{slug}"): Case(DESK_PAGE),
    ("POST", "/desk/stories/{slug}"): Case(
        DESK_FORM, form=lambda t: {"title": f"Renamed {t.n}", "status": "draft"}
    ),
    ("GET", "/desk/stories/{slug}/stats"): Case(DESK_PAGE),
    ("POST", "/desk/stories/{slug}/updates"): Case(DESK_FORM, form=lambda t: {"body": "New"}),
    ("GET", DESK_UPDATE + "/edit"): Case(DESK_PAGE),
    ("POST", DESK_UPDATE + "/edit"): Case(DESK_FORM, form=lambda t: {"body": "Fixed"}),
    ("POST", DESK_UPDATE + "/delete"): Case(DESK_FORM, form=lambda t: {}),
    ("POST", DESK_UPDATE + "/pin"): Case(DESK_FORM, form=lambda t: {"pinned": "on"}),
    ("GET", DESK_UPDATE + "/history"): Case(DESK_PAGE),
    # API tokens: everyone manages their own; only admins touch other people's.
    ("GET", "/desk/tokens"): Case(DESK_PAGE),
    ("POST", "/desk/tokens"): Case(
        (LOGIN, 201, 201, LOGIN, LOGIN, LOGIN), form=lambda t: {"name": "script"}
    ),
    ("POST", "/desk/tokens/{token_id:int}/revoke"): Case(
        (LOGIN, 404, 303, LOGIN, LOGIN, LOGIN), form=lambda t: {}
    ),
    # Users: admins only.
    ("GET", "/desk/users"): Case(ADMIN_PAGE),
    ("POST", "/desk/users"): Case(
        ADMIN_FORM,
        form=lambda t: {"username": f"new{t.n}", "password": "long enough pw", "role": "editor"},
    ),
    ("POST", "/desk/users/{user_id:int}/role"): Case(ADMIN_FORM, form=lambda t: {"role": "admin"}),
    ("POST", "/desk/users/{user_id:int}/active"): Case(
        ADMIN_FORM, form=lambda t: {"active": "off"}
    ),
    ("POST", "/desk/users/{user_id:int}/password"): Case(
        ADMIN_FORM, form=lambda t: {"password": "another long password"}
    ),
    # The JSON API: bearer tokens only.
    ("GET", "/api/stories"): Case(api(200)),
    ("POST", "/api/stories"): Case(api(201), json=lambda t: {"title": f"API {t.n}"}),
    ("GET", "/api/stories/{slug}"): Case(api(200)),
    ("PATCH", "/api/stories/{slug}"): Case(api(200), json=lambda t: {"summary": "Changed"}),
    ("GET", "/api/stories/{slug}/updates"): Case(api(200)),
    ("POST", "/api/stories/{slug}/updates"): Case(api(201), json=lambda t: {"body": "API"}),
    ("GET", API_UPDATE): Case(api(200)),
    ("PATCH", API_UPDATE): Case(api(200), json=lambda t: {"body": "Corrected"}),
    ("DELETE", API_UPDATE): Case(api(204)),
    ("POST", "/api/media"): Case(api(201), body=_png(), headers={"Content-Type": "image/png"}),
}


def app_routes(server: LiveServer) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in server.app.routes:
        if isinstance(route, Route):
            found |= {(method, route.path) for method in route.methods or ()}
        elif isinstance(route, Mount):
            found |= {("GET", route.path + "/{path}"), ("HEAD", route.path + "/{path}")}
        else:  # pragma: no cover - a new kind of route needs this test taught about it
            raise AssertionError(f"unknown route type {route!r}")
    return found


def case_for(method: str, path: str) -> Case:
    return EXPECTED[("GET" if method == "HEAD" else method, path)]


# --- the world -----------------------------------------------------------------------


@dataclass
class World:
    editor: User
    admin: User
    inactive: User
    editor_token: str
    inactive_token: str
    revoked_token: str
    read_targets: Targets = field(init=False)
    read_cookies: dict[str, dict[str, str]] = field(default_factory=dict)


async def _make_world(server: LiveServer) -> World:
    liveblog = server.liveblog

    def person(username: str, role: Role) -> User:
        return User(
            username=username,
            display_name=username.title(),
            password_hash=password_hash(),
            role=role,
        )

    async with liveblog.db.transaction() as session:
        editor, admin, inactive = (
            person("ed", Role.editor),
            person("ada", Role.admin),
            person("ivan", Role.editor),
        )
        session.add_all([editor, admin, inactive])
        await session.flush()
        editor_token = await auth.create_api_token(session, editor)
        inactive_token = await auth.create_api_token(session, inactive)
        revoked_token = await auth.create_api_token(session, editor, name="old")
        await session.flush()
        query = select(ApiToken).where(ApiToken.token_hash == auth.digest(revoked_token))
        old = (await session.exec(query)).one()
        old.revoked_at = utcnow()
        session.add(old)
        await auth.set_active(session, inactive, False)
    await liveblog.newsroom.create_story(
        StoryCreate(title="Draft", slug="draft", status=StoryStatus.draft), actor=editor
    )
    media = liveblog.settings.media_dir()
    media.mkdir(parents=True, exist_ok=True)
    (media / "probe.txt").write_text("probe")
    return World(editor, admin, inactive, editor_token, inactive_token, revoked_token)


_counter = itertools.count(1)


async def _targets(server: LiveServer, world: World) -> Targets:
    """A fresh update in the draft story, and a fresh user with a token."""
    liveblog = server.liveblog
    n = next(_counter)
    update = await liveblog.newsroom.post_update(
        "draft", UpdateCreate(body=f"Update {n}"), author=world.editor
    )
    async with liveblog.db.transaction() as session:
        victim = User(
            username=f"victim{n}",
            display_name=f"Victim {n}",
            password_hash=password_hash(),
            role=Role.editor,
        )
        session.add(victim)
        await session.flush()
        token = ApiToken(user_id=victim.id or 0, name="victim", token_hash=auth.digest(f"v{n}"))
        session.add(token)
        await session.flush()
    assert update.id is not None and victim.id is not None and token.id is not None
    return Targets(n, "draft", update.id, victim.id, victim.username, token.id)


async def _browser_state(server: LiveServer, user: User | None) -> dict[str, str]:
    """Cookies of a browser: a CSRF cookie, and a login of ``user`` if given.

    The login row is written directly (even for the deactivated user, as if it had
    survived the deactivation): what is tested is that every request checks it.
    """
    cookies = {auth.CSRF_COOKIE: auth.new_csrf_cookie()}
    if user is not None:
        async with server.liveblog.db.transaction() as session:
            cookies[auth.SESSION_COOKIE] = await auth.start_login(session, user, days=1)
    return cookies


READS = {"GET", "HEAD"}


async def _request(
    client: httpx.AsyncClient,
    server: LiveServer,
    world: World,
    method: str,
    template: str,
    principal: str,
) -> tuple[int | str, str]:
    case = case_for(method, template)
    user = {"editor": world.editor, "admin": world.admin, "deactivated": world.inactive}.get(
        principal
    )
    if method in READS:
        # Reads change nothing: they share one set of targets and one browser per caller.
        targets = world.read_targets
        cookies = world.read_cookies[principal]
    else:
        targets = server.run(_targets(server, world))
        cookies = server.run(_browser_state(server, user))
    headers = dict(case.headers)
    token = {
        "bearer": world.editor_token,
        "revoked": world.revoked_token,
        "deactivated": world.inactive_token,
    }.get(principal)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    values = {
        "slug": targets.slug,
        "update_id": str(targets.update_id),
        "user_id": str(targets.user_id),
        "token_id": str(targets.token_id),
        "username": world.editor.username,
        **case.params,
    }
    path = template.replace(":int", "").format(**values)
    if case.query:
        path += "?" + case.query(targets).replace("{base}", quote(server.url, safe=""))
    data = None
    if case.form is not None:
        csrf = server.liveblog.csrf.token_for(cookies[auth.CSRF_COOKIE])
        data = {**case.form(targets), auth.CSRF_FIELD: csrf}
    client.cookies.clear()  # this caller's cookies only, whatever earlier answers set
    headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    request = client.build_request(
        method,
        path,
        data=data,
        json=case.json(targets) if case.json else None,
        content=case.body,
        headers=headers,
    )
    response = await client.send(request, stream=True)
    await response.aclose()  # a stream's status is all we need
    location = response.headers.get("location", "")
    status: int | str = response.status_code
    if status == 303 and location.startswith("/login"):
        status = LOGIN
    return status, f"{method} {path} as {principal}: {response.status_code} {location}"


@pytest.fixture
def world(server: LiveServer) -> World:
    built: World = server.run(_make_world(server))
    built.read_targets = server.run(_targets(server, built))
    users = {"editor": built.editor, "admin": built.admin, "deactivated": built.inactive}
    for principal in PRINCIPALS:
        built.read_cookies[principal] = server.run(_browser_state(server, users.get(principal)))
    return built


async def test_every_route_has_an_entry(server: LiveServer) -> None:
    routes = app_routes(server)
    missing = sorted(
        (method, path)
        for method, path in routes
        if ("GET" if method == "HEAD" else method, path) not in EXPECTED
    )
    assert missing == [], "routes without an entry in EXPECTED: decide who may call them"
    stale = sorted(set(EXPECTED) - {("GET" if m == "HEAD" else m, p) for m, p in routes})
    assert stale == [], "entries for routes that no longer exist"


async def test_authorization_matrix(server: LiveServer, world: World) -> None:
    wrong: list[str] = []
    checked = 0
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for method, template in sorted(app_routes(server)):
            if ("GET" if method == "HEAD" else method, template) not in EXPECTED:
                continue  # reported by test_every_route_has_an_entry
            expected = case_for(method, template).expected
            for principal, want in zip(PRINCIPALS, expected, strict=True):
                got, description = await _request(
                    client, server, world, method, template, principal
                )
                checked += 1
                if got != want:
                    wrong.append(f"{description} (expected {want})")
    print(f"authorization matrix: {checked} requests checked")
    assert wrong == []
    assert checked >= 6 * len(EXPECTED)
