"""tests/test_articles.py again on PostgreSQL (a fresh database per test): the API
contract, the pages and feeds, the announced start, search of the lead, the desk's
forms, the demo's JSON-LD and the lead's live event. Under CI a missing PostgreSQL
fails (tests/services.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveblog.settings import Settings
from tests.services import postgres_database, postgres_settings, postgres_template
from tests.test_articles import (
    test_a_bad_photo_address_is_refused,
    test_a_lead_change_arrives_live,
    test_a_start_in_the_past_starts_the_story_at_once,
    test_a_story_without_a_lead_or_byline_shows_neither,
    test_an_announced_story_turns_live_with_its_first_update,
    test_author_page_has_bio_photo_and_bylined_stories,
    test_categories_api_creates_with_a_slug_and_lists_in_order,
    test_categories_api_renames_and_deletes,
    test_category_feed_is_atom_of_its_published_stories,
    test_category_page_lists_live_first_and_pages_without_script,
    test_demo_story_json_ld_is_a_complete_live_blog_posting,
    test_desk_categories_page_adds_and_reorders,
    test_desk_categories_page_renames_and_deletes,
    test_desk_coverage_start_is_the_browsers_wall_clock,
    test_desk_settings_form_sets_the_article_fields,
    test_desk_settings_form_sets_the_tags,
    test_home_page_is_a_front_live_first_then_by_category,
    test_only_editors_make_categories,
    test_sitemap_lists_categories_with_published_stories,
    test_story_create_and_patch_take_the_article_fields,
    test_story_page_shows_byline_date_line_categories_and_lead,
    test_tags_are_free_words_apart_from_categories,
    test_the_lead_folds_once_the_story_has_many_updates,
    test_the_lead_is_searched,
    test_the_lead_shows_https_images_only,
    test_the_lead_uses_the_updates_sanitizer,
    test_unknown_names_are_422_and_change_nothing,
)

pytestmark = pytest.mark.anyio

__all__ = [
    "postgres_database",  # fixtures
    "postgres_template",
    "test_a_bad_photo_address_is_refused",
    "test_a_lead_change_arrives_live",
    "test_a_start_in_the_past_starts_the_story_at_once",
    "test_a_story_without_a_lead_or_byline_shows_neither",
    "test_an_announced_story_turns_live_with_its_first_update",
    "test_author_page_has_bio_photo_and_bylined_stories",
    "test_categories_api_creates_with_a_slug_and_lists_in_order",
    "test_categories_api_renames_and_deletes",
    "test_category_feed_is_atom_of_its_published_stories",
    "test_category_page_lists_live_first_and_pages_without_script",
    "test_demo_story_json_ld_is_a_complete_live_blog_posting",
    "test_desk_categories_page_adds_and_reorders",
    "test_desk_categories_page_renames_and_deletes",
    "test_desk_coverage_start_is_the_browsers_wall_clock",
    "test_desk_settings_form_sets_the_article_fields",
    "test_desk_settings_form_sets_the_tags",
    "test_home_page_is_a_front_live_first_then_by_category",
    "test_only_editors_make_categories",
    "test_sitemap_lists_categories_with_published_stories",
    "test_story_create_and_patch_take_the_article_fields",
    "test_story_page_shows_byline_date_line_categories_and_lead",
    "test_tags_are_free_words_apart_from_categories",
    "test_the_lead_folds_once_the_story_has_many_updates",
    "test_the_lead_is_searched",
    "test_the_lead_shows_https_images_only",
    "test_the_lead_uses_the_updates_sanitizer",
    "test_unknown_names_are_422_and_change_nothing",
]


@pytest.fixture
def settings(tmp_path: Path, postgres_database: str) -> Settings:
    return postgres_settings(tmp_path, postgres_database)
