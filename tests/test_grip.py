"""GRIP mode in process (liveblog/live/grip.py): the hold instructions and the recovery
answers the stream endpoint gives a GRIP proxy, and what is published to it. The real
Pushpin is tests/test_pushpin.py."""

from __future__ import annotations

import asyncio
import calendar
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from liveblog.app import create_app
from liveblog.live import grip
from liveblog.live.grip_stats import ProxyStats
from liveblog.models import EventKind, StoryEvent
from liveblog.settings import Settings
from liveblog.state import Liveblog
from tests.factories import create_story, end_story, last_seq, post_update
from tests.support import Editor, bearer, make_editor, migrated_settings_for, settings_for

pytestmark = pytest.mark.anyio

KEY = "grip-test-signature-key-of-32-bytes-at-least"
SLUG = "summit"
SECRET = b"a-fanout-realm-key-of-32-bytes-or-more"


def signature(key: str = KEY) -> str:
    claim = {"iss": "pushpin", "exp": calendar.timegm(time.gmtime()) + 3600}
    return jwt.encode(claim, key)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Nothing listens on the publish port: publishes are caught in ``published``.
    return migrated_settings_for(tmp_path, grip_url=f"http://127.0.0.1:9?key={KEY}")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
def published(app: Starlette) -> list[dict[str, Any]]:
    """Every item the app publishes, in order (the proxy's publish endpoint, mocked)."""
    items: list[dict[str, Any]] = []

    def proxy(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/publish/"
        assert request.headers["authorization"] == f"Bearer {KEY}"
        items.extend(json.loads(request.content)["items"])
        return httpx.Response(200, text="Published\n")

    newsroom = app.state.liveblog.newsroom
    assert isinstance(newsroom, grip.GripNewsroom) and len(newsroom.grip) == 1
    newsroom.grip[0]._client = httpx.AsyncClient(transport=httpx.MockTransport(proxy))
    return items


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def api(
    app: Starlette, client: httpx.AsyncClient, published: list[dict[str, Any]]
) -> httpx.AsyncClient:
    editor: Editor = await make_editor(app, "alice", role="editor")
    client.headers.update(bearer(editor.token))
    await create_story(client, SLUG)
    return client


async def idle(app: Starlette) -> None:
    liveblog: Liveblog = app.state.liveblog
    assert isinstance(liveblog.newsroom, grip.GripNewsroom) and liveblog.newsroom.grip
    async with asyncio.timeout(5):
        for publisher in liveblog.newsroom.grip:
            await publisher.idle()


def ids(body: bytes) -> list[int]:
    return [int(line[4:]) for line in body.decode().splitlines() if line.startswith("id: ")]


async def test_the_proxys_request_gets_a_hold_on_the_storys_channel(
    api: httpx.AsyncClient, published: list[dict[str, Any]]
) -> None:
    for n in range(3):
        await post_update(api, SLUG, f"update {n}")
    newest = await last_seq(api, SLUG)
    response = await api.get(
        f"/stories/{SLUG}/events", headers={"Grip-Sig": signature(), "Last-Event-ID": "1"}
    )
    assert response.status_code == 200
    headers = response.headers
    assert headers["grip-hold"] == "stream"
    assert headers["grip-channel"] == f"story-1; prev-id={newest}"
    assert headers["grip-keep-alive"] == ": heartbeat\\n\\n; format=cstring; timeout=15"
    # One link for every reader of the story, no refresh: Pushpin batches identical links.
    assert headers["grip-link"] == f"</stories/{SLUG}/events>; rel=next"
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert headers["access-control-allow-origin"] == "*"
    assert "content-length" not in headers  # Pushpin would pass it on and end the stream
    assert response.content.startswith(b"retry: ")
    assert ids(response.content) == list(range(2, newest + 1))  # what it missed


async def test_a_new_reader_gets_no_replay(api: httpx.AsyncClient) -> None:
    await post_update(api, SLUG, "before")
    newest = await last_seq(api, SLUG)
    response = await api.get(f"/stories/{SLUG}/events", headers={"Grip-Sig": signature()})
    assert response.headers["grip-channel"] == f"story-1; prev-id={newest}"
    assert ids(response.content) == []


async def test_recovery_with_grip_last_replays_after_the_last_delivered_id(
    api: httpx.AsyncClient,
) -> None:
    for n in range(4):
        await post_update(api, SLUG, f"update {n}")
    newest = await last_seq(api, SLUG)
    response = await api.get(
        f"/stories/{SLUG}/events?last_event_id=1",
        headers={
            "Grip-Sig": signature(),
            "Grip-Last": "other-channel; last-id=0, story-1; last-id=2",
            "Last-Event-ID": "0",  # Grip-Last wins: it is what the proxy delivered
        },
    )
    assert response.headers["grip-channel"] == f"story-1; prev-id={newest}"
    assert not response.content.startswith(b"retry:")  # appended to an open stream
    assert ids(response.content) == list(range(3, newest + 1))


async def test_an_ended_story_is_replayed_then_closed_without_a_hold(
    api: httpx.AsyncClient,
) -> None:
    await post_update(api, SLUG, "one")
    await end_story(api, SLUG)
    newest = await last_seq(api, SLUG)
    response = await api.get(
        f"/stories/{SLUG}/events", headers={"Grip-Sig": signature(), "Last-Event-ID": "1"}
    )
    assert response.status_code == 200 and "grip-hold" not in response.headers
    assert ids(response.content) == list(range(2, newest + 1))
    caught_up = await api.get(
        f"/stories/{SLUG}/events", headers={"Grip-Sig": signature(), "Last-Event-ID": str(newest)}
    )
    assert caught_up.status_code == 204 and "grip-hold" not in caught_up.headers


async def test_no_such_story_is_404_without_a_hold(client: httpx.AsyncClient) -> None:
    response = await client.get("/stories/nope/events", headers={"Grip-Sig": signature()})
    assert response.status_code == 404 and "grip-hold" not in response.headers


async def test_only_a_valid_signature_counts_as_the_proxy() -> None:
    config = grip.GripConfig.parse(f"http://127.0.0.1:5561?key={KEY}")

    def scope(value: str | None) -> dict[str, Any]:
        headers = [] if value is None else [(b"grip-sig", value.encode())]
        return {"headers": headers}

    assert grip.from_proxy(scope(signature()), [config])
    assert not grip.from_proxy(scope(signature("another-key-of-more-than-32-bytes!!")), [config])
    assert not grip.from_proxy(scope("not a jwt"), [config])
    assert not grip.from_proxy(scope(None), [config])
    keyless = grip.GripConfig.parse("http://127.0.0.1:5561")
    assert grip.from_proxy(scope("anything"), [keyless])
    assert keyless.authorization() is None


def test_the_grip_url_is_read_as_gripcontrol_reads_it() -> None:
    config = grip.GripConfig.parse(
        "https://api.fanout.io/realm/abc/?iss=abc&key=base64:YS1mYW5vdXQtcmVhbG0ta2V5LW9mLTMyLWJ5dGVzLW9yLW1vcmU="
    )
    assert config.control_uri == "https://api.fanout.io/realm/abc"
    assert config.iss == "abc" and config.key == SECRET
    token = (config.authorization() or "").removeprefix("Bearer ")
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["iss"] == "abc"


async def test_each_event_is_published_once_with_id_and_prev_id(
    app: Starlette, api: httpx.AsyncClient, published: list[dict[str, Any]]
) -> None:
    first = await last_seq(api, SLUG)
    for n in range(3):
        await post_update(api, SLUG, f"update {n}")
    await end_story(api, SLUG)
    await idle(app)
    newest = await last_seq(api, SLUG)
    events = [item for item in published if "id" in item]
    assert [item["id"] for item in events] == [str(seq) for seq in range(first + 1, newest + 1)]
    assert [item["prev-id"] for item in events] == [str(seq) for seq in range(first, newest)]
    assert all(item["channel"] == "story-1" for item in published)
    content = events[0]["formats"]["http-stream"]["content"]
    assert content.startswith(f"id: {first + 1}\nevent: update\ndata: ")
    assert published[-1] == {"channel": "story-1", "formats": {"http-stream": {"action": "close"}}}


async def test_a_refused_publish_is_retried_in_order(tmp_path: Path) -> None:
    attempts: list[list[str]] = []

    def proxy(request: httpx.Request) -> httpx.Response:
        attempts.append([item["id"] for item in json.loads(request.content)["items"]])
        return httpx.Response(503 if len(attempts) == 1 else 200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(proxy))
    publisher = grip.Publisher(grip.GripConfig.parse("http://proxy"), client=client)
    await publisher.start()
    try:
        for seq in (1, 2):
            publisher.put(
                grip.items([StoryEvent(story_id=7, seq=seq, kind=EventKind.update, data="{}")])
            )
        async with asyncio.timeout(5):
            await publisher.idle()
    finally:
        await publisher.stop()
    sent = [seq for batch in attempts[1:] for seq in batch]
    assert attempts[0][0] == "1" and sent == ["1", "2"]  # the refused ones again, in order
    assert publisher.failures == 1


async def test_without_the_setting_there_is_no_grip(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path))
    async with app.router.lifespan_context(app):
        assert not isinstance(app.state.liveblog.newsroom, grip.GripNewsroom)
        assert not isinstance(app.stream_endpoint, grip.GripStoryEvents)


