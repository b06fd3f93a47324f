"""The app factory. The CLI, uvicorn and every test build the app through ``create_app``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from liveblog import embedding, request_id, schema, urls
from liveblog.assets import Assets, FaviconAlias
from liveblog.auth import Csrf
from liveblog.compression import CompressPages
from liveblog.cors import PublicReadCors
from liveblog.db import Database
from liveblog.desk_channel import DeskChannel
from liveblog.embeds.providers import Registry
from liveblog.embeds.resolver import Embeds
from liveblog.fetcher import Fetcher
from liveblog.frame_host import FrameHostOnly
from liveblog.gc_tuning import tune_for_serving
from liveblog.headers import SecurityHeaders, frame_source, headers_for
from liveblog.hub import Hub, backend_from_url
from liveblog.hub.presence import Presence
from liveblog.limits import BodySizeLimit, BodyTooLarge
from liveblog.live import grip
from liveblog.live import routing as live_routing
from liveblog.live.grip_stats import ProxyStats
from liveblog.live.routing import LiveblogApp
from liveblog.live.service import Live
from liveblog.loaders import Reads
from liveblog.media import MediaStore
from liveblog.metrics import Address, Metrics, MetricsListener
from liveblog.newsroom import Newsroom
from liveblog.policy import LoginRequired, guard
from liveblog.ratelimit import LoginThrottle, MemoryLimiter
from liveblog.render import STATIC_DIR, Renderer, make_templates
from liveblog.request_id import RequestId
from liveblog.scheduler import Scheduler
from liveblog.settings import Settings
from liveblog.state import Liveblog, get_liveblog
from liveblog.stats import ReaderStats
from liveblog.views import (
    accounts,
    api,
    authors,
    categories,
    crawlers,
    desk,
    desk_articles,
    desk_channel,
    desk_stats,
    desk_transfer,
    desk_webhooks,
    embed,
    embed_frame,
    history,
    openapi,
    reader,
    searching,
    uploads,
)
from liveblog.views.common import redirect, render
from liveblog.webhook_sender import WebhookSender

log = logging.getLogger("liveblog")

HEALTH_TIMEOUT = 5.0  # seconds; a load balancer's health check must get an answer
SERVER_ERROR = "Something went wrong on our side; it has been logged. Please try again."


def create_app(settings: Settings | None = None) -> LiveblogApp:
    settings = settings or Settings()
    # Read and fingerprinted once, here; served from memory (liveblog/assets.py).
    assets = Assets.load(STATIC_DIR)
    site_headers = live_routing.stream_headers(
        https=settings.https, frame_src=frame_source(settings.frames_base())
    )
    # The stream is served outside the stack below: see liveblog/live/routing.py.
    stream_endpoint = live_routing.endpoint(
        max_streams_per_client=settings.max_streams_per_client, site_headers=site_headers
    )
    grip_streams: grip.GripStoryEvents | None = None
    if settings.grip_url:  # a GRIP proxy holds the streams (liveblog/live/grip.py)
        stream_endpoint = grip_streams = grip.GripStoryEvents(
            stream_endpoint,
            grip.GripConfig.parse_all(settings.grip_url),
            keep_alive=settings.heartbeat_interval,
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Every service is closed by the exit stack, in reverse order of starting, even
        # when a later one fails to start or an earlier one fails to stop. The order is
        # the shutdown's: desk channel, statistics, presence, hub, streams, database.
        async with contextlib.AsyncExitStack() as services:
            db = Database(
                settings.sqlalchemy_url(),
                pool_size=settings.database_pool_size,
                max_overflow=settings.database_max_overflow,
                stream_connections=settings.stream_db_connections,
            )
            services.push_async_callback(db.close)
            await schema.ensure_current(db.engine, migrate=settings.migrate)
            # Counted by the hub, the stream and the database; served on a port of its
            # own, never the site's (docs/operations.md).
            metrics = Metrics()
            metrics.watch_pool("site", db.engine.pool)
            metrics.watch_pool("stream", db.stream_engine.pool)
            if settings.metrics_address is not None:
                await started(
                    services,
                    MetricsListener(metrics.registry, Address.parse(settings.metrics_address)),
                )

            # The reads the hub and the stream are given: the hub's on the site's pool,
            # the stream's on its own few connections (liveblog/loaders.py).
            site_reads, stream_reads = Reads(db.session), Reads(db.stream_session)
            hub = Hub(
                backend_from_url(settings.broadcast_url),
                load_frames=site_reads.frames,
                load_last_seq=site_reads.last_seq,
                backlog=settings.stream_backlog,
                recent_frames=settings.replay_window,
                metrics=metrics,
            )
            # The stream stops after the hub (whose stop ends every subscription first):
            # its ticker starts before the hub, which it needs only once a stream opens.
            live = Live(
                hub,
                stream_reads,
                heartbeat=settings.heartbeat_interval,
                send_timeout=settings.stream_send_timeout,
                retry_ms=settings.retry_ms,
                replay_cache_bytes=settings.replay_cache_bytes,
                site_headers=site_headers,
                metrics=metrics,
            )
            await started(services, live)
            await started(services, hub)
            presence: Presence
            if grip_streams is None:
                presence = Presence(hub, interval=settings.presence_interval)
            else:  # the readers the proxies hold count too, as they report them
                proxy_stats = None
                if settings.grip_stats_url:
                    proxy_stats = await started(
                        services,
                        ProxyStats(
                            [spec.strip() for spec in settings.grip_stats_url.split(",")],
                            channel_prefix=grip.CHANNEL_PREFIX,
                        ),
                    )
                presence = grip.GripPresence(hub, proxy_stats, interval=settings.presence_interval)
            presence = await started(services, presence)
            stats = await started(
                services, ReaderStats(db, presence, interval=settings.presence_interval)
            )
            staff_channel = await started(
                services, DeskChannel(hub, interval=settings.desk_presence_interval)
            )
            services.callback(
                lambda: log.info("%s; %s", live.replays.summary(), db.stream_wait_summary())
            )
            secret = settings.resolved_secret()
            renderer = Renderer(
                make_templates(
                    {
                        **embedding.template_globals(),
                        **urls.template_globals(app, static=assets.versioned),
                        # Where embeds' click-through frames live: this host ("") or
                        # the frames' own (LIVEBLOG_EMBED_FRAME_URL, docs/embeds.md).
                        "embed_frames": settings.embed_frame_url or "",
                    }
                )
            )
            media = MediaStore(
                settings.media_dir(),
                settings.media_url,
                max_bytes=settings.max_upload_bytes,
                decoders=settings.image_decode_concurrency,
                queue=settings.image_decode_queue,
            )
            # Every fetch of an address someone typed goes through this one fetcher.
            fetcher = Fetcher(
                allow_hosts=settings.allowed_fetch_hosts(),
                timeout=settings.fetch_timeout,
                per_host_per_minute=settings.fetch_host_rate,
            )
            services.push_async_callback(fetcher.aclose)
            embeds = Embeds(
                db,
                fetcher,
                media,
                Registry(settings.oembed_providers),
                timeout=settings.fetch_timeout,
            )
            newsroom = (grip.GripNewsroom if settings.grip_url else Newsroom)(
                db, hub, renderer, desk_channel=staff_channel, embeds=embeds
            )
            if settings.grip_url and isinstance(newsroom, grip.GripNewsroom):
                # Each event also goes to the GRIP proxy (liveblog/live/grip.py).
                newsroom.grip = [
                    await started(services, grip.Publisher(config))
                    for config in grip.GripConfig.parse_all(settings.grip_url)
                ]
            # Started after the hub and before the site serves: a schedule missed while
            # no process ran is published in its first round (liveblog/scheduler.py).
            scheduler = await started(
                services, Scheduler(newsroom, db, poll=settings.scheduler_poll)
            )
            newsroom.on_schedule = scheduler.wake
            # Webhooks read the event log, so they start after the newsroom: an event
            # committed before a crash is delivered by the first round after a start.
            sender = await started(
                services,
                WebhookSender(
                    db,
                    fetcher,
                    poll=settings.webhook_poll,
                    retry_base=settings.webhook_retry_base,
                    metrics=metrics,
                ),
            )
            newsroom.on_events = sender.wake
            newsroom.on_webhooks = sender.webhooks_changed
            # /media is served from here: StaticFiles answers 500 while it does not exist.
            settings.media_dir().mkdir(parents=True, exist_ok=True)
            app.state.liveblog = Liveblog(
                settings=settings,
                db=db,
                hub=hub,
                renderer=renderer,
                csrf=Csrf(secret),
                newsroom=newsroom,
                presence=presence,
                stats=stats,
                media=media,
                fetcher=fetcher,
                embeds=embeds,
                login_throttle=login_throttle(settings),
                live=live,
                desk_channel=staff_channel,
                metrics=metrics,
            )
            app.state.live = live  # what the stream endpoint reads, and all it reads
            yield

    routes = [
        Route("/healthz", healthz, name="healthz"),
        *reader.routes,
        *searching.routes,
        *crawlers.routes,
        live_routing.route(stream_endpoint),
        *desk.routes,
        *desk_articles.routes,
        *accounts.routes,
        *desk_webhooks.routes,
        *desk_transfer.routes,
        *history.routes,
        *api.routes,
        *openapi.routes,
        *embed.routes,
        *embed_frame.routes,
        *authors.routes,
        *categories.routes,
        *uploads.routes,
        *desk_stats.routes,
        *desk_channel.routes,
        # Its own Mount, apart from the stream's path: fingerprints, compression, 304s.
        Mount("/static", assets, name="static"),
        # Uploaded images; with LIVEBLOG_MEDIA_URL on a CDN this is its origin.
        Mount("/media", StaticFiles(directory=settings.media_dir(), check_dir=False), name="media"),
    ]
    return LiveblogApp(
        stream_endpoint=stream_endpoint,
        # Each route behind the check its liveblog.policy entry names.
        routes=guard(routes),
        middleware=[
            # Outermost: every log line of the request names it (docs/operations.md).
            Middleware(RequestId),
            # Next, so every response gets the headers (413 too). Streams, served
            # outside this list, send the same ones themselves (liveblog/live/routing.py).
            Middleware(
                SecurityHeaders,
                https=settings.https,
                frame_base=settings.frames_base(),
            ),
            Middleware(FrameHostOnly, frame_url=settings.embed_frame_url),
            Middleware(
                BodySizeLimit,
                max_bytes=settings.max_body_bytes,
                uploads=uploads.UPLOAD_PATHS,
                max_upload_bytes=settings.max_upload_bytes,
            ),
            Middleware(PublicReadCors),
            Middleware(FaviconAlias),
            Middleware(CompressPages),  # static files come compressed already
        ],
        exception_handlers={
            HTTPException: http_error,
            LoginRequired: login_required,
            BodyTooLarge: body_too_large,
            Exception: server_error_handler(
                https=settings.https, frame_base=settings.frames_base()
            ),
        },
        lifespan=lifespan,
    )


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


ServiceT = TypeVar("ServiceT", bound=Service)


async def started(services: contextlib.AsyncExitStack, service: ServiceT) -> ServiceT:
    """Start ``service`` and leave its stop to the exit stack: a service that fails to
    start has nothing to stop, and everything started before it is stopped."""
    await service.start()
    services.push_async_callback(service.stop)
    return service


async def healthz(request: Request) -> Response:
    liveblog = get_liveblog(request)
    checks = {"database": "ok", "broadcast": "ok"}
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            await liveblog.db.ping()
    except Exception as exc:  # report, don't crash: this is what monitoring reads
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await liveblog.hub.check()
    except Exception as exc:
        checks["broadcast"] = f"error: {exc}"
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
        return redirect(desk.login_url(request, urls.path(request, "desk_home")))
    return redirect(desk.login_url(request, exc.next_path))


async def body_too_large(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    message = str(exc)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=413)
    return Response(message, status_code=413, media_type="text/plain")


def server_error_handler(
    *, https: bool, frame_base: str | None = None
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The answer to an exception no view handled: a plain 500, never a traceback.

    Starlette's ServerErrorMiddleware calls it from outside the middleware list, so
    SecurityHeaders never sees this response: it carries the headers itself. It does
    not log: the middleware re-raises once the answer is sent, and the server logs the
    traceback (at ERROR, once); logging here as well would log every failure twice.
    """

    async def server_error(request: Request, exc: Exception) -> Response:
        frames = frame_source(frame_base)
        headers = {
            **headers_for(request.url.path, https=https, frame_src=frames),
            "Cache-Control": "no-store",
        }
        failed = request_id.current()  # outside RequestId: the id it set is still current
        if failed is not None:
            headers["X-Request-ID"] = failed
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": SERVER_ERROR}, status_code=500, headers=headers)
        # Plain text, not the error page: that one reads the database and the templates,
        # which may be what just failed.
        return PlainTextResponse(SERVER_ERROR, status_code=500, headers=headers)

    return server_error


def login_throttle(settings: Settings) -> LoginThrottle:
    window = settings.login_window_seconds
    return LoginThrottle(
        per_account=MemoryLimiter(limit=settings.login_attempts_per_account, window=window),
        per_address=MemoryLimiter(limit=settings.login_attempts_per_address, window=window),
    )


def app_from_environment() -> LiveblogApp:
    """For ``uvicorn --factory liveblog.app:app_from_environment`` (and ``serve --reload``)."""
    tune_for_serving()  # this process serves the app: see liveblog/gc_tuning.py
    return create_app(Settings())
