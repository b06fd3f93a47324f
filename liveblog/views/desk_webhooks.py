"""Webhooks on the desk (admins only; editors get 403): ``/desk/webhooks``.

The list of endpoints (what they want, their backlog, "failing since" and their last
answers), a form to register one (its secret is shown once, on the answer to the form,
as a new API token is), and per endpoint a replay ("from seq N") and a remove. The data
and its rules are ``liveblog.webhooks``'s, the address's rules ``WebhookCreate``'s (the
same as the API's: ``POST /api/webhooks``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlmodel import col, select
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liveblog import policy, store, urls, webhooks
from liveblog.models import Story, Webhook, WebhookCreate, WebhookReplay
from liveblog.state import get_liveblog
from liveblog.views.common import checked_form, form_str, redirect, render, validation_messages

SHOWN_ATTEMPTS = 5  # the last answers shown per endpoint

# What the page says after a redirect (``?done=``): fixed texts, never the query's.
DONE = {
    "replayed": "Replay scheduled: the events are delivered again at the next round.",
    "removed": "Webhook removed.",
}


async def webhooks_page(
    request: Request,
    *,
    created: Webhook | None = None,
    errors: list[str] | None = None,
    values: dict[str, Any] | None = None,
    replay_values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    async with get_liveblog(request).db.session() as session:
        slugs = await webhooks.story_slugs(session)
        listed = []
        for webhook in await webhooks.list_all(session):
            assert webhook.id is not None
            attempts = await webhooks.last_attempts(session, webhook.id, limit=SHOWN_ATTEMPTS)
            listed.append(
                {
                    "webhook": webhook,
                    "public": webhooks.public(
                        webhook, slugs=slugs, backlog=await webhooks.backlog(session, webhook.id)
                    ),
                    "attempts": [(a, slugs.get(a.story_id)) for a in attempts],
                }
            )
        stories = list((await session.exec(select(Story).order_by(col(Story.slug)))).all())
    context: dict[str, Any] = {
        "hooks": listed,
        "stories": stories,
        "kinds": webhooks.KINDS,
        "created": created,
        "errors": errors or [],
        "values": values or {"events": [], "stories": []},
        "replay_values": replay_values or {},
        "done": DONE.get(request.query_params.get("done", "")),
    }
    response = await render(request, "desk/webhooks.html", context, status_code=status_code)
    # A page that shows a secret must not be kept by any cache.
    response.headers["Cache-Control"] = "no-store"
    return response


async def webhooks_index(request: Request) -> Response:
    return await webhooks_page(request)


def _create_values(form: FormData) -> dict[str, Any]:
    return {
        "url": form_str(form, "url").strip(),
        "events": [str(value) for value in form.getlist("events")],
        "stories": [str(value) for value in form.getlist("stories")],
    }


async def create_webhook(request: Request) -> Response:
    admin = policy.actor(request)
    form = await checked_form(request)
    values = _create_values(form)
    try:
        data = WebhookCreate(
            url=values["url"], events=values["events"], stories=values["stories"] or None
        )
        async with get_liveblog(request).db.transaction() as session:
            webhook = await webhooks.create(
                session, url=data.url, events=data.events, stories=data.stories, actor=admin
            )
    except ValidationError as exc:
        return await webhooks_page(
            request, errors=validation_messages(exc), values=values, status_code=422
        )
    except webhooks.WebhookError as exc:
        return await webhooks_page(request, errors=[str(exc)], values=values, status_code=422)
    get_liveblog(request).newsroom.webhooks_changed()
    # The secret is on this answer only: a reload (a GET) never shows it.
    return await webhooks_page(request, created=webhook, status_code=201)


async def _webhook_or_404(request: Request) -> Webhook:
    webhook_id: int = request.path_params["webhook_id"]
    async with get_liveblog(request).db.session() as session:
        webhook = await webhooks.get(session, webhook_id)
    if webhook is None:
        raise HTTPException(404, "No such webhook.")
    return webhook


async def replay_webhook(request: Request) -> Response:
    form = await checked_form(request)
    webhook = await _webhook_or_404(request)
    assert webhook.id is not None
    typed = {"story": form_str(form, "story").strip(), "from_seq": form_str(form, "from_seq")}
    replay_values = {"id": webhook.id, **typed}
    liveblog = get_liveblog(request)
    try:
        try:
            from_seq = int(typed["from_seq"].strip())
        except ValueError:
            raise webhooks.WebhookError("from seq: a whole number, 1 or more") from None
        data = WebhookReplay(story=typed["story"], from_seq=from_seq)
        async with liveblog.db.transaction() as session:
            story = await store.get_story(session, data.story)
            if story is None:
                raise webhooks.WebhookError(f"story: no story {data.story!r}")
            if not await webhooks.replay(session, webhook.id, story, data.from_seq):
                raise webhooks.WebhookError(f"this webhook does not follow {data.story!r}")
    except (ValidationError, webhooks.WebhookError) as exc:
        errors = validation_messages(exc) if isinstance(exc, ValidationError) else [str(exc)]
        return await webhooks_page(
            request, errors=errors, replay_values=replay_values, status_code=422
        )
    liveblog.newsroom.webhooks_changed()  # the sender's wake: deliver now
    return redirect(urls.path(request, "webhooks_index") + "?done=replayed")


async def remove_webhook(request: Request) -> Response:
    await checked_form(request)
    webhook = await _webhook_or_404(request)
    assert webhook.id is not None
    async with get_liveblog(request).db.transaction() as session:
        found = await webhooks.remove(session, webhook.id)
    get_liveblog(request).newsroom.webhooks_changed()
    if not found:
        raise HTTPException(404, "No such webhook.")
    return redirect(urls.path(request, "webhooks_index") + "?done=removed")


routes = [
    Route("/desk/webhooks", webhooks_index, methods=["GET"], name="webhooks_index"),
    Route("/desk/webhooks", create_webhook, methods=["POST"], name="desk_create_webhook"),
    Route(
        "/desk/webhooks/{webhook_id:int}/replay",
        replay_webhook,
        methods=["POST"],
        name="desk_replay_webhook",
    ),
    Route(
        "/desk/webhooks/{webhook_id:int}/remove",
        remove_webhook,
        methods=["POST"],
        name="desk_remove_webhook",
    ),
]
