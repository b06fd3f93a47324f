"""Who may do what: every authorization decision of the app is made from the tables here.

Three tables, all data:

* ``PERMISSIONS``: the named things a caller may do, what each covers, and whether it
  writes (a read-only API token never grants one that writes).
* ``ROLES``: each role's permissions. Everyone, logged in or not, holds ``EVERYONE``'s.
  A new role is one row here (and its value in ``models.Role``); a role without a row
  holds nothing beyond ``EVERYONE``.
* ``ROUTES``: every route of the app by name, with the permission it needs and how the
  caller proves who they are (``Via``): nothing (public), a browser's login, or an API
  token (the API never reads cookies).

``create_app`` passes its routes through ``guard``, which puts ``require`` in front of
each route whose rule needs a caller, from ``ROUTES``; a route without an entry cannot
be served (the app does not build). Views take the caller the check let in from
``actor(request)``. A refusal is what it always was: no login, the login page
(``LoginRequired``); a logged-in editor without the permission, 403; an API call
without a valid token, 401 with a ``WWW-Authenticate`` challenge; a read-only token
asking to write, or a token whose user lacks the permission, 403. Errors under
``/api/`` are ``{"error": ...}`` JSON (``liveblog.app.http_error``).

Some answers depend on a permission only in part: a public page shows a draft only to
a caller with ``read_drafts``, and ``/desk/tokens`` lists and revokes other people's
tokens only for ``manage_all_tokens``. The view checks those with ``allows``; the
route's entry names them (``Rule.view_checks``) so the tests and the docs know.

The event stream (``story_events``) is served outside Starlette's stack
(``liveblog.live.routing``), so it must stay public: ``tests/test_policy.py`` checks that.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from liveblog import auth, store
from liveblog.models import Role, StoryStatus, User
from liveblog.state import get_liveblog

# --- permissions ---------------------------------------------------------------------


class Permission(StrEnum):
    READ_PUBLIC = "read_public"
    READ_DRAFTS = "read_drafts"
    USE_DESK = "use_desk"
    MANAGE_STORIES = "manage_stories"
    SUBMIT_UPDATES = "submit_updates"
    WRITE_UPDATES = "write_updates"
    MANAGE_OWN_TOKENS = "manage_own_tokens"
    MANAGE_ALL_TOKENS = "manage_all_tokens"
    MANAGE_USERS = "manage_users"
    MANAGE_WEBHOOKS = "manage_webhooks"


@dataclass(frozen=True)
class About:
    covers: str  # what it allows (docs/security.md shows this)
    writes: bool  # True: a read-only API token never grants it
    refusal: str  # the 403 page's message for a logged-in editor without it


PERMISSIONS: dict[Permission, About] = {
    Permission.READ_PUBLIC: About(
        "read what is published: reader pages, feeds, streams, embeds; log in and out",
        writes=False,
        refusal="You may not read this.",
    ),
    Permission.READ_DRAFTS: About(
        "see draft stories wherever stories are read (reader pages, streams, author "
        "pages, the API's reads)",
        writes=False,
        refusal="You may not see drafts.",
    ),
    Permission.USE_DESK: About(
        "open the desk: the story list, a story's desk, its queue, histories, reader "
        "numbers; alone (a contributor), only the stories whose team one is on",
        writes=False,
        refusal="You may not use the desk.",
    ),
    Permission.MANAGE_STORIES: About(
        "create stories; change a story's title, summary, status, breaking flag, "
        "byline, lead, categories and start; manage the categories; "
        "put contributors on a story's team and take them off",
        writes=True,
        refusal="You may not create or change stories.",
    ),
    Permission.SUBMIT_UPDATES: About(
        "write updates (the API, the desk's compose and edit forms) and submit them to "
        "an editor; alone (a contributor), only one's own, only on the stories whose "
        "team one is on, and never published",
        writes=True,
        refusal="You may not write updates.",
    ),
    Permission.WRITE_UPDATES: About(
        "post (published at once), edit, pin and delete any update; publish, return and "
        "reject submitted ones; upload images",
        writes=True,
        refusal="You may not write updates.",
    ),
    Permission.MANAGE_OWN_TOKENS: About(
        "list, create and revoke one's own API tokens",
        writes=True,
        refusal="You may not manage API tokens.",
    ),
    Permission.MANAGE_ALL_TOKENS: About(
        "see and revoke everyone's API tokens",
        writes=True,
        refusal="You may not manage other people's API tokens.",
    ),
    Permission.MANAGE_USERS: About(
        "create users, change roles, deactivate and reactivate, reset passwords",
        writes=True,
        refusal="Only admins can manage users.",
    ),
    Permission.MANAGE_WEBHOOKS: About(
        "register, inspect, replay and remove webhooks (every event of every story goes "
        "where they say)",
        writes=True,
        refusal="Only admins can manage webhooks.",
    ),
}


# --- roles ---------------------------------------------------------------------------

# Held by every caller, logged in or not.
EVERYONE: frozenset[Permission] = frozenset({Permission.READ_PUBLIC})

_P = Permission
ROLES: dict[Role, frozenset[Permission]] = {
    # Contributors see no draft story, except on the stories whose team they are on
    # (the API and the desk check the team: liveblog/views/api.py, views/common.py's
    # desk_story); docs/newsroom.md.
    Role.contributor: frozenset({_P.USE_DESK, _P.SUBMIT_UPDATES, _P.MANAGE_OWN_TOKENS}),
    Role.editor: frozenset(
        {
            *(_P.READ_DRAFTS, _P.USE_DESK, _P.MANAGE_STORIES, _P.SUBMIT_UPDATES),
            *(_P.WRITE_UPDATES, _P.MANAGE_OWN_TOKENS),
        }
    ),
    Role.admin: frozenset(
        {
            *(_P.READ_DRAFTS, _P.USE_DESK, _P.MANAGE_STORIES, _P.SUBMIT_UPDATES),
            _P.WRITE_UPDATES,
            *(_P.MANAGE_OWN_TOKENS, _P.MANAGE_ALL_TOKENS, _P.MANAGE_USERS),
            _P.MANAGE_WEBHOOKS,
        }
    ),
}


def permissions(role: Role | None, *, read_only: bool = False) -> frozenset[Permission]:
    """What a caller holds: ``role`` None for nobody logged in; ``read_only`` for a
    read-only API token (which grants none that writes)."""
    held = EVERYONE if role is None else EVERYONE | ROLES.get(role, frozenset())
    if read_only:
        held = frozenset(p for p in held if not PERMISSIONS[p].writes)
    return held


def allows(user: User | None, permission: Permission, *, read_only: bool = False) -> bool:
    """May ``user`` (None: nobody logged in) do ``permission``? An inactive user is
    nobody."""
    role = user.role if user is not None and user.active else None
    return permission in permissions(role, read_only=read_only)


def roles_with(permission: Permission) -> frozenset[Role]:
    return frozenset(role for role in ROLES if permission in ROLES[role])


# --- routes --------------------------------------------------------------------------


class Via(StrEnum):
    """How a route's caller proves who they are."""

    ANYONE = "anyone"  # nothing: a public route
    SESSION = "session"  # a browser's login (session cookie); none: the login page
    TOKEN = "token"  # an API bearer token; cookies are never read


