"""Settings, read from ``LIVEBLOG_*`` environment variables (or passed in by tests).

Nothing here is read at import time: ``Settings()`` is built by the CLI or by the
uvicorn factory, and handed to ``create_app``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_FILE = "secret_key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIVEBLOG_", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="Where the SQLite database and the generated secret key live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to a SQLite file in the data directory.",
    )
    broadcast_url: str = Field(
        default="memory://",
        description="Broadcast backend: memory:// (one process).",
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

    @field_validator("broadcast_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        if scheme not in {"memory"}:
            raise ValueError(f"unsupported broadcast backend {scheme!r}; use memory://")
        return value

    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL for the configured (or default) database."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'liveblog.db'}"
        if url.startswith("sqlite:"):
            return "sqlite+aiosqlite:" + url[len("sqlite:") :]
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
