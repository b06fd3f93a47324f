"""The desk channel (staff only): presence, the soft lock's "editing" mark, "changed"
signals after every committed change, across processes; and the desk's edit form that
refuses to save over a newer save (docs/newsroom.md, "The desk channel")."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sse_starlette.sse import AppStatus

from liveblog import policy
from liveblog.app import create_app
from liveblog.desk_channel import CHANNEL, EXPIRY_INTERVALS, DeskChannel, OnDesk
from liveblog.events import Frame
from liveblog.hub import Hub
from liveblog.hub.memory import MemoryBackend
from liveblog.models import Role
from liveblog.settings import Settings
from tests.factories import new_story, new_update
from tests.services import redis_namespace_url, require_redis
from tests.support import (
    LiveServer,
    bearer,
    csrf_from,
    login,
    make_editor,
    migrated_settings_for,
    run_server,
    settings_for,
)

pytestmark = pytest.mark.anyio

INTERVAL = 0.1  # seconds between desk presence reports in these tests
Lines = AsyncIterator[str]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return migrated_settings_for(tmp_path, desk_presence_interval=INTERVAL)


# --- reading a channel -----------------------------------------------------------------


async def next_event(lines: Lines) -> tuple[str, Any]:
    """The next event of an SSE stream (comments and heartbeats skipped), data parsed."""
    event, data = "message", list[str]()
    while True:
        line = await anext(lines)
        if line == "":
            if data:
                return event, json.loads("\n".join(data))
            event = "message"
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)


async def wait_for(lines: Lines, wanted: Callable[[str, Any], bool], *, within: float = 10) -> Any:
    with anyio.fail_after(within):
        while True:
            event, data = await next_event(lines)
            if wanted(event, data):
                return data


def present(*people: tuple[str, int | None]) -> Callable[[str, Any], bool]:
    """A ``presence`` event listing exactly ``people`` (username, editing)."""
    want = sorted(people, key=lambda p: (p[0], p[1] or 0))

    def check(event: str, data: Any) -> bool:
        if event != "presence":
            return False
        got = sorted(((p["username"], p["editing"]) for p in data), key=lambda p: (p[0], p[1] or 0))
        return got == want

    return check


async def open_channel(
    stack: AsyncExitStack, client: httpx.AsyncClient, slug: str, *, editing: int | None = None
) -> Lines:
    query = "" if editing is None else f"?editing={editing}"
    response = await stack.enter_async_context(
        client.stream("GET", f"/desk/stories/{slug}/channel{query}")
    )
    assert response.status_code == 200, await response.aread()
    assert response.headers["content-type"].startswith("text/event-stream")
    return response.aiter_lines()


# --- who may open it ---------------------------------------------------------------------


async def test_the_channel_needs_a_login_and_a_contributor_on_the_team(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Contributors open the desk of their stories (USE_DESK, as the newsroom gives them).
    desk_role = policy.ROLES[Role.contributor] | {policy.Permission.USE_DESK}
    monkeypatch.setitem(policy.ROLES, Role.contributor, desk_role)
    editor = server.run(make_editor(server.app, "alice"))
    cora = server.run(make_editor(server.app, "cora", role="contributor"))
    otto = server.run(make_editor(server.app, "otto", role="contributor"))
    async with AsyncExitStack() as stack:
        anonymous, on_team, off_team = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=10))
            for _ in range(3)
        ]
        await new_story(anonymous, editor, "flood")
        added = await anonymous.put("/api/stories/flood/team/cora", headers=bearer(editor.token))
        assert added.status_code == 201
        refused = await anonymous.get("/desk/stories/flood/channel", follow_redirects=False)
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/login")
        await login(on_team, cora)
        await login(off_team, otto)
        assert (await off_team.get("/desk/stories/flood/channel")).status_code == 403
        assert (await on_team.get("/desk/stories/nope/channel")).status_code == 404
        lines = await open_channel(stack, on_team, "flood")
        assert await wait_for(lines, present(("cora", None)))


# --- presence and the editing mark -------------------------------------------------------


async def test_two_desks_see_each_other_and_who_is_editing(server: LiveServer) -> None:
    alice = server.run(make_editor(server.app, "alice"))
    sam = server.run(make_editor(server.app, "sam"))
    async with AsyncExitStack() as stack:
        desk_a, desk_b = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=10))
            for _ in range(2)
        ]
        await new_story(desk_a, alice, "flood")
        update = await new_update(desk_a, alice, "flood")
        await login(desk_a, alice)
        await login(desk_b, sam)
        a = await open_channel(stack, desk_a, "flood")
        assert await wait_for(a, present(("alice", None)))
        async with AsyncExitStack() as editing:
            b = await open_channel(editing, desk_b, "flood", editing=update["id"])
            both = present(("alice", None), ("sam", update["id"]))
            seen = await wait_for(a, both)
            assert {"username": "sam", "name": "Sam", "editing": update["id"]} in seen
            assert await wait_for(b, both)
            # An id that is no update of this story marks nothing.
            stray = await open_channel(editing, desk_a, "flood", editing=999_999)
            assert await wait_for(stray, both)
        # Sam closes the edit page: Alice sees it at once.
        assert await wait_for(a, present(("alice", None)), within=5)


async def test_a_change_through_the_api_is_signalled_on_the_channel(server: LiveServer) -> None:
    alice = server.run(make_editor(server.app, "alice"))
    async with AsyncExitStack() as stack:
        desk = await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=10))
        await new_story(desk, alice, "flood")
        await login(desk, alice)
        lines = await open_channel(stack, desk, "flood")
        await new_update(desk, alice, "flood", state="draft")  # nothing for readers
        assert await wait_for(lines, lambda event, _: event == "changed") == {"topic": "updates"}
        await new_update(desk, alice, "flood")
        assert await wait_for(lines, lambda event, _: event == "changed") == {"topic": "updates"}


async def test_a_reader_stream_never_carries_desk_messages(server: LiveServer) -> None:
    alice = server.run(make_editor(server.app, "alice"))
    async with AsyncExitStack() as stack:
        desk, reader = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=10))
            for _ in range(2)
        ]
        await new_story(desk, alice, "flood")
        response = await stack.enter_async_context(reader.stream("GET", "/stories/flood/events"))
        assert response.status_code == 200
        reader_lines = response.aiter_lines()
        await login(desk, alice)
        channel = await open_channel(stack, desk, "flood", editing=None)
        assert await wait_for(channel, present(("alice", None)))
        update = await new_update(desk, alice, "flood", body="Bridge closed.")
        assert await wait_for(channel, lambda event, _: event == "changed")
        seen: list[str] = []

        def record(event: str, data: Any) -> bool:
            seen.append(event)
            return event == "update" and data["id"] == update["id"]

        await wait_for(reader_lines, record)
        assert "presence" not in seen and "changed" not in seen


async def test_the_channel_ends_at_shutdown(server: LiveServer) -> None:
    alice = server.run(make_editor(server.app, "alice"))
    async with AsyncExitStack() as stack:
        desk = await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=10))
        await new_story(desk, alice, "flood")
        await login(desk, alice)
        lines = await open_channel(stack, desk, "flood")
        assert await wait_for(lines, present(("alice", None)))
        # What uvicorn's signal handler does (through sse-starlette) on SIGTERM.
        AppStatus.should_exit = True
        try:
            started = time.monotonic()
            with anyio.fail_after(5):
                async for _ in lines:
                    pass
            assert time.monotonic() - started < 5
        finally:
            AppStatus.should_exit = False
    assert server.liveblog.desk_channel.people(server.story_id("flood")) == []


# --- across processes ---------------------------------------------------------------------


async def no_frames(story_id: int, after: int, before: int) -> list[Frame]:
    return []


async def no_seq(story_id: int) -> int:
    return 0


async def test_other_processes_reports_count_until_they_expire() -> None:
    hub = Hub(MemoryBackend(), load_frames=no_frames, load_last_seq=no_seq)
    await hub.start()
    now = [1000.0]
    channel = DeskChannel(hub, interval=INTERVAL, clock=lambda: now[0])
    await channel.start()
    try:
        with channel.seat(7, OnDesk(name="Alice", username="alice")) as seat:
            assert await seat.next() == [("presence", json.dumps([_public("alice", "Alice")]))]
            other = {"process": "other", "story": 7, "desks": [["priya", "Priya", 12]]}
            await hub.backend.publish(CHANNEL, json.dumps(other).encode())
            with anyio.fail_after(5):
                news = await seat.next()
            people = [_public("alice", "Alice"), _public("priya", "Priya", 12)]
            assert news == [("presence", json.dumps(people))]
            # Malformed messages are ignored and break nothing.
            await hub.backend.publish(CHANNEL, b'{"process": "x", "story": 7, "desks": [1]}')
            await hub.backend.publish(CHANNEL, b"\xff not json")
            # Another process's "changed" reaches this process's seats.
            changed = {"process": "other", "story": 7, "topic": "queue"}
            await hub.backend.publish(CHANNEL, json.dumps(changed).encode())
            with anyio.fail_after(5):
                assert await seat.next() == [("changed", '{"topic": "queue"}')]
            # A process that stops reporting (it died) is forgotten within a few intervals.
            now[0] += EXPIRY_INTERVALS * INTERVAL + 1
            with anyio.fail_after(5):
                news = await seat.next()
            assert news == [("presence", json.dumps([_public("alice", "Alice")]))]
    finally:
        await channel.stop()
        await hub.stop()


def _public(username: str, name: str, editing: int | None = None) -> dict[str, Any]:
    return {"username": username, "name": name, "editing": editing}


async def test_desks_on_two_processes_see_each_other(tmp_path: Path) -> None:
    """Two app processes (each its own hub and desk channel) sharing a database and
    Redis: each desk sees the other's, and a change made on one reaches the other's."""
    require_redis()
    shared = settings_for(
        tmp_path, desk_presence_interval=INTERVAL, broadcast_url=redis_namespace_url()
    )
    with run_server(create_app(shared)) as first, run_server(create_app(shared)) as second:
        alice = first.run(make_editor(first.app, "alice"))
        sam = first.run(make_editor(first.app, "sam"))
        async with AsyncExitStack() as stack:
            desk_a = await stack.enter_async_context(
                httpx.AsyncClient(base_url=first.url, timeout=10)
            )
            desk_b = await stack.enter_async_context(
                httpx.AsyncClient(base_url=second.url, timeout=10)
            )
            await new_story(desk_a, alice, "flood")
            update = await new_update(desk_a, alice, "flood")
            await login(desk_a, alice)
            await login(desk_b, sam)
            a = await open_channel(stack, desk_a, "flood")
            b = await open_channel(stack, desk_b, "flood", editing=update["id"])
            both = present(("alice", None), ("sam", update["id"]))
            assert await wait_for(a, both)
            assert await wait_for(b, both)
            await new_update(desk_a, alice, "flood", body="More rain.")
            assert await wait_for(b, lambda event, _: event == "changed") == {"topic": "updates"}
        assert first.liveblog.desk_channel.process != second.liveblog.desk_channel.process


# --- the soft lock on save ---------------------------------------------------------------

VERSION_RE = re.compile(r'name="version" value="(\d+)"')


async def edit_form(client: httpx.AsyncClient, update_id: int) -> tuple[str, str]:
    """The edit form's CSRF token and the version it was opened at."""
    page = await client.get(f"/desk/stories/flood/updates/{update_id}/edit")
    assert page.status_code == 200
    found = VERSION_RE.search(page.text)
    assert found is not None, "the edit form carries no version"
    return csrf_from(page.text), found.group(1)


