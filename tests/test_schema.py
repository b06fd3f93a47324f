"""Migrations: they build exactly the schema the models describe, and serve checks them."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlmodel import SQLModel

from liveblog import schema, search
from liveblog.app import create_app
from liveblog.cli import main
from liveblog.db import Database
from liveblog.settings import Settings
from tests.support import settings_for


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """An empty data directory (not conftest's copy of a migrated database): these tests
    are about what the app makes of a new or an outdated database."""
    return settings_for(tmp_path)


def _diff(connection: Connection) -> list[object]:
    # The search index (migration 0006) is not in the models: left out, as in env.py.
    opts = {"compare_type": True, "include_name": search.include_name}
    context = MigrationContext.configure(connection, opts=opts)
    return list(compare_metadata(context, SQLModel.metadata))


async def assert_migrations_build_the_models(url: str) -> None:
    """On the empty database at ``url`` (a SQLAlchemy URL), the migrations reach the
    current revision and exactly the schema the models describe."""
    db = Database(url)
    try:
        assert await schema.schema_state(db.engine) == schema.SchemaState.empty
        await schema.upgrade(db.engine)
        assert await schema.schema_state(db.engine) == schema.SchemaState.current
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.close()


async def assert_start_refused(settings: Settings, match: str) -> None:
    """The app will not start on this database: its lifespan raises ``SchemaOutOfDate``."""
    app = create_app(settings)
    with pytest.raises(schema.SchemaOutOfDate, match=match):
        async with app.router.lifespan_context(app):
            pass  # pragma: no cover - the lifespan must refuse before this


@pytest.mark.anyio
async def test_migrations_build_the_schema_the_models_describe(tmp_path: Path) -> None:
    await assert_migrations_build_the_models(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


@pytest.mark.anyio
async def test_a_new_database_is_set_up_when_the_app_starts(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        engine = app.state.liveblog.db.engine
        assert await schema.schema_state(engine) == schema.SchemaState.current


@pytest.mark.anyio
async def test_an_unknown_revision_is_refused(settings: Settings) -> None:
    db = Database(settings.sqlalchemy_url())
    try:
        await schema.upgrade(db.engine)
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'fromthefuture'"))
    finally:
        await db.close()
    await assert_start_refused(settings, match="does not")


def test_db_commands_report_and_upgrade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "status", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "schema: empty"
    assert main(["db", "upgrade", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "schema: empty -> current"
    assert main(["db", "status", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "schema: current"


def _to_first_revision(connection: Connection) -> None:
    from alembic import command

    command.upgrade(schema.alembic_config(connection), "0001")


@pytest.mark.anyio
async def test_an_outdated_database_is_refused_until_upgraded(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(settings.sqlalchemy_url())
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to_first_revision)
        assert await schema.schema_state(db.engine) == schema.SchemaState.behind
    finally:
        await db.close()
    await assert_start_refused(settings, match="liveblog db upgrade")
    # ... and the CLI says the same in one line, with its own exit status.
    # (serve exports its settings to the environment: let monkeypatch restore it.)
    monkeypatch.setenv("LIVEBLOG_DATA_DIR", str(settings.data_dir))
    assert (
        await anyio.to_thread.run_sync(main, ["serve", "--data-dir", str(settings.data_dir)]) == 3
    )
    # With --migrate (LIVEBLOG_MIGRATE) the app upgrades it and starts.
    migrating = create_app(settings.model_copy(update={"migrate": True}))
    async with migrating.router.lifespan_context(migrating):
        engine = migrating.state.liveblog.db.engine
        assert await schema.schema_state(engine) == schema.SchemaState.current
