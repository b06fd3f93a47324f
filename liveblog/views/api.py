"""The JSON API, for automation. Bearer tokens only: cookies are never read here.

Errors are ``{"error": "..."}`` with the status that says what went wrong; a request
that fails changes nothing (each change is one transaction).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from liveblog import auth, caching, store
from liveblog.limits import JsonTooDeep, parse_json
from liveblog.models import (
    Story,
    StoryCreate,
    StoryPatch,
    StoryStatus,
    UpdateCreate,
    UpdatePatch,
    User,
    story_public,
    update_public,
)
from liveblog.state import get_liveblog

MAX_PAGE = 100
InputT = TypeVar("InputT", bound=BaseModel)


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _authenticate(request: Request, *, write: bool) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="liveblog"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "send an API token as 'Authorization: Bearer <token>'", challenge)
    async with get_liveblog(request).db.transaction() as session:
        found = await auth.user_for_api_token(session, token.strip())
    if found is None:
        raise ApiError(
            401, "this API token is not valid (unknown, revoked or its user is inactive)", challenge
        )
    user, api_token = found
    if write and api_token.read_only:
        raise ApiError(403, "this API token is read-only")
    return user


async def _body(request: Request, shape: type[InputT]) -> InputT:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip() != "application/json":
        raise ApiError(400, "send the request body as JSON (Content-Type: application/json)")
    raw = await request.body()
    try:
        data = parse_json(raw, max_depth=get_liveblog(request).settings.max_json_depth)
    except JsonTooDeep as exc:
        raise ApiError(400, str(exc)) from None
    except ValueError:  # UnicodeDecodeError included
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:
        return shape.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, _describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "body"
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


def _int_param(
    request: Request, name: str, *, default: int | None, maximum: int | None = None
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ApiError(400, f"'{name}' must be a positive whole number")
    value = int(raw)
    if maximum is not None and not 1 <= value <= maximum:
        raise ApiError(400, f"'{name}' must be between 1 and {maximum}")
    return value


def api_view(
    write: bool = False,
) -> Callable[
    [Callable[[Request, User], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]
]:
    """Authenticate, then run the view; map known failures to JSON errors."""

    def wrap(
        view: Callable[[Request, User], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                user = await _authenticate(request, write=write)
                return await view(request, user)
            except ApiError as exc:
                return error_response(exc.status, exc.message, exc.headers)
            except store.StoreError as exc:
                return error_response(exc.status, str(exc))

        endpoint.__name__ = view.__name__
        return endpoint

    return wrap


async def _story_or_404(request: Request) -> Story:
    async with get_liveblog(request).db.session() as session:
        story = await store.get_story(session, request.path_params["slug"])
    if story is None:
        raise ApiError(404, "no such story")
    return story


async def _update_json(request: Request, story: Story, update_id: int) -> dict[str, Any]:
    async with get_liveblog(request).db.session() as session:
        update = await store.get_update(session, story, update_id)
        author = None if update is None else await store.get_user(session, update.author_id)
    if update is None:
        raise ApiError(404, "no such update in this story")
    return update_public(update, author)


def _not_modified(request: Request, tag: str) -> Response | None:
    """304 if the client holds this version already (checked before any other work)."""
    if caching.is_fresh(request.headers, tag):
        return caching.not_modified(tag, caching.PRIVATE)
    return None


def _json(request: Request, tag: str, body: Any) -> JSONResponse:
    return JSONResponse(body, headers=caching.validator_headers(tag, caching.PRIVATE))


@api_view()
async def list_stories(request: Request, user: User) -> Response:
    statuses = [StoryStatus.live, StoryStatus.draft, StoryStatus.ended]
    async with get_liveblog(request).db.session() as session:
        versions = await store.story_versions(session, statuses=statuses, limit=100)
        tag = caching.etag("api-stories", *(f"{sid}.{seq}" for sid, seq in versions))
        if (cached := _not_modified(request, tag)) is not None:
            return cached
        stories = await store.list_stories(session, statuses=statuses, limit=100)
    return _json(request, tag, {"stories": [story_public(story) for story in stories]})


@api_view()
async def get_story(request: Request, user: User) -> Response:
    story = await _story_or_404(request)
    tag = caching.etag("api-story", story.id, story.last_seq)
    return _not_modified(request, tag) or _json(request, tag, story_public(story))


@api_view()
async def list_updates(request: Request, user: User) -> Response:
    story = await _story_or_404(request)
    limit = _int_param(request, "limit", default=20, maximum=MAX_PAGE)
    before = _int_param(request, "before", default=None)
    assert limit is not None
    tag = caching.etag("api-updates", story.id, story.last_seq, limit, before)
    if (cached := _not_modified(request, tag)) is not None:
        return cached
    async with get_liveblog(request).db.session() as session:
        rows = await store.updates_page(session, story, before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return _json(
        request,
        tag,
        {
            "story": story.slug,
            "last_seq": story.last_seq,
            "updates": [update_public(update, author) for update, author in rows],
            "next_before": rows[-1][0].id if more and rows else None,
        },
    )


@api_view(write=True)
async def create_story(request: Request, user: User) -> Response:
    data = await _body(request, StoryCreate)
    story = await get_liveblog(request).newsroom.create_story(data, actor=user)
    return JSONResponse(
        story_public(story), status_code=201, headers={"Location": f"/api/stories/{story.slug}"}
    )


@api_view(write=True)
async def patch_story(request: Request, user: User) -> Response:
    await _story_or_404(request)
    patch = await _body(request, StoryPatch)
    story = await get_liveblog(request).newsroom.change_story(
        request.path_params["slug"], patch, actor=user
    )
    return JSONResponse(story_public(story))


@api_view(write=True)
async def post_update(request: Request, user: User) -> Response:
    story = await _story_or_404(request)
    data = await _body(request, UpdateCreate)
    data = get_liveblog(request).media.with_size(data)
    update = await get_liveblog(request).newsroom.post_update(story.slug, data, author=user)
    assert update.id is not None
    body = update_public(update, user)
    location = f"/api/stories/{story.slug}/updates/{update.id}"
    return JSONResponse(body, status_code=201, headers={"Location": location})


@api_view()
async def get_update(request: Request, user: User) -> Response:
    story = await _story_or_404(request)
    update_id: int = request.path_params["update_id"]
    # Every change to an update is an event of its story.
    tag = caching.etag("api-update", story.id, story.last_seq, update_id)
    if (cached := _not_modified(request, tag)) is not None:
        return cached
    return _json(request, tag, await _update_json(request, story, update_id))


@api_view(write=True)
async def patch_update(request: Request, user: User) -> Response:
    story = await _story_or_404(request)
    patch = get_liveblog(request).media.with_size(await _body(request, UpdatePatch))
    update_id: int = request.path_params["update_id"]
    await get_liveblog(request).newsroom.edit_update(story.slug, update_id, patch, actor=user)
    return JSONResponse(await _update_json(request, story, update_id))


@api_view(write=True)
async def delete_update(request: Request, user: User) -> Response:
    story = await _story_or_404(request)
    await get_liveblog(request).newsroom.delete_update(
        story.slug, request.path_params["update_id"], actor=user
    )
    return Response(status_code=204)


_UPDATE = "/api/stories/{slug}/updates/{update_id:int}"
routes = [
    Route("/api/stories", list_stories, methods=["GET"], name="api.list_stories"),
    Route("/api/stories", create_story, methods=["POST"], name="api.create_story"),
    Route("/api/stories/{slug}", get_story, methods=["GET"], name="api.get_story"),
    Route("/api/stories/{slug}", patch_story, methods=["PATCH"], name="api.patch_story"),
    Route("/api/stories/{slug}/updates", list_updates, methods=["GET"], name="api.list_updates"),
    Route("/api/stories/{slug}/updates", post_update, methods=["POST"], name="api.post_update"),
    Route(_UPDATE, get_update, methods=["GET"], name="api.get_update"),
    Route(_UPDATE, patch_update, methods=["PATCH"], name="api.patch_update"),
    Route(_UPDATE, delete_update, methods=["DELETE"], name="api.delete_update"),
]
