"""The per-app container of resources, opened by the lifespan and reached from requests."""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment
from starlette.requests import HTTPConnection

from liveblog.auth import Csrf
from liveblog.db import Database
from liveblog.hub import Hub
from liveblog.hub.presence import Presence
from liveblog.media import MediaStore
from liveblog.newsroom import Newsroom
from liveblog.ratelimit import LoginThrottle
from liveblog.render import Renderer
from liveblog.replay import Replays
from liveblog.settings import Settings
from liveblog.stats import ReaderStats
from liveblog.streams import Streams


@dataclass
class Liveblog:
    settings: Settings
    db: Database
    hub: Hub
    templates: Environment
    renderer: Renderer
    csrf: Csrf
    newsroom: Newsroom
    presence: Presence
    stats: ReaderStats
    media: MediaStore
    login_throttle: LoginThrottle
    streams: Streams
    replays: Replays


def get_liveblog(conn: HTTPConnection) -> Liveblog:
    liveblog: Liveblog = conn.app.state.liveblog
    return liveblog
