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

from liveblog import audit, auth, policy, store, urls
from liveblog.media import DecodersBusy, ImageRejected
from liveblog.models import (
    IMAGE_FIELDS,
    AuditAction,
    ReturnNote,
    Schedule,
    Story,
    StoryCreate,
    StoryPatch,
    StoryStatus,
    Update,
    UpdateCreate,
    UpdatePatch,
    UpdateState,
    User,
    story_public,
    update_for_staff,
    utcnow,
)
from liveblog.ratelimit import client_address
from liveblog.render import embed_links
from liveblog.state import get_liveblog
from liveblog.views.common import (
    checked_form,
    current_user,
    desk_story,
    form_bool,
    form_str,
    redirect,
    render,
    validation_messages,
    wants_json,
)
from liveblog.views.desk_articles import article_context, article_fields
from liveblog.views.desk_queue import (
    AUDIT_WORDS,
    desk_queue,
    form_version,
    publish_at,
    queue_context,
)
from liveblog.views.uploads import image_form_values
from liveblog.workflow import TRANSITIONS


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
    """Every story, with who created it, and the new-story form (``values``: as typed).
    A contributor: the stories whose team they are on, and no form."""
    user = policy.actor(request)
    async with get_liveblog(request).db.session() as session:
        if policy.allows(user, policy.Permission.WRITE_UPDATES):
            stories = await store.list_stories(
                session, statuses=policy.story_statuses(user), limit=200
            )
        else:
            stories = await store.team_stories(session, user)
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
            **(await article_fields(request, form) if "lead" in form else {}),
        )
        story = await get_liveblog(request).newsroom.create_story(data, actor=user)
    except (ValidationError, ValueError, store.StoreError) as exc:
        errors = validation_messages(exc) if isinstance(exc, ValidationError) else [str(exc)]
        status = exc.status if isinstance(exc, store.StoreError) else 422
        return await _desk_home(request, values=values, errors=errors, status_code=status)
    return _to_story_desk(request, story)


async def _desk_story(request: Request) -> Story:
    """The story the path names, for this caller: a contributor only on a story whose
    team they are on (``common.desk_story``)."""
    story, _ = await desk_story(request)
    return story


