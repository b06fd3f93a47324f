"""Webhooks (docs/integrations.md): registered by admins, every event of their stories
delivered to a real receiver on loopback, signed per the Standard Webhooks spec
(checked with the ``standardwebhooks`` package, not our code), in order, and again
after the receiver was down. The crash and several-process cases are in
tests/test_postgres_webhooks.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import event
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette

from liveblog import store, webhooks
from liveblog.app import create_app
from liveblog.settings import Settings
from tests.factories import create_story
from tests.services import skip_unless_ci
from tests.support import Editor, bearer, make_editor, run_server, settings_for
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.anyio
WAIT = 20.0


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver()
    with run_server(receiver.app()) as live:
        yield receiver, live.url


@pytest.fixture
def receiver(receiver_server: tuple[Receiver, str]) -> Receiver:
    found, _ = receiver_server
    found.deliveries.clear()
    found.fail_with, found.delay, found.refused = None, 0.0, 0
    return found


@pytest.fixture
def hook_url(receiver_server: tuple[Receiver, str]) -> str:
    return receiver_server[1] + "/hook"


@pytest.fixture
def settings(tmp_path: Path, hook_url: str) -> Settings:
    return settings_for(
        tmp_path,
        fetch_allow_hosts=urlsplit(hook_url).netloc,
        webhook_poll=0.2,
        webhook_retry_base=0.3,
    )


@pytest.fixture
async def admin(app: Starlette) -> Editor:
    return await make_editor(app, "ada", role="admin")


@pytest.fixture
async def api(client: httpx.AsyncClient, admin: Editor) -> AsyncIterator[httpx.AsyncClient]:
    client.headers.update(bearer(admin.token))
    await create_story(client, "storm")
    await create_story(client, "flood")
    yield client


async def register(api: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    made = await api.post("/api/webhooks", json={"url": url, **fields})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def post(api: httpx.AsyncClient, slug: str, body: str) -> int:
    made = await api.post(f"/api/stories/{slug}/updates", json={"body": body})
    assert made.status_code == 201, made.text
    update_id: int = made.json()["id"]
    return update_id


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_deliveries_are_signed_ordered_and_carry_the_event(
    api: httpx.AsyncClient, receiver: Receiver, hook_url: str
) -> None:
    hook = await register(api, hook_url)
    assert hook["secret"].startswith("whsec_") and hook["events"] == []
    assert hook["stories"] is None
    # The secret is shown once: never again.
    listed = (await api.get("/api/webhooks")).json()["webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    ids = [await post(api, "storm", f"Update {n}") for n in range(5)]
    edited = await api.patch(f"/api/stories/storm/updates/{ids[0]}", json={"body": "Fixed"})
    assert edited.status_code == 200
    await until(lambda: len(receiver.deliveries) == 6, "6 deliveries")
    verifier = Verifier(hook["secret"])
    seqs = []
    for delivery in receiver.deliveries:
        # An independent implementation of the spec accepts each one as it arrived.
        verified = verifier.verify(delivery.body, delivery.headers)
        assert verified == delivery.document
        seqs.append(delivery.document["data"]["seq"])
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    kinds = [d.document["type"] for d in receiver.deliveries]
    assert kinds == ["update"] * 5 + ["edit"]
    first = receiver.deliveries[0].document["data"]
    assert first["story"] == "storm" and first["id"] == ids[0] and "Update 0" in first["html"]
    # A signature made with another secret, or over another body, is refused.
    tampered = receiver.deliveries[1]
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered.body.replace(b"Update", b"Updat3"), tampered.headers)
    with pytest.raises(WebhookVerificationError):
        Verifier("whsec_" + "A" * 43 + "=").verify(tampered.body, tampered.headers)
    detail = (await api.get(f"/api/webhooks/{hook['id']}")).json()
    assert detail["backlog"] == 0
    assert [a["status"] for a in detail["attempts"]] == [204] * 6


async def test_filters_by_event_kind_and_story(
    api: httpx.AsyncClient, receiver: Receiver, hook_url: str
) -> None:
    await register(api, hook_url, events=["update"], stories=["flood"])
    update_id = await post(api, "storm", "Not for this hook")
    await post(api, "flood", "For this hook")
    await api.patch(f"/api/stories/storm/updates/{update_id}", json={"body": "Still not"})
    await until(lambda: len(receiver.deliveries) >= 1, "a delivery")
    await asyncio.sleep(0.6)  # three more polls: nothing else may come
    (only,) = receiver.deliveries
    assert only.document["data"]["story"] == "flood"
    refused = await api.post("/api/webhooks", json={"url": hook_url, "events": ["nope"]})
    assert refused.status_code == 422 and "nope" in refused.text
    unknown = await api.post("/api/webhooks", json={"url": hook_url, "stories": ["nowhere"]})
    assert unknown.status_code == 422 and "nowhere" in unknown.text
    for bad in ("ftp://example.org/x", "http://user:pw@example.org/x", "javascript:alert(1)"):
        assert (await api.post("/api/webhooks", json={"url": bad})).status_code == 422


async def test_a_receiver_down_for_a_while_gets_everything_in_order_after(
    app: Starlette, api: httpx.AsyncClient, receiver: Receiver, hook_url: str
) -> None:
    registry = app.state.liveblog.metrics.registry

    def metric(name: str) -> float:
        return float(registry.get_sample_value(name) or 0)

    hook = await register(api, hook_url)
    receiver.fail_with = 503
    for n in range(4):
        await post(api, "storm", f"While down {n}")
    await post(api, "flood", "Other story, while down")
    await until(lambda: receiver.refused >= 6, "several refused attempts (retries)")
    detail = (await api.get(f"/api/webhooks/{hook['id']}")).json()
    assert detail["backlog"] == 5
    assert {a["status"] for a in detail["attempts"]} == {503}
    # What the on-call engineer sees meanwhile (docs/operations.md).
    await until(lambda: metric("liveblog_webhook_backlog") == 5, "the backlog gauge at 5")
    assert metric("liveblog_webhook_failures_total") >= 6
    delivered = metric("liveblog_webhook_deliveries_total")
    receiver.fail_with = None
    await until(lambda: len(receiver.unique()) == 5, "all 5 after the receiver came back")
    arrived = [d.document["data"] for d in receiver.unique()]
    storm = [data for data in arrived if data["story"] == "storm"]
    assert [u["html"].count(f"While down {n}") for n, u in enumerate(storm)] == [1] * 4
    assert [u["seq"] for u in storm] == sorted(u["seq"] for u in storm)
    assert (await api.get(f"/api/webhooks/{hook['id']}")).json()["backlog"] == 0
    assert metric("liveblog_webhook_deliveries_total") == delivered + 5
    await until(lambda: metric("liveblog_webhook_backlog") == 0, "the backlog gauge at 0")


async def test_replay_from_a_seq_and_removal(
    api: httpx.AsyncClient, receiver: Receiver, hook_url: str
) -> None:
    await post(api, "storm", "Before the hook")  # seq 1
    hook = await register(api, hook_url, stories=["storm"])
    await post(api, "storm", "After the hook")  # seq 2
    await until(lambda: len(receiver.deliveries) == 1, "the one event after registering")
    assert receiver.deliveries[0].document["data"]["seq"] == 2
    replayed = await api.post(
        f"/api/webhooks/{hook['id']}/replay", json={"story": "storm", "from_seq": 1}
    )
    assert replayed.status_code == 200, replayed.text
    await until(lambda: len(receiver.deliveries) == 3, "seq 1 and 2 again")
    assert [d.document["data"]["seq"] for d in receiver.deliveries] == [2, 1, 2]
    assert receiver.deliveries[2].id == receiver.deliveries[0].id  # same event, same id
    other = await api.post(
        f"/api/webhooks/{hook['id']}/replay", json={"story": "flood", "from_seq": 1}
    )
    assert other.status_code == 409
    assert (await api.delete(f"/api/webhooks/{hook['id']}")).status_code == 204
    assert (await api.get(f"/api/webhooks/{hook['id']}")).status_code == 404
    await post(api, "storm", "After removal")
    await asyncio.sleep(0.6)
    assert len(receiver.deliveries) == 3


async def test_only_admins_manage_webhooks(
    app: Starlette, client: httpx.AsyncClient, hook_url: str
) -> None:
    editor = await make_editor(app, "eve", role="editor")
    refused = await client.post(
        "/api/webhooks", json={"url": hook_url}, headers=bearer(editor.token)
    )
    assert refused.status_code == 403
    assert (await client.get("/api/webhooks", headers=bearer(editor.token))).status_code == 403


async def test_private_addresses_are_refused_unless_allowed(
    tmp_path: Path, receiver: Receiver, hook_url: str
) -> None:
    """Without ``LIVEBLOG_FETCH_ALLOW_HOSTS`` the loopback receiver is never reached: the
    attempt is recorded with the fetcher's reason, and the cursor waits."""
    app = create_app(settings_for(tmp_path / "strict", webhook_poll=0.2, webhook_retry_base=0.3))
    async with app.router.lifespan_context(app):
        admin = await make_editor(app, "ada", role="admin")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer(admin.token)
        ) as api:
            await create_story(api, "storm")
            hook = await register(api, hook_url)
            await post(api, "storm", "Never delivered")

            async def attempts() -> list[dict[str, Any]]:
                found: list[dict[str, Any]] = (await api.get(f"/api/webhooks/{hook['id']}")).json()[
                    "attempts"
                ]
                return found

            deadline = time.monotonic() + WAIT
            while not await attempts():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            (attempt, *_) = await attempts()
            assert attempt["status"] is None and "private or local" in attempt["error"]
    assert receiver.deliveries == []


