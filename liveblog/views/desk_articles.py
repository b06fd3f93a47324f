"""The desk's part of stories as articles (issue 14): a story's byline, lead, categories
and start in its settings form (``_story_article.html``), the categories page where
editors add and order categories, and everyone's own author profile (bio, photo).

Every form works without JavaScript (POST, then back to the page)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liveblog import articles, policy, store, urls
from liveblog.media import DecodersBusy, ImageRejected
from liveblog.models import BylineName, CategoryCreate, CategoryRename, ProfilePatch, Story
from liveblog.state import get_liveblog
from liveblog.views.common import checked_form, form_bool, form_str, redirect, render
from liveblog.views.desk_queue import publish_at


async def article_context(request: Request, story: Story) -> dict[str, Any]:
    """What the story settings form's article fields show."""
    assert story.id is not None
    async with get_liveblog(request).db.session() as session:
        byline = (await articles.bylines(session, [story.id])).get(story.id, [])
        chosen = (await articles.categories_of(session, [story.id])).get(story.id, [])
        every = await articles.list_categories(session)
        tags = (await articles.tags_of(session, [story.id])).get(story.id, [])
    return {
        "article_byline": ", ".join(line.username or line.name for line in byline),
        "article_categories": every,
        "article_chosen": {category.slug for category in chosen},
        "article_tags": ", ".join(tags),
    }


async def article_fields(request: Request, form: FormData) -> dict[str, Any]:
    """The article fields of a story form, as ``StoryCreate``/``StoryPatch`` take them.
    The byline is comma-separated: a username, or any other name as written. The start
    is a ``datetime-local`` read as a schedule's time is: in the browser's time zone, by
    the ``starts_tz_offset`` the desk's script fills in, or as UTC without it; empty
    removes it. The tags are comma-separated, tidied as the API's are (a form without
    the field leaves them as they are). ValueError for a bad time."""
    items = [item.strip() for item in form_str(form, "authors").split(",") if item.strip()]
    authors: list[str | BylineName] = []
    async with get_liveblog(request).db.session() as session:
        for item in items:
            user = await store.get_user_by_username(session, item)
            authors.append(item if user is not None else BylineName(name=item))
    try:
        starts = {
            "publish_at": form_str(form, "starts_at"),
            "tz_offset": form_str(form, "starts_tz_offset"),
        }
        starts_at = publish_at(FormData(starts))
    except ValueError:
        raise ValueError("starts_at: give the time as YYYY-MM-DDTHH:MM") from None
    tags = {}
    if "tags" in form:
        tags["tags"] = [item for item in form_str(form, "tags").split(",") if item.strip()]
    return {
        **tags,
        "authors": authors,
        "lead": form_str(form, "lead"),
        "categories": [str(value) for value in form.getlist("categories")],
        "starts_at": starts_at,
    }


# --- categories ------------------------------------------------------------------------


async def categories_index(
    request: Request, *, errors: list[str] | None = None, status_code: int = 200
) -> Response:
    async with get_liveblog(request).db.session() as session:
        found = await articles.list_categories(session)
    context = {"categories": found, "errors": errors or []}
    return await render(request, "desk/categories.html", context, status_code=status_code)


async def create_category(request: Request) -> Response:
    form = await checked_form(request)
    try:
        data = CategoryCreate(name=form_str(form, "name"), slug=form_str(form, "slug") or None)
        async with get_liveblog(request).db.transaction() as session:
            await articles.create_category(session, data)
    except ValidationError as exc:
        errors = [str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()]
        return await categories_index(request, errors=errors, status_code=422)
    except store.Conflict as exc:
        return await categories_index(request, errors=[str(exc)], status_code=409)
    return redirect(urls.path(request, "categories_index"))


async def move_category(request: Request) -> Response:
    form = await checked_form(request)
    try:
        async with get_liveblog(request).db.transaction() as session:
            await articles.move_category(
                session, request.path_params["slug"], up=form_str(form, "direction") == "up"
            )
    except store.NotFound:
        raise HTTPException(404, "No such category.") from None
    return redirect(urls.path(request, "categories_index"))


async def rename_category(request: Request) -> Response:
    """A category's new name; its slug, and so its links, stay."""
    form = await checked_form(request)
    try:
        data = CategoryRename(name=form_str(form, "name"))
        async with get_liveblog(request).db.transaction() as session:
            await articles.rename_category(session, request.path_params["slug"], data)
    except ValidationError as exc:
        errors = [str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()]
        return await categories_index(request, errors=errors, status_code=422)
    except store.NotFound:
        raise HTTPException(404, "No such category.") from None
    return redirect(urls.path(request, "categories_index"))


async def delete_category(request: Request) -> Response:
    """Delete a category; its stories simply lose it."""
    await checked_form(request)
    try:
        async with get_liveblog(request).db.transaction() as session:
            await articles.delete_category(session, request.path_params["slug"])
    except store.NotFound:
        raise HTTPException(404, "No such category.") from None
    return redirect(urls.path(request, "categories_index"))


# --- the author profile ----------------------------------------------------------------


async def profile_form(
    request: Request,
    *,
    errors: list[str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    user = policy.actor(request)
    context = {
        "profile": values or {"bio": user.bio, "photo_url": user.photo_url or ""},
        "errors": errors or [],
    }
    return await render(request, "desk/profile.html", context, status_code=status_code)


async def change_profile(request: Request) -> Response:
    """A user's own bio and photo: a link, or an upload stored like an update's image
    (``liveblog/media.py``: checked, stripped of metadata)."""
    user = policy.actor(request)
    form = await checked_form(request)
    values = {"bio": form_str(form, "bio"), "photo_url": form_str(form, "photo_url").strip()}
    try:
        upload = form.get("photo_file")
        data = b""
        if isinstance(upload, UploadFile):
            try:
                data = await upload.read()
            finally:
                await upload.close()
        if data:
            values["photo_url"] = (await get_liveblog(request).media.save(data)).url
        elif form_bool(form, "photo_remove"):
            values["photo_url"] = ""
        patch = ProfilePatch(bio=values["bio"], photo_url=values["photo_url"] or None)
    except ValidationError as exc:
        errors = [str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()]
        return await profile_form(request, errors=errors, values=values, status_code=422)
    except (ImageRejected, DecodersBusy) as exc:
        status = 503 if isinstance(exc, DecodersBusy) else 422
        return await profile_form(request, errors=[str(exc)], values=values, status_code=status)
    async with get_liveblog(request).db.transaction() as session:
        fresh = await store.get_user(session, user.id or 0)
        assert fresh is not None
        await articles.change_profile(session, fresh, patch)
    return redirect(urls.path(request, "profile_form"))


routes = [
    Route("/desk/profile", profile_form, methods=["GET"], name="profile_form"),
    Route("/desk/profile", change_profile, methods=["POST"], name="change_profile"),
    Route("/desk/categories", categories_index, methods=["GET"], name="categories_index"),
    Route("/desk/categories", create_category, methods=["POST"], name="create_category"),
    Route("/desk/categories/{slug}/move", move_category, methods=["POST"], name="move_category"),
    Route(
        "/desk/categories/{slug}/rename",
        rename_category,
        methods=["POST"],
        name="rename_category",
    ),
    Route(
        "/desk/categories/{slug}/delete",
        delete_category,
        methods=["POST"],
        name="delete_category",
    ),
]
