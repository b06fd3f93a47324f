"""The newsroom's migrations on a database with data in it, on SQLite and PostgreSQL:
0005 gives every published update its place in readers' order from the event log (the
order live readers saw, not the id order); 0004 and 0005 go down to 0003 and up again,
ending at exactly the schema the models describe."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Connection, inspect, text

from liveblog import schema, search
from liveblog.db import Database
from liveblog.models import AuditAction
from tests.services import fresh_postgres_database
from tests.test_schema import _diff

pytestmark = pytest.mark.anyio

T = datetime(2026, 11, 5, 20, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/migrations.db"
        return
    with fresh_postgres_database() as url:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)


def migrate(connection: Connection, target: str) -> None:
    config = schema.alembic_config(connection)
    current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if current is not None and target != "head" and current > target:
        command.downgrade(config, target)
    else:
        command.upgrade(config, target)


def fill_at_0004(connection: Connection) -> None:
    """A story as it stood at revision 0004: update 1 was submitted first and published
    last (its event is seq 3), update 4 still waits in the queue."""
    run = connection.execute
    run(
        text(
            'INSERT INTO "user" (id, username, display_name, password_hash, role, active, '
            "created_at) VALUES (1, 'alice', 'Alice', 'x', 'editor', true, :t)"
        ),
        {"t": T},
    )
    run(
        text(
            "INSERT INTO story (id, slug, title, summary, status, breaking, last_seq, "
            "created_at, updated_at, page_views, peak_readers) "
            "VALUES (1, 'vote', 'Vote', '', 'live', false, 3, :t, :t, 0, 0)"
        ),
        {"t": T},
    )
    for update_id, state in (
        (1, "published"),
        (2, "published"),
        (3, "published"),
        (4, "submitted"),
    ):
        run(
            text(
                'INSERT INTO "update" (id, story_id, author_id, body, body_html, key_event, '
                "pinned, created_at, state, version) "
                "VALUES (:id, 1, 1, 'b', '<p>b</p>', false, false, :t, :state, 1)"
            ),
            {"id": update_id, "t": T, "state": state},
        )
    for seq, update_id in ((1, 2), (2, 3), (3, 1)):
        run(
            text(
                "INSERT INTO story_event (story_id, seq, kind, update_id, data, closes, "
                "created_at) VALUES (1, :seq, 'update', :id, '{}', false, :t)"
            ),
            {"seq": seq, "id": update_id, "t": T},
        )
    # A later correction of update 2 must not move it.
    run(
        text(
            "INSERT INTO story_event (story_id, seq, kind, update_id, data, closes, created_at) "
            "VALUES (1, 4, 'edit', 2, '{}', false, :t)"
        ),
        {"t": T},
    )


def places(connection: Connection) -> dict[int, int | None]:
    found = connection.execute(text('SELECT id, published_seq FROM "update" ORDER BY id'))
    return {update_id: seq for update_id, seq in found}


def columns(connection: Connection, table: str) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns(table)}


async def test_0005_orders_what_was_published_by_its_event_and_all_go_down_and_up(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(schema.alembic_config(c), "0004"))
            await conn.run_sync(fill_at_0004)
        async with db.engine.begin() as conn:
            await conn.run_sync(migrate, "head")
        async with db.engine.connect() as conn:
            assert await conn.run_sync(places) == {1: 3, 2: 1, 3: 2, 4: None}
            assert await conn.run_sync(_diff) == []
        # Down past the newsroom (0004 and 0005) and up again: the data stays.
        async with db.engine.begin() as conn:
            await conn.run_sync(migrate, "0003")
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert {"audit_entry", "story_team"}.isdisjoint(names)
            update_columns = await conn.run_sync(columns, "update")
            assert {"state", "version", "published_seq", "publish_at"}.isdisjoint(update_columns)
            count = await conn.execute(text('SELECT count(*) FROM "update"'))
            assert count.scalar_one() == 4
        async with db.engine.begin() as conn:
            await conn.run_sync(migrate, "head")
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            if conn.dialect.name == "postgresql":
                # The audit actions the migration wrote out are the models' (a new one
                # needs a revision that adds it to the type).
                labels = await conn.execute(
                    text(
                        "SELECT enumlabel FROM pg_enum JOIN pg_type ON pg_type.oid = enumtypid "
                        "WHERE typname = 'auditaction' ORDER BY enumsortorder"
                    )
                )
                assert [label for (label,) in labels] == [a.value for a in AuditAction]
            # 0004 takes every update it finds for one readers saw: update 4 is
            # published now, with no event to place it by: first in time.
            assert await conn.run_sync(places) == {1: 3, 2: 1, 3: 2, 4: 0}
    finally:
        await db.close()


async def test_0007_searches_the_lead_and_goes_down_and_up(database_url: str) -> None:
    """0007 rebuilds the search index with the story's lead (SQLite: the FTS5 table and
    its triggers; PostgreSQL: the story's search_vector); down to 0006 the lead leaves
    the index and the rest still searches; up again it is back, from the data."""
    db = Database(database_url)
    engine = search.engine_for(db.engine.dialect.name, language="english")

    async def found(word: str) -> list[tuple[str, int]]:
        async with db.session() as session:
            return list(await engine.ranked(session, [word], limit=5, offset=0))

    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(schema.alembic_config(c), "0006"))
            await conn.run_sync(fill_at_0004)
        async with db.engine.begin() as conn:
            await conn.run_sync(migrate, "head")
            await conn.execute(text("UPDATE story SET lead = 'The old aqueduct.' WHERE id = 1"))
        assert await found("aqueduct") == [("story", 1)]
        assert await found("vote") == [("story", 1)]
        async with db.engine.begin() as conn:
            await conn.run_sync(migrate, "0006")
        assert await found("aqueduct") == []
        assert await found("vote") == [("story", 1)]
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE story SET title = 'Ballot' WHERE id = 1"))
        assert await found("ballot") == [("story", 1)]
        async with db.engine.begin() as conn:
            await conn.run_sync(migrate, "head")
            await conn.execute(text("UPDATE story SET lead = 'A new aqueduct.' WHERE id = 1"))
        assert await found("aqueduct") == [("story", 1)]
        assert await found("vote") == []
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.close()
