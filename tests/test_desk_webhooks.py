"""Webhooks on the desk (``/desk/webhooks``, liveblog/views/desk_webhooks.py): admins
register an endpoint through the form and see its secret once, replay from a seq, remove
one, and see a failing endpoint with its last answers; an editor gets 403.

The endpoints are on 192.0.2.1 (TEST-NET-1): the fetcher refuses it at once, so no
delivery ever leaves the machine and each attempt is recorded with its error.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from liveblog.models import Webhook, utcnow
from liveblog.settings import Settings
from tests.factories import create_story, last_seq, post_update
from tests.support import Editor, bearer, csrf_from, login, make_editor, migrated_settings_for

pytestmark = pytest.mark.anyio
WAIT = 20.0
NOWHERE = "http://192.0.2.1/hook"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return migrated_settings_for(tmp_path, webhook_poll=0.2, webhook_retry_base=0.3)


@pytest.fixture
async def admin(app: Starlette) -> Editor:
    return await make_editor(app, "ada", role="admin")


@pytest.fixture
async def api(app: Starlette, admin: Editor) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(admin.token)
    ) as client:
        await create_story(client, "storm")
        await create_story(client, "flood")
        yield client


@pytest.fixture
async def desk(client: httpx.AsyncClient, admin: Editor, api: httpx.AsyncClient) -> str:
    """The admin logged in on ``client``; the CSRF token for its forms."""
    return await login(client, admin)


async def register(client: httpx.AsyncClient, csrf: str, **fields: Any) -> httpx.Response:
    return await client.post("/desk/webhooks", data={"csrf_token": csrf, **fields})


async def hooks(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await api.get("/api/webhooks")).json()["webhooks"]
    return found


async def test_an_admin_registers_one_and_sees_its_secret_once(
    client: httpx.AsyncClient, desk: str, api: httpx.AsyncClient
) -> None:
    home = await client.get("/desk")
    assert 'href="/desk/webhooks"' in home.text
    page = await client.get("/desk/webhooks")
    assert page.status_code == 200 and "No webhooks yet" in page.text
    made = await register(client, desk, url=NOWHERE, events=["update", "edit"], stories="storm")
    assert made.status_code == 201, made.text
    secret = re.search(r"<code data-new-secret>(whsec_[^<]+)</code>", made.text)
    assert secret is not None and "will not be shown again" in made.text
    assert made.headers["Cache-Control"] == "no-store"
    (hook,) = await hooks(api)
    assert hook["url"] == NOWHERE and hook["events"] == ["edit", "update"]
    assert hook["stories"] == ["storm"] and "secret" not in hook
    # The page lists it, never with its secret again.
    again = await client.get("/desk/webhooks")
    assert f'data-webhook-id="{hook["id"]}"' in again.text
    assert secret.group(1) not in again.text and "data-new-secret" not in again.text
    assert "edit, update" in again.text and "No deliveries yet" in again.text
    # No events ticked, no story chosen: all of them.
    made = await register(client, desk, url="https://example.org/all")
    assert made.status_code == 201
    everything = (await hooks(api))[1]
    assert everything["events"] == [] and everything["stories"] is None


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"url": "ftp://example.org/"}, "url must be an http(s) address"),
        ({"url": "http://user:pw@example.org/"}, "user name or password"),
        ({"url": "http://example.org/", "events": "nonsense"}, "unknown kinds"),
        ({"url": "http://example.org/", "stories": "nope"}, "no story &#39;nope&#39;"),
    ],
)
async def test_a_wrong_form_says_why_and_keeps_what_was_typed(
    client: httpx.AsyncClient,
    desk: str,
    api: httpx.AsyncClient,
    fields: dict[str, str],
    problem: str,
) -> None:
    made = await register(client, desk, **fields)
    assert made.status_code == 422, made.text
    assert problem in made.text and "Nothing was saved" in made.text
    assert f'value="{fields["url"]}"' in made.text
    assert await hooks(api) == []


async def test_typed_events_and_stories_are_kept_on_an_error(
    client: httpx.AsyncClient, desk: str
) -> None:
    made = await register(client, desk, url="gopher://x", events=["edit"], stories=["flood"])
    assert made.status_code == 422
    assert 'value="edit" checked' in made.text and 'value="flood" selected' in made.text


async def test_an_editor_gets_403(app: Starlette, client: httpx.AsyncClient) -> None:
    editor = await make_editor(app, "ed")
    csrf = await login(client, editor)
    assert "/desk/webhooks" not in (await client.get("/desk")).text
    assert (await client.get("/desk/webhooks")).status_code == 403
    assert (await register(client, csrf, url=NOWHERE)).status_code == 403
    for action in ("replay", "remove"):
        refused = await client.post(
            f"/desk/webhooks/1/{action}", data={"csrf_token": csrf, "story": "storm"}
        )
        assert refused.status_code == 403


async def test_replay_moves_the_cursor_back(
    client: httpx.AsyncClient, desk: str, api: httpx.AsyncClient
) -> None:
    for n in range(3):
        await post_update(api, "flood", f"Update {n}")
    seq = await last_seq(api, "flood")
    assert (await register(client, desk, url=NOWHERE, stories="flood")).status_code == 201
    (hook,) = await hooks(api)
    assert hook["backlog"] == 0
    replayed = await client.post(
        f"/desk/webhooks/{hook['id']}/replay",
        data={"csrf_token": desk, "story": "flood", "from_seq": "2"},
    )
    assert replayed.status_code == 303
    assert replayed.headers["location"] == "/desk/webhooks?done=replayed"
    # Nothing can be delivered to 192.0.2.1: the events from seq 2 on wait.
    (hook,) = await hooks(api)
    assert hook["backlog"] == seq - 1
    page = await client.get(replayed.headers["location"])
    assert "Replay scheduled" in page.text and f'data-backlog="{seq - 1}"' in page.text
    # A story it does not follow, or no such story, or no seq: said, typed values kept.
    for typed, problem in [
        ({"story": "storm", "from_seq": "1"}, "does not follow"),
        ({"story": "nope", "from_seq": "1"}, "no story"),
        ({"story": "flood", "from_seq": "zero"}, "from seq"),
        ({"story": "flood", "from_seq": "0"}, "from_seq"),
    ]:
        refused = await client.post(
            f"/desk/webhooks/{hook['id']}/replay", data={"csrf_token": desk, **typed}
        )
        assert refused.status_code == 422, typed
        assert problem in refused.text
        assert f'name="story" required maxlength="80" size="14" value="{typed["story"]}"' in (
            refused.text
        )
    missing = await client.post(
        "/desk/webhooks/999/replay", data={"csrf_token": desk, "story": "flood", "from_seq": "1"}
    )
    assert missing.status_code == 404


async def test_remove(client: httpx.AsyncClient, desk: str, api: httpx.AsyncClient) -> None:
    await register(client, desk, url=NOWHERE)
    (hook,) = await hooks(api)
    removed = await client.post(f"/desk/webhooks/{hook['id']}/remove", data={"csrf_token": desk})
    assert removed.status_code == 303
    assert removed.headers["location"] == "/desk/webhooks?done=removed"
    assert await hooks(api) == []
    page = await client.get(removed.headers["location"])
    assert "Webhook removed." in page.text and "No webhooks yet" in page.text
    again = await client.post(f"/desk/webhooks/{hook['id']}/remove", data={"csrf_token": desk})
    assert again.status_code == 404


async def test_a_failing_endpoint_shows_since_when_and_its_last_answers(
    app: Starlette, client: httpx.AsyncClient, desk: str, api: httpx.AsyncClient
) -> None:
    await register(client, desk, url=NOWHERE, stories="storm")
    (hook,) = await hooks(api)
    await post_update(api, "storm", "Never delivered")
    deadline = time.monotonic() + WAIT
    while not (await api.get(f"/api/webhooks/{hook['id']}")).json()["attempts"]:
        assert time.monotonic() < deadline, "no attempt recorded"
        await asyncio.sleep(0.05)
    page = await client.get("/desk/webhooks")
    assert "Failing since" not in page.text
    assert "private or local" in page.text and "data-attempt" in page.text
    async with app.state.liveblog.db.transaction() as session:
        row = await session.get(Webhook, hook["id"])
        assert row is not None
        row.failing_since = utcnow()
        session.add(row)
    page = await client.get("/desk/webhooks")
    assert "Failing since" in page.text and "data-failing" in page.text
    section = page.text.split(f'data-webhook-id="{hook["id"]}"')[1]
    answers = re.findall(r"<tr data-attempt", section)
    assert 1 <= len(answers) <= 5
    assert "<td>storm</td>" in section and " ms</td>" in section
    assert csrf_from(page.text)
