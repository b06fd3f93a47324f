"""Shared fixtures: a real app on a real SQLite file, driven over HTTP.

``app``/``client`` use httpx's ASGI transport (the lifespan runs for real); ``server``
runs the same app in a real uvicorn on a free port, for streams.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from liveblog.app import create_app
from liveblog.settings import Settings
from tests.support import Editor, LiveServer, make_editor, migrated_settings_for, run_server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The database is a copy of one migrated once per session (tests/test_schema.py
    # starts apps on new and outdated databases).
    return migrated_settings_for(tmp_path)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def editor(app: Starlette) -> Editor:
    return await make_editor(app, "alice", role="editor")


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    with run_server(create_app(settings)) as live:
        yield live
