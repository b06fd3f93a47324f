"""GRIP mode with a real Pushpin (Debian's package, its own zurl) in front of real
``liveblog serve`` processes (``LIVEBLOG_GRIP_URL``, liveblog/live/grip.py).

Readers connect to Pushpin as browsers do (reconnecting with ``Last-Event-ID``); every
test checks that each got every sequence number once, in order: live, on a reconnect,
across a liveblog restart (readers stay on Pushpin, and an event whose publish never
reached Pushpin is recovered from the log), across a Pushpin restart, with two
Pushpins in front of one liveblog (one of them restarted), and with two liveblog
processes on PostgreSQL + Redis behind one Pushpin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from liveblog.settings import Settings
from tests.factories import end_story, last_seq, post_update
from tests.pushpin import Pushpin, pushpin_available, start_worker
from tests.services import (
    REDIS_URL,
    postgres_database,
    postgres_settings,
    postgres_template,
    redis_namespace_url,
    require_redis,
    skip_unless_ci,
)
from tests.support import Editor, bearer, login, migrated_settings_for
from tests.topology import Reader, Worker, create_story, free_port, prepare, reading

__all__ = ["postgres_database", "postgres_template"]  # fixtures

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SLUG = "summit"


@pytest.fixture(autouse=True)
def needs_pushpin() -> None:
    if not pushpin_available():
        skip_unless_ci("Debian's pushpin, zurl and condure (apt-get install pushpin)")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return migrated_settings_for(tmp_path, heartbeat_interval=1.0)


def api(base_url: str, editor: Editor) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, headers=bearer(editor.token), timeout=30)


def grip_env(url: str) -> dict[str, str]:
    return {"LIVEBLOG_GRIP_URL": url}


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Every worker a test starts, stopped at its end (restarted ones too)."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


async def finish(
    readers: list[Reader], tasks: list[asyncio.Task[None]], via: str, ed: Editor
) -> int:
    """End the story and wait until every reader is told 204; the last sequence number."""
    async with api(via, ed) as client:
        await end_story(client, SLUG)
        async with asyncio.timeout(30):
            await asyncio.gather(*tasks)
        return await last_seq(client, SLUG)


async def readers_now(base_url: str, editor: Editor, expected: int) -> None:
    """Wait until the desk's "readers connected now" for the story is ``expected``."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as desk:
        await login(desk, editor)
        seen: list[int] = []
        async with asyncio.timeout(20):
            while not seen or seen[-1] != expected:
                await asyncio.sleep(0.25)
                response = await desk.get(f"/desk/stories/{SLUG}/stats")
                seen.append(response.json()["readers_now"])


def assert_every_seq_once_in_order(readers: list[Reader], last: int, proxy: Pushpin) -> None:
    for reader in readers:
        assert reader.seqs == list(range(1, last + 1)), (reader.name, reader.seqs, proxy.logs())


