"""The export/import round trip across databases: a story built on SQLite, imported into
a fresh PostgreSQL database, exported from there and imported into a fresh SQLite one;
every reader-visible output is compared byte for byte at each step (tests/test_export.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveblog import transfer
from liveblog.state import Liveblog
from tests.services import postgres_database, postgres_settings, postgres_template, rows
from tests.support import bearer, make_editor, settings_for
from tests.test_export import SLUG, round_trip, running

__all__ = ["postgres_database", "postgres_template"]  # fixtures
pytestmark = pytest.mark.anyio


async def test_round_trip_sqlite_to_postgresql_and_back(
    tmp_path: Path, postgres_database: str
) -> None:
    target = postgres_settings(tmp_path / "pg", postgres_database)
    await round_trip(settings_for(tmp_path / "a"), [target, settings_for(tmp_path / "b")])
    # The ids the import gave explicitly are behind the sequences: the next update and
    # story get new ones instead of colliding.
    (last_update,) = rows(target, 'SELECT MAX(id) FROM "update"')[0]
    async with running(target) as (app, _client):
        liveblog: Liveblog = app.state.liveblog
        async with liveblog.db.transaction() as session:
            document = await transfer.export_story(
                session, SLUG, media_dir=target.media_dir(), media_url=target.media_url
            )
        document["story"]["slug"] = "storm-aurelia-copy"
        document["updates"] = []
        document["events"] = []
        document["audit"] = []
        document["story"]["last_seq"] = 0
        document["story"].update(id=None, status="live", ended_at=None)
        async with liveblog.db.transaction() as session:
            await transfer.import_story(session, document, media_dir=target.media_dir())
    async with running(target) as (app, client):
        editor = await make_editor(app, "dana")
        response = await client.post(
            "/api/stories/storm-aurelia-copy/updates",
            json={"body": "A new update after the import."},
            headers=bearer(editor.token),
        )
        assert response.status_code == 201, response.text
        assert response.json()["id"] > last_update
