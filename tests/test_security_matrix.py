"""The authorization matrix: every route x method x kind of caller, with the expected answer.

The list of (method, path, name) is read from ``app.routes``. Who may call a route is
not written here: the expected answer of each caller is worked out from the route's
entry in ``liveblog.policy.ROUTES`` and the callers' permissions in ``policy.ROLES``
(``expected``). ``CASES`` says only how to call each route (its form or body) and what
it answers when the caller may (``status``), so a route without a case fails, and so
does one whose answers stop following the policy.

Callers: ``anonymous``; ``editor`` and ``admin`` (a logged-in browser: session cookie +
CSRF token, no bearer token); ``deactivated`` (a session cookie AND an API token of a
user who has been deactivated); ``bearer`` (an editor's API token, no cookie);
``reader`` (an editor's read-only API token); ``revoked`` (a revoked API token);
``contributor`` (a contributor's API token, on the team of the story under test) and
``outsider`` (a contributor's API token, on no team); ``admin-bearer`` (an admin's API
token: the only caller the admin-only API routes, the webhooks', let in). Every
caller has a valid CSRF cookie and token, so what is measured is authorization, not
CSRF (tests/test_security_csrf.py does that).

The story under test is a draft, so reader pages show who counts as an editor. Each
request gets fresh targets (an update, a user, a token) so no answer depends on order.
"""

from __future__ import annotations

import functools
import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from PIL import Image
from sqlmodel import select
from starlette.routing import Mount, Route

from liveblog import articles, auth, policy, webhooks
from liveblog.models import (
    ApiToken,
    CategoryCreate,
    Role,
    StoryCreate,
    StoryStatus,
    UpdateCreate,
    UpdateState,
    User,
    utcnow,
)
from liveblog.policy import Via
from tests.support import PASSWORD, LiveServer, password_hash

pytestmark = pytest.mark.anyio

LOGIN = "login"  # a 303 to the login page (any other 303 is reported as 303)


@dataclass(frozen=True)
class Caller:
    """Who the app sees: the role of a live login on this browser, and of the user of a
    valid API token (None: no such thing, or it is revoked, or its user is inactive)."""

    login: Role | None = None
    token: Role | None = None
    read_only: bool = False
    team: bool = False  # on the team of the story under test


CALLERS = {
    "anonymous": Caller(),
    "editor": Caller(login=Role.editor),
    "admin": Caller(login=Role.admin),
    "deactivated": Caller(),  # its login and its token are worth nothing
    "bearer": Caller(token=Role.editor),
    "admin-bearer": Caller(token=Role.admin),
    "reader": Caller(token=Role.editor, read_only=True),
    "revoked": Caller(),
    "contributor": Caller(token=Role.contributor, team=True),
    "outsider": Caller(token=Role.contributor),
    # The same two contributors logged in on the desk (a browser).
    "contributor-desk": Caller(login=Role.contributor, team=True),
    "outsider-desk": Caller(login=Role.contributor),
}
PRINCIPALS = tuple(CALLERS)


