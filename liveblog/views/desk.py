"""The editors' desk: login, story list, the story desk with its compose form.

Every form works without JavaScript (POST, then redirect). The desk script sends the
same forms with ``fetch`` and ``Accept: application/json`` and gets JSON back instead,
so the two paths share one handler each.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from liveblog import auth, policy, store, urls
from liveblog.media import DecodersBusy, ImageRejected
from liveblog.models import (
    IMAGE_FIELDS,
    Story,
    StoryCreate,
    StoryPatch,
    StoryStatus,
    UpdateCreate,
    UpdatePatch,
    story_public,
    update_public,
)
from liveblog.ratelimit import client_address
from liveblog.state import get_liveblog
from liveblog.views.common import (
    checked_form,
    current_user,
    form_bool,
    form_str,
    redirect,
    render,
    story_or_404,
    wants_json,
)
from liveblog.views.uploads import image_form_values


def _errors(exc: ValidationError) -> list[str]:
    out = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        out.append(f"{field}: {message}" if field else message)
    return out


def _failure(exc: Exception) -> tuple[int, dict[str, str]]:
    """The status (and headers) of a compose or edit form that failed with ``exc``."""
    if isinstance(exc, store.StoreError):
        return exc.status, {}
    if isinstance(exc, DecodersBusy):
        return 503, {"Retry-After": str(exc.retry_after)}
    return 422, {}


def _update_fields(form: FormData) -> dict[str, Any]:
    """The compose and edit forms' fields but the image (``image_form_values``)."""
    return {
        "body": form_str(form, "body"),
        "headline": form_str(form, "headline"),
        "key_event": form_bool(form, "key_event"),
        "pinned": form_bool(form, "pinned"),
    }


def _safe_next(request: Request, value: str) -> str:
    # Only same-site paths: "//evil.example" and "/\\evil" are other sites to a browser.
    if value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return urls.path(request, "desk_home")


def _to_story_desk(request: Request, story: Story, *, update_id: int | None = None) -> Response:
    """Back to the story's desk (at one update) once a form without JavaScript worked."""
    desk = urls.path(request, "story_desk_page", slug=story.slug)
    return redirect(desk if update_id is None else f"{desk}#update-{update_id}")


def _done(request: Request, story: Story, *, update_id: int | None = None) -> Response:
    """The answer to a change of one update that worked: ``{"ok": true}`` to the desk
    script, the story's desk to a browser without JavaScript."""
    if wants_json(request):
        return JSONResponse({"ok": True})
    return _to_story_desk(request, story, update_id=update_id)


# --- login ---------------------------------------------------------------------------


async def login_form(request: Request) -> Response:
    if await current_user(request) is not None:
        return redirect(urls.path(request, "desk_home"))
    return await render(request, "desk/login.html", {"next": request.query_params.get("next", "")})


