"""tests/test_stream.py again, on PostgreSQL (a fresh database per test): live delivery,
replay after Last-Event-ID, the end of a story, heartbeats."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveblog.settings import Settings
from tests.services import postgres_database, postgres_settings, postgres_template
from tests.test_stream import *  # noqa: F403
from tests.test_stream import HEARTBEAT

__all__ = ["postgres_database", "postgres_template"]  # fixtures


# Replaces test_stream's fixture of the same name, star-imported above.
@pytest.fixture  # type: ignore[no-redef]
def settings(tmp_path: Path, postgres_database: str) -> Settings:
    return postgres_settings(tmp_path, postgres_database, heartbeat_interval=HEARTBEAT)