class Targets:
    """Fresh things for one request to act on, each made when the request first names it
    (its path, form, body or query): a request gets fresh copies of everything it acts
    on, and no time goes on making what it does not name."""

    def __init__(self, server: LiveServer, world: World, n: int) -> None:
        self._server, self._world = server, world
        self.n = n
        self.slug = "draft"  # the story under test

    def _post(self, body: str, **fields: Any) -> int:
        liveblog, editor = self._server.liveblog, self._world.editor
        update = self._server.run(
            liveblog.newsroom.post_update("draft", UpdateCreate(body=body, **fields), author=editor)
        )
        assert update.id is not None
        return int(update.id)

    @functools.cached_property
    def update_id(self) -> int:  # a published update of the editor's
        return self._post(f"Update {self.n}")

    @functools.cached_property
    def submitted_id(self) -> int:  # an update of the editor's, waiting for an editor
        return self._post(f"{UpdateState.submitted} {self.n}", state=UpdateState.submitted)

    @functools.cached_property
    def draft_id(self) -> int:  # a draft of the editor's
        return self._post(f"{UpdateState.draft} {self.n}", state=UpdateState.draft)

    @functools.cached_property
    def scheduled_id(self) -> int:  # an update of the editor's, scheduled for an hour from now
        in_an_hour = utcnow() + timedelta(hours=1)
        return self._post(f"Scheduled {self.n}", publish_at=in_an_hour)

    @functools.cached_property
    def _victim(self) -> tuple[int, str, int]:
        """A fresh user, with an API token: (user id, username, token id)."""
        n = self.n

        async def make() -> tuple[int, str, int]:
            async with self._server.liveblog.db.transaction() as session:
                victim = User(
                    username=f"victim{n}",
                    display_name=f"Victim {n}",
                    password_hash=password_hash(),
                    role=Role.editor,
                )
                session.add(victim)
                await session.flush()
                assert victim.id is not None
                token = ApiToken(user_id=victim.id, name="victim", token_hash=auth.digest(f"v{n}"))
                session.add(token)
                await session.flush()
                assert token.id is not None
                return victim.id, victim.username, token.id

        made: tuple[int, str, int] = self._server.run(make())
        return made

    @property
    def user_id(self) -> int:
        return self._victim[0]

    @property
    def username(self) -> str:
        return self._victim[1]

    @property
    def token_id(self) -> int:  # the fresh user's token
        return self._victim[2]

    @functools.cached_property
    def category(self) -> str:  # the slug of a category of its own (to rename or delete)
        async def make() -> str:
            async with self._server.liveblog.db.transaction() as session:
                made = await articles.create_category(session, CategoryCreate(name=f"Cat {n}"))
                return made.slug

        n = self.n
        slug: str = self._server.run(make())
        return slug

    @functools.cached_property
    def webhook_id(self) -> int:  # a webhook of its own, following the story under test only
        async def make() -> int:
            async with self._server.liveblog.db.transaction() as session:
                webhook = await webhooks.create(
                    session, url=HOOK_URL, events=[], stories=["draft"], actor=self._world.admin
                )
                assert webhook.id is not None
                return webhook.id

        made: int = self._server.run(make())
        return made

    def everything(self) -> Targets:
        """Make every target now (the reads' shared set)."""
        for name in ("update_id", "submitted_id", "draft_id", "scheduled_id", "_victim"):
            getattr(self, name)
        for name in ("category", "webhook_id"):
            getattr(self, name)
        return self


class PathValues(dict[str, str]):
    """The values for a path template's fields, each worked out (and its target made)
    only when the template names it (``str.format_map``)."""

    def __init__(self, fields: dict[str, Callable[[], object]]) -> None:
        super().__init__()
        self.fields = fields

    def __missing__(self, key: str) -> str:
        value = self[key] = str(self.fields[key]())
        return value


