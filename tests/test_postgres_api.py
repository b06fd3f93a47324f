"""The API tests whose outcome the database decides, again on PostgreSQL (a fresh
database per test): every write endpoint, paging, slugs made unique, conflicts (409),
and refused writes leaving the database unchanged. The request-validation tests (400,
413, 422) are decided before any SQL runs and stay on SQLite only."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveblog.settings import Settings
from tests.services import postgres_database, postgres_settings, postgres_template
from tests.test_api import (
    test_create_story_returns_201_with_location,
    test_delete_update,
    test_duplicate_slug_is_409,
    test_exact_page_has_no_next_before,
    test_list_stories,
    test_pagination_with_before_and_next_before,
    test_patch_story,
    test_patch_update,
    test_post_and_read_an_update,
    test_posting_to_an_ended_story_is_409,
    test_read_only_token_cannot_write_403,
    test_slug_is_made_unique_when_not_given,
    test_the_api_records_who_created_a_story,
    test_unknown_and_deleted_updates_are_404,
    test_update_of_another_story_is_404,
    update,
)

pytestmark = pytest.mark.anyio

__all__ = [
    "postgres_database",  # fixtures
    "postgres_template",
    "test_create_story_returns_201_with_location",
    "test_delete_update",
    "test_duplicate_slug_is_409",
    "test_exact_page_has_no_next_before",
    "test_list_stories",
    "test_pagination_with_before_and_next_before",
    "test_patch_story",
    "test_patch_update",
    "test_post_and_read_an_update",
    "test_posting_to_an_ended_story_is_409",
    "test_read_only_token_cannot_write_403",
    "test_slug_is_made_unique_when_not_given",
    "test_the_api_records_who_created_a_story",
    "test_unknown_and_deleted_updates_are_404",
    "test_update_of_another_story_is_404",
    "update",  # a fixture
]


@pytest.fixture
def settings(tmp_path: Path, postgres_database: str) -> Settings:
    return postgres_settings(tmp_path, postgres_database)
