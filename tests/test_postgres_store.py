"""tests/test_store.py again, on PostgreSQL: gap-free sequence numbers under concurrent
writers, rollbacks, the end of a story and the one-pin rule, with real row locks
(``SELECT ... FOR UPDATE``) instead of SQLite's single writer. A fresh database per test."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette

from liveblog.models import Update, utcnow
from liveblog.settings import Settings
from liveblog.state import Liveblog
from tests.services import postgres_database, postgres_settings, postgres_template
from tests.support import Editor
from tests.test_store import *  # noqa: F403
from tests.test_store import (
    new_story,
    new_update,
    pinned,
    query,
    test_the_database_refuses_two_pinned_updates,
)

# Written with sqlite3; its PostgreSQL twin is below.
del test_the_database_refuses_two_pinned_updates

__all__ = ["postgres_database", "postgres_template"]  # fixtures


@pytest.fixture
def settings(tmp_path: Path, postgres_database: str) -> Settings:
    return postgres_settings(tmp_path, postgres_database)


async def test_postgres_refuses_two_pinned_updates(
    app: Starlette, client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    a = await new_update(client, editor, body="A", pinned=True)
    b = await new_update(client, editor, body="B")
    url = settings.database_url
    assert url is not None and url.startswith("postgresql://")

    # Straight SQL, past the application: the partial unique index refuses it.
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute('UPDATE "update" SET pinned = true WHERE id = %s', (b,))
    assert pinned(settings, "flood") == [a]

    liveblog: Liveblog = app.state.liveblog
    [(story_id,)] = query(settings, "SELECT id FROM story WHERE slug = 'flood'")
    with pytest.raises(IntegrityError):
        async with liveblog.db.transaction() as session:
            session.add(
                Update(
                    story_id=story_id,
                    author_id=editor.user_id,
                    body="sneaky",
                    body_html="<p>sneaky</p>",
                    pinned=True,
                )
            )
    assert pinned(settings, "flood") == [a]

    # A deleted update does not hold the pin: the index only counts live rows.
    with psycopg.connect(url) as conn:
        conn.execute('UPDATE "update" SET deleted_at = %s WHERE id = %s', (utcnow(), a))
        conn.execute('UPDATE "update" SET pinned = true WHERE id = %s', (b,))
    assert pinned(settings, "flood") == [b]
