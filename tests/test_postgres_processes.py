"""Several worker PROCESSES post to one story at once, on PostgreSQL: the row lock on the
story (``SELECT ... FOR UPDATE``, then ``last_seq + 1``) must hand out 1..N with no gap
and no duplicate, and every reader, on any worker, must get all N in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from liveblog.settings import Settings
from tests.factories import end_story, post_update
from tests.services import postgres_database, postgres_settings, postgres_template, rows
from tests.support import bearer
from tests.topology import Reader, create_story, prepare, reading, running_workers

__all__ = ["postgres_database", "postgres_template"]  # fixtures

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SLUG = "election"
WORKERS = ("a", "b", "c")
POSTERS = 12  # concurrent clients
POSTS_EACH = 5


@pytest.fixture
def settings(tmp_path: Path, postgres_database: str) -> Settings:
    # LISTEN/NOTIFY in the same database: PostgreSQL is the only service.
    return postgres_settings(tmp_path, postgres_database, broadcast_url=postgres_database)


async def test_concurrent_posts_from_several_processes_get_gap_free_unique_seqs(
    settings: Settings,
) -> None:
    editor = await prepare(settings)
    with running_workers(settings, *WORKERS) as workers:
        await create_story(workers[0].url, editor, SLUG)
        readers = [Reader(worker.url, SLUG, worker.name) for worker in workers]
        clients = [
            httpx.AsyncClient(base_url=worker.url, headers=bearer(editor.token), timeout=60)
            for worker in workers
        ]
        try:
            async with reading(readers) as tasks:

                async def poster(number: int) -> list[int]:
                    # Each poster spreads its posts over every worker process.
                    ids: list[int] = []
                    for n in range(POSTS_EACH):
                        via = clients[(number + n) % len(clients)]
                        ids.append((await post_update(via, SLUG, f"{number}.{n}"))["id"])
                    return ids

                posted = await asyncio.gather(*(poster(number) for number in range(POSTERS)))
                await end_story(clients[1], SLUG)
                async with asyncio.timeout(60):
                    await asyncio.gather(*tasks)
        finally:
            for client in clients:
                await client.aclose()

    total = POSTERS * POSTS_EACH
    update_ids = {update_id for ids in posted for update_id in ids}
    assert len(update_ids) == total
    logged = rows(
        settings,
        "SELECT e.seq, e.kind, e.update_id FROM story_event e JOIN story s ON s.id = e.story_id"
        " WHERE s.slug = ? ORDER BY e.seq",
        SLUG,
    )
    assert [seq for seq, _, _ in logged] == list(range(1, total + 2))  # the posts, the end
    assert {update_id for _, kind, update_id in logged if kind == "update"} == update_ids
    assert rows(settings, "SELECT last_seq FROM story WHERE slug = ?", SLUG) == [(total + 1,)]
    for reader in readers:
        assert reader.seqs == list(range(1, total + 2)), reader.name
        assert set(reader.update_ids) == update_ids