@dataclass(frozen=True)
class Rule:
    permission: Permission
    via: Via
    # A permission the view checks for part of its answer (drafts, others' tokens).
    view_checks: Permission | None = None


PUBLIC = Rule(Permission.READ_PUBLIC, Via.ANYONE)
PUBLIC_WITH_DRAFTS = Rule(Permission.READ_PUBLIC, Via.ANYONE, view_checks=_P.READ_DRAFTS)


def desk(permission: Permission, *, view_checks: Permission | None = None) -> Rule:
    return Rule(permission, Via.SESSION, view_checks)


def api(permission: Permission, *, view_checks: Permission | None = None) -> Rule:
    return Rule(permission, Via.TOKEN, view_checks)


ROUTES: dict[str, Rule] = {
    # Public. Reader pages, feeds and streams show drafts only to read_drafts.
    "healthz": PUBLIC,
    "home": PUBLIC,
    "story_page": PUBLIC_WITH_DRAFTS,
    "story_feed": PUBLIC_WITH_DRAFTS,
    "update_page": PUBLIC_WITH_DRAFTS,
    "story_events": PUBLIC_WITH_DRAFTS,  # served outside the stack: must stay public
    "author_page": PUBLIC_WITH_DRAFTS,
    # A category's page and feed: live and ended stories only, to anyone.
    "category_page": PUBLIC,
    "category_feed": PUBLIC,
    # Search and what crawlers read: published stories and updates only, to anyone
    # (the API's search too, with any token, read-only ones included: /api/ takes tokens).
    "search_page": PUBLIC,
    "api_search": api(_P.READ_PUBLIC),
    "sitemap": PUBLIC,
    "news_sitemap": PUBLIC,
    "robots": PUBLIC,
    # The embed family is read across sites without cookies: never a draft, to anyone.
    "story_snapshot": PUBLIC,
    "embed_page": PUBLIC,
    "oembed": PUBLIC,
    "embed_frame": PUBLIC,
    "static": PUBLIC,
    "media": PUBLIC,
    "login_form": PUBLIC,
    "login": PUBLIC,
    "logout": PUBLIC,
    # The desk (a browser's login).
    "desk_home": desk(_P.USE_DESK, view_checks=_P.READ_DRAFTS),
    "story_desk_page": desk(_P.USE_DESK, view_checks=_P.READ_DRAFTS),
    "story_stats": desk(_P.USE_DESK, view_checks=_P.READ_DRAFTS),
    # Staff only: presence, soft locks, "changed"; a contributor on the story's team only.
    "desk_channel": desk(_P.USE_DESK, view_checks=_P.READ_DRAFTS),
    # The story's queue, scheduled updates and drafts as a fragment (the desk's script).
    "desk_queue": desk(_P.USE_DESK, view_checks=_P.WRITE_UPDATES),
    # Contributors too: only their own unpublished updates, on their stories.
    "edit_update_form": desk(_P.SUBMIT_UPDATES, view_checks=_P.WRITE_UPDATES),
    "update_history": desk(_P.USE_DESK, view_checks=_P.READ_DRAFTS),
    "create_story": desk(_P.MANAGE_STORIES),
    "change_story": desk(_P.MANAGE_STORIES, view_checks=_P.READ_DRAFTS),
    # Contributors too: a contributor's update is submitted (or a draft), never published.
    "post_update": desk(_P.SUBMIT_UPDATES, view_checks=_P.WRITE_UPDATES),
    "edit_update": desk(_P.SUBMIT_UPDATES, view_checks=_P.WRITE_UPDATES),
    "desk_submit_update": desk(_P.SUBMIT_UPDATES, view_checks=_P.WRITE_UPDATES),
    # Re-fetching an update's link embeds: whoever may edit it (a contributor: their own,
    # unpublished). (The forms' Preview is a button of post_update and edit_update.)
    "desk_refresh_embeds": desk(_P.SUBMIT_UPDATES, view_checks=_P.WRITE_UPDATES),
    # Publish, return, reject, schedule, unschedule.
    "desk_move_update": desk(_P.WRITE_UPDATES, view_checks=_P.READ_DRAFTS),
    "desk_add_team_member": desk(_P.MANAGE_STORIES, view_checks=_P.READ_DRAFTS),
    "desk_remove_team_member": desk(_P.MANAGE_STORIES, view_checks=_P.READ_DRAFTS),
    "delete_update": desk(_P.WRITE_UPDATES, view_checks=_P.READ_DRAFTS),
    "pin_update": desk(_P.WRITE_UPDATES, view_checks=_P.READ_DRAFTS),
    "tokens_index": desk(_P.MANAGE_OWN_TOKENS, view_checks=_P.MANAGE_ALL_TOKENS),
    "create_token": desk(_P.MANAGE_OWN_TOKENS),
    "revoke_token": desk(_P.MANAGE_OWN_TOKENS, view_checks=_P.MANAGE_ALL_TOKENS),
    "users_index": desk(_P.MANAGE_USERS),
    "create_user": desk(_P.MANAGE_USERS),
    "change_role": desk(_P.MANAGE_USERS),
    "change_active": desk(_P.MANAGE_USERS),
    "reset_password": desk(_P.MANAGE_USERS),
    # A story's export and import (liveblog/views/desk_transfer.py): a document names
    # every user of its story and an import creates accounts, so with the users.
    "desk_export_story": desk(_P.MANAGE_USERS),
    "desk_import_form": desk(_P.MANAGE_USERS),
    "desk_import_story": desk(_P.MANAGE_USERS),
    # Webhooks on the desk (the API's, below, for a browser).
    "webhooks_index": desk(_P.MANAGE_WEBHOOKS),
    "desk_create_webhook": desk(_P.MANAGE_WEBHOOKS),
    "desk_replay_webhook": desk(_P.MANAGE_WEBHOOKS),
    "desk_remove_webhook": desk(_P.MANAGE_WEBHOOKS),
    # Everyone on the desk edits their own author page (bio, photo).
    "profile_form": desk(_P.USE_DESK),
    "change_profile": desk(_P.USE_DESK),
    "categories_index": desk(_P.MANAGE_STORIES),
    "create_category": desk(_P.MANAGE_STORIES),
    "move_category": desk(_P.MANAGE_STORIES),
    "rename_category": desk(_P.MANAGE_STORIES),
    "delete_category": desk(_P.MANAGE_STORIES),
    # The JSON API (bearer tokens; read-only tokens only read).
    "api.list_stories": api(_P.READ_DRAFTS),
    "api.get_story": api(_P.READ_DRAFTS),
    "api.list_updates": api(_P.READ_DRAFTS),
    "api.create_story": api(_P.MANAGE_STORIES),
    "api.list_categories": api(_P.READ_PUBLIC),
    "api.create_category": api(_P.MANAGE_STORIES),
    "api.rename_category": api(_P.MANAGE_STORIES),
    "api.delete_category": api(_P.MANAGE_STORIES),
    "api.patch_story": api(_P.MANAGE_STORIES, view_checks=_P.READ_DRAFTS),
    # Contributors too: only their own updates, on their stories, never published.
    "api.post_update": api(_P.SUBMIT_UPDATES, view_checks=_P.WRITE_UPDATES),
    "api.patch_update": api(_P.SUBMIT_UPDATES, view_checks=_P.WRITE_UPDATES),
    "api.refresh_embeds": api(_P.SUBMIT_UPDATES, view_checks=_P.WRITE_UPDATES),
    # What a pasted link becomes (the desk's preview): anyone who writes updates.
    "api.resolve_embed": api(_P.SUBMIT_UPDATES),
    # Webhooks carry every event of their stories, drafts' included once they go live.
    "api.list_webhooks": api(_P.MANAGE_WEBHOOKS),
    "api.create_webhook": api(_P.MANAGE_WEBHOOKS),
    "api.get_webhook": api(_P.MANAGE_WEBHOOKS),
    "api.delete_webhook": api(_P.MANAGE_WEBHOOKS),
    "api.replay_webhook": api(_P.MANAGE_WEBHOOKS),
    "api.submit_update": api(_P.SUBMIT_UPDATES, view_checks=_P.WRITE_UPDATES),
    # A contributor reads their own updates (any state) and published ones.
    "api.get_update": api(_P.SUBMIT_UPDATES, view_checks=_P.READ_DRAFTS),
    "api.delete_update": api(_P.WRITE_UPDATES, view_checks=_P.READ_DRAFTS),
    "api.publish_update": api(_P.WRITE_UPDATES, view_checks=_P.READ_DRAFTS),
    "api.return_update": api(_P.WRITE_UPDATES, view_checks=_P.READ_DRAFTS),
    "api.reject_update": api(_P.WRITE_UPDATES, view_checks=_P.READ_DRAFTS),
    "api.schedule_update": api(_P.WRITE_UPDATES, view_checks=_P.READ_DRAFTS),
    "api.unschedule_update": api(_P.WRITE_UPDATES, view_checks=_P.READ_DRAFTS),
    "api.upload_image": api(_P.WRITE_UPDATES),
    "api.add_team_member": api(_P.MANAGE_STORIES, view_checks=_P.READ_DRAFTS),
    "api.remove_team_member": api(_P.MANAGE_STORIES, view_checks=_P.READ_DRAFTS),
    # The API's description (OpenAPI) and its page: public, the one exception under
    # /api/. It says how to call the API, nothing of what is in it (the same for every
    # caller, as the source is); clients and generators read it before they hold a
    # token, and a browser cannot send one to open the page (docs/integrations.md).
    "api_openapi": PUBLIC,
    "api_docs": PUBLIC,
}