async def test_saving_over_a_newer_save_is_refused_and_loses_nothing(
    client: httpx.AsyncClient, app: Any
) -> None:
    priya = await make_editor(app, "priya")
    sam = await make_editor(app, "sam")
    await new_story(client, priya, "flood")
    update = await new_update(client, priya, "flood", body="Water at 2 metres.")
    path = f"/desk/stories/flood/updates/{update['id']}/edit"
    api_path = f"/api/stories/flood/updates/{update['id']}"
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as first,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as second,
    ):
        await login(first, priya)
        await login(second, sam)
        first_csrf, first_version = await edit_form(first, update["id"])
        second_csrf, second_version = await edit_form(second, update["id"])
        assert first_version == second_version

        saved = await first.post(
            path,
            data={"csrf_token": first_csrf, "version": first_version, "body": "Water at 3 metres."},
        )
        assert saved.status_code == 303

        mine = "Water at 2.5 metres, says the mayor."
        refused = await second.post(
            path, data={"csrf_token": second_csrf, "version": second_version, "body": mine}
        )
        assert refused.status_code == 409
        page = refused.text
        assert "Priya saved this update at" in page and "while you were editing" in page
        assert "Water at 3 metres." in page  # theirs, saved
        assert f">{mine}</textarea>" in page  # mine, kept in the form
        found = VERSION_RE.search(page)
        assert found is not None and int(found.group(1)) > int(second_version)

        now = await client.get(api_path, headers=bearer(priya.token))
        assert now.json()["body"] == "Water at 3 metres."  # the refused save changed nothing

        again = await second.post(
            path, data={"csrf_token": csrf_from(page), "version": found.group(1), "body": mine}
        )
        assert again.status_code == 303
        now = await client.get(api_path, headers=bearer(priya.token))
        assert now.json()["body"] == mine


async def test_a_mistake_in_the_form_keeps_the_version_it_started_from(
    client: httpx.AsyncClient, app: Any
) -> None:
    priya = await make_editor(app, "priya")
    await new_story(client, priya, "flood")
    update = await new_update(client, priya, "flood")
    csrf = await login(client, priya)
    _, version = await edit_form(client, update["id"])
    path = f"/desk/stories/flood/updates/{update['id']}/edit"
    await client.patch(
        f"/api/stories/flood/updates/{update['id']}",
        json={"body": "Changed meanwhile."},
        headers=bearer(priya.token),
    )
    invalid = await client.post(path, data={"csrf_token": csrf, "version": version, "body": ""})
    assert invalid.status_code == 422
    found = VERSION_RE.search(invalid.text)
    assert found is not None and found.group(1) == version  # not the newer one
