"""The stream tests whose outcome the database decides, again on PostgreSQL (a fresh
database per test): live delivery, edits, pins and deletes, the end of a story, replay
after Last-Event-ID, drafts. Parsing and heartbeat tests stay on SQLite only."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveblog.settings import Settings
from tests.services import postgres_database, postgres_settings, postgres_template
from tests.test_stream import (
    HEARTBEAT,
    api,
    reader,
    reporter,
    story,
    test_changes_after_the_end_are_replayed_and_the_stream_still_closes,
    test_draft_story_streams_only_for_editors,
    test_edit_pin_and_delete_events,
    test_ended_story_replays_its_end_then_answers_204,
    test_reconnect_replays_exactly_the_missed_events,
    test_story_end_is_the_last_event_and_closes_the_stream,
    test_update_posted_through_api_reaches_stream,
    test_update_posted_through_desk_form_reaches_stream,
)

pytestmark = pytest.mark.anyio

__all__ = [
    "api",  # fixtures
    "postgres_database",
    "postgres_template",
    "reader",
    "reporter",
    "story",
    "test_changes_after_the_end_are_replayed_and_the_stream_still_closes",
    "test_draft_story_streams_only_for_editors",
    "test_edit_pin_and_delete_events",
    "test_ended_story_replays_its_end_then_answers_204",
    "test_reconnect_replays_exactly_the_missed_events",
    "test_story_end_is_the_last_event_and_closes_the_stream",
    "test_update_posted_through_api_reaches_stream",
    "test_update_posted_through_desk_form_reaches_stream",
]


@pytest.fixture
def settings(tmp_path: Path, postgres_database: str) -> Settings:
    return postgres_settings(tmp_path, postgres_database, heartbeat_interval=HEARTBEAT)
