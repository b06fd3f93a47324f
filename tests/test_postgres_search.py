"""Search, the sitemaps and robots.txt again on PostgreSQL (a fresh database per test):
the tsvector expressions and their GIN indexes instead of SQLite's FTS5 table."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from liveblog.db import Database
from liveblog.settings import Settings
from tests.services import postgres_database, postgres_settings, postgres_template
from tests.test_search import (
    test_a_title_match_ranks_above_a_body_match,
    test_no_query_fails,
    test_nothing_unpublished_is_searchable,
    test_paging_without_a_script,
    test_results_link_to_the_update_permalink_and_words_are_stemmed,
)
from tests.test_sitemaps import (
    test_robots_txt_points_at_both_sitemaps,
    test_the_news_sitemap_lists_the_last_two_days_and_validates,
    test_the_sitemap_lists_what_readers_see_and_validates,
    test_the_sitemaps_answer_revalidation_with_304,
)

pytestmark = pytest.mark.anyio

__all__ = [
    "postgres_database",  # fixtures
    "postgres_template",
    "test_a_title_match_ranks_above_a_body_match",
    "test_no_query_fails",
    "test_nothing_unpublished_is_searchable",
    "test_paging_without_a_script",
    "test_results_link_to_the_update_permalink_and_words_are_stemmed",
    "test_robots_txt_points_at_both_sitemaps",
    "test_the_news_sitemap_lists_the_last_two_days_and_validates",
    "test_the_sitemap_lists_what_readers_see_and_validates",
    "test_the_sitemaps_answer_revalidation_with_304",
]


@pytest.fixture
def settings(tmp_path: Path, postgres_database: str) -> Settings:
    return postgres_settings(tmp_path, postgres_database)


async def test_the_query_uses_the_gin_indexes(settings: Settings) -> None:
    """The search's condition is the indexed one (else every search would read every
    row): the planner picks the index once sequential scans are off."""
    db = Database(settings.sqlalchemy_url())
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SET enable_seqscan = off"))
            for table, index in (('"update"', "ix_update_search"), ("story", "ix_story_search")):
                plan = await conn.execute(
                    text(
                        f"EXPLAIN SELECT 1 FROM {table} WHERE search_vector "
                        "@@ plainto_tsquery('english'::regconfig, 'flood')"
                    )
                )
                assert index in "\n".join(row[0] for row in plan), table
    finally:
        await db.close()