# --- the check -----------------------------------------------------------------------


class LoginRequired(Exception):
    """No login on a route that needs one: the app answers with the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


async def session_user(request: Request) -> User | None:
    """The active user logged in on this browser, or None. Looked up once per request."""
    if hasattr(request.state, "user"):
        cached: User | None = request.state.user
        return cached
    user = None
    token = request.cookies.get(auth.SESSION_COOKIE)
    if token:
        async with get_liveblog(request).db.session() as session:
            user = await auth.user_for_login(session, token)
    request.state.user = user
    return user


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="liveblog"'}


async def token_user(request: Request) -> tuple[User, bool]:
    """The active user of the request's bearer token, and whether the token is
    read-only; 401 without a valid one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "send an API token as 'Authorization: Bearer <token>'", _CHALLENGE)
    async with get_liveblog(request).db.transaction() as session:
        found = await auth.user_for_api_token(session, token.strip())
    if found is None:
        raise HTTPException(
            401,
            "this API token is not valid (unknown, revoked or its user is inactive)",
            _CHALLENGE,
        )
    user, api_token = found
    return user, api_token.read_only


async def require(request: Request, permission: Permission, *, via: Via = Via.SESSION) -> User:
    """The caller, if they may do ``permission``; refused otherwise (see the module's
    docstring). The caller is kept for ``actor``."""
    if via is Via.TOKEN:
        user, read_only = await token_user(request)
        if read_only and PERMISSIONS[permission].writes:
            raise HTTPException(403, "this API token is read-only")
        if not allows(user, permission):
            raise HTTPException(403, f"this token's user may not {permission.value}")
    elif via is Via.SESSION:
        found = await session_user(request)
        if found is None:
            raise LoginRequired(request.url.path)
        user = found
        if not allows(user, permission):
            raise HTTPException(403, PERMISSIONS[permission].refusal)
    else:
        raise ValueError("a public rule has no caller to require")
    request.state.actor = user
    return user


