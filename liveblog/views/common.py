"""Helpers shared by the views: rendering, the logged-in editor, CSRF, the story a path
names, query parameters."""

from __future__ import annotations

from typing import Any, Literal, TypeVar, overload

from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from liveblog import auth, policy, store
from liveblog.models import Story, StoryStatus, User
from liveblog.state import Liveblog, get_liveblog


async def current_user(request: Request) -> User | None:
    """The editor logged in on this browser, or None. What they may do is
    ``liveblog.policy``'s to say; a route that needs a login gets it from
    ``policy.actor``."""
    return await policy.session_user(request)


def _csrf_cookie(request: Request) -> tuple[str, bool]:
    value = request.cookies.get(auth.CSRF_COOKIE)
    if value and len(value) >= 32:
        return value, False
    fresh: str | None = getattr(request.state, "new_csrf_cookie", None)
    if fresh is None:
        fresh = request.state.new_csrf_cookie = auth.new_csrf_cookie()
    return fresh, True


def csrf_token(request: Request) -> str:
    cookie, _ = _csrf_cookie(request)
    return get_liveblog(request).csrf.token_for(cookie)


class _CsrfTokenOnDemand:
    """``{{ csrf_token }}`` for templates: issued (with its cookie) only when a page writes
    it out, so a page without a form sets no cookie and caches may share it."""

    __slots__ = ("_request",)

    def __init__(self, request: Request) -> None:
        self._request = request

    def __str__(self) -> str:
        return csrf_token(self._request)


def set_csrf_cookie(request: Request, response: Response) -> None:
    """Send the CSRF cookie if this request issued one (a token was written out)."""
    cookie: str | None = getattr(request.state, "new_csrf_cookie", None)
    if cookie is not None:
        response.set_cookie(
            auth.CSRF_COOKIE,
            cookie,
            httponly=True,
            samesite="lax",
            secure=get_liveblog(request).settings.https,
            path="/",
        )