def tnetstring(value: object) -> bytes:
    """Encodes as Pushpin's stats socket does with ``stats_format=tnetstring``."""
    if isinstance(value, bool):
        body, kind = (b"true" if value else b"false"), b"!"
    elif isinstance(value, int):
        body, kind = str(value).encode(), b"#"
    elif isinstance(value, str):
        body, kind = value.encode(), b","
    elif isinstance(value, dict):
        body = b"".join(tnetstring(k) + tnetstring(v) for k, v in value.items())
        kind = b"}"
    else:
        raise TypeError(value)
    return str(len(body)).encode() + b":" + body + kind


def sub_packet(instance: str, channel: str, subscribers: int | None, *, form: str = "J") -> bytes:
    """A ``sub`` packet as Pushpin's StatsManager writes it (subscribed, or unsubscribed
    when ``subscribers`` is None)."""
    packet: dict[str, object] = {"from": instance, "mode": "stream", "channel": channel}
    if subscribers is None:
        packet["unavailable"] = True
    else:
        packet.update(ttl=60, subscribers=subscribers)
    body = json.dumps(packet).encode() if form == "J" else tnetstring(packet)
    return b"sub " + form.encode() + body


def test_sub_packets_are_read_in_both_stats_formats() -> None:
    now = [0.0]
    stats = ProxyStats([], channel_prefix="story-", clock=lambda: now[0])
    stats.heard(sub_packet("pushpin-a", "story-1", 40))
    stats.heard(sub_packet("pushpin-b", "story-1", 2, form="T"))
    stats.heard(sub_packet("pushpin-b", "story-7", 5, form="T"))
    stats.heard(sub_packet("pushpin-b", "not-a-story", 9))
    stats.heard(b"sub Jnot json")  # ignored, logged
    stats.heard(b"sub T12:not a tnetst")
    assert stats.counts() == {"pushpin-a": {1: 40}, "pushpin-b": {1: 2, 7: 5}}
    stats.heard(sub_packet("pushpin-b", "story-7", None, form="T"))  # its last reader left
    assert stats.counts() == {"pushpin-a": {1: 40}, "pushpin-b": {1: 2}}
    now[0] = 30.0
    stats.heard(sub_packet("pushpin-a", "story-1", 41))  # refreshed; b's count is not
    now[0] = 61.0
    assert stats.counts() == {"pushpin-a": {1: 41}}  # b went quiet past its ttl: gone