async def test_no_endpoint_costs_a_post_no_query_and_new_ones_are_seen(
    tmp_path: Path, receiver: Receiver, hook_url: str
) -> None:
    """While no endpoint exists, a post wakes the sender for nothing: no query (it looked
    less than a poll ago). One registered here is delivered to at once, not a poll later
    (the poll is longer than the wait); one another process adds (here: written to the
    database behind this process's back) within a poll."""
    allow = urlsplit(hook_url).netloc
    app = create_app(settings_for(tmp_path / "long", fetch_allow_hosts=allow, webhook_poll=120))
    async with app.router.lifespan_context(app):
        statements: list[str] = []
        engine = app.state.liveblog.db.engine.sync_engine

        def seen(*args: Any) -> None:
            statements.append(args[2])

        event.listen(engine, "before_cursor_execute", seen)
        admin = await make_editor(app, "ada", role="admin")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer(admin.token)
        ) as api:
            await create_story(api, "storm")
            await asyncio.sleep(0.3)  # the sender's first round, at the start, has looked
            statements.clear()
            for n in range(3):
                await post(api, "storm", f"Nobody listens {n}")
            await asyncio.sleep(0.3)
            assert not [s for s in statements if "webhook" in s.lower()]
            await register(api, hook_url)
            await post(api, "storm", "Heard at once")
            await until(lambda: len(receiver.deliveries) == 1, "the delivery, before a poll")
        event.remove(engine, "before_cursor_execute", seen)

    app = create_app(settings_for(tmp_path / "short", fetch_allow_hosts=allow, webhook_poll=0.3))
    async with app.router.lifespan_context(app):
        admin = await make_editor(app, "ada", role="admin")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer(admin.token)
        ) as api:
            await create_story(api, "flood")
            await asyncio.sleep(0.2)
            async with app.state.liveblog.db.transaction() as session:
                actor = await store.get_user(session, admin.user_id)
                assert actor is not None
                await webhooks.create(session, url=hook_url, events=[], stories=None, actor=actor)
            await post(api, "flood", "Heard within a poll")
            await until(lambda: len(receiver.deliveries) == 2, "the delivery, within a poll")


