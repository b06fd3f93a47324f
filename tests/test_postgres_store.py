"""tests/test_store.py again, on PostgreSQL: gap-free sequence numbers under concurrent
writers, rollbacks, the end of a story and the one-pin rule, with real row locks
(``SELECT ... FOR UPDATE``) instead of SQLite's single writer. A fresh database per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveblog.settings import Settings
from tests.services import postgres_database, postgres_settings, postgres_template
from tests.test_store import *  # noqa: F403

__all__ = ["postgres_database", "postgres_template"]  # fixtures


@pytest.fixture
def settings(tmp_path: Path, postgres_database: str) -> Settings:
    return postgres_settings(tmp_path, postgres_database)