async def checked_form(request: Request) -> FormData:
    """The posted form, after the cross-site and CSRF token checks (403 otherwise)."""
    if auth.cross_site(request):
        raise HTTPException(403, "This form was sent from another site and was refused.")
    form = await request.form()
    submitted = form.get(auth.CSRF_FIELD) or request.headers.get(auth.CSRF_HEADER)
    if not get_liveblog(request).csrf.check_token(
        request.cookies.get(auth.CSRF_COOKIE), submitted if isinstance(submitted, str) else None
    ):
        raise HTTPException(
            403, "The form's security token is missing or stale. Reload the page and try again."
        )
    return form


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    liveblog: Liveblog = get_liveblog(request)
    user = await current_user(request)
    full = {
        "request": request,
        "user": user,
        # {% if may("manage_users") %}: what the page offers follows liveblog.policy.
        "may": lambda permission: policy.allows(user, policy.Permission(permission)),
        "csrf_token": _CsrfTokenOnDemand(request),
        "csrf_field": auth.CSRF_FIELD,
        **(context or {}),
    }
    html = liveblog.renderer.templates.get_template(template).render(full)
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    set_csrf_cookie(request, response)
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def form_str(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def form_bool(form: FormData, name: str) -> bool:
    return form_str(form, name) in ("on", "true", "1", "yes")


# --- the story a path names ----------------------------------------------------------

# Who sees a draft (``liveblog.policy`` decides who holds ``read_drafts``): "caller" on
# routes behind a check (the desk, the API), the caller it let in; "logged_in" on reader
# pages, whoever is logged in on this browser; "never" in embeds (read across sites
# without cookies: an embed must never be the way a draft leaks out).
Drafts = Literal["caller", "logged_in", "never"]


async def find_story(request: Request, slug: str, *, drafts: Drafts) -> Story | None:
    """The story ``slug`` if this request may see it, else None."""
    if drafts == "caller":
        show = policy.allows(policy.actor(request), policy.Permission.READ_DRAFTS)
    else:
        show = drafts == "logged_in"  # the login is looked up below, for a draft only
    async with get_liveblog(request).db.session() as session:
        story = await store.visible_story(session, slug, drafts=show)
    if story is not None and story.status == StoryStatus.draft and drafts == "logged_in":
        # After the story, not before: a feed fetched with a made-up cookie costs no
        # login query unless the story is a draft.
        return story if await policy.sees_drafts(request) else None
    return story


async def story_or_404(
    request: Request, *, drafts: Drafts, message: str = "No such story."
) -> Story:
    """The story named by the path's ``{slug}``, or 404 (JSON under /api/)."""
    story = await find_story(request, request.path_params["slug"], drafts=drafts)
    if story is None:
        raise HTTPException(404, message)
    return story


# --- query parameters ----------------------------------------------------------------

MAX_DIGITS = 18  # any larger number is past every database's integers
ChoiceT = TypeVar("ChoiceT", bound=str)


class BadParameter(HTTPException):
    """A query parameter that cannot be used: 400, with a message that names it (JSON
    under /api/; pages that answer errors their own way catch it and use ``detail``)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


@overload
def int_param(
    request: Request, name: str, *, default: int, minimum: int = 0, maximum: int | None = None
) -> int: ...
@overload
def int_param(
    request: Request,
    name: str,
    *,
    default: None = None,
    minimum: int = 0,
    maximum: int | None = None,
) -> int | None: ...
def int_param(
    request: Request,
    name: str,
    *,
    default: int | None = None,
    minimum: int = 0,
    maximum: int | None = None,
) -> int | None:
    """``?name=`` as a whole number from ``minimum`` to ``maximum`` (digits only: no sign,
    point or exponent); ``default`` when it is missing or empty; BadParameter otherwise."""
    raw = request.query_params.get(name, "")
    if raw == "":
        return default
    if raw.isascii() and raw.isdigit() and len(raw) <= MAX_DIGITS:
        value = int(raw)
        if value >= minimum and (maximum is None or value <= maximum):
            return value
    if maximum is None:
        limit = f"at most {MAX_DIGITS} digits"
        raise BadParameter(f"'{name}' must be a whole number from {minimum} up ({limit})")
    raise BadParameter(f"'{name}' must be a whole number from {minimum} to {maximum}")


def choice_param(request: Request, name: str, choices: tuple[ChoiceT, ...]) -> ChoiceT | None:
    """``?name=`` if it is one of ``choices``; None when it is missing or empty;
    BadParameter otherwise."""
    raw = request.query_params.get(name, "")
    if raw == "":
        return None
    for choice in choices:
        if raw == choice:
            return choice
    raise BadParameter(f"'{name}' must be one of: {', '.join(choices)}")


# --- the story a desk route names ------------------------------------------------------


async def desk_story(request: Request) -> tuple[Story, bool]:
    """The story a desk route names, and whether its caller may publish (an editor).

    An editor sees every story (drafts too). Anyone else (a contributor) works only on
    the stories whose team they are on: another story is 403, and a draft story they
    are not on is no story to them (404), as to a reader. The store checks the team
    again inside every change's own transaction."""
    user = policy.actor(request)
    if policy.allows(user, policy.Permission.WRITE_UPDATES):
        return await story_or_404(request, drafts="caller"), True
    async with get_liveblog(request).db.session() as session:
        story = await store.get_story(session, request.path_params["slug"])
        member = story is not None and await store.on_team(session, story, user)
    if story is None or (story.status == StoryStatus.draft and not member):
        raise HTTPException(404, "No such story.")
    if not member:
        raise HTTPException(403, "You are not on this story's team.")
    return story, False


def validation_messages(exc: ValidationError) -> list[str]:
    """A model's refusal as one line per field, fit for a form's error list."""
    out = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        out.append(f"{field}: {message}" if field else message)
    return out
