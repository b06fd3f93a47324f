"""Helpers shared by the HTML views: rendering, the logged-in editor, CSRF."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from liveblog import auth
from liveblog.models import User
from liveblog.state import Liveblog, get_liveblog


async def current_user(request: Request) -> User | None:
    """The editor logged in on this browser, or None. Looked up once per request."""
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


async def require_user(request: Request) -> User:
    user = await current_user(request)
    if user is None:
        raise LoginRequired(request.url.path)
    return user


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


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
    full = {
        "request": request,
        "user": await current_user(request),
        "csrf_token": _CsrfTokenOnDemand(request),
        "csrf_field": auth.CSRF_FIELD,
        **(context or {}),
    }
    html = liveblog.templates.get_template(template).render(full)
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