async def test_live_delivery_and_replay_with_last_event_id(
    settings: Settings, tmp_path: Path, workers: list[Worker]
) -> None:
    editor = await prepare(settings)
    proxy = Pushpin(tmp_path / "pushpin", [])
    # Readers held by Pushpin count as it reports them on its stats socket.
    env = {
        **grip_env(proxy.grip_url),
        "LIVEBLOG_GRIP_STATS_URL": proxy.stats_url,
        "LIVEBLOG_PRESENCE_INTERVAL": "0.25",
    }
    worker = start_worker(settings, "a", env=env)
    workers.append(worker)
    proxy.write_routes([worker])
    proxy.start()
    try:
        await create_story(worker.url, editor, SLUG)
        async with (
            httpx.AsyncClient(base_url=proxy.url, timeout=10) as client,
            client.stream("GET", f"/stories/{SLUG}/events") as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert not any(name.lower().startswith("grip-") for name in response.headers)
        first = Reader(proxy.url, SLUG, "first")
        async with reading([first]) as tasks, api(worker.url, editor) as on_a:
            for n in range(3):
                await post_update(on_a, SLUG, f"update {n}")
            newest = await last_seq(on_a, SLUG)
            await first.wait_for(newest)
            # A reader coming back with Last-Event-ID gets what it missed, then live.
            later = Reader(proxy.url, SLUG, "later")
            later.seqs.append(1)  # as if it had seen event 1
            async with reading([later]) as more:
                await post_update(on_a, SLUG, "after the reconnect")
                # Presence counts the readers Pushpin holds (the first request above
                # has left), as Pushpin reports them.
                await readers_now(worker.url, editor, 2)
                last = await finish([first, later], [*tasks, *more], worker.url, editor)
            await readers_now(worker.url, editor, 0)
        assert first.connections == 1  # live the whole time, never a reconnect
        assert later.connections == 1
        assert_every_seq_once_in_order([first, later], last, proxy)
    finally:
        proxy.stop()


async def test_a_liveblog_restart_loses_nothing_for_readers_held_by_pushpin(
    settings: Settings, tmp_path: Path, workers: list[Worker]
) -> None:
    """The origin restarts on its port while readers stay connected to Pushpin; before,
    an event is committed whose publish never reaches Pushpin, so the first publish
    after the restart shows Pushpin a gap, which it recovers from liveblog's log."""
    editor = await prepare(settings)
    proxy = Pushpin(tmp_path / "pushpin", [])
    a = start_worker(settings, "a", env=grip_env(proxy.grip_url))
    workers.append(a)
    proxy.write_routes([a])
    proxy.start()
    try:
        await create_story(a.url, editor, SLUG)
        readers = [Reader(proxy.url, SLUG, f"reader-{n}") for n in range(3)]
        async with reading(readers) as tasks:
            async with api(a.url, editor) as on_a:
                await post_update(on_a, SLUG, "before the restart")
                before = await last_seq(on_a, SLUG)
            for reader in readers:
                await reader.wait_for(before)
            # Pushpin checks each held stream with the origin about a second after a
            # publish; an origin down then for longer than Pushpin's retries (about a
            # second) ends the streams (readers reconnect and lose nothing, but this
            # test is about staying connected): restart after that check.
            await asyncio.sleep(2)
            # An event committed and never published to Pushpin: a process that died
            # between commit and publish (its GRIP URL leads nowhere, then SIGKILL).
            lost = start_worker(settings, "lost", env=grip_env(f"http://127.0.0.1:{free_port()}"))
            workers.append(lost)
            async with api(lost.url, editor) as on_lost:
                await post_update(on_lost, SLUG, "published to nobody")
            lost.kill()  # its publish never goes out
            a.stop()  # the restart: the readers stay on Pushpin
            a = start_worker(settings, "a-again", port=a.port, env=grip_env(proxy.grip_url))
            workers.append(a)
            async with api(a.url, editor) as on_a:
                await post_update(on_a, SLUG, "after the restart")
                newest = await last_seq(on_a, SLUG)
            for reader in readers:
                await reader.wait_for(newest)
            assert [reader.connections for reader in readers] == [1, 1, 1]  # never dropped
            last = await finish(readers, tasks, a.url, editor)
        assert_every_seq_once_in_order(readers, last, proxy)
    finally:
        proxy.stop()


async def test_a_pushpin_restart_readers_reconnect_and_catch_up(
    settings: Settings, tmp_path: Path, workers: list[Worker]
) -> None:
    editor = await prepare(settings)
    proxy = Pushpin(tmp_path / "pushpin", [])
    a = start_worker(settings, "a", env=grip_env(proxy.grip_url))
    workers.append(a)
    proxy.write_routes([a])
    proxy.start()
    try:
        await create_story(a.url, editor, SLUG)
        readers = [Reader(proxy.url, SLUG, f"reader-{n}") for n in range(3)]
        async with reading(readers) as tasks, api(a.url, editor) as on_a:
            await post_update(on_a, SLUG, "before the restart")
            before = await last_seq(on_a, SLUG)
            for reader in readers:
                await reader.wait_for(before)
            proxy.stop()
            # Posted while Pushpin is down: the publishes are retried until it is back.
            for n in range(3):
                await post_update(on_a, SLUG, f"while pushpin is down {n}")
            proxy.start()
            await post_update(on_a, SLUG, "after the restart")
            newest = await last_seq(on_a, SLUG)
            for reader in readers:
                await reader.wait_for(newest)
            assert all(reader.connections == 2 for reader in readers)
            last = await finish(readers, tasks, a.url, editor)
        assert_every_seq_once_in_order(readers, last, proxy)
    finally:
        proxy.stop()


async def test_two_pushpins_each_get_every_event_and_one_down_holds_back_only_its_own(
    settings: Settings, tmp_path: Path, workers: list[Worker]
) -> None:
    """A cluster of proxies: LIVEBLOG_GRIP_URL names both, and each publish goes to each."""
    editor = await prepare(settings)
    east, west = Pushpin(tmp_path / "east", []), Pushpin(tmp_path / "west", [])
    a = start_worker(settings, "a", env=grip_env(f"{east.grip_url},{west.grip_url}"))
    workers.append(a)
    for proxy in (east, west):
        proxy.write_routes([a])
        proxy.start()
    try:
        await create_story(a.url, editor, SLUG)
        on_east = [Reader(east.url, SLUG, f"east-{n}") for n in range(2)]
        on_west = [Reader(west.url, SLUG, f"west-{n}") for n in range(2)]
        async with reading([*on_east, *on_west]) as tasks, api(a.url, editor) as on_a:
            await post_update(on_a, SLUG, "to both")
            both = await last_seq(on_a, SLUG)
            # Pushed by each proxy at once, not fetched later by its link's refresh (30 s).
            async with asyncio.timeout(3):
                for reader in (*on_east, *on_west):
                    await reader.wait_for(both)
            west.stop()
            # West is down and its publisher retries; east's readers are not held back.
            for n in range(3):
                await post_update(on_a, SLUG, f"while west is down {n}")
            newest = await last_seq(on_a, SLUG)
            async with asyncio.timeout(5):
                for reader in on_east:
                    await reader.wait_for(newest)
            west.start()
            async with asyncio.timeout(10):  # west's readers are back and have caught up
                for reader in on_west:
                    await reader.wait_for(newest)
            await post_update(on_a, SLUG, "west is back")
            newest = await last_seq(on_a, SLUG)
            async with asyncio.timeout(3):
                for reader in (*on_east, *on_west):
                    await reader.wait_for(newest)
            assert all(reader.connections == 1 for reader in on_east)
            assert all(reader.connections == 2 for reader in on_west)
            last = await finish([*on_east, *on_west], tasks, a.url, editor)
        assert_every_seq_once_in_order(on_east, last, east)
        assert_every_seq_once_in_order(on_west, last, west)
    finally:
        east.stop()
        west.stop()


@pytest.fixture
def postgres_live(tmp_path: Path, postgres_database: str) -> Settings:
    require_redis()
    return postgres_settings(
        tmp_path,
        postgres_database,
        heartbeat_interval=1.0,
        broadcast_url=redis_namespace_url(REDIS_URL),
    )


async def test_two_liveblog_processes_behind_one_pushpin_on_postgres_and_redis(
    postgres_live: Settings, tmp_path: Path, workers: list[Worker]
) -> None:
    editor = await prepare(postgres_live)
    proxy = Pushpin(tmp_path / "pushpin", [])
    a = start_worker(postgres_live, "a", env=grip_env(proxy.grip_url))
    workers.append(a)
    b = start_worker(postgres_live, "b", env=grip_env(proxy.grip_url))
    workers.append(b)
    proxy.write_routes([a, b])
    proxy.start()
    try:
        await create_story(a.url, editor, SLUG)
        readers = [Reader(proxy.url, SLUG, f"reader-{n}") for n in range(6)]
        async with (
            reading(readers) as tasks,
            api(a.url, editor) as on_a,
            api(b.url, editor) as on_b,
        ):
            # Posted through both processes, interleaved and at once: each publishes
            # its own events, and Pushpin orders them by prev-id (recovering any that
            # arrive out of order from the log).
            await asyncio.gather(
                *(post_update(on_a, SLUG, f"on a {n}") for n in range(5)),
                *(post_update(on_b, SLUG, f"on b {n}") for n in range(5)),
            )
            newest = await last_seq(on_a, SLUG)
            for reader in readers:
                await reader.wait_for(newest)
            last = await finish(readers, tasks, b.url, editor)
        assert_every_seq_once_in_order(readers, last, proxy)
    finally:
        proxy.stop()
