"""The JSON API described: ``GET /api/openapi.json`` (OpenAPI 3.1) and ``GET /api/docs``
(the same document as a page, rendered here: no script, no CDN).

The document is built from the app's own routes (every route under ``/api/``), the
models the handlers validate into and build their answers from, and each route's rule
in ``liveblog.policy`` (who may call it, with which token). ``OPERATIONS`` adds only
what a route cannot say of itself: a summary, its bodies and its answers. A route
under /api/ without an entry here, or an entry without a route, fails
tests/test_openapi.py; so does an answer that its documented schema does not admit.
Both routes are public (docs/integrations.md says why).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from liveblog import caching, policy
from liveblog.models import (
    CategoryCreate,
    CategoryOut,
    CategoryRename,
    EmbedPreviewOut,
    EmbedRequest,
    ReturnNote,
    Schedule,
    StoryCreate,
    StoryPatch,
    StoryStaffOut,
    UpdateCreate,
    UpdatePatch,
    UpdateStaffOut,
    WebhookCreate,
    WebhookCreatedOut,
    WebhookDetailOut,
    WebhookListOut,
    WebhookOut,
    WebhookReplay,
)
from liveblog.views import api, searching, uploads
from liveblog.views.common import render

PREFIX = "/api/"
TITLE = "liveblog JSON API"
VERSION = "1"
REF = "#/components/schemas/{model}"
Location = Literal["query", "header"]


@dataclass(frozen=True)
class Param:
    name: str
    where: Location
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True)
class Operation:
    """One route as the document shows it, beyond what the route and its rule say."""

    summary: str
    status: int  # the answer when it works
    returns: type[BaseModel] | None  # its body (None: no body)
    body: type[BaseModel] | None = None  # the JSON the request sends
    # Other answers the view gives (404 for a story it does not find, 409, 412...).
    answers: tuple[int, ...] = ()
    params: tuple[Param, ...] = ()
    # The request's body is raw bytes of one of these types (an image), not JSON.
    raw: tuple[str, ...] = ()
    # Answers 304 to a matching If-None-Match (its ETag is in the answer).
    validators: bool = False
    # The answer is not one of our models: its media type (any content).
    media: str | None = None


_STORY = (404,)
_JSON = (400, 413, 422)  # the body: not JSON, too large, refused by its model
_IF_MATCH = Param(
    "If-Match",
    "header",
    # A version in quotes, or "*" (any version); anything else is refused with 400.
    {"type": "string", "pattern": '^(\\*|"[0-9]{1,18}")$'},
    'Only if the update is at this version (its ETag, as "3"): else 412.',
)
_WORKFLOW = (*_STORY, 400, 403, 409, 412)


def _number(minimum: int, maximum: int | None = None) -> dict[str, Any]:
    """A whole-number query parameter (``common.int_param``): empty means the default."""
    number: dict[str, Any] = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        number["maximum"] = maximum
    return {"anyOf": [number, {"const": ""}]}


OPERATIONS: dict[str, Operation] = {
    "api.list_stories": Operation(
        "The newest 100 stories, drafts included", 200, api.StoryList, validators=True
    ),
    "api.create_story": Operation("Create a story", 201, StoryStaffOut, StoryCreate, (*_JSON, 409)),
    "api.get_story": Operation("One story", 200, StoryStaffOut, answers=_STORY, validators=True),
    "api.patch_story": Operation(
        "Change a story (only the fields given)", 200, StoryStaffOut, StoryPatch, (*_STORY, *_JSON)
    ),
    "api.list_updates": Operation(
        "A story's published updates, newest first, a page at a time",
        200,
        api.UpdatePage,
        answers=(*_STORY, 400),
        params=(
            Param("limit", "query", _number(1, api.MAX_PAGE), "How many (default 20)."),
            Param("before", "query", _number(0), "The previous page's next_before."),
        ),
        validators=True,
    ),
    "api.post_update": Operation(
        "Post an update (an editor's is published, a contributor's submitted)",
        201,
        UpdateStaffOut,
        UpdateCreate,
        (*_STORY, *_JSON, 403, 409),
    ),
    "api.get_update": Operation(
        "One update, in any state", 200, UpdateStaffOut, answers=_STORY, validators=True
    ),
    "api.patch_update": Operation(
        "Correct an update (only the fields given)",
        200,
        UpdateStaffOut,
        UpdatePatch,
        (*_WORKFLOW, *_JSON),
        (_IF_MATCH,),
    ),
    "api.delete_update": Operation("Delete an update", 204, None, answers=(*_STORY, 409)),
    "api.refresh_embeds": Operation(
        "Fetch an update's link embeds again and re-render it",
        200,
        UpdateStaffOut,
        answers=_WORKFLOW,
        params=(_IF_MATCH,),
    ),
    "api.resolve_embed": Operation(
        "What a link on its own line becomes (fetched now, or from the cache)",
        200,
        EmbedPreviewOut,
        EmbedRequest,
        _JSON,
    ),
    "api.list_webhooks": Operation("Every webhook (never their secrets)", 200, WebhookListOut),
    "api.create_webhook": Operation(
        "Register a webhook: its secret is in this answer only",
        201,
        WebhookCreatedOut,
        WebhookCreate,
        _JSON,
    ),
    "api.get_webhook": Operation(
        "One webhook, with its last answers", 200, WebhookDetailOut, answers=(404,)
    ),
    "api.delete_webhook": Operation("Remove a webhook", 204, None, answers=(404,)),
    "api.replay_webhook": Operation(
        "Deliver a story's events to a webhook again, from a seq on",
        200,
        WebhookOut,
        WebhookReplay,
        (*_JSON, 404, 409),
    ),
    "api.submit_update": Operation(
        "Submit a draft to the editors", 200, UpdateStaffOut, answers=_WORKFLOW, params=(_IF_MATCH,)
    ),
    "api.publish_update": Operation(
        "Publish an update", 200, UpdateStaffOut, answers=_WORKFLOW, params=(_IF_MATCH,)
    ),
    "api.return_update": Operation(
        "Return a submitted update to its author with a note",
        200,
        UpdateStaffOut,
        ReturnNote,
        (*_WORKFLOW, *_JSON),
        (_IF_MATCH,),
    ),
    "api.reject_update": Operation(
        "Reject a submitted update", 200, UpdateStaffOut, answers=_WORKFLOW, params=(_IF_MATCH,)
    ),
    "api.schedule_update": Operation(
        "Schedule an update for publish_at",
        200,
        UpdateStaffOut,
        Schedule,
        (*_WORKFLOW, *_JSON),
        (_IF_MATCH,),
    ),
    "api.unschedule_update": Operation(
        "Take an update off the schedule",
        200,
        UpdateStaffOut,
        answers=_WORKFLOW,
        params=(_IF_MATCH,),
    ),
    "api.add_team_member": Operation(
        "Put a user on a story's team (204: on it already)", 201, None, answers=(*_STORY, 204, 422)
    ),
    "api.remove_team_member": Operation(
        "Take a user off a story's team", 204, None, answers=(*_STORY, 422)
    ),
    "api.list_categories": Operation("The categories, in order", 200, api.CategoryList),
    "api.create_category": Operation(
        "Add a category", 201, CategoryOut, CategoryCreate, (*_JSON, 409)
    ),
    "api.rename_category": Operation(
        "Rename a category (its slug stays)", 200, CategoryOut, CategoryRename, (*_JSON, 404)
    ),
    "api.delete_category": Operation(
        "Delete a category (its stories lose it)", 204, None, answers=(404,)
    ),
    "api.upload_image": Operation(
        "Upload an image (the body is the image itself)",
        201,
        uploads.UploadOut,
        answers=(413, 415, 422, 503),
        raw=("image/jpeg", "image/png", "image/webp", "image/gif"),
    ),
    "api_search": Operation(
        "Search published stories and updates",
        200,
        searching.SearchResults,
        answers=(400,),
        params=(
            Param("q", "query", {"type": "string"}, "The words to find."),
            Param("page", "query", _number(1, searching.MAX_PAGE), "Default 1."),
        ),
    ),
    # This document and its page: public (docs/integrations.md).
    "api_openapi": Operation("This document (OpenAPI 3.1)", 200, None, media="application/json"),
    "api_docs": Operation("This document as a page", 200, None, media="text/html"),
}
_ERROR = api.ErrorOut
_REASONS = {
    200: "OK",
    201: "Created",
    204: "Done, nothing to say",
    304: "Not modified: the version in If-None-Match is current",
    400: "Bad request: the message says what",
    401: "No valid API token (Authorization: Bearer <token>)",
    403: "The token may not do this (read-only, or its user lacks the permission)",
    404: "No such story, update or user (to this caller)",
    409: "Conflicts with the current state (a taken slug, a step the update cannot take)",
    412: "If-Match names another version of the update",
    413: "The body is too large",
    415: "The body is not an image of a supported type",
    422: "The body is valid JSON that the API refuses: the message says why",
    503: "Busy: try again after Retry-After seconds",
}


def api_routes(routes: Iterable[BaseRoute]) -> list[Route]:
    """The app's routes under /api/, in the app's order."""
    return [r for r in routes if isinstance(r, Route) and r.path.startswith(PREFIX)]


def _methods(route: Route) -> list[str]:
    return sorted(m.lower() for m in (route.methods or ()) if m != "HEAD")


def _path_params(route: Route) -> list[dict[str, Any]]:
    params = []
    for name, convertor in route.param_convertors.items():
        schema: dict[str, Any] = {"type": "string"}
        if type(convertor).__name__ == "IntegerConvertor":
            schema = {"type": "integer", "minimum": 0}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _security(name: str) -> dict[str, Any]:
    rule = policy.ROUTES[name]
    if rule.via is not policy.Via.TOKEN:
        return {"security": [], "x-liveblog-permission": rule.permission.value}
    writes = policy.PERMISSIONS[rule.permission].writes
    roles = sorted(r.value for r in policy.roles_with(rule.permission))
    who = ", ".join(roles) if rule.permission is not policy.Permission.READ_PUBLIC else "anyone"
    token = "a read-only token is refused (403)" if writes else "read-only tokens too"
    return {
        "security": [{"bearer": []}],
        "x-liveblog-permission": rule.permission.value,
        "x-liveblog-read-only-token": not writes,
        "description": f"Needs `{rule.permission.value}` ({who}); {token}.",
    }


def _responses(operation: Operation, token: bool, refs: dict[Any, Any]) -> dict[str, Any]:
    error = {"application/json": {"schema": refs[(_ERROR, "serialization")]}}
    statuses = {operation.status, *operation.answers}
    if token:
        statuses |= {401, 403}
    if operation.validators:
        statuses.add(304)
    answers: dict[str, Any] = {}
    for status in sorted(statuses):
        answer: dict[str, Any] = {"description": _REASONS[status]}
        if status == operation.status and operation.returns is not None:
            schema = refs[(operation.returns, "serialization")]
            answer["content"] = {"application/json": {"schema": schema}}
        elif status == operation.status and operation.media is not None:
            answer["content"] = {operation.media: {"schema": {}}}
        elif status >= 400:
            answer["content"] = error
        answers[str(status)] = answer
    return answers


def document(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API routes among ``routes``.

    Raises LookupError for a route under /api/ that ``OPERATIONS`` does not describe."""
    found = api_routes(routes)
    missing = [r.name for r in found if r.name not in OPERATIONS]
    if missing:
        raise LookupError(f"API routes without an entry in OPERATIONS: {missing}")
    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [(_ERROR, "serialization")]
    for route in found:
        operation = OPERATIONS[route.name]
        if operation.body is not None:
            modes.append((operation.body, "validation"))
        if operation.returns is not None:
            modes.append((operation.returns, "serialization"))
    refs, defs = models_json_schema(list(dict.fromkeys(modes)), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in found:
        operation = OPERATIONS[route.name]
        path = route.path.replace(":int", "")
        token = policy.ROUTES[route.name].via is policy.Via.TOKEN
        for method in _methods(route):
            spec: dict[str, Any] = {
                "operationId": route.name,
                "summary": operation.summary,
                **_security(route.name),
                "parameters": [
                    *_path_params(route),
                    *(
                        {
                            "name": p.name,
                            "in": p.where,
                            "required": False,
                            "schema": p.schema,
                            "description": p.description,
                        }
                        for p in operation.params
                    ),
                ],
                "responses": _responses(operation, token, refs),
            }
            if operation.body is not None:
                schema = refs[(operation.body, "validation")]
                spec["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": schema}},
                }
            elif operation.raw:
                binary = {
                    "schema": {"type": "string", "contentMediaType": "application/octet-stream"}
                }
                spec["requestBody"] = {
                    "required": True,
                    "content": {media: binary for media in operation.raw},
                }
            paths.setdefault(path, {})[method] = spec
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Bearer tokens from `liveblog token USER` or the desk's API "
            'tokens page. Errors are `{"error": "..."}`. docs/integrations.md.',
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi_json(request: Request) -> Response:
    body = document(request.app.routes)
    return JSONResponse(body, headers={"Cache-Control": caching.PUBLIC})


async def api_docs(request: Request) -> Response:
    spec = document(request.app.routes)
    response = await render(request, "api_docs.html", {"spec": spec})
    response.headers["Cache-Control"] = caching.PUBLIC
    return response


routes = [
    Route("/api/openapi.json", openapi_json, methods=["GET"], name="api_openapi"),
    Route("/api/docs", api_docs, methods=["GET"], name="api_docs"),
]
