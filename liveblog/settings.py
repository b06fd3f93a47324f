"""Settings, read from ``LIVEBLOG_*`` environment variables (or passed in by tests).

Nothing here is read at import time: ``Settings()`` is built by the CLI or by the
uvicorn factory, and handed to ``create_app``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from liveblog.metrics import Address

SECRET_FILE = "secret_key"
BROADCAST_SCHEMES = {"memory", "redis", "rediss", "postgres", "postgresql"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIVEBLOG_", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="Where the SQLite database and the generated secret key live.",
    )
    database_url: str | None = Field(
        default=None,
        description="sqlite:///path or postgresql://user@host/db; defaults to SQLite in data_dir.",
    )
    database_pool_size: int = Field(
        default=5,
        ge=1,
        description="Database connections each process keeps open (PostgreSQL).",
    )
    database_max_overflow: int = Field(
        default=10,
        ge=0,
        description="Extra database connections a process may open at a peak (PostgreSQL).",
    )
    broadcast_url: str = Field(
        default="memory://",
        description="Broadcast backend: memory:// (one process), redis://, postgres://.",
    )
    grip_url: str | None = Field(
        default=None,
        description="GRIP proxy (Pushpin, Fanout) holding the reader streams, or several "
        "separated by commas (each gets every publish); docs/scaling.md.",
    )
    grip_stats_url: str | None = Field(
        default=None,
        description="The GRIP proxies' stats sockets (Pushpin's stats_spec, e.g. "
        "tcp://127.0.0.1:5563; comma-separated): readers held there count in presence.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs cookies and CSRF tokens; generated into the data directory if unset.",
    )
    base_url: str | None = Field(
        default=None,
        description="Public URL of the site (for feeds); defaults to the request's own URL.",
    )
    https: bool = Field(default=False, description="Mark cookies Secure (serving over HTTPS).")
    page_size: int = Field(default=20, ge=1, le=100, description="Updates per reader page.")
    # --- search and sitemaps (docs/search.md) ------------------------------------------
    search_language: str = Field(
        default="english",
        pattern=r"^[a-z_]{1,63}$",
        description="PostgreSQL text search configuration for search (stemming, stop "
        "words); the index is built in it by 'liveblog db upgrade'. SQLite stems English.",
    )
    site_name: str = Field(
        default="liveblog",
        min_length=1,
        max_length=100,
        description="The publication's name, as Google News knows it (news sitemap).",
    )
    site_language: str = Field(
        default="en",
        pattern=r"^[a-z]{2,3}(-[a-z]{2})?$",
        description="The publication's language: an ISO 639 code (news sitemap).",
    )
    stream_backlog: int = Field(
        default=256,
        ge=1,
        description="Frames a stream may fall behind before it is closed (it then resumes).",
    )
    stream_send_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds one write to a reader may block before the stream is closed.",
    )
    heartbeat_interval: float = Field(
        default=15.0, gt=0, description="Seconds between heartbeat comments on a stream."
    )
    retry_ms: int = Field(default=3000, ge=0, description="Reconnect delay hinted to clients.")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body accepted (else 413)."
    )
    migrate: bool = Field(
        default=False, description="Apply pending schema migrations when the server starts."
    )
    session_days: int = Field(default=14, ge=1, description="Editor login lifetime in days.")
    login_attempts_per_account: int = Field(
        default=10, ge=1, description="Login attempts one account may get per login window."
    )
    login_attempts_per_address: int = Field(
        default=100, ge=1, description="Login attempts one client address may make per window."
    )
    login_window_seconds: int = Field(
        default=900, ge=1, description="The sliding window of the login attempt limits."
    )
    max_streams_per_client: int = Field(
        # Off by default: behind a proxy whose address uvicorn does not trust for
        # X-Forwarded-For, every reader shares the proxy's address.
        default=0,
        ge=0,
        description="Concurrent event streams one client address may hold (0: no cap).",
    )
    media_url: str = Field(
        default="/media/",
        description="URL prefix of uploaded images (point it at a CDN or object store later).",
    )
    max_upload_bytes: int = Field(
        default=10_485_760, ge=1024, description="Largest image upload accepted (else 413)."
    )
    # --- link embeds, and every other fetch the server makes (docs/embeds.md) ----------
    fetch_allow_hosts: str = Field(
        default="",
        description="Comma-separated host:port list that server-side fetches (embeds, "
        "webhooks) may reach although they resolve to private or loopback addresses.",
    )
    fetch_timeout: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Seconds a pasted link's provider gets to answer (all its requests "
        "together) before the embed falls back to a plain link card.",
    )
    fetch_host_rate: int = Field(
        default=60,
        ge=1,
        description="Most requests the server's own fetches make to one host in a minute "
        "(more are refused: an embed becomes a plain link card).",
    )
    oembed_providers: Path | None = Field(
        default=None,
        description="A file in oembed.com's providers.json format: oEmbed providers added "
        "to the built-in ones (the whole oembed.com list works as it is).",
    )
    embed_frame_url: str | None = Field(
        default=None,
        description="Address of a second host name for this same site, used only for "
        "embeds' click-through frames (e.g. https://frames.example.org): there a "
        "provider's player may keep its own cookies and storage (docs/embeds.md).",
    )
    webhook_poll: float = Field(
        default=1.0,
        gt=0,
        description="Most seconds between each process's look for webhook deliveries due "
        "(events committed in the same process are delivered at once).",
    )
    webhook_retry_base: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Seconds before a failed webhook delivery is tried again; each "
        "failure in a row doubles it, up to an hour (with +-20 % jitter).",
    )
    presence_interval: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between each process's reader-count broadcasts (desk stats).",
    )
    scheduler_poll: float = Field(
        default=5.0,
        gt=0,
        description="Most seconds between each process's look for due scheduled updates "
        "(schedules made in the same process wake it at once; see docs/newsroom.md).",
    )
    desk_presence_interval: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between each process's report of the desks open on it (who is "
        "on a story's desk); a process silent for three of them is forgotten.",
    )
    # --- what a stranger can push against (docs/security.md, "Limits") ---------------
    stream_db_connections: int = Field(
        default=2,
        ge=1,
        description="Database connections the reader stream path (replays, story look-ups) "
        "may use at once; more readers wait in line. Editors never share them.",
    )
    replay_window: int = Field(
        default=512,
        ge=0,
        description="Newest events per followed story kept in memory, so resuming readers "
        "are replayed without a database read (0: always read the log).",
    )
    replay_cache_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=0,
        description="Encoded replay pages kept in memory, shared by every replaying reader.",
    )
    max_head_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest request head (request line and headers); larger gets 431.",
    )
    head_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client has to send a whole request head; slower gets 408.",
    )
    body_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a request body may go without a byte arriving; slower gets 408.",
    )
    stream_send_buffer: int = Field(
        default=64 * 1024,
        ge=4096,
        description="Kernel send buffer of an event stream's socket, in bytes (Linux doubles "
        "it): what a reader that stops reading can make the server hold.",
    )
    max_json_depth: int = Field(
        default=32, ge=2, description="Deepest nesting of a JSON request body (else 400)."
    )
    image_decode_concurrency: int = Field(
        # One: the worst image allowed (50M RGBA pixels) takes ~380 MiB while decoded,
        # and editors upload seldom enough that a second one can wait a second.
        default=1,
        ge=1,
        description="Image uploads decoded at once; more wait in line.",
    )
    image_decode_queue: int = Field(
        default=8,
        ge=0,
        description="Image uploads that may wait for a decoder; more get 503 with Retry-After.",
    )
    # --- operations (docs/operations.md) --------------------------------------------
    metrics_address: str | None = Field(
        default=None,
        description="host:port of a listener of its own serving Prometheus /metrics (off "
        "by default; never on the site's port). host:first-last gives processes sharing "
        "the setting a port each (serve --workers N widens one port to N).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: uvicorn's lines, as before; json: one JSON object per line "
        "(time, level, logger, message, request_id), the access log too.",
    )

    @field_validator("metrics_address")
    @classmethod
    def _metrics_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return str(Address.parse(value))

    @field_validator("broadcast_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        if scheme not in BROADCAST_SCHEMES:
            raise ValueError(
                f"unsupported broadcast backend {scheme!r}; use memory://, redis:// or postgres://"
            )
        return value

    @field_validator("fetch_allow_hosts")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            host, colon, port = item.rpartition(":")
            if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{item!r} is not host:port (example: localhost:8081)")
        return value

    @model_validator(mode="after")
    def _frames_elsewhere(self) -> Settings:
        site = urlsplit(self.base_url or "").netloc.lower()
        if self.embed_frame_url and site and urlsplit(self.embed_frame_url).netloc == site:
            # The frames' host must hold nothing of the site's: never the site itself.
            raise ValueError("embed_frame_url must be another host than base_url")
        return self

    def frames_base(self) -> str | None:
        """Where embeds' click-through frames are served: their own host, else the site's
        address (None: unknown; pages then allow ``'self'``, liveblog/headers.py)."""
        return self.embed_frame_url or self.base_url

    def allowed_fetch_hosts(self) -> frozenset[str]:
        """``fetch_allow_hosts`` as the fetcher compares it: lowercased ``host:port``."""
        items = (part.strip().lower() for part in self.fetch_allow_hosts.split(","))
        return frozenset(item for item in items if item)

    @field_validator("embed_frame_url")
    @classmethod
    def _frame_origin(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path
            not in (
                "",
                "/",
            )
        ):
            raise ValueError("give a scheme and host only, as https://frames.example.org")
        return f"{parts.scheme}://{parts.netloc}".lower()

    @field_validator("media_url")
    @classmethod
    def _media_url(cls, value: str) -> str:
        if not value.startswith(("/", "https://", "http://")) or value.startswith("//"):
            raise ValueError("media_url must be a path (/media/) or an http(s) URL")
        return value if value.endswith("/") else value + "/"

    def media_dir(self) -> Path:
        """Uploaded images live here, served under ``media_url``."""
        return self.data_dir / "media"

    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL for the configured (or default) database."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'liveblog.db'}"
        if url.startswith("sqlite:"):
            return "sqlite+aiosqlite:" + url[len("sqlite:") :]
        # PostgreSQL through psycopg 3 (async); "postgres://" is what many hosts hand out.
        for plain in ("postgresql:", "postgres:"):
            if url.startswith(plain):
                return "postgresql+psycopg:" + url[len(plain) :]
        return url

    def resolved_secret(self) -> str:
        """The configured secret, or one generated once and kept in the data directory."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / SECRET_FILE
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        # Created with owner-only permissions: the key signs every login.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use its key
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
        return secret
