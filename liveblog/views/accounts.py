"""Accounts on the desk: admins manage users; everyone manages their own API tokens.
(Who may do which is ``liveblog.policy``'s, as is the rule that keeps an active admin.)

``/desk/users`` (admins only; editors get 403): create a user, change a role,
deactivate or reactivate, reset a password. Deactivating or resetting a password logs
the user out everywhere; a deactivated user's API tokens stop working at once (every
request checks ``active``). No change may leave the site without an active admin.

``/desk/tokens``: list your tokens with their last use, create one (its value is shown
once, then only its SHA-256 is kept), revoke one. Admins see and revoke everyone's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liveblog import auth, policy, store, urls
from liveblog.models import Role, User
from liveblog.plaintext import forbidden_character
from liveblog.state import get_liveblog
from liveblog.views.common import (
    checked_form,
    form_bool,
    form_str,
    redirect,
    render,
)

MAX_TOKEN_NAME = 100


class Refused(Exception):
    """A change the form cannot make, with the status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --- users ---------------------------------------------------------------------------


async def users_page(
    request: Request,
    *,
    errors: list[str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    admin = policy.actor(request)
    async with get_liveblog(request).db.session() as session:
        users = await store.list_users(session)
    context: dict[str, Any] = {
        "users": users,
        "me": admin,
        "roles": list(Role),
        "errors": errors or [],
        "values": values or {},
    }
    return await render(request, "desk/users.html", context, status_code=status_code)


async def users_index(request: Request) -> Response:
    return await users_page(request)


async def create_user(request: Request) -> Response:
    form = await checked_form(request)
    values = {name: form_str(form, name) for name in ("username", "display_name", "role")}
    try:
        role = _role(values["role"] or Role.editor.value)
        async with get_liveblog(request).db.transaction() as session:
            await auth.create_user(
                session,
                username=values["username"],
                password=form_str(form, "password"),
                role=role,
                display_name=values["display_name"],
            )
    except (auth.UserError, Refused) as exc:
        status = 409 if isinstance(exc, auth.UserExists) else getattr(exc, "status", 422)
        return await users_page(request, errors=[str(exc)], values=values, status_code=status)
    return redirect(urls.path(request, "users_index"))


async def change_role(request: Request) -> Response:
    return await _change_user(request, _set_role)


async def change_active(request: Request) -> Response:
    return await _change_user(request, _set_active)


async def reset_password(request: Request) -> Response:
    return await _change_user(request, _set_password)


async def _set_role(session: AsyncSession, admin: User, user: User, form: FormData) -> None:
    role = _role(form_str(form, "role"))
    await _keep_an_admin(session, user, role=role, active=user.active)
    user.role = role
    session.add(user)


async def _set_active(session: AsyncSession, admin: User, user: User, form: FormData) -> None:
    active = form_bool(form, "active")
    if not active and user.id == admin.id:
        raise Refused(409, "You cannot deactivate yourself; ask another admin.")
    await _keep_an_admin(session, user, role=user.role, active=active)
    await auth.set_active(session, user, active)


async def _set_password(session: AsyncSession, admin: User, user: User, form: FormData) -> None:
    await auth.set_password(session, user, form_str(form, "password"))


UserChange = Callable[[AsyncSession, User, User, FormData], Awaitable[None]]


async def _change_user(request: Request, change: UserChange) -> Response:
    admin = policy.actor(request)
    form = await checked_form(request)
    user_id: int = request.path_params["user_id"]
    try:
        async with get_liveblog(request).db.transaction() as session:
            user = await store.get_user(session, user_id)
            if user is None:
                raise HTTPException(404, "No such user.")
            await change(session, admin, user, form)
    except (auth.UserError, Refused) as exc:
        status = getattr(exc, "status", 422)
        return await users_page(request, errors=[str(exc)], status_code=status)
    if user.id == admin.id:
        # A reset ended this very login; a demotion closed this page to its viewer.
        return redirect(
            urls.path(request, "login_form" if change is _set_password else "desk_home")
        )
    return redirect(urls.path(request, "users_index"))


async def _keep_an_admin(session: AsyncSession, user: User, *, role: Role, active: bool) -> None:
    try:
        await policy.keep_an_admin(session, user, role=role, active=active)
    except policy.LastAdmin as exc:
        raise Refused(409, str(exc)) from None


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise Refused(422, f"role must be one of: {', '.join(r.value for r in Role)}") from None


# --- API tokens ----------------------------------------------------------------------


async def tokens_page(
    request: Request,
    *,
    new_token: str | None = None,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    user = policy.actor(request)
    is_admin = policy.allows(user, policy.Permission.MANAGE_ALL_TOKENS)
    async with get_liveblog(request).db.session() as session:
        tokens = await auth.list_api_tokens(session, owner=None if is_admin else user)
    response = await render(
        request,
        "desk/tokens.html",
        {"tokens": tokens, "new_token": new_token, "errors": errors or [], "all": is_admin},
        status_code=status_code,
    )
    # A page that shows a token value must not be kept by any cache.
    response.headers["Cache-Control"] = "no-store"
    return response


async def tokens_index(request: Request) -> Response:
    return await tokens_page(request)


async def create_token(request: Request) -> Response:
    user = policy.actor(request)
    form = await checked_form(request)
    name = form_str(form, "name").strip()
    if len(name) > MAX_TOKEN_NAME or forbidden_character(name) is not None:
        problem = f"name: at most {MAX_TOKEN_NAME} characters, no control characters"
        return await tokens_page(request, errors=[problem], status_code=422)
    async with get_liveblog(request).db.transaction() as session:
        token = await auth.create_api_token(
            session, user, name=name, read_only=form_bool(form, "read_only")
        )
    return await tokens_page(request, new_token=token, status_code=201)


async def revoke_token(request: Request) -> Response:
    user = policy.actor(request)
    await checked_form(request)
    everyones = policy.allows(user, policy.Permission.MANAGE_ALL_TOKENS)
    async with get_liveblog(request).db.transaction() as session:
        found = await auth.revoke_api_token(
            session, request.path_params["token_id"], by=user, any_owner=everyones
        )
    if not found:
        raise HTTPException(404, "No such token.")
    return redirect(urls.path(request, "tokens_index"))


routes = [
    Route("/desk/users", users_index, methods=["GET"], name="users_index"),
    Route("/desk/users", create_user, methods=["POST"], name="create_user"),
    Route("/desk/users/{user_id:int}/role", change_role, methods=["POST"], name="change_role"),
    Route(
        "/desk/users/{user_id:int}/active", change_active, methods=["POST"], name="change_active"
    ),
    Route(
        "/desk/users/{user_id:int}/password",
        reset_password,
        methods=["POST"],
        name="reset_password",
    ),
    Route("/desk/tokens", tokens_index, methods=["GET"], name="tokens_index"),
    Route("/desk/tokens", create_token, methods=["POST"], name="create_token"),
    Route(
        "/desk/tokens/{token_id:int}/revoke", revoke_token, methods=["POST"], name="revoke_token"
    ),
]
