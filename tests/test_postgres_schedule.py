"""Scheduled updates with several worker PROCESSES on PostgreSQL (docs/newsroom.md): 50
updates scheduled for the same second, through three processes, are each published
exactly once, with gap-free seqs; and a schedule that falls due while no process runs
is published (once) when they start."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from liveblog.app import create_app
from liveblog.settings import Settings
from tests.services import postgres_database, postgres_settings, postgres_template, rows
from tests.support import Editor, bearer
from tests.topology import Worker, create_story, prepare, running_workers

__all__ = ["postgres_database", "postgres_template"]  # fixtures

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SLUG = "count"
WORKERS = ("a", "b", "c")
SCHEDULES = 50


@pytest.fixture
def settings(tmp_path: Path, postgres_database: str) -> Settings:
    return postgres_settings(tmp_path, postgres_database, broadcast_url=postgres_database)


def at_second(seconds_ahead: int) -> str:
    """The start of a whole second at least ``seconds_ahead`` seconds from now."""
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds_ahead + 1)
    return moment.isoformat()


async def schedule(base_url: str, editor: Editor, body: str, when: str) -> int:
    async with httpx.AsyncClient(base_url=base_url, headers=bearer(editor.token)) as api:
        made = await api.post(
            f"/api/stories/{SLUG}/updates", json={"body": body, "publish_at": when}
        )
    assert made.status_code == 201, made.text
    update_id: int = made.json()["id"]
    return update_id


def published_log_lines(workers: list[Worker]) -> dict[str, int]:
    return {
        worker.name: worker.log.read_text().count("scheduler: published update")
        for worker in workers
    }


async def until_none_scheduled(settings: Settings, *, within: float = 30) -> None:
    async with asyncio.timeout(within):
        while True:
            if not rows(settings, "SELECT id FROM \"update\" WHERE state = 'scheduled'"):
                return
            await asyncio.sleep(0.1)


def check_published_once(settings: Settings, ids: list[int]) -> None:
    """Each of ``ids`` published once: one ``update`` event each, one audit entry each,
    and the story's log gap-free from 1."""
    events = rows(
        settings,
        "SELECT e.update_id, e.seq FROM story_event e JOIN story s ON s.id = e.story_id "
        "WHERE s.slug = ? AND e.kind = 'update' ORDER BY e.seq",
        SLUG,
    )
    assert sorted(update_id for update_id, _ in events) == sorted(ids)
    seqs = [seq for (seq,) in rows(settings, "SELECT seq FROM story_event ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    published = rows(
        settings,
        "SELECT update_id, count(*) FROM audit_entry WHERE action = 'published' GROUP BY update_id",
    )
    assert dict(published) == dict.fromkeys(ids, 1)
    states = rows(settings, 'SELECT DISTINCT state FROM "update"')
    assert states == [("published",)]


async def test_three_processes_publish_fifty_schedules_for_one_second_once_each(
    settings: Settings,
) -> None:
    editor = await prepare(settings)
    with running_workers(settings, *WORKERS) as workers:
        await create_story(workers[0].url, editor, SLUG)
        when = at_second(4)
        ids = await asyncio.gather(
            *(
                schedule(workers[n % len(workers)].url, editor, f"Scheduled {n}", when)
                for n in range(SCHEDULES)
            )
        )
        await until_none_scheduled(settings)
        await asyncio.sleep(0.5)  # any second publishing would have happened by now
        by_worker = published_log_lines(workers)
    check_published_once(settings, ids)
    assert sum(by_worker.values()) == SCHEDULES, by_worker
    # Published in the order they were scheduled: one time, so by id.
    order = rows(
        settings,
        "SELECT id FROM \"update\" WHERE state = 'published' ORDER BY published_seq",
    )
    assert [update_id for (update_id,) in order] == sorted(ids)


async def test_a_schedule_due_while_no_process_runs_is_published_once_on_start(
    settings: Settings,
) -> None:
    editor = await prepare(settings)
    # Scheduled through an app that then stops: nothing runs when it falls due.
    app: Starlette = create_app(settings.model_copy(update={"broadcast_url": "memory://"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=bearer(editor.token)
        ) as api:
            created = await api.post("/api/stories", json={"title": "Count", "slug": SLUG})
            assert created.status_code == 201
            due = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
            made = await api.post(
                f"/api/stories/{SLUG}/updates", json={"body": "Missed", "publish_at": due}
            )
            assert made.status_code == 201
    await asyncio.sleep(1.5)
    assert rows(settings, 'SELECT state FROM "update"') == [("scheduled",)]
    with running_workers(settings, *WORKERS) as workers:
        await until_none_scheduled(settings)
        await asyncio.sleep(0.5)
        by_worker = published_log_lines(workers)
    check_published_once(settings, [made.json()["id"]])
    assert sum(by_worker.values()) == 1, by_worker
    (detail,) = rows(settings, "SELECT detail FROM audit_entry WHERE action = 'published'")[0]
    assert detail.startswith(f"scheduled for {datetime.fromisoformat(due).isoformat()}")
    assert "s late" in detail