def actor(request: Request) -> User:
    """The user this route's check let in."""
    user: User | None = getattr(request.state, "actor", None)
    if user is None:
        raise RuntimeError(f"no policy check ran for {request.url.path}: see liveblog.policy")
    return user


def story_statuses(user: User | None) -> list[StoryStatus]:
    """The statuses of the stories ``user`` may see listed: drafts only with
    ``read_drafts``."""
    hidden = set() if allows(user, Permission.READ_DRAFTS) else {StoryStatus.draft}
    return [status for status in StoryStatus if status not in hidden]


async def sees_drafts(request: Request) -> bool:
    """May this browser's caller see drafts on the public pages?"""
    return allows(await session_user(request), Permission.READ_DRAFTS)


def guard(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """The routes, each that needs a caller behind ``require`` with its ``ROUTES`` rule.

    Raises for a route without an entry: what nobody decided is not served."""
    guarded: list[BaseRoute] = []
    for route in routes:
        if not isinstance(route, Route | Mount) or (isinstance(route, Mount) and route.routes):
            raise TypeError(f"{route!r}: teach liveblog.policy.guard about this kind of route")
        rule = ROUTES.get(route.name or "")
        if rule is None:
            raise LookupError(f"route {route.name!r} has no entry in liveblog.policy.ROUTES")
        if rule.via is not Via.ANYONE:
            route = copy.copy(route)
            route.app = Checked(route.app, rule)
        guarded.append(route)
    return guarded


class Checked:
    """A route's app behind ``require`` with the route's rule."""

    def __init__(self, app: ASGIApp, rule: Rule) -> None:
        self.app = app
        self.rule = rule

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await require(Request(scope, receive), self.rule.permission, via=self.rule.via)
        await self.app(scope, receive, send)


# --- keep an admin -------------------------------------------------------------------


class LastAdmin(Exception):
    """A change that would leave nobody able to manage users."""


async def keep_an_admin(session: AsyncSession, user: User, *, role: Role, active: bool) -> None:
    """Refuse (``LastAdmin``) to give ``user`` this role and active flag if that would
    leave no active account that may manage users (nobody could then undo it)."""
    if not allows(user, Permission.MANAGE_USERS):
        return  # it has nothing to lose
    if active and Permission.MANAGE_USERS in permissions(role):
        return  # it keeps it
    managers = roles_with(Permission.MANAGE_USERS)
    if await store.count_active_admins(session, roles=managers, excluding=user) == 0:
        raise LastAdmin("That would leave no active admin.")
