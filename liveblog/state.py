"""The per-app container of resources, opened by the lifespan and reached from requests."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from liveblog.auth import Csrf
from liveblog.db import Database
from liveblog.desk_channel import DeskChannel
from liveblog.embeds.resolver import Embeds
from liveblog.fetcher import Fetcher
from liveblog.hub import Hub
from liveblog.hub.presence import Presence
from liveblog.live.service import Live
from liveblog.media import MediaStore
from liveblog.metrics import Metrics
from liveblog.newsroom import Newsroom
from liveblog.ratelimit import LoginThrottle
from liveblog.render import Renderer
from liveblog.settings import Settings
from liveblog.stats import ReaderStats


@dataclass
class Liveblog:
    settings: Settings
    db: Database
    hub: Hub
    renderer: Renderer
    csrf: Csrf
    newsroom: Newsroom
    presence: Presence
    stats: ReaderStats
    media: MediaStore
    login_throttle: LoginThrottle
    live: Live  # the reader stream (its endpoint reads it from app.state.live)
    desk_channel: DeskChannel  # staff-only: presence, soft locks, "changed" signals
    fetcher: Fetcher  # every server-side fetch of an address someone typed
    embeds: Embeds | None  # links on their own line -> embeds (docs/embeds.md)
    metrics: Metrics  # Prometheus metrics, served apart (docs/operations.md)


def get_liveblog(conn: HTTPConnection) -> Liveblog:
    liveblog: Liveblog = conn.app.state.liveblog
    return liveblog
