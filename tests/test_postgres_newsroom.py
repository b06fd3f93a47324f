"""tests/test_newsroom.py again, on PostgreSQL (a fresh database per test): the workflow,
its refusals, and no unpublished update in any reader output."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveblog.settings import Settings
from tests.services import postgres_database, postgres_settings, postgres_template
from tests.test_newsroom import *  # noqa: F403

__all__ = ["postgres_database", "postgres_template"]  # fixtures


@pytest.fixture
def settings(tmp_path: Path, postgres_database: str) -> Settings:
    return postgres_settings(tmp_path, postgres_database)
