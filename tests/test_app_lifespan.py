"""The app's lifespan: whatever fails to start, everything started before it is closed
(``create_app``'s exit stack), and nothing is left behind: no task, no open file."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from liveblog.app import create_app
from liveblog.settings import Settings
from tests.services import require_redis
from tests.support import settings_for

pytestmark = pytest.mark.anyio


def open_files_under(directory: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (listdir's own descriptor)
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


def secret_key_is_a_directory(data: Path) -> None:
    (data / "secret_key").mkdir()


def media_dir_is_a_file(data: Path) -> None:
    (data / "media").write_text("not a directory")


# A database that cannot be opened is not among them: the lifespan closes it, but
# aiosqlite's worker thread for the failed connection outlives the test's event loop
# and calls into it (seen in a full run), which says nothing about the lifespan.
BREAKAGES: dict[str, Callable[[Path], None]] = {
    "secret key": secret_key_is_a_directory,  # after the database, streams, hub...
    "media directory": media_dir_is_a_file,  # the last step, after the secret key
}


async def start_and_stop(settings: Settings) -> BaseException | None:
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            pass
    except Exception as exc:
        return exc
    return None


async def assert_nothing_left(settings: Settings) -> None:
    before = asyncio.all_tasks()
    failure = await start_and_stop(settings)
    assert failure is not None, "the app started despite the breakage"
    for _ in range(3):  # cancelled tasks finish on the next turns of the loop
        await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()
    assert open_files_under(settings.data_dir) == []


@pytest.mark.parametrize("breakage", BREAKAGES.values(), ids=BREAKAGES.keys())
async def test_a_service_failing_to_start_leaves_nothing_behind(
    tmp_path: Path, breakage: Callable[[Path], None]
) -> None:
    breakage(tmp_path)
    await assert_nothing_left(Settings(data_dir=tmp_path))


async def test_a_broadcast_that_cannot_connect_leaves_nothing_behind(tmp_path: Path) -> None:
    require_redis()  # the client library and a Redis to not reach on another port
    settings = settings_for(tmp_path, broadcast_url="redis://127.0.0.1:1/0")
    await assert_nothing_left(settings)


async def test_a_clean_start_and_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    before = asyncio.all_tasks()
    assert await start_and_stop(Settings(data_dir=tmp_path)) is None
    for _ in range(3):
        await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()
    assert open_files_under(tmp_path) == []
