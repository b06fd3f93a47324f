"""PostgreSQL as the database: URLs, migrations, health, on the machine's real server."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql
from starlette.applications import Starlette

from liveblog.settings import Settings
from tests.services import (
    POSTGRES_URL,
    fresh_postgres_database,
    postgres_database,
    postgres_settings,
    postgres_template,
)
from tests.test_schema import assert_migrations_build_the_models

__all__ = ["postgres_database", "postgres_template"]  # fixtures

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/news", "postgresql+psycopg://u:p@db:5432/news"),
        ("postgres://u@db/news?sslmode=require", "postgresql+psycopg://u@db/news?sslmode=require"),
        ("postgresql+psycopg://u@db/news", "postgresql+psycopg://u@db/news"),
        ("sqlite:///data/x.db", "sqlite+aiosqlite:///data/x.db"),
    ],
)
def test_database_urls_map_to_the_async_drivers(given: str, expected: str) -> None:
    assert Settings(database_url=given).sqlalchemy_url() == expected


async def test_migrations_build_the_schema_the_models_describe_on_postgres() -> None:
    with fresh_postgres_database() as url:
        await assert_migrations_build_the_models(Settings(database_url=url).sqlalchemy_url())


@pytest.fixture
def settings(tmp_path: Path, postgres_database: str) -> Settings:
    # The broadcast on LISTEN/NOTIFY in the same database.
    return postgres_settings(tmp_path, postgres_database, broadcast_url=postgres_database)


async def test_healthz_reports_the_database_and_the_broadcast(
    app: Starlette, client: httpx.AsyncClient, settings: Settings
) -> None:
    healthy = await client.get("/healthz")
    assert healthy.status_code == 200
    assert healthy.json() == {"status": "ok", "database": "ok", "broadcast": "ok"}

    # The database goes away under the running app (its connections are cut too).
    assert settings.database_url is not None
    name = settings.database_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    down = await client.get("/healthz")
    assert down.status_code == 503
    body = down.json()
    assert body["status"] == "error"
    assert body["database"].startswith("error")
    assert body["broadcast"].startswith("error")  # the LISTEN connection was cut too
