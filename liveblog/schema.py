"""Schema migrations (Alembic), applied through the app's own async engine.

``liveblog db upgrade`` brings a database to the newest revision. ``serve`` checks first:
a brand-new, empty database is set up on the spot (so the embedded default needs no
step), but an existing database behind the code is refused with the command to run,
because migrating a production database should be a deliberate act.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaState(StrEnum):
    empty = "empty"  # no tables at all: a new database
    current = "current"
    behind = "behind"  # needs `liveblog db upgrade`
    unknown = "unknown"  # tables, but not at a revision this code knows (newer code ran?)


class SchemaOutOfDate(RuntimeError):
    pass


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _heads() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def _state(connection: Connection) -> SchemaState:
    current = set(MigrationContext.configure(connection).get_current_heads())
    if not current:
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
        return SchemaState.empty if not tables else SchemaState.unknown
    if current == _heads():
        return SchemaState.current
    script = ScriptDirectory.from_config(alembic_config())
    known = {revision.revision for revision in script.walk_revisions()}
    return SchemaState.behind if current <= known else SchemaState.unknown


def _upgrade(connection: Connection) -> None:
    # "heads": parallel branches of migrations (merged later) are all applied.
    command.upgrade(alembic_config(connection), "heads")


async def schema_state(engine: AsyncEngine) -> SchemaState:
    async with engine.connect() as conn:
        return await conn.run_sync(_state)


async def upgrade(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


async def ensure_current(engine: AsyncEngine, *, migrate: bool) -> None:
    """Start-up check: set up an empty database, refuse an outdated one unless told."""
    state = await schema_state(engine)
    if state == SchemaState.current:
        return
    if state == SchemaState.empty or (state == SchemaState.behind and migrate):
        await upgrade(engine)
        return
    if state == SchemaState.behind:
        raise SchemaOutOfDate(
            "The database schema is older than this version of liveblog. "
            "Run 'liveblog db upgrade' (back up first), or start with 'liveblog serve --migrate'."
        )
    raise SchemaOutOfDate(
        "The database holds tables at a schema revision this version of liveblog does not "
        "know (was it used by a newer version?). Refusing to start."
    )
