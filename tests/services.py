"""The machine's real PostgreSQL and Redis, for the tests that need them.

Each test gets its own PostgreSQL database (created from the ``test`` database, dropped
afterwards) and its own Redis channel namespace, so tests share no state, not even with
another engineer's test run on the same servers. Where a service is absent the test is
skipped, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import shutil
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from liveblog import schema
from liveblog.db import Database
from liveblog.settings import Settings
from tests.support import settings_for

POSTGRES_URL = os.environ.get(
    "LIVEBLOG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("LIVEBLOG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def under_ci() -> bool:
    """The one test of "are we under CI" (``.ci/run`` sets ``CI=true``)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_unless_ci(why: str) -> NoReturn:
    """Skip locally because ``why``; under CI fail with it: CI never passes by skipping."""
    if under_ci():
        pytest.fail(f"under CI this must not be skipped: {why}")
    pytest.skip(why)


def unavailable(what: str) -> NoReturn:
    """Skip locally; under CI a missing service or tool fails the test."""
    if under_ci():
        pytest.fail(f"{what} is required under CI (.ci/run starts or installs it)")
    pytest.skip(f"{what} is not available")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or default_port)
    try:
        with socket.create_connection(address, 2):
            return True
    except OSError:
        return False


@functools.cache
def postgres_up() -> bool:
    if not _reachable(POSTGRES_URL, 5432):
        return False
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


@functools.cache
def redis_up() -> bool:
    return _reachable(REDIS_URL, 6379)


def require_postgres() -> None:
    if not postgres_up():
        unavailable(f"PostgreSQL at {POSTGRES_URL}")


def require_redis() -> None:
    if not redis_up():
        unavailable(f"Redis at {REDIS_URL}")


def require_tool(name: str, path: str | None = None) -> str:
    found = shutil.which(name, path=path)
    if found is None:
        unavailable(f"the {name} command")
    return found


def database_url(name: str) -> str:
    """``POSTGRES_URL`` with its database swapped for ``name``."""
    parts = urlsplit(POSTGRES_URL)
    return parts._replace(path="/" + name).geturl()


@contextmanager
def fresh_postgres_database(template: str | None = None) -> Iterator[str]:
    """A new database on the test server (empty, or a copy of ``template``); its URL.
    Dropped afterwards."""
    require_postgres()
    name = f"test_{secrets.token_hex(6)}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(create)
    try:
        yield database_url(name)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def redis_namespace_url(url: str = REDIS_URL) -> str:
    """A Redis broadcast URL with a namespace of its own (channels are server-wide)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}namespace=test-{secrets.token_hex(6)}"


def rows(settings: Settings, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run raw SQL on the app's database, past the application: SQLite file or
    PostgreSQL alike (write ``?`` placeholders)."""
    return _raw_sql(settings, query, params, commit=False)


def execute(settings: Settings, statement: str, *params: Any) -> None:
    """Run a raw SQL write like ``rows`` and commit it. A statement the database refuses
    raises the driver's own error (``sqlite3`` or ``psycopg``), and changes nothing."""
    _raw_sql(settings, statement, params, commit=True)


def _raw_sql(
    settings: Settings, statement: str, params: tuple[Any, ...], *, commit: bool
) -> list[tuple[Any, ...]]:
    url = settings.database_url
    if url is None or url.startswith("sqlite"):
        path = settings.data_dir / "liveblog.db" if url is None else url.split(":///", 1)[1]
        with closing(sqlite3.connect(path)) as conn:
            found = conn.execute(statement, params).fetchall()
            if commit:
                conn.commit()
            return found
    # psycopg's connection block commits on the way out (and rolls back on an error).
    with psycopg.connect(url.replace("postgresql+psycopg:", "postgresql:")) as conn:
        cursor = conn.execute(statement.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description is not None else []


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database migrated once per test session, copied for each test: copying is
    quicker than migrating every new database."""
    with fresh_postgres_database() as url:

        async def migrate() -> None:
            db = Database(Settings(database_url=url).sqlalchemy_url())
            try:
                await schema.upgrade(db.engine)
            finally:
                await db.close()  # a template must have no open connections

        asyncio.run(migrate())
        yield urlsplit(url).path.lstrip("/")


@pytest.fixture
def postgres_database(postgres_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test (import this fixture and
    ``postgres_template`` where needed)."""
    with fresh_postgres_database(template=postgres_template) as url:
        yield url


def postgres_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    return settings_for(data_dir, database_url=database_url, **overrides)
