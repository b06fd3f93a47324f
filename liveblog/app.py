"""The app factory. The CLI, uvicorn and every test build the app through ``create_app``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from liveblog import events, schema, store
from liveblog.auth import Csrf
from liveblog.db import Database
from liveblog.hub import Hub, backend_from_url
from liveblog.limits import BodySizeLimit, BodyTooLarge
from liveblog.newsroom import Newsroom
from liveblog.render import STATIC_DIR, Renderer, make_templates
from liveblog.settings import Settings
from liveblog.state import Liveblog, get_liveblog
from liveblog.views import api, desk, reader, stream
from liveblog.views.common import LoginRequired, redirect, render

log = logging.getLogger("liveblog")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.sqlalchemy_url())
        try:
            await schema.ensure_current(db.engine, migrate=settings.migrate)
        except BaseException:
            await db.close()
            raise

        async def load_frames(story_id: int, after: int, before: int) -> list[events.Frame]:
            async with db.session() as session:
                found = await store.events_after(session, story_id, after, before=before)
            return [events.encode(event) for event in found]

        hub = Hub(
            backend_from_url(settings.broadcast_url),
            load_frames=load_frames,
            backlog=settings.stream_backlog,
        )
        await hub.start()
        secret = settings.resolved_secret()
        renderer = Renderer(make_templates())
        app.state.liveblog = Liveblog(
            settings=settings,
            db=db,
            hub=hub,
            templates=renderer.templates,
            renderer=renderer,
            csrf=Csrf(secret),
            newsroom=Newsroom(db, hub, renderer),
        )
        try:
            yield
        finally:
            await hub.stop()
            await db.close()

    routes = [
        Route("/healthz", healthz),
        *reader.routes,
        *stream.routes,
        *desk.routes,
        *api.routes,
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)],
        exception_handlers={
            HTTPException: http_error,
            LoginRequired: login_required,
            BodyTooLarge: body_too_large,
        },
        lifespan=lifespan,
    )


async def healthz(request: Request) -> Response:
    liveblog = get_liveblog(request)
    checks = {"database": "ok", "broadcast": "ok"}
    try:
        await liveblog.db.ping()
    except Exception as exc:  # report, don't crash: this is what monitoring reads
        checks["database"] = f"error: {type(exc).__name__}"
    ok = all(value == "ok" for value in checks.values())
    status = 200 if ok else 503
    return JSONResponse({"status": "ok" if ok else "error", **checks}, status_code=status)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return await render(
        request,
        "error.html",
        {"status": exc.status_code, "message": exc.detail},
        status_code=exc.status_code,
        headers=dict(exc.headers or {}),
    )


async def login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    if request.method != "GET":
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"error": "log in first"}, status_code=401)
        return redirect(desk.login_url("/desk"))
    return redirect(desk.login_url(exc.next_path))


async def body_too_large(request: Request, exc: Exception) -> Response:
    limit = get_liveblog(request).settings.max_body_bytes
    message = f"request body is larger than {limit} bytes"
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=413)
    return Response(message, status_code=413, media_type="text/plain")


def app_from_environment() -> Starlette:
    """For ``uvicorn --factory liveblog.app:app_from_environment`` (and ``serve --reload``)."""
    return create_app(Settings())