def free_tcp_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_presence_counts_the_readers_the_proxies_report(tmp_path: Path) -> None:
    """Two proxy instances report on a real ZeroMQ socket, as Pushpin's stats_spec does;
    presence adds their readers to the process's own, once each however often heard."""
    import zmq
    import zmq.asyncio

    spec = f"tcp://127.0.0.1:{free_tcp_port()}"
    context = zmq.asyncio.Context()
    proxy = context.socket(zmq.PUB)
    proxy.setsockopt(zmq.LINGER, 0)
    proxy.bind(spec)
    settings = settings_for(
        tmp_path,
        grip_url=f"http://127.0.0.1:9?key={KEY}",
        grip_stats_url=spec,
        presence_interval=0.05,
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            liveblog: Liveblog = app.state.liveblog

            async def until_readers(expected: int, packets: list[bytes]) -> None:
                async with asyncio.timeout(10):
                    while liveblog.presence.readers(1) != expected:
                        for packet in packets:  # again: a SUB socket joins late
                            await proxy.send(packet)
                        await asyncio.sleep(0.05)

            await until_readers(
                30, [sub_packet("east", "story-1", 20), sub_packet("west", "story-1", 10, form="T")]
            )
            for _ in range(5):  # reported every round by this process: still counted once
                await liveblog.presence.report()
            await asyncio.sleep(0.2)
            assert liveblog.presence.readers(1) == 30
            await until_readers(10, [sub_packet("east", "story-1", None)])
    finally:
        proxy.close()
        context.term()


async def test_several_proxies_each_get_every_event_and_each_ones_signature_counts(
    tmp_path: Path,
) -> None:
    other_key = "the-second-pushpin-signature-key-32-bytes"
    settings = settings_for(
        tmp_path,
        grip_url=f"http://127.0.0.1:9?key={KEY}, http://127.0.0.2:9?key={other_key}",
    )
    got: dict[str, list[str]] = {"127.0.0.1": [], "127.0.0.2": []}

    def proxy(request: httpx.Request) -> httpx.Response:
        key = KEY if request.url.host == "127.0.0.1" else other_key
        assert request.headers["authorization"] == f"Bearer {key}"
        got[request.url.host] += [
            item.get("id", "close") for item in json.loads(request.content)["items"]
        ]
        return httpx.Response(200)

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        newsroom = app.state.liveblog.newsroom
        assert isinstance(newsroom, grip.GripNewsroom) and len(newsroom.grip) == 2
        assert [p.url for p in newsroom.grip] == [
            "http://127.0.0.1:9/publish/",
            "http://127.0.0.2:9/publish/",
        ]
        for publisher in newsroom.grip:
            publisher._client = httpx.AsyncClient(transport=httpx.MockTransport(proxy))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            editor: Editor = await make_editor(app, "alice", role="editor")
            api.headers.update(bearer(editor.token))
            await create_story(api, SLUG)
            first = await last_seq(api, SLUG)
            # Each proxy's signature makes a request the proxy's (a hold); another does not.
            for key in (KEY, other_key):
                response = await api.get(
                    f"/stories/{SLUG}/events", headers={"Grip-Sig": signature(key)}
                )
                assert response.headers["grip-hold"] == "stream"
            endpoint = app.stream_endpoint
            assert isinstance(endpoint, grip.GripStoryEvents)
            stranger = signature("a-third-key-nobody-configured-32bytes")
            assert not grip.from_proxy(
                {"headers": [(b"grip-sig", stranger.encode())]}, endpoint.configs
            )
            for n in range(3):
                await post_update(api, SLUG, f"update {n}")
            await end_story(api, SLUG)
            await idle(app)
            newest = await last_seq(api, SLUG)
    expected = [str(seq) for seq in range(first + 1, newest + 1)] + ["close"]
    assert got == {"127.0.0.1": expected, "127.0.0.2": expected}


def test_a_grip_url_list_without_a_url_is_refused() -> None:
    with pytest.raises(ValueError, match="names no GRIP URL"):
        grip.GripConfig.parse_all(" , ")