async def story_desk(
    request: Request,
    *,
    compose_errors: list[str] | None = None,
    compose_values: dict[str, Any] | None = None,
    settings_errors: list[str] | None = None,
    step: dict[str, Any] | None = None,
    preview: dict[str, Any] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """The story's desk. An editor: the timeline, the compose form, the settings and the
    newsroom sections (``desk_queue``); a contributor: the compose form and their own
    updates. ``step``: a workflow step that failed, re-shown with what was typed.
    ``preview``: the compose form's text as readers would see it (``_preview``)."""
    liveblog = get_liveblog(request)
    story, editor = await desk_story(request)
    rows = []
    async with liveblog.db.session() as session:
        rendered_seq = story.last_seq
        if editor:
            rows = await store.updates_page(session, story, limit=100)
    fragment = liveblog.renderer.update_fragment
    updates = [(update, fragment(update, story, author)) for update, author in rows]
    return await render(
        request,
        "desk/story.html",
        {
            **await queue_context(request, story, editor=editor, step=step),
            **(await article_context(request, story) if editor else {}),
            "story": story,
            "updates": updates,
            "rendered_seq": rendered_seq,
            "compose_errors": compose_errors or [],
            "values": compose_values or {},
            "settings_errors": settings_errors or [],
            "preview": preview,
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
            # A form without the article fields (an older page) leaves them as they are.
            **(await article_fields(request, form) if "lead" in form else {}),
        )
        story = await get_liveblog(request).newsroom.change_story(story.slug, patch, actor=user)
    except (ValidationError, ValueError, store.StoreError) as exc:
        errors = validation_messages(exc) if isinstance(exc, ValidationError) else [str(exc)]
        status = exc.status if isinstance(exc, store.StoreError) else 422
        if wants_json(request):
            return JSONResponse({"error": "; ".join(errors)}, status_code=status)
        return await story_desk(request, settings_errors=errors, status_code=status)
    if wants_json(request):
        return JSONResponse(story_public(story))
    return _to_story_desk(request, story)


async def post_update(request: Request) -> Response:
    """An editor publishes at once, keeps a draft (``state=draft``) or schedules it (a
    ``publish_at`` time, or the Schedule button); a contributor submits it to the
    editors or keeps a draft (docs/newsroom.md)."""
    user = policy.actor(request)
    story, editor = await desk_story(request)
    form = await checked_form(request)
    if form_str(form, "intent") == "preview":
        return await _compose_preview(request, story, form)
    values = _update_fields(form)
    draft = form_str(form, "state") == UpdateState.draft
    try:
        values.update(await image_form_values(request, form))
        when = None if draft else publish_at(form)
        if when is None and not draft and form_str(form, "intent") == "schedule":
            raise ValueError("publish_at: give the time to publish it at")
        state = UpdateState.draft if draft else None
        data = UpdateCreate.model_validate({**values, "state": state, "publish_at": when})
        update = await get_liveblog(request).newsroom.post_update(
            story.slug, data, author=user, may_publish=editor
        )
    except (ValidationError, ValueError, store.StoreError, ImageRejected, DecodersBusy) as exc:
        errors = validation_messages(exc) if isinstance(exc, ValidationError) else [str(exc)]
        status, headers = _failure(exc)
        if wants_json(request):
            return JSONResponse({"error": "; ".join(errors)}, status_code=status, headers=headers)
        # Re-show the form with what the editor typed: nothing is lost on a mistake.
        return await story_desk(
            request,
            compose_errors=errors,
            compose_values={**values, "publish_at": form_str(form, "publish_at")},
            status_code=status,
            headers=headers,
        )
    if wants_json(request):
        return JSONResponse(update_for_staff(update, user), status_code=201)
    return _to_item(request, story, update, editor=editor)


def _to_item(request: Request, story: Story, update: Update, *, editor: bool) -> Response:
    """Back to the story's desk, at the update where it now is."""
    if update.state == UpdateState.published:
        return _to_story_desk(request, story, update_id=update.id)
    desk = urls.path(request, "story_desk_page", slug=story.slug)
    if not editor:
        return redirect(f"{desk}#mine-{update.id}")
    section = {UpdateState.draft: "draft", UpdateState.scheduled: "scheduled"}
    return redirect(f"{desk}#{section.get(update.state, 'queue')}-{update.id}")


# --- the newsroom workflow (docs/newsroom.md) ------------------------------------------

_STEP_NAMES = {
    "submit": "Submitting",
    "publish": "Publishing",
    "return": "Returning",
    "reject": "Rejecting",
    "schedule": "Scheduling",
    "unschedule": "Cancelling the schedule of",
}


async def desk_submit_update(request: Request) -> Response:
    """Its author sends a draft or a returned update to the editors' queue."""
    return await _step(request, "submit")


async def desk_move_update(request: Request) -> Response:
    """An editor's step: publish, return (with a ``note``), reject, schedule (with a
    ``publish_at`` time), unschedule."""
    action: str = request.path_params["action"]
    if action not in TRANSITIONS or TRANSITIONS[action].by_author:
        raise HTTPException(404, "No such step.")
    return await _step(request, action)


async def _step(request: Request, action: str) -> Response:
    user = policy.actor(request)
    story, editor = await desk_story(request)
    form = await checked_form(request)
    update_id: int = request.path_params["update_id"]
    note, when = None, None
    try:
        version = form_version(form)
        if action == "return":
            note = ReturnNote(note=form_str(form, "note")).note
        if action == "schedule":
            when = publish_at(form)
            if when is None:
                raise ValueError("publish_at: give the time to publish it at")
            when = Schedule(publish_at=when).publish_at
        update = await get_liveblog(request).newsroom.move_update(
            story.slug,
            update_id,
            action,
            actor=user,
            may_publish=editor,
            note=note,
            publish_at=when,
            expected_version=version,
        )
    except (ValidationError, ValueError, store.StoreError) as exc:
        errors = validation_messages(exc) if isinstance(exc, ValidationError) else [str(exc)]
        status = exc.status if isinstance(exc, store.StoreError) else 422
        if wants_json(request):
            return JSONResponse({"error": "; ".join(errors)}, status_code=status)
        # The desk again, with the error and what was typed (the note, the time).
        step = {
            "update_id": update_id,
            "action": action,
            "label": f"{_STEP_NAMES[action]} update {update_id}",
            "errors": errors,
            "note": form_str(form, "note"),
            "publish_at": form_str(form, "publish_at"),
        }
        return await story_desk(request, step=step, status_code=status)
    if wants_json(request):
        return JSONResponse(update_for_staff(update, user))
    return _to_item(request, story, update, editor=editor)


async def desk_add_team_member(request: Request) -> Response:
    story, _ = await desk_story(request)
    form = await checked_form(request)
    return await _set_team_member(request, story, form_str(form, "username"), on=True)


async def desk_remove_team_member(request: Request) -> Response:
    story, _ = await desk_story(request)
    await checked_form(request)
    return await _set_team_member(request, story, request.path_params["username"], on=False)


async def _set_team_member(request: Request, story: Story, username: str, *, on: bool) -> Response:
    username = username.strip().lower()
    try:
        await get_liveblog(request).newsroom.set_team_member(
            story.slug, username, on=on, actor=policy.actor(request)
        )
    except store.NotFound:
        step = {"team_errors": [f"There is no user named {username!r}."], "username": username}
        return await story_desk(request, step=step, status_code=404)
    return redirect(urls.path(request, "story_desk_page", slug=story.slug) + "#team-title")


# --- one update ----------------------------------------------------------------------


# The states in which a contributor may still change their own update.
_CONTRIBUTOR_EDITS = (UpdateState.draft, UpdateState.submitted, UpdateState.returned)


async def _editable(request: Request, story: Story, *, may_publish: bool) -> Update:
    """The update the edit routes name, as its caller may edit it: an editor any update
    they see (a draft only their own), a contributor only their own, unpublished one."""
    user = policy.actor(request)
    update_id: int = request.path_params["update_id"]
    async with get_liveblog(request).db.session() as session:
        update = await store.staff_update(session, story, update_id, viewer=user)
    if update is None:
        raise HTTPException(404, "No such update.")
    if not may_publish and update.author_id != user.id:
        raise HTTPException(403, "This update is someone else's.")
    if not may_publish and update.state not in _CONTRIBUTOR_EDITS:
        raise HTTPException(
            403, f"This update is {update.state.value}: only an editor can change it now."
        )
    return update


def _edit_context(
    story: Story, update: Update, values: dict[str, Any], version: int | None, may_publish: bool
) -> dict[str, Any]:
    return {
        "story": story,
        "update": update,
        "values": values,
        "version": version,
        "may_publish": may_publish,
        "published": update.state == UpdateState.published,
    }


async def edit_update_form(request: Request) -> Response:
    story, may_publish = await desk_story(request)
    update = await _editable(request, story, may_publish=may_publish)
    values = {
        "body": update.body,
        "headline": update.headline or "",
        "key_event": update.key_event,
        "pinned": update.pinned,
        **{name: getattr(update, name) for name in IMAGE_FIELDS},
    }
    # The version the editor starts from: saving over a newer one is refused (409).
    context = _edit_context(story, update, values, update.version, may_publish)
    return await render(request, "desk/edit_update.html", context)


def _form_version(form: FormData) -> int | None:
    """The edit form's ``version`` (None: a form without one, saved whatever the version)."""
    raw = form_str(form, "version")
    if raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise HTTPException(422, "The form's version is not a whole number: reload the page.")
    return int(raw)


# How the conflict message says what the other person did last: as the audit trail
# says it, but an edit is a save here ("Priya saved this update").
_DID = {**AUDIT_WORDS, AuditAction.edited: "saved"}


async def _edit_conflict(
    request: Request,
    story: Story,
    values: dict[str, Any],
    *,
    may_publish: bool,
    message: str | None = None,
) -> Response:
    """409: the update changed since this form was opened. Both texts are shown (the
    saved one, and this person's, still in the form), with who did what last and when
    (the audit trail). If they may still change it, the form carries the saved version,
    so a deliberate second save goes through; if not (a contributor whose update an
    editor has taken over meanwhile), there is nothing to save: their text is there to
    copy. ``message``: what to say instead of the usual first words."""
    user = policy.actor(request)
    async with get_liveblog(request).db.session() as session:
        update = await store.staff_update(
            session, story, request.path_params["update_id"], viewer=user
        )
        if update is None:
            raise HTTPException(404, "No such update.")
        last = await audit.latest(session, update)
    editable = may_publish or (update.author_id == user.id and update.state in _CONTRIBUTOR_EDITS)
    if last is None:
        who, did, at = "Someone", "saved", update.edited_at or update.created_at
    else:
        mine = last.entry.actor_id is not None and last.entry.actor_id == user.id
        who = "You" if mine else (last.actor or "Scheduled publishing")
        did, at = _DID.get(last.entry.action, "changed"), last.entry.at
    conflict = {"who": who, "did": did, "at": at, "message": message, "editable": editable}
    context = _edit_context(story, update, values, update.version, may_publish)
    context["conflict"] = conflict
    return await render(request, "desk/edit_update.html", context, status_code=409)


async def edit_update(request: Request) -> Response:
    """Save the edit form; ``then=publish`` (an editor, on an update readers do not see
    yet): publish it too, the version just saved, so nobody's newer save goes out.
    ``intent=preview`` (its Preview button): save nothing, show it (``_edit_preview``)."""
    user = policy.actor(request)
    story, may_publish = await desk_story(request)
    form = await checked_form(request)
    if form_str(form, "intent") == "preview":
        return await _edit_preview(request, story, form, may_publish=may_publish)
    update_id: int = request.path_params["update_id"]
    values = _update_fields(form)
    version = _form_version(form)
    then_publish = may_publish and form_str(form, "then") == "publish"
    newsroom = get_liveblog(request).newsroom
    try:
        current = await _editable(request, story, may_publish=may_publish)
    except HTTPException as exc:
        if exc.status_code != 403 or wants_json(request):
            raise
        async with get_liveblog(request).db.session() as session:
            found = await store.staff_update(session, story, update_id, viewer=user)
        if found is None or found.author_id != user.id:
            raise
        # Their own update, taken over by an editor while they typed: keep their text.
        return await _edit_conflict(request, story, values, may_publish=may_publish)
    try:
        image = {name: getattr(current, name) for name in IMAGE_FIELDS}
        values.update(await image_form_values(request, form, current=image))
        patch = UpdatePatch.model_validate(values)
        saved = await newsroom.edit_update(
            story.slug,
            update_id,
            patch,
            actor=user,
            may_publish=may_publish,
            expected_version=version,
        )
    except (ValidationError, store.StoreError, ImageRejected, DecodersBusy) as exc:
        if isinstance(exc, store.NotFound):
            raise HTTPException(404, "No such update.") from None
        errors = validation_messages(exc) if isinstance(exc, ValidationError) else [str(exc)]
        status, headers = _failure(exc)
        if isinstance(exc, store.Stale | store.Forbidden | store.Conflict):
            if not wants_json(request):
                return await _edit_conflict(request, story, values, may_publish=may_publish)
            status = 409  # the desk's answer; If-Match's 412 is the API's
        if wants_json(request):
            return JSONResponse({"error": "; ".join(errors)}, status_code=status, headers=headers)
        update = await _editable(request, story, may_publish=may_publish)
        # The version the editor started from, still: a mistake fixed is checked again.
        context = _edit_context(story, update, values, version, may_publish)
        context["errors"] = errors
        return await render(
            request, "desk/edit_update.html", context, status_code=status, headers=headers
        )
    if then_publish and saved.state != UpdateState.published:
        try:
            await newsroom.move_update(
                story.slug,
                update_id,
                "publish",
                actor=user,
                may_publish=True,
                expected_version=saved.version,
            )
        except store.StoreError as exc:
            # Saved, not published (the story ended, someone changed it meanwhile): say
            # so, with the version just saved, so the next click does not trip on it.
            if wants_json(request):
                return JSONResponse({"error": f"saved, not published: {exc}"}, status_code=409)
            return await _edit_conflict(
                request,
                story,
                values,
                may_publish=may_publish,
                message=f"Your text was saved but not published: {exc}.",
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


# --- previews and link embeds (docs/embeds.md) ---------------------------------------

# The image fields a preview keeps as typed: a chosen file is not stored by a preview.
_IMAGE_TEXT = ("image_url", "image_alt", "image_caption", "image_credit")


async def _preview(
    request: Request, story: Story, form: FormData, *, current: Update | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None, list[str]]:
    """What the compose or edit form (``current``: the update it edits) holds, as
    typed; the update as readers would see it (``_update.html``, with its link embeds
    fetched or taken from the cache) and why each embed that is only a link card is;
    and what is wrong with it, if anything. Nothing is saved (but the embed cache)."""
    user = policy.actor(request)
    liveblog = get_liveblog(request)
    values = _update_fields(form)
    url = form_str(form, "image_url").strip() or None
    for name in _IMAGE_TEXT:
        values[name] = (form_str(form, name).strip() or None) if url else None
    try:
        data = UpdateCreate.model_validate(values)
    except ValidationError as exc:
        return values, None, validation_messages(exc)
    renderer = await liveblog.newsroom.renderer_for(data.body)
    body_html, embeds = renderer.update_body(data.body)
    size = liveblog.media.dimensions(url) if url else None
    now = utcnow()
    update = Update(
        id=current.id if current else 0,
        story_id=story.id or 0,
        author_id=current.author_id if current else user.id or 0,
        headline=data.headline,
        body=data.body,
        body_html=body_html,
        key_event=data.key_event,
        pinned=data.pinned,
        **{name: getattr(data, name) for name in _IMAGE_TEXT},
        image_width=size[0] if size else None,
        image_height=size[1] if size else None,
        created_at=current.created_at if current else now,
        edited_at=now if current and current.state == UpdateState.published else None,
        embeds=embeds,
    )
    author: User | None = user
    if current is not None and current.author_id != user.id:
        async with liveblog.db.session() as session:
            author = await session.get(User, current.author_id)
    problems: dict[str, str] = {}
    for link in embed_links(data.body):
        embed = renderer.embeds.get(link)
        if embed is not None and embed.problem:
            problems[link] = embed.problem
    preview = {
        "html": liveblog.renderer.update_fragment(update, story, author, anchor=False),
        "problems": list(problems.items()),
    }
    return values, preview, []


async def _compose_preview(request: Request, story: Story, form: FormData) -> Response:
    """The compose form's Preview (``intent=preview``): the desk again, the update shown
    as readers would see it above the form, which keeps everything typed (post it from
    there). A page, never JSON: the desk script lets this button through to the browser."""
    values, preview, errors = await _preview(request, story, form)
    values["publish_at"] = form_str(form, "publish_at")
    return await story_desk(
        request,
        compose_errors=errors,
        compose_values=values,
        preview=preview,
        status_code=422 if errors else 200,
    )


async def _edit_preview(
    request: Request, story: Story, form: FormData, *, may_publish: bool
) -> Response:
    """The edit form's Preview (``intent=preview``): the edit page again, with the
    preview and the text as typed (and the version the editor started from: saving is
    checked as ever). Whoever may edit the update may preview it."""
    update = await _editable(request, story, may_publish=may_publish)
    values, preview, errors = await _preview(request, story, form, current=update)
    context = _edit_context(story, update, values, _form_version(form), may_publish)
    context["errors"] = errors
    context["preview"] = preview
    status = 422 if errors else 200
    return await render(request, "desk/edit_update.html", context, status_code=status)


async def desk_refresh_embeds(request: Request) -> Response:
    """Fetch an update's link embeds again (a provider was down, or changed a title)
    and re-render it from the same text; readers get an edit. The form sends the
    version it was shown: an update changed meanwhile is not re-rendered blind."""
    user = policy.actor(request)
    story, may_publish = await desk_story(request)
    form = await checked_form(request)
    update = await _editable(request, story, may_publish=may_publish)
    update_id = update.id or 0
    try:
        version = form_version(form)
        store.check_version(update, version)  # (checked again when saved) no fetch if old
        saved = await get_liveblog(request).newsroom.edit_update(
            story.slug,
            update_id,
            UpdatePatch(body=update.body),
            actor=user,
            may_publish=may_publish,
            expected_version=version,
            refresh_embeds=True,
        )
    except (ValueError, store.StoreError) as exc:
        if isinstance(exc, store.NotFound):
            raise HTTPException(404, "No such update.") from None
        status = exc.status if isinstance(exc, store.StoreError) else 422
        if wants_json(request):
            return JSONResponse({"error": str(exc)}, status_code=status)
        step = {
            "update_id": update_id,
            "action": "refresh",
            "label": f"Refreshing the embeds of update {update_id}",
            "errors": [str(exc)],
        }
        return await story_desk(request, step=step, status_code=status)
    if wants_json(request):
        return JSONResponse(update_for_staff(saved, user))
    return _to_item(request, story, saved, editor=may_publish)


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
    Route(
        f"{_UPDATE}/embeds/refresh",
        desk_refresh_embeds,
        methods=["POST"],
        name="desk_refresh_embeds",
    ),
    Route(f"{_UPDATE}/edit", edit_update_form, methods=["GET"], name="edit_update_form"),
    Route(f"{_UPDATE}/edit", edit_update, methods=["POST"], name="edit_update"),
    Route(f"{_UPDATE}/delete", delete_update, methods=["POST"], name="delete_update"),
    Route(f"{_UPDATE}/pin", pin_update, methods=["POST"], name="pin_update"),
    Route(f"{_UPDATE}/submit", desk_submit_update, methods=["POST"], name="desk_submit_update"),
    Route(
        f"{_UPDATE}/steps/{{action}}", desk_move_update, methods=["POST"], name="desk_move_update"
    ),
    Route("/desk/stories/{slug}/queue", desk_queue, methods=["GET"], name="desk_queue"),
    Route(
        "/desk/stories/{slug}/team",
        desk_add_team_member,
        methods=["POST"],
        name="desk_add_team_member",
    ),
    Route(
        "/desk/stories/{slug}/team/{username}/remove",
        desk_remove_team_member,
        methods=["POST"],
        name="desk_remove_team_member",
    ),
]