@dataclass(frozen=True)
class Case:
    # The answer to a caller the route's policy lets in.
    status: int
    # The answer to such a caller without the permission the view checks for part of
    # its answer (the route's ``view_checks``: drafts, other people's tokens).
    refused: int | None = None
    # The answer to a browser with a live login, whatever the policy (``GET /login``).
    logged_in: int | None = None
    form: Callable[[Targets], dict[str, str]] | None = None
    json: Callable[[Targets], dict[str, Any]] | None = None
    query: Callable[[Targets], str] | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Path parameters beyond the ids in Targets (e.g. a static file's path).
    params: dict[str, str] = field(default_factory=dict)
    # Which of Targets' updates the path's {update_id} names.
    update: str = "update_id"
    # The path's {username} is the fresh user of Targets (else the editor's).
    fresh_user: bool = False
    # The path's {slug} is the fresh category of Targets (else the story's).
    fresh_category: bool = False
    # The answers to a contributor the policy lets in, on the story's team and not: what
    # the view decides from the team and the update's author (docs/newsroom.md).
    on_team: int | None = None
    off_team: int | None = None
    # The same on the desk, for a contributor's browser login: the story under test is a
    # draft, which a contributor off its team does not see (404).
    desk_on_team: int | None = None
    desk_off_team: int | None = None
    # The answer to a caller the policy lets in who is not the author of the targets'
    # updates (the admin, on the desk or by token: they are the editor's), where that
    # differs.
    not_author: int | None = None


# A webhook's address that is never reached: the fetcher refuses TEST-NET-1 at once.
HOOK_URL = "http://192.0.2.1/hook"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


CASES: dict[str, Case] = {
    # Reader pages, feeds and streams (the story under test is a draft).
    "home": Case(200),
    "healthz": Case(200),
    "story_page": Case(200, refused=404),
    "story_feed": Case(200, refused=404),
    "update_page": Case(200, refused=404),
    "story_events": Case(200, refused=404),
    "author_page": Case(200),
    # A category's page and feed (the world's category "news"): published stories only.
    "category_page": Case(200, params={"slug": "news"}),
    "category_feed": Case(200, params={"slug": "news"}),
    # Search and what crawlers read: the same for everyone (published things only).
    "search_page": Case(200, query=lambda t: f"q={t.slug}"),
    "api_search": Case(200, query=lambda t: f"q={t.slug}", on_team=200, off_team=200),
    "sitemap": Case(200),
    "news_sitemap": Case(200),
    "robots": Case(200),
    # The embed family never shows a draft to anyone.
    "story_snapshot": Case(404),
    "embed_page": Case(404),
    "oembed": Case(404, query=lambda t: "url=" + quote(f"{{base}}/stories/{t.slug}", safe="{}")),
    # A link embed's click-through page (an unknown key here).
    "embed_frame": Case(404, params={"key": "nope"}),
    "static": Case(200, params={"path": "css/site.css"}),
    "media": Case(200, params={"path": "probe.txt"}),
    # Logging in and out.
    "login_form": Case(200, logged_in=303),
    "login": Case(303, form=lambda t: {"username": t.username, "password": PASSWORD}),
    "logout": Case(303, form=lambda t: {}),
    # The desk.
    "desk_home": Case(200),
    "create_story": Case(303, form=lambda t: {"title": f"New {t.n}"}),
    "story_desk_page": Case(200, desk_on_team=200, desk_off_team=404),
    "change_story": Case(303, form=lambda t: {"title": f"Renamed {t.n}", "status": "draft"}),
    "story_stats": Case(200, desk_on_team=200, desk_off_team=404),
    "desk_channel": Case(200, desk_on_team=200, desk_off_team=404),
    "post_update": Case(303, form=lambda t: {"body": "New"}, desk_on_team=303, desk_off_team=404),
    "desk_refresh_embeds": Case(303, form=lambda t: {}, desk_on_team=403, desk_off_team=404),
    # The newsroom on the desk: the author submits their draft (to anyone else it is
    # private: no such update); an editor publishes a submission; the team.
    "desk_queue": Case(200, desk_on_team=200, desk_off_team=404),
    # The editor's draft is no update to anyone else.
    "desk_submit_update": Case(
        303,
        update="draft_id",
        form=lambda t: {},
        not_author=404,
        desk_on_team=404,
        desk_off_team=404,
    ),
    "desk_move_update": Case(
        303, update="submitted_id", form=lambda t: {}, params={"action": "publish"}
    ),
    "desk_add_team_member": Case(303, form=lambda t: {"username": t.username}),
    "desk_remove_team_member": Case(303, form=lambda t: {}, fresh_user=True),
    # The target is the editor's update: never a contributor's to change.
    "edit_update_form": Case(200, desk_on_team=403, desk_off_team=404),
    "edit_update": Case(303, form=lambda t: {"body": "Fixed"}, desk_on_team=403, desk_off_team=404),
    "delete_update": Case(303, form=lambda t: {}),
    "pin_update": Case(303, form=lambda t: {"pinned": "on"}),
    "update_history": Case(200, desk_on_team=200, desk_off_team=404),
    # API tokens (the token to revoke is somebody else's).
    "tokens_index": Case(200),
    "create_token": Case(201, form=lambda t: {"name": "script"}),
    "revoke_token": Case(303, refused=404, form=lambda t: {}),
    # Webhooks on the desk (admins only).
    "webhooks_index": Case(200),
    "desk_create_webhook": Case(201, form=lambda t: {"url": HOOK_URL, "stories": t.slug}),
    "desk_replay_webhook": Case(303, form=lambda t: {"story": t.slug, "from_seq": "1"}),
    "desk_remove_webhook": Case(303, form=lambda t: {}),
    # Users.
    "users_index": Case(200),
    "create_user": Case(
        303,
        form=lambda t: {"username": f"new{t.n}", "password": "long enough pw", "role": "editor"},
    ),
    "change_role": Case(303, form=lambda t: {"role": "admin"}),
    "change_active": Case(303, form=lambda t: {"active": "off"}),
    "reset_password": Case(303, form=lambda t: {"password": "another long password"}),
    # A story's export and import (admins): an import without a document is refused.
    "desk_export_story": Case(200),
    "desk_import_form": Case(200),
    "desk_import_story": Case(400, form=lambda t: {}),
    # One's own author page; the categories (editors).
    "profile_form": Case(200),
    "change_profile": Case(303, form=lambda t: {"bio": f"Bio {t.n}"}),
    "categories_index": Case(200),
    "create_category": Case(303, form=lambda t: {"name": f"Desk {t.n}"}),
    "move_category": Case(303, form=lambda t: {"direction": "up"}, params={"slug": "news"}),
    "rename_category": Case(303, form=lambda t: {"name": f"Renamed {t.n}"}, fresh_category=True),
    "delete_category": Case(303, form=lambda t: {}, fresh_category=True),
    # The JSON API.
    "api.list_stories": Case(200),
    "api.create_story": Case(201, json=lambda t: {"title": f"API {t.n}"}),
    "api.list_categories": Case(200, on_team=200, off_team=200),
    "api.create_category": Case(201, json=lambda t: {"name": f"API {t.n}"}),
    "api.rename_category": Case(200, json=lambda t: {"name": f"API {t.n}"}, fresh_category=True),
    "api.delete_category": Case(204, fresh_category=True),
    "api.get_story": Case(200),
    "api.patch_story": Case(200, json=lambda t: {"summary": "Changed"}),
    "api.list_updates": Case(200),
    # A contributor writes to the draft story only on its team (else it is no story to
    # them), may not touch the editor's update, and never sees the editor's draft.
    "api.post_update": Case(201, json=lambda t: {"body": "API"}, on_team=201, off_team=404),
    # A contributor reads published updates (this one) on a story they may see.
    "api.get_update": Case(200, on_team=200, off_team=404),
    "api.patch_update": Case(200, json=lambda t: {"body": "Corrected"}, on_team=403, off_team=404),
    "api.delete_update": Case(204),
    "api.refresh_embeds": Case(200, on_team=403, off_team=404),
    # A link that is never fetched (no network here): refused as such, to anyone let in.
    "api.resolve_embed": Case(
        422, json=lambda t: {"url": "ftp://example.org/"}, on_team=422, off_team=422
    ),
    "api.submit_update": Case(200, update="draft_id", not_author=404, on_team=404, off_team=404),
    "api.publish_update": Case(200, update="submitted_id"),
    "api.return_update": Case(200, update="submitted_id", json=lambda t: {"note": "Source?"}),
    "api.reject_update": Case(200, update="submitted_id"),
    "api.schedule_update": Case(
        200, update="submitted_id", json=lambda t: {"publish_at": "2999-01-01T10:00:00Z"}
    ),
    "api.unschedule_update": Case(200, update="scheduled_id"),
    "api.add_team_member": Case(201, fresh_user=True),
    "api.remove_team_member": Case(204, fresh_user=True),
    "api.upload_image": Case(201, body=_png(), headers={"Content-Type": "image/png"}),
    # Webhooks (admins only): the targets' own, which follows the story under test.
    "api.list_webhooks": Case(200),
    "api.create_webhook": Case(201, json=lambda t: {"url": HOOK_URL, "stories": [t.slug]}),
    "api.get_webhook": Case(200),
    "api.delete_webhook": Case(204),
    "api.replay_webhook": Case(200, json=lambda t: {"story": t.slug, "from_seq": 1}),
    # The API's description: public, the same to everyone.
    "api_openapi": Case(200),
    "api_docs": Case(200),
}


# The desk routes a contributor's login may call that are not about one story: every
# other one must say what a contributor gets on the story's team and off it.
NOT_ONE_STORY = {
    *("desk_home", "tokens_index", "create_token", "revoke_token"),
    *("profile_form", "change_profile"),
    *("rename_category", "delete_category"),
}


def expected(name: str, principal: str) -> int | str:
    """What ``principal`` gets from route ``name``, by liveblog.policy."""
    rule, case, caller = policy.ROUTES[name], CASES[name], CALLERS[principal]
    if rule.via is Via.TOKEN:
        # Cookies mean nothing to the API; only a live token of an active user counts.
        if caller.token is None:
            return 401
        held = policy.permissions(caller.token, read_only=caller.read_only)
        if rule.permission not in held:
            return 403
        if caller.token is Role.contributor:
            answer = case.on_team if caller.team else case.off_team
            assert answer is not None, f"{name}: say what a contributor gets (on_team, off_team)"
            return answer
    else:
        held = policy.permissions(caller.login)
        if rule.via is Via.SESSION:
            if caller.login is None:
                return LOGIN
            if rule.permission not in held:
                return 403
            if caller.login is Role.contributor and name not in NOT_ONE_STORY:
                answer = case.desk_on_team if caller.team else case.desk_off_team
                assert answer is not None, f"{name}: say what a contributor's desk gets"
                return answer
        assert rule.permission in held
    if case.logged_in is not None and caller.login is not None:
        return case.logged_in
    if case.not_author is not None and Role.admin in (caller.login, caller.token):
        return case.not_author
    if case.refused is not None:
        assert rule.view_checks is not None, f"{name}: the policy names no check to refuse"
        if rule.view_checks not in held:
            return case.refused
    return case.status


def app_routes(server: LiveServer) -> set[tuple[str, str, str]]:
    """(method, path template, route name) of every route."""
    found: set[tuple[str, str, str]] = set()
    for route in server.app.routes:
        if isinstance(route, Route):
            found |= {(method, route.path, route.name) for method in route.methods or ()}
        elif isinstance(route, Mount):
            assert route.name is not None
            path = route.path + "/{path}"
            found |= {("GET", path, route.name), ("HEAD", path, route.name)}
        else:  # pragma: no cover - a new kind of route needs this test taught about it
            raise AssertionError(f"unknown route type {route!r}")
    return found


# --- the world -----------------------------------------------------------------------


@dataclass
class World:
    editor: User
    admin: User
    inactive: User
    editor_token: str
    admin_token: str
    reader_token: str
    inactive_token: str
    revoked_token: str
    contributor_token: str
    outsider_token: str
    contributor: User
    outsider: User
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
        admin_token = await auth.create_api_token(session, admin)
        reader_token = await auth.create_api_token(session, editor, read_only=True)
        inactive_token = await auth.create_api_token(session, inactive)
        revoked_token = await auth.create_api_token(session, editor, name="old")
        await session.flush()
        query = select(ApiToken).where(ApiToken.token_hash == auth.digest(revoked_token))
        old = (await session.exec(query)).one()
        old.revoked_at = utcnow()
        session.add(old)
        await auth.set_active(session, inactive, False)
        contributor, outsider = person("cora", Role.contributor), person("otto", Role.contributor)
        session.add_all([contributor, outsider])
        await session.flush()
        contributor_token = await auth.create_api_token(session, contributor)
        outsider_token = await auth.create_api_token(session, outsider)
    await liveblog.newsroom.create_story(
        StoryCreate(title="Draft", slug="draft", status=StoryStatus.draft), actor=editor
    )
    await liveblog.newsroom.set_team_member("draft", "cora", on=True, actor=editor)
    async with liveblog.db.transaction() as session:
        await articles.create_category(session, CategoryCreate(name="News"))
    media = liveblog.settings.media_dir()
    media.mkdir(parents=True, exist_ok=True)
    (media / "probe.txt").write_text("probe")
    return World(
        editor,
        admin,
        inactive,
        editor_token,
        admin_token,
        reader_token,
        inactive_token,
        revoked_token,
        contributor_token,
        outsider_token,
        contributor,
        outsider,
    )


_counter = itertools.count(1)


def _targets(server: LiveServer, world: World) -> Targets:
    """Fresh targets for one request: an update in the draft story (of the kind its path
    names), a user with a token, a category, a webhook; each made when first named."""
    return Targets(server, world, next(_counter))


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


def _logins(world: World) -> dict[str, User]:
    """The user logged in on each principal's browser."""
    return {
        "editor": world.editor,
        "admin": world.admin,
        "deactivated": world.inactive,
        "contributor-desk": world.contributor,
        "outsider-desk": world.outsider,
    }


async def _request(
    client: httpx.AsyncClient,
    server: LiveServer,
    world: World,
    method: str,
    template: str,
    name: str,
    principal: str,
) -> tuple[int | str, str]:
    case = CASES[name]
    user = _logins(world).get(principal)
    if method in READS:
        # Reads change nothing: they share one set of targets and one browser per caller.
        targets = world.read_targets
        cookies = world.read_cookies[principal]
    else:
        targets = _targets(server, world)
        cookies = server.run(_browser_state(server, user))
    headers = dict(case.headers)
    token = {
        "bearer": world.editor_token,
        "admin-bearer": world.admin_token,
        "reader": world.reader_token,
        "revoked": world.revoked_token,
        "deactivated": world.inactive_token,
        "contributor": world.contributor_token,
        "outsider": world.outsider_token,
    }.get(principal)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    values = PathValues(
        {
            "slug": lambda: targets.category if case.fresh_category else targets.slug,
            "update_id": lambda: getattr(targets, case.update),
            "user_id": lambda: targets.user_id,
            "token_id": lambda: targets.token_id,
            "webhook_id": lambda: targets.webhook_id,
            "username": lambda: targets.username if case.fresh_user else world.editor.username,
            **{name: functools.partial(str, value) for name, value in case.params.items()},
        }
    )
    path = template.replace(":int", "").format_map(values)
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
    built.read_targets = _targets(server, built).everything()
    users = _logins(built)
    for principal in PRINCIPALS:
        built.read_cookies[principal] = server.run(_browser_state(server, users.get(principal)))
    return built


async def test_every_route_has_an_entry(server: LiveServer) -> None:
    # Who may call a route is liveblog.policy's (tests/test_policy.py checks that every
    # route has an entry there); here every route needs a way to call it.
    names = {name for _, _, name in app_routes(server)}
    missing = sorted(names - set(CASES))
    assert missing == [], "routes without a case in CASES: say how to call them"
    stale = sorted(set(CASES) - names)
    assert stale == [], "cases for routes that no longer exist"


async def test_authorization_matrix(server: LiveServer, world: World) -> None:
    wrong: list[str] = []
    checked = 0
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for method, template, name in sorted(app_routes(server)):
            if name not in CASES:
                continue  # reported by test_every_route_has_an_entry
            for principal in PRINCIPALS:
                want = expected(name, principal)
                got, description = await _request(
                    client, server, world, method, template, name, principal
                )
                checked += 1
                if got != want:
                    wrong.append(f"{description} (expected {want})")
    print(f"authorization matrix: {checked} requests checked")
    assert wrong == []
    assert checked >= len(PRINCIPALS) * len(CASES)
