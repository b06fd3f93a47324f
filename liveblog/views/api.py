"""The JSON API, for automation. Bearer tokens only: cookies are never read here.
Which token may call which route is ``liveblog.policy``'s ``ROUTES`` (read-only tokens
only read); that check runs before a view here does.

Errors are ``{"error": "..."}`` with the status that says what went wrong; a request
that fails changes nothing (each change is one transaction).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from liveblog import articles, caching, policy, store, urls, webhooks
from liveblog.embeds.resolver import embeddable
from liveblog.limits import JsonTooDeep, parse_json
from liveblog.models import (
    CategoryCreate,
    CategoryOut,
    CategoryRename,
    EmbedRequest,
    ReturnNote,
    Schedule,
    Story,
    StoryCreate,
    StoryPatch,
    StoryStaffOut,
    StoryStatus,
    Update,
    UpdateCreate,
    UpdatePatch,
    UpdatePublicOut,
    UpdateState,
    User,
    Webhook,
    WebhookCreate,
    WebhookReplay,
    iso,
    story_for_staff,
    update_for_staff,
    update_public,
)
from liveblog.render import card_data
from liveblog.state import get_liveblog
from liveblog.views.common import int_param, story_or_404

MAX_PAGE = 100
InputT = TypeVar("InputT", bound=BaseModel)


# The bodies the views below build, as liveblog/views/openapi.py documents them.
class ErrorOut(BaseModel):
    """Every refusal under /api/ (here, ``policy`` and ``app.http_error``)."""

    model_config = ConfigDict(extra="forbid")
    error: str


class StoryList(BaseModel):
    """``list_stories``."""

    model_config = ConfigDict(extra="forbid")
    stories: list[StoryStaffOut]


class UpdatePage(BaseModel):
    """``list_updates``: newest first; ``next_before`` is the next page's ``?before=``."""

    model_config = ConfigDict(extra="forbid")
    story: str
    last_seq: int
    updates: list[UpdatePublicOut]
    next_before: int | None


class CategoryList(BaseModel):
    """``list_categories``."""

    model_config = ConfigDict(extra="forbid")
    categories: list[CategoryOut]


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


