"""Webhooks from real ``liveblog serve`` processes on PostgreSQL (docs/integrations.md):
a process killed with SIGKILL in the middle of a burst loses no event and repeats at
most the one it was delivering (same ``webhook-id``: at least once); two processes
deliver each event to an endpoint exactly once, in the order of the story's log.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from liveblog.app import create_app
from liveblog.settings import Settings
from tests.factories import create_story, post_update
from tests.services import postgres_database, postgres_settings, postgres_template
from tests.support import Editor, bearer, make_editor, run_server
from tests.topology import running_workers
from tests.webhook_receiver import Receiver

__all__ = ["postgres_database", "postgres_template"]  # fixtures

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
WAIT = 60.0


@pytest.fixture
def settings(tmp_path: Path, postgres_database: str) -> Settings:
    return postgres_settings(tmp_path, postgres_database, broadcast_url=postgres_database)


async def admin_of(settings: Settings) -> Editor:
    app = create_app(settings.model_copy(update={"broadcast_url": "memory://"}))
    async with app.router.lifespan_context(app):
        return await make_editor(app, "ada", role="admin")


def worker_env(hook: str) -> dict[str, str]:
    return {
        "LIVEBLOG_FETCH_ALLOW_HOSTS": hook.split("/")[2],
        "LIVEBLOG_WEBHOOK_POLL": "0.2",
        "LIVEBLOG_WEBHOOK_RETRY_BASE": "0.3",
    }


async def until(check: object, what: str) -> None:
    assert callable(check)
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def seqs_in_first_arrival_order(receiver: Receiver) -> list[int]:
    return [delivery.document["data"]["seq"] for delivery in receiver.unique()]


async def test_a_killed_process_loses_nothing_and_repeats_at_most_what_was_in_flight(
    settings: Settings,
) -> None:
    admin = await admin_of(settings)
    receiver = Receiver()
    receiver.delay = 0.05  # a slow receiver: the burst is committed long before delivered
    with run_server(receiver.app()) as endpoint:
        hook = f"{endpoint.url}/hook"
        with running_workers(settings, "a", env=worker_env(hook)) as (worker,):
            async with httpx.AsyncClient(
                base_url=worker.url, headers=bearer(admin.token), timeout=30
            ) as api:
                made = await api.post("/api/webhooks", json={"url": hook})
                assert made.status_code == 201, made.text
                await create_story(api, "storm")
                for n in range(40):
                    await post_update(api, "storm", f"Burst {n}")
            await until(lambda: len(receiver.deliveries) >= 8, "the first deliveries")
            worker.kill()  # SIGKILL: mid-burst, mid-delivery perhaps
            delivered_before = len(receiver.deliveries)
        assert delivered_before < 40, "the burst was over before the kill: nothing tested"
        with running_workers(settings, "b", env=worker_env(hook)):
            await until(lambda: len(receiver.unique()) == 40, "all 40 after the restart")
            await asyncio.sleep(0.6)  # a few more rounds: nothing else may come
    assert seqs_in_first_arrival_order(receiver) == list(range(1, 41))
    # At least once: the event being delivered at the kill may come twice, no more.
    assert len(receiver.deliveries) - 40 <= 1, len(receiver.deliveries)


async def test_two_processes_deliver_each_event_once_in_order(settings: Settings) -> None:
    admin = await admin_of(settings)
    receiver = Receiver()
    with run_server(receiver.app()) as endpoint:
        hook = f"{endpoint.url}/hook"
        with running_workers(settings, "a", "b", env=worker_env(hook)) as workers:
            clients = [
                httpx.AsyncClient(base_url=w.url, headers=bearer(admin.token), timeout=30)
                for w in workers
            ]
            try:
                made = await clients[0].post("/api/webhooks", json={"url": hook})
                assert made.status_code == 201, made.text
                await create_story(clients[0], "storm")
                await create_story(clients[1], "flood")

                async def poster(slug: str) -> None:
                    for n in range(30):
                        await post_update(clients[n % 2], slug, f"{slug} {n}")

                await asyncio.gather(poster("storm"), poster("flood"))
                await until(lambda: len(receiver.unique()) == 60, "60 deliveries")
                await asyncio.sleep(1.0)  # both processes poll again: nothing more
            finally:
                for client in clients:
                    await client.aclose()
    assert len(receiver.deliveries) == 60  # each once: no duplicate at all
    for slug in ("storm", "flood"):
        seqs = [
            d.document["data"]["seq"]
            for d in receiver.deliveries
            if d.document["data"]["story"] == slug
        ]
        assert seqs == list(range(1, 31)), slug