def test_the_docs_node_snippet_verifies_our_signatures(tmp_path: Path) -> None:
    """docs/integrations.md's hand-written check (no library), run by Node against a
    signature of ours: it accepts it, and refuses the same body changed by one byte."""
    node = shutil.which("node")
    if node is None:
        skip_unless_ci("node not found (Debian package nodejs)")
    doc = (Path(__file__).parent.parent / "docs" / "integrations.md").read_text()
    match = re.search(r"```js\n(.*?)```", doc, re.S)
    assert match is not None, "the Node snippet is gone from docs/integrations.md"
    secret, body, now = (
        webhooks.new_secret(),
        '{"type":"update","data":{"seq":1}}',
        int(time.time()),
    )
    headers = {
        "webhook-id": "evt_1_1",
        "webhook-timestamp": str(now),
        "webhook-signature": webhooks.sign(secret, "evt_1_1", now, body.encode()),
    }
    case = json.dumps({"secret": secret, "headers": headers, "body": body})
    script = tmp_path / "verify.js"
    script.write_text(
        match[1]
        + f"const d = {case};\n"
        + "console.log(JSON.stringify([verify(d.secret, d.headers, d.body),"
        + " verify(d.secret, d.headers, d.body.replace('1', '2'))]));\n"
    )
    out = subprocess.run([str(node), str(script)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [True, False]