def api_view(
    view: Callable[[Request, User], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Run the view as the token's user that the route's policy check let in; map known
    failures to JSON errors."""

    async def endpoint(request: Request) -> Response:
        try:
            return await view(request, policy.actor(request))
        except ApiError as exc:
            return error_response(exc.status, exc.message, exc.headers)
        except store.StoreError as exc:
            return error_response(exc.status, str(exc))

    endpoint.__name__ = view.__name__
    return endpoint


async def _story_or_404(request: Request) -> Story:
    # Every token belongs to staff: drafts too. (A 404 here is JSON like any under /api/.)
    return await story_or_404(request, drafts="caller", message="no such story")


async def _team_story(request: Request, user: User) -> tuple[Story, bool]:
    """The story a route of the newsroom workflow acts on, and whether the caller may
    publish (an editor). A contributor sees a draft story only if on its team; the store
    checks the team again, in the change's transaction, for every change."""
    may_publish = policy.allows(user, policy.Permission.WRITE_UPDATES)
    if may_publish or policy.allows(user, policy.Permission.READ_DRAFTS):
        return await _story_or_404(request), may_publish
    async with get_liveblog(request).db.session() as session:
        story = await store.get_story(session, request.path_params["slug"])
        hidden = story is not None and story.status == StoryStatus.draft
        if hidden and story is not None and not await store.on_team(session, story, user):
            story = None
    if story is None:
        raise ApiError(404, "no such story")
    return story, may_publish


def _if_match(request: Request) -> int | None:
    """The version named by ``If-Match: "<version>"`` (None: no header, or ``*``)."""
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        return None
    value = raw.strip()
    if len(value) < 3 or value[0] != '"' or value[-1] != '"' or not value[1:-1].isdigit():
        raise ApiError(400, 'If-Match must be an update\'s version in quotes, as "3"')
    return int(value[1:-1][:18])


def _staff_json(update: Update, author: User | None) -> JSONResponse:
    """An update as staff see it, with its version as the ETag (for ``If-Match``)."""
    return JSONResponse(update_for_staff(update, author), headers={"ETag": f'"{update.version}"'})


async def _update_json(request: Request, story: Story, update_id: int) -> JSONResponse:
    user = policy.actor(request)
    async with get_liveblog(request).db.session() as session:
        update = await store.staff_update(session, story, update_id, viewer=user)
        author = None if update is None else await store.get_user(session, update.author_id)
    if update is None:
        raise ApiError(404, "no such update in this story")
    return _staff_json(update, author)


async def _story_json(request: Request, story: Story) -> dict[str, Any]:
    """A story as the API shows it: with who created it, and its article fields."""
    async with get_liveblog(request).db.session() as session:
        names = await store.usernames(session, [story.created_by_id])
        article = await articles.article_json(session, [story])
    return {**story_for_staff(story, names), **article.get(story.id or 0, {})}


def _not_modified(request: Request, tag: str) -> Response | None:
    """304 if the client holds this version already (checked before any other work)."""
    if caching.is_fresh(request.headers, tag):
        return caching.not_modified(tag, caching.PRIVATE)
    return None


def _json(request: Request, tag: str, body: Any) -> JSONResponse:
    return JSONResponse(body, headers=caching.validator_headers(tag, caching.PRIVATE))


@api_view
async def list_stories(request: Request, user: User) -> Response:
    statuses = policy.story_statuses(user)
    async with get_liveblog(request).db.session() as session:
        versions = await store.story_versions(session, statuses=statuses, limit=100)
        tag = caching.etag("api-stories", *(f"{sid}.{seq}" for sid, seq in versions))
        if (cached := _not_modified(request, tag)) is not None:
            return cached
        stories = await store.list_stories(session, statuses=statuses, limit=100)
        names = await store.usernames(session, [story.created_by_id for story in stories])
        article = await articles.article_json(session, stories)
    listed = [{**story_for_staff(s, names), **article.get(s.id or 0, {})} for s in stories]
    return _json(request, tag, {"stories": listed})


@api_view
async def get_story(request: Request, user: User) -> Response:
    story = await _story_or_404(request)
    tag = caching.etag("api-story", story.id, story.last_seq)
    return _not_modified(request, tag) or _json(request, tag, await _story_json(request, story))


@api_view
async def list_updates(request: Request, user: User) -> Response:
    story = await _story_or_404(request)
    limit = int_param(request, "limit", default=20, minimum=1, maximum=MAX_PAGE)
    before = int_param(request, "before")
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


@api_view
async def create_story(request: Request, user: User) -> Response:
    data = await _body(request, StoryCreate)
    story = await get_liveblog(request).newsroom.create_story(data, actor=user)
    location = urls.path(request, "api.get_story", slug=story.slug)
    return JSONResponse(
        await _story_json(request, story), status_code=201, headers={"Location": location}
    )


@api_view
async def patch_story(request: Request, user: User) -> Response:
    await _story_or_404(request)
    patch = await _body(request, StoryPatch)
    story = await get_liveblog(request).newsroom.change_story(
        request.path_params["slug"], patch, actor=user
    )
    return JSONResponse(await _story_json(request, story))


@api_view
async def post_update(request: Request, user: User) -> Response:
    if policy.allows(user, policy.Permission.WRITE_UPDATES) and policy.allows(
        user, policy.Permission.READ_DRAFTS
    ):
        # An editor may post to any story they can see, and sees them all: the story is
        # read once, locked, in the newsroom's transaction ("no such story": 404 there,
        # as here). A bad body is still a 404 first when the story does not exist.
        slug, may_publish = request.path_params["slug"], True
        try:
            data = await _body(request, UpdateCreate)
        except ApiError:
            await _story_or_404(request)
            raise
    else:
        story, may_publish = await _team_story(request, user)
        slug = story.slug
        data = await _body(request, UpdateCreate)
    data = get_liveblog(request).media.with_size(data)
    update = await get_liveblog(request).newsroom.post_update(
        slug, data, author=user, may_publish=may_publish
    )
    assert update.id is not None
    location = urls.path(request, "api.get_update", slug=slug, update_id=update.id)
    return JSONResponse(
        update_for_staff(update, user),
        status_code=201,
        headers={"Location": location, "ETag": f'"{update.version}"'},
    )


@api_view
async def get_update(request: Request, user: User) -> Response:
    """Staff read any update they may see; a contributor (no ``read_drafts``) their own in
    any state, on a story they may see (``_team_story``), and others' published ones."""
    story, _ = await _team_story(request, user)
    update_id: int = request.path_params["update_id"]
    # Every change to a published update is an event of its story, so its validator is
    # the story's last_seq, checked before any update is read. An update readers do
    # not see yet changes without an event: its validator is its version.
    tag = caching.etag("api-update", story.id, story.last_seq, update_id)
    if (cached := _not_modified(request, tag)) is not None:
        return cached
    async with get_liveblog(request).db.session() as session:
        update = await store.staff_update(session, story, update_id, viewer=user)
        if update is not None and not _may_see(user, update):
            update = None
        author = None if update is None else await store.get_user(session, update.author_id)
    if update is None:
        raise ApiError(404, "no such update in this story")
    if update.state != UpdateState.published:
        tag = f'"{update.version}"'
        if (cached := _not_modified(request, tag)) is not None:
            return cached
    return _json(request, tag, update_for_staff(update, author))


def _may_see(user: User, update: Update) -> bool:
    """Does ``user`` see ``update`` (which staff see)? Editors, all; a contributor, their
    own and what is published."""
    if policy.allows(user, policy.Permission.READ_DRAFTS):
        return True
    return update.author_id == user.id or update.state == UpdateState.published


@api_view
async def patch_update(request: Request, user: User) -> Response:
    story, may_publish = await _team_story(request, user)
    patch = get_liveblog(request).media.with_size(await _body(request, UpdatePatch))
    update_id: int = request.path_params["update_id"]
    await get_liveblog(request).newsroom.edit_update(
        story.slug,
        update_id,
        patch,
        actor=user,
        may_publish=may_publish,
        expected_version=_if_match(request),
    )
    return await _update_json(request, story, update_id)


@api_view
async def refresh_embeds(request: Request, user: User) -> Response:
    """Fetch the update's link embeds again (a provider changed a title, or was down
    when it was saved) and re-render it; readers get an ``edit`` if it changed."""
    story, may_publish = await _team_story(request, user)
    update_id: int = request.path_params["update_id"]
    liveblog = get_liveblog(request)
    async with liveblog.db.session() as session:
        update = await store.staff_update(session, story, update_id, viewer=user)
    if update is None or not _may_see(user, update):
        raise ApiError(404, "no such update in this story")
    await liveblog.newsroom.edit_update(
        story.slug,
        update_id,
        UpdatePatch(body=update.body),
        actor=user,
        may_publish=may_publish,
        expected_version=_if_match(request),
        refresh_embeds=True,
    )
    return await _update_json(request, story, update_id)


@api_view
async def resolve_embed(request: Request, user: User) -> Response:
    """``{"url": ...}``: what that link becomes in an update (fetched now, or taken from
    the cache), with the reason when it is only a link card."""
    data = await _body(request, EmbedRequest)
    liveblog = get_liveblog(request)
    if liveblog.embeds is None or not embeddable(data.url):
        raise ApiError(422, "url: only an http(s) address without a user name is embedded")
    embed = await liveblog.embeds.resolve(data.url)
    return JSONResponse(
        {**card_data(embed, None), "problem": embed.problem, "fetched_at": iso(embed.fetched_at)},
        headers={"Cache-Control": caching.PRIVATE},
    )


# --- webhooks (liveblog/webhooks.py) ----------------------------------------------------


async def _webhook_json(
    request: Request, webhook: Webhook, *, detail: bool = False
) -> dict[str, Any]:
    async with get_liveblog(request).db.session() as session:
        slugs = await webhooks.story_slugs(session)
        assert webhook.id is not None
        body = webhooks.public(
            webhook, slugs=slugs, backlog=await webhooks.backlog(session, webhook.id)
        )
        if detail:
            attempts = await webhooks.last_attempts(session, webhook.id)
            body["attempts"] = [webhooks.attempt_public(a, slugs) for a in attempts]
    return body


@api_view
async def list_webhooks(request: Request, user: User) -> Response:
    async with get_liveblog(request).db.session() as session:
        found = await webhooks.list_all(session)
    listed = [await _webhook_json(request, webhook) for webhook in found]
    return JSONResponse({"webhooks": listed}, headers={"Cache-Control": caching.PRIVATE})


@api_view
async def create_webhook(request: Request, user: User) -> Response:
    """Admins register an endpoint: 201 with its ``secret``, shown this once."""
    data = await _body(request, WebhookCreate)
    try:
        async with get_liveblog(request).db.transaction() as session:
            webhook = await webhooks.create(
                session, url=data.url, events=data.events, stories=data.stories, actor=user
            )
    except webhooks.WebhookError as exc:
        raise ApiError(422, str(exc)) from None
    get_liveblog(request).newsroom.webhooks_changed()
    assert webhook.id is not None
    location = urls.path(request, "api.get_webhook", webhook_id=webhook.id)
    body = {**await _webhook_json(request, webhook), "secret": webhook.secret}
    return JSONResponse(body, status_code=201, headers={"Location": location})


async def _webhook_or_404(request: Request) -> Webhook:
    webhook_id: int = request.path_params["webhook_id"]
    async with get_liveblog(request).db.session() as session:
        webhook = await webhooks.get(session, webhook_id)
    if webhook is None:
        raise ApiError(404, "no such webhook")
    return webhook


@api_view
async def get_webhook(request: Request, user: User) -> Response:
    webhook = await _webhook_or_404(request)
    body = await _webhook_json(request, webhook, detail=True)
    return JSONResponse(body, headers={"Cache-Control": caching.PRIVATE})


@api_view
async def delete_webhook(request: Request, user: User) -> Response:
    webhook = await _webhook_or_404(request)
    assert webhook.id is not None
    async with get_liveblog(request).db.transaction() as session:
        await webhooks.remove(session, webhook.id)
    get_liveblog(request).newsroom.webhooks_changed()
    return Response(status_code=204)


@api_view
async def replay_webhook(request: Request, user: User) -> Response:
    """Deliver one story's events again, from ``from_seq`` on, at the next round."""
    data = await _body(request, WebhookReplay)
    webhook = await _webhook_or_404(request)
    assert webhook.id is not None
    liveblog = get_liveblog(request)
    async with liveblog.db.transaction() as session:
        story = await store.get_story(session, data.story)
        if story is None:
            raise ApiError(422, f"story: no story {data.story!r}")
        if not await webhooks.replay(session, webhook.id, story, data.from_seq):
            raise ApiError(409, f"this webhook does not follow {data.story!r}")
    liveblog.newsroom.webhooks_changed()  # the sender's wake: deliver now
    return JSONResponse(
        await _webhook_json(request, webhook), headers={"Cache-Control": caching.PRIVATE}
    )


def _move(action: str) -> Callable[[Request], Awaitable[Response]]:
    """The route of one workflow step: submit, publish, return (with a note), reject,
    schedule (with ``publish_at``), unschedule."""

    async def view(request: Request, user: User) -> Response:
        story, may_publish = await _team_story(request, user)
        note = (await _body(request, ReturnNote)).note if action == "return" else None
        publish_at = (await _body(request, Schedule)).publish_at if action == "schedule" else None
        update_id: int = request.path_params["update_id"]
        await get_liveblog(request).newsroom.move_update(
            story.slug,
            update_id,
            action,
            actor=user,
            may_publish=may_publish,
            note=note,
            publish_at=publish_at,
            expected_version=_if_match(request),
        )
        return await _update_json(request, story, update_id)

    view.__name__ = f"{action}_update"
    return api_view(view)


submit_update = _move("submit")
publish_update = _move("publish")
return_update = _move("return")
reject_update = _move("reject")
schedule_update = _move("schedule")
unschedule_update = _move("unschedule")


async def _set_team_member(request: Request, *, on: bool) -> bool:
    story = await _story_or_404(request)
    return await get_liveblog(request).newsroom.set_team_member(
        story.slug, request.path_params["username"], on=on, actor=policy.actor(request)
    )


@api_view
async def add_team_member(request: Request, user: User) -> Response:
    """201 when the user was put on the team, 204 when they were on it already."""
    added = await _set_team_member(request, on=True)
    return Response(status_code=201 if added else 204)


@api_view
async def remove_team_member(request: Request, user: User) -> Response:
    """204, whether or not the user was on the team (the same request twice is fine)."""
    await _set_team_member(request, on=False)
    return Response(status_code=204)


@api_view
async def delete_update(request: Request, user: User) -> Response:
    story = await _story_or_404(request)
    await get_liveblog(request).newsroom.delete_update(
        story.slug, request.path_params["update_id"], actor=user
    )
    return Response(status_code=204)


@api_view
async def list_categories(request: Request, user: User) -> Response:
    async with get_liveblog(request).db.session() as session:
        found = await articles.list_categories(session)
    return JSONResponse(
        {"categories": [articles.category_public(c) for c in found]},
        headers={"Cache-Control": caching.PRIVATE},
    )


@api_view
async def create_category(request: Request, user: User) -> Response:
    """Editors add a category (``{"name": ...}``, optionally a ``slug``): 201 with its slug."""
    data = await _body(request, CategoryCreate)
    try:
        async with get_liveblog(request).db.transaction() as session:
            category = await articles.create_category(session, data)
    except IntegrityError:  # lost a race for the same slug
        raise ApiError(409, "a category with that slug already exists") from None
    return JSONResponse(articles.category_public(category), status_code=201)


@api_view
async def rename_category(request: Request, user: User) -> Response:
    """Editors rename a category (``{"name": ...}``); its slug stays."""
    data = await _body(request, CategoryRename)
    async with get_liveblog(request).db.transaction() as session:
        category = await articles.rename_category(session, request.path_params["slug"], data)
    return JSONResponse(articles.category_public(category))


@api_view
async def delete_category(request: Request, user: User) -> Response:
    """Editors delete a category; its stories simply lose it."""
    async with get_liveblog(request).db.transaction() as session:
        await articles.delete_category(session, request.path_params["slug"])
    return Response(status_code=204)


_UPDATE = "/api/stories/{slug}/updates/{update_id:int}"
_TEAM = "/api/stories/{slug}/team/{username}"
_WEBHOOK = "/api/webhooks/{webhook_id:int}"
routes = [
    Route("/api/stories", list_stories, methods=["GET"], name="api.list_stories"),
    Route("/api/categories", list_categories, methods=["GET"], name="api.list_categories"),
    Route("/api/categories", create_category, methods=["POST"], name="api.create_category"),
    Route(
        "/api/categories/{slug}",
        rename_category,
        methods=["PATCH"],
        name="api.rename_category",
    ),
    Route(
        "/api/categories/{slug}",
        delete_category,
        methods=["DELETE"],
        name="api.delete_category",
    ),
    Route("/api/stories", create_story, methods=["POST"], name="api.create_story"),
    Route("/api/stories/{slug}", get_story, methods=["GET"], name="api.get_story"),
    Route("/api/stories/{slug}", patch_story, methods=["PATCH"], name="api.patch_story"),
    Route("/api/stories/{slug}/updates", list_updates, methods=["GET"], name="api.list_updates"),
    Route("/api/stories/{slug}/updates", post_update, methods=["POST"], name="api.post_update"),
    Route(_UPDATE, get_update, methods=["GET"], name="api.get_update"),
    Route(_UPDATE, patch_update, methods=["PATCH"], name="api.patch_update"),
    Route(_UPDATE, delete_update, methods=["DELETE"], name="api.delete_update"),
    Route(_UPDATE + "/embeds/refresh", refresh_embeds, methods=["POST"], name="api.refresh_embeds"),
    Route("/api/embeds", resolve_embed, methods=["POST"], name="api.resolve_embed"),
    Route("/api/webhooks", list_webhooks, methods=["GET"], name="api.list_webhooks"),
    Route("/api/webhooks", create_webhook, methods=["POST"], name="api.create_webhook"),
    Route(_WEBHOOK, get_webhook, methods=["GET"], name="api.get_webhook"),
    Route(_WEBHOOK, delete_webhook, methods=["DELETE"], name="api.delete_webhook"),
    Route(_WEBHOOK + "/replay", replay_webhook, methods=["POST"], name="api.replay_webhook"),
    Route(_UPDATE + "/submit", submit_update, methods=["POST"], name="api.submit_update"),
    Route(_UPDATE + "/publish", publish_update, methods=["POST"], name="api.publish_update"),
    Route(_UPDATE + "/return", return_update, methods=["POST"], name="api.return_update"),
    Route(_UPDATE + "/reject", reject_update, methods=["POST"], name="api.reject_update"),
    Route(_UPDATE + "/schedule", schedule_update, methods=["POST"], name="api.schedule_update"),
    Route(
        _UPDATE + "/unschedule", unschedule_update, methods=["POST"], name="api.unschedule_update"
    ),
    Route(_TEAM, add_team_member, methods=["PUT"], name="api.add_team_member"),
    Route(_TEAM, remove_team_member, methods=["DELETE"], name="api.remove_team_member"),
]