async def login(request: Request) -> Response:
    liveblog = get_liveblog(request)
    form = await checked_form(request)
    username = form_str(form, "username")
    next_path = _safe_next(request, form_str(form, "next"))
    # Counted before the password is checked (see liveblog/ratelimit.py); the answer
    # is the same for real and unknown usernames.
    wait = await liveblog.login_throttle.attempt(username, client_address(request.scope))
    if wait is not None:
        minutes = -(-wait.seconds // 60)
        return await render(
            request,
            "desk/login.html",
            {
                "error": f"Too many login attempts. Try again in {minutes} minute(s).",
                "username": username,
                "next": next_path,
            },
            status_code=429,
            headers={"Retry-After": str(wait.seconds)},
        )
    async with liveblog.db.transaction() as session:
        user = await auth.authenticate(session, username, form_str(form, "password"))
        token = None
        if user is not None:
            # A fresh session id at every login; whatever login this browser had ends.
            previous = request.cookies.get(auth.SESSION_COOKIE)
            if previous:
                await auth.end_login(session, previous)
            token = await auth.start_login(session, user, days=liveblog.settings.session_days)
    if token is None:
        # One message for every failure, so it does not reveal which usernames exist.
        return await render(
            request,
            "desk/login.html",
            {"error": "Wrong username or password.", "username": username, "next": next_path},
            status_code=400,
        )
    await liveblog.login_throttle.succeeded(username)
    response = redirect(next_path)
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        max_age=liveblog.settings.session_days * 86400,
        httponly=True,
        samesite="lax",
        secure=liveblog.settings.https,
        path="/",
    )
    # A new CSRF secret too: one planted in this browser before the login is worthless.
    response.set_cookie(
        auth.CSRF_COOKIE,
        auth.new_csrf_cookie(),
        httponly=True,
        samesite="lax",
        secure=liveblog.settings.https,
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    await checked_form(request)
    token = request.cookies.get(auth.SESSION_COOKIE)
    if token:
        async with get_liveblog(request).db.transaction() as session:
            await auth.end_login(session, token)
    response = redirect(urls.path(request, "home"))
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


# --- stories -------------------------------------------------------------------------


async def desk_home(request: Request) -> Response:
    return await _desk_home(request)


async def _desk_home(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    """Every story, with who created it, and the new-story form (``values``: as typed)."""
    async with get_liveblog(request).db.session() as session:
        stories = await store.list_stories(
            session, statuses=policy.story_statuses(policy.actor(request)), limit=200
        )
        creators = await store.usernames(session, [story.created_by_id for story in stories])
    context = {"stories": stories, "creators": creators, "errors": errors, "values": values or {}}
    return await render(request, "desk/home.html", context, status_code=status_code)


async def create_story(request: Request) -> Response:
    user = policy.actor(request)
    form = await checked_form(request)
    values = {name: form_str(form, name) for name in ("title", "summary", "slug", "status")}
    values["breaking"] = "on" if form_bool(form, "breaking") else ""
    try:
        data = StoryCreate(
            title=values["title"],
            summary=values["summary"],
            slug=values["slug"] or None,
            status=StoryStatus(values["status"] or "draft"),
            breaking=form_bool(form, "breaking"),
        )
        story = await get_liveblog(request).newsroom.create_story(data, actor=user)
    except (ValidationError, ValueError, store.Conflict) as exc:
        errors = _errors(exc) if isinstance(exc, ValidationError) else [str(exc)]
        status = 409 if isinstance(exc, store.Conflict) else 422
        return await _desk_home(request, values=values, errors=errors, status_code=status)
    return _to_story_desk(request, story)


async def _desk_story(request: Request) -> Story:
    return await story_or_404(request, drafts="caller")


async def story_desk(
    request: Request,
    *,
    compose_errors: list[str] | None = None,
    compose_values: dict[str, Any] | None = None,
    settings_errors: list[str] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    liveblog = get_liveblog(request)
    story = await _desk_story(request)
    async with liveblog.db.session() as session:
        rendered_seq = story.last_seq
        rows = await store.updates_page(session, story, limit=100)
    fragment = liveblog.renderer.update_fragment
    updates = [(update, fragment(update, story, author)) for update, author in rows]
    return await render(
        request,
        "desk/story.html",
        {
            "story": story,
            "updates": updates,
            "rendered_seq": rendered_seq,
            "compose_errors": compose_errors or [],
            "values": compose_values or {},
            "settings_errors": settings_errors or [],
            "statuses": list(StoryStatus),
            "stats": liveblog.stats.stats(story),
            "stats_interval": liveblog.settings.presence_interval,
        },
        status_code=status_code,
        headers=headers,
    )


async def story_desk_page(request: Request) -> Response:
    return await story_desk(request)


async def change_story(request: Request) -> Response:
    user = policy.actor(request)
    story = await _desk_story(request)
    form = await checked_form(request)
    try:
        patch = StoryPatch(
            title=form_str(form, "title"),
            summary=form_str(form, "summary"),
            status=StoryStatus(form_str(form, "status") or story.status),
            breaking=form_bool(form, "breaking"),
        )
    except (ValidationError, ValueError) as exc:
        errors = _errors(exc) if isinstance(exc, ValidationError) else [str(exc)]
        if wants_json(request):
            return JSONResponse({"error": "; ".join(errors)}, status_code=422)
        return await story_desk(request, settings_errors=errors, status_code=422)
    story = await get_liveblog(request).newsroom.change_story(story.slug, patch, actor=user)
    if wants_json(request):
        return JSONResponse(story_public(story))
    return _to_story_desk(request, story)


async def post_update(request: Request) -> Response:
    user = policy.actor(request)
    story = await _desk_story(request)
    form = await checked_form(request)
    values = _update_fields(form)
    try:
        values.update(await image_form_values(request, form))
        data = UpdateCreate.model_validate(values)
        update = await get_liveblog(request).newsroom.post_update(story.slug, data, author=user)
    except (ValidationError, store.StoreError, ImageRejected, DecodersBusy) as exc:
        errors = _errors(exc) if isinstance(exc, ValidationError) else [str(exc)]
        status, headers = _failure(exc)
        if wants_json(request):
            return JSONResponse({"error": "; ".join(errors)}, status_code=status, headers=headers)
        # Re-show the form with what the editor typed: nothing is lost on a mistake.
        return await story_desk(
            request,
            compose_errors=errors,
            compose_values=values,
            status_code=status,
            headers=headers,
        )
    if wants_json(request):
        return JSONResponse(update_public(update, user), status_code=201)
    return _to_story_desk(request, story, update_id=update.id)


# --- one update ----------------------------------------------------------------------


async def edit_update_form(request: Request) -> Response:
    story = await _desk_story(request)
    async with get_liveblog(request).db.session() as session:
        update = await store.get_update(session, story, request.path_params["update_id"])
    if update is None:
        raise HTTPException(404, "No such update.")
    values = {
        "body": update.body,
        "headline": update.headline or "",
        "key_event": update.key_event,
        "pinned": update.pinned,
        **{name: getattr(update, name) for name in IMAGE_FIELDS},
    }
    return await render(
        request, "desk/edit_update.html", {"story": story, "update": update, "values": values}
    )


async def edit_update(request: Request) -> Response:
    user = policy.actor(request)
    story = await _desk_story(request)
    form = await checked_form(request)
    update_id: int = request.path_params["update_id"]
    values = _update_fields(form)
    try:
        async with get_liveblog(request).db.session() as session:
            current = await store.get_update(session, story, update_id)
        image = {name: getattr(current, name) for name in IMAGE_FIELDS} if current else None
        values.update(await image_form_values(request, form, current=image))
        patch = UpdatePatch.model_validate(values)
        await get_liveblog(request).newsroom.edit_update(story.slug, update_id, patch, actor=user)
    except (ValidationError, store.StoreError, ImageRejected, DecodersBusy) as exc:
        if isinstance(exc, store.NotFound):
            raise HTTPException(404, "No such update.") from None
        errors = _errors(exc) if isinstance(exc, ValidationError) else [str(exc)]
        status, headers = _failure(exc)
        if wants_json(request):
            return JSONResponse({"error": "; ".join(errors)}, status_code=status, headers=headers)
        async with get_liveblog(request).db.session() as session:
            update = await store.get_update(session, story, update_id)
        return await render(
            request,
            "desk/edit_update.html",
            {"story": story, "update": update, "values": values, "errors": errors},
            status_code=status,
            headers=headers,
        )
    return _done(request, story, update_id=update_id)


async def delete_update(request: Request) -> Response:
    user = policy.actor(request)
    story = await _desk_story(request)
    await checked_form(request)
    try:
        await get_liveblog(request).newsroom.delete_update(
            story.slug, request.path_params["update_id"], actor=user
        )
    except store.NotFound:
        raise HTTPException(404, "No such update.") from None
    return _done(request, story)


async def pin_update(request: Request) -> Response:
    user = policy.actor(request)
    story = await _desk_story(request)
    form = await checked_form(request)
    patch = UpdatePatch(pinned=form_bool(form, "pinned"))
    try:
        await get_liveblog(request).newsroom.edit_update(
            story.slug, request.path_params["update_id"], patch, actor=user
        )
    except store.NotFound:
        raise HTTPException(404, "No such update.") from None
    except store.Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    return _done(request, story)


def login_url(request: Request, next_path: str) -> str:
    return urls.path(request, "login_form") + "?next=" + quote(next_path, safe="/")


_UPDATE = "/desk/stories/{slug}/updates/{update_id:int}"
routes = [
    Route("/login", login_form, methods=["GET"], name="login_form"),
    Route("/login", login, methods=["POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/desk", desk_home, name="desk_home"),
    Route("/desk/stories", create_story, methods=["POST"], name="create_story"),
    Route("/desk/stories/{slug}", story_desk_page, methods=["GET"], name="story_desk_page"),
    Route("/desk/stories/{slug}", change_story, methods=["POST"], name="change_story"),
    Route("/desk/stories/{slug}/updates", post_update, methods=["POST"], name="post_update"),
    Route(f"{_UPDATE}/edit", edit_update_form, methods=["GET"], name="edit_update_form"),
    Route(f"{_UPDATE}/edit", edit_update, methods=["POST"], name="edit_update"),
    Route(f"{_UPDATE}/delete", delete_update, methods=["POST"], name="delete_update"),
    Route(f"{_UPDATE}/pin", pin_update, methods=["POST"], name="pin_update"),
]
