"""``GET /stories/{slug}/events`` against a real uvicorn: the SSE wire contract.

Streams are read with httpx and parsed here (comments and ``retry`` included, which
EventSource-style parsers hide), so every line the server sends is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from liveblog.settings import Settings
from tests.factories import create_story, end_story, last_seq, post_update
from tests.support import Editor, LiveServer, bearer, login, make_editor, migrated_settings_for

WAIT = 10.0  # seconds any single expected message may take
HEARTBEAT = 0.2


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return migrated_settings_for(tmp_path, heartbeat_interval=HEARTBEAT)


# --- reading a stream -----------------------------------------------------------------


@dataclass
class Message:
    """One dispatched SSE block: an event, or a comment/retry-only block."""

    id: str | None = None
    event: str | None = None
    data_lines: list[str] = field(default_factory=list)
    retry: int | None = None
    comments: list[str] = field(default_factory=list)
    received_at: float = 0.0

    @property
    def is_event(self) -> bool:
        return bool(self.data_lines)

    @property
    def seq(self) -> int:
        assert self.id is not None, f"event without id: {self}"
        return int(self.id)

    def json(self) -> dict[str, Any]:
        assert len(self.data_lines) == 1, f"payload split over data lines: {self.data_lines}"
        data: dict[str, Any] = json.loads(self.data_lines[0])
        return data


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[Message]:
    """The SSE parsing algorithm (fields, comments, blank-line dispatch), keeping comments."""
    message = Message()
    async for line in lines:
        if line == "":
            if message != Message():
                message.received_at = time.monotonic()
                yield message
            message = Message()
        elif line.startswith(":"):
            message.comments.append(line[1:].removeprefix(" "))
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                message.id = value
            elif name == "event":
                message.event = value
            elif name == "data":
                message.data_lines.append(value)
            elif name == "retry":
                message.retry = int(value)
            else:
                raise AssertionError(f"unknown SSE field in line {line!r}")
    assert message == Message(), f"stream ended inside a message: {message}"


class EventStream:
    """An open stream, read by a background task into a queue (None marks its end)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self.task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for message in parse_sse(self.response.aiter_lines()):
                self.queue.put_nowait(message)
        finally:
            self.queue.put_nowait(None)

    async def next_message(self, within: float = WAIT) -> Message | None:
        try:
            message = await asyncio.wait_for(self.queue.get(), within)
        except TimeoutError:
            raise AssertionError(f"no message on the stream within {within}s") from None
        if message is None and self.task.done() and self.task.exception() is not None:
            raise AssertionError("reading the stream failed") from self.task.exception()
        return message

    async def next_event(self, within: float = WAIT) -> Message:
        """The next real event, skipping heartbeats; fails if the stream ends first."""
        deadline = time.monotonic() + within
        while True:
            message = await self.next_message(max(0.0, deadline - time.monotonic()))
            assert message is not None, "the stream ended while an event was expected"
            if message.is_event:
                return message
            assert message.retry is None, f"retry after the first message: {message}"
            assert message.comments == ["heartbeat"], f"unexpected block: {message}"

    async def events(self, count: int, within: float = WAIT) -> list[Message]:
        return [await self.next_event(within) for _ in range(count)]

    async def start(self) -> Message:
        """The first block: the reconnect delay, alone."""
        first = await self.next_message()
        assert first is not None, "the stream ended before sending anything"
        assert first.retry is not None, f"first block is not a retry line: {first}"
        assert (first.id, first.event, first.data_lines) == (None, None, [])
        return first

    async def finished(self, within: float = WAIT) -> None:
        """The server ends the response (heartbeats allowed until then, events not)."""
        deadline = time.monotonic() + within
        while True:
            message = await self.next_message(max(0.0, deadline - time.monotonic()))
            if message is None:
                return
            assert not message.is_event, f"event after the stream should have ended: {message}"


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    slug: str,
    *,
    last_event_id: str | bytes | None = None,
    query_id: str | None = None,
    start: bool = True,
) -> AsyncIterator[EventStream]:
    headers: dict[bytes, bytes] = {}
    if last_event_id is not None:
        value = last_event_id.encode() if isinstance(last_event_id, str) else last_event_id
        headers[b"Last-Event-ID"] = value
    params = {} if query_id is None else {"last_event_id": query_id}
    url = f"/stories/{slug}/events"
    async with client.stream("GET", url, headers=headers, params=params) as response:
        assert response.status_code == 200, (response.status_code, await response.aread())
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        stream = EventStream(response)
        try:
            if start:
                await stream.start()
            yield stream
        finally:
            stream.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream.task


# --- fixtures and API helpers ---------------------------------------------------------


@pytest.fixture
def reporter(server: LiveServer) -> Editor:
    editor: Editor = server.run(make_editor(server.app, "alice", role="editor"))
    return editor


@pytest.fixture
async def api(server: LiveServer, reporter: Editor) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=server.url, headers=bearer(reporter.token), timeout=WAIT
    ) as client:
        yield client


@pytest.fixture
async def reader(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as client:
        yield client


@pytest.fixture
async def story(api: httpx.AsyncClient) -> str:
    return await create_story(api, "storm-watch")


def assert_iso(value: Any) -> datetime:
    assert isinstance(value, str), value
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None, f"timestamp without a zone: {value}"
    return moment


# --- tests ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_stream_starts_with_retry_line(
    reader: httpx.AsyncClient, story: str, settings: Settings
) -> None:
    async with open_stream(reader, story, start=False) as stream:
        first = await stream.start()
    assert first.retry == settings.retry_ms


@pytest.mark.anyio
async def test_update_posted_through_api_reaches_stream(
    reader: httpx.AsyncClient, api: httpx.AsyncClient, story: str
) -> None:
    async with open_stream(reader, story) as stream:
        before = time.time()
        update = await post_update(api, story, "The river is *rising*.\n\nSecond paragraph.")
        event = await stream.next_event()
    seq = await last_seq(api, story)
    assert seq == 1
    assert event.event == "update"
    assert event.seq == seq
    data = event.json()
    assert data["seq"] == seq
    assert data["kind"] == "update"
    assert data["id"] == update["id"]
    assert "<em>rising</em>" in data["html"]
    assert "Second paragraph." in data["html"]
    assert f'data-update-id="{update["id"]}"' in data["html"]
    created = assert_iso(data["created_at"])
    assert abs(created.timestamp() - before) < 60
    assert created == assert_iso(update["created_at"])
    assert data["edited_at"] is None
    assert_iso(data["at"])


@pytest.mark.anyio
async def test_update_posted_through_desk_form_reaches_stream(
    server: LiveServer,
    reader: httpx.AsyncClient,
    api: httpx.AsyncClient,
    reporter: Editor,
    story: str,
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as desk:
        csrf = await login(desk, reporter)
        async with open_stream(reader, story) as stream:
            response = await desk.post(
                f"/desk/stories/{story}/updates",
                data={"body": "Posted from the **desk**.", "headline": "Desk", "csrf_token": csrf},
            )
            assert response.status_code == 303, response.text
            event = await stream.next_event()
    assert event.event == "update"
    data = event.json()
    assert event.seq == data["seq"] == await last_seq(api, story) == 1
    assert response.headers["location"].endswith(f"#update-{data['id']}")
    assert data["kind"] == "update"
    assert "<strong>desk</strong>" in data["html"]
    assert data["headline"] == "Desk"
    assert data["author"] == "Alice"
    assert_iso(data["created_at"])


@pytest.mark.anyio
async def test_edit_pin_and_delete_events(
    reader: httpx.AsyncClient, api: httpx.AsyncClient, story: str
) -> None:
    async with open_stream(reader, story) as stream:
        update = await post_update(api, story, "First draft.")
        update_url = f"/api/stories/{story}/updates/{update['id']}"
        created = await stream.next_event()

        response = await api.patch(update_url, json={"body": "Corrected *text*."})
        assert response.status_code == 200, response.text
        edited = await stream.next_event()
        edited_seq = await last_seq(api, story)

        response = await api.patch(update_url, json={"pinned": True})
        assert response.status_code == 200, response.text
        pinned = await stream.next_event()
        pinned_seq = await last_seq(api, story)

        response = await api.delete(update_url)
        assert response.status_code == 204, response.text
        deleted, unpinned = await stream.events(2)
        final_seq = await last_seq(api, story)

    assert [m.seq for m in (created, edited, pinned, deleted, unpinned)] == [1, 2, 3, 4, 5]
    assert (edited_seq, pinned_seq, final_seq) == (2, 3, 5)

    assert edited.event == "edit"
    edit = edited.json()
    assert (edit["seq"], edit["kind"], edit["id"]) == (2, "edit", update["id"])
    assert "<em>text</em>" in edit["html"] and "First draft" not in edit["html"]
    assert assert_iso(edit["edited_at"]) >= assert_iso(edit["created_at"])

    assert pinned.event == "story"
    pin = pinned.json()
    assert pin["seq"] == 3
    assert "pin" in pin["change"]
    assert pin["pinned_id"] == update["id"]
    assert pin["unpinned_id"] is None
    assert "Corrected" in pin["html"]

    assert deleted.event == "delete"
    assert deleted.json()["id"] == update["id"]
    # Deleting the pinned update also takes the pin away.
    assert unpinned.event == "story"
    unpin = unpinned.json()
    assert "pin" in unpin["change"]
    assert (unpin["pinned_id"], unpin["unpinned_id"]) == (None, update["id"])


@pytest.mark.anyio
async def test_story_end_is_the_last_event_and_closes_the_stream(
    reader: httpx.AsyncClient, api: httpx.AsyncClient, story: str
) -> None:
    async with open_stream(reader, story) as stream:
        await post_update(api, story, "Last words.")
        await end_story(api, story)
        update, ended = await stream.events(2)
        await stream.finished()
    assert (update.event, update.seq) == ("update", 1)
    assert (ended.event, ended.seq) == ("story", 2)
    data = ended.json()
    assert "status" in data["change"]
    assert data["story"]["status"] == "ended"
    assert_iso(data["story"]["ended_at"])


@pytest.mark.anyio
async def test_ended_story_replays_its_end_then_answers_204(
    reader: httpx.AsyncClient, api: httpx.AsyncClient, story: str
) -> None:
    await post_update(api, story, "Before the end.")
    await end_story(api, story)
    end_seq = await last_seq(api, story)
    assert end_seq == 2

    # A reader who missed the end gets it, and then the stream closes.
    async with open_stream(reader, story, last_event_id=str(end_seq - 1)) as stream:
        ended = await stream.next_event()
        await stream.finished()
    assert (ended.event, ended.seq) == ("story", end_seq)
    assert ended.json()["story"]["status"] == "ended"

    # Nothing after the id (or no id at all): 204, so EventSource stops reconnecting.
    for headers in ({"Last-Event-ID": str(end_seq)}, {"Last-Event-ID": "99"}, {}):
        response = await reader.get(f"/stories/{story}/events", headers=headers)
        assert response.status_code == 204, (headers, response.status_code)
        assert response.content == b""
    response = await reader.get(f"/stories/{story}/events", params={"last_event_id": end_seq})
    assert response.status_code == 204


@pytest.mark.anyio
async def test_changes_after_the_end_are_replayed_and_the_stream_still_closes(
    reader: httpx.AsyncClient, api: httpx.AsyncClient, story: str
) -> None:
    update = await post_update(api, story, "Before the end.")
    await end_story(api, story)
    # A correction and a retitle after the story ended.
    fixed = await api.patch(f"/api/stories/{story}/updates/{update['id']}", json={"body": "Fixed."})
    assert fixed.status_code == 200
    retitled = await api.patch(f"/api/stories/{story}", json={"title": "Retitled after the end"})
    assert retitled.status_code == 200
    async with open_stream(reader, story, last_event_id="1") as stream:
        replayed = await stream.events(3)
        await stream.finished()
    assert [(m.event, m.seq) for m in replayed] == [("story", 2), ("edit", 3), ("story", 4)]
    assert replayed[-1].json()["story"]["title"] == "Retitled after the end"


@pytest.mark.anyio
@pytest.mark.parametrize("via", ["header", "query"])
async def test_reconnect_replays_exactly_the_missed_events(
    reader: httpx.AsyncClient, api: httpx.AsyncClient, story: str, via: str
) -> None:
    async with open_stream(reader, story) as witness:
        async with open_stream(reader, story) as first:
            for n in range(3):
                await post_update(api, story, f"Seen live {n}.")
            seen = await first.events(3)
        k = seen[-1].seq
        assert [m.seq for m in seen] == [1, 2, 3]

        missed = [await post_update(api, story, f"Missed {n}.") for n in range(4)]
        if via == "header":
            reconnect = open_stream(reader, story, last_event_id=str(k))
        else:
            reconnect = open_stream(reader, story, query_id=str(k))
        async with reconnect as second:
            replayed = await second.events(len(missed))
            live = [await post_update(api, story, f"Live again {n}.") for n in range(2)]
            after = await second.events(len(live))
        everything = await witness.events(3 + len(missed) + len(live))

    assert [m.seq for m in replayed] == [4, 5, 6, 7]
    assert [m.json()["id"] for m in replayed] == [u["id"] for u in missed]
    assert [m.event for m in replayed] == ["update"] * 4
    # Live ones follow with no duplicate of anything replayed.
    assert [m.seq for m in after] == [8, 9]
    assert [m.json()["id"] for m in after] == [u["id"] for u in live]
    # The replay is byte-for-byte what live readers saw at the time.
    by_seq = {m.seq: m.data_lines for m in everything}
    assert [m.data_lines for m in replayed] == [by_seq[seq] for seq in (4, 5, 6, 7)]
    assert [m.seq for m in everything] == list(range(1, 10))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("header", "query"),
    [
        (b"abc", None),
        (b"-1", None),
        (b"1e9", None),
        (b"1.5", None),
        (b"", None),
        (b"9" * 19, None),
        (b"\xb2", None),  # "²" in latin-1: str.isdigit() says yes, int() says no
        (None, "abc"),
        (None, "-1"),
        (None, "\N{SUPERSCRIPT TWO}"),
        (b"1000", None),  # from the future (a restored backup): counts as "now"
    ],
    ids=repr,
)
async def test_malformed_last_event_id_starts_live(
    reader: httpx.AsyncClient,
    api: httpx.AsyncClient,
    story: str,
    header: bytes | None,
    query: str | None,
) -> None:
    for n in range(2):
        await post_update(api, story, f"Old news {n}.")
    async with open_stream(reader, story, last_event_id=header, query_id=query) as stream:
        fresh = await post_update(api, story, "Fresh news.")
        event = await stream.next_event()
    assert event.seq == 3, "old events were replayed for a malformed id"
    assert event.json()["id"] == fresh["id"]


@pytest.mark.anyio
async def test_unknown_story_is_404(reader: httpx.AsyncClient) -> None:
    response = await reader.get("/stories/no-such-story/events")
    assert response.status_code == 404


@pytest.mark.anyio
async def test_draft_story_streams_only_for_editors(
    server: LiveServer, reader: httpx.AsyncClient, api: httpx.AsyncClient, reporter: Editor
) -> None:
    draft = await create_story(api, "embargoed", status="draft")
    response = await reader.get(f"/stories/{draft}/events")
    assert response.status_code == 404
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as desk:
        await login(desk, reporter)
        async with open_stream(desk, draft) as stream:
            await post_update(api, draft, "Under embargo.")
            event = await stream.next_event()
    assert (event.event, event.seq) == ("update", 1)


@pytest.mark.anyio
async def test_heartbeat_comments_keep_an_idle_stream_alive(
    reader: httpx.AsyncClient, story: str
) -> None:
    window = 2.0  # ten heartbeat intervals
    blocks: list[Message | None] = []
    async with open_stream(reader, story) as stream:
        deadline = time.monotonic() + window
        while (left := deadline - time.monotonic()) > 0:
            try:
                blocks.append(await asyncio.wait_for(stream.queue.get(), left))
            except TimeoutError:
                break
    assert None not in blocks, "the idle stream ended"
    beats = [block for block in blocks if block is not None]
    assert all(beat.comments == ["heartbeat"] for beat in beats), beats
    assert all(
        (beat.id, beat.event, beat.retry, beat.data_lines) == (None, None, None, [])
        for beat in beats
    )
    # Paced by the interval: neither missing nor a flood (loose bounds for a busy machine).
    assert 4 <= len(beats) <= 2 * window / HEARTBEAT, len(beats)


@pytest.mark.anyio
async def test_payload_with_line_breaks_stays_one_data_line(
    server: LiveServer, api: httpx.AsyncClient, story: str
) -> None:
    body = "Line one\nline two\r\n\r\n```\ncode\n\nblock\n```\n\ndata: not a field"
    wire = b""
    update: dict[str, Any] | None = None
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=WAIT) as raw,
        raw.stream("GET", f"/stories/{story}/events") as response,
        asyncio.timeout(WAIT),
    ):
        assert response.status_code == 200
        async for chunk in response.aiter_raw():
            wire += chunk
            if update is None:  # the retry line arrived: the stream is live
                update = await post_update(api, story, body)
            if re.search(rb"event: update\ndata: [^\n]*\n\n", wire):
                break
    assert wire.startswith(b"retry: 3000\n\n")
    lines = re.split(r"\r\n|\r|\n", wire.decode())
    at = lines.index("event: update")
    assert lines[at - 1] == "id: 1"
    assert lines[at + 1].startswith("data: {")
    assert lines[at + 2] == "", "the payload continued on a second line"
    assert lines.count("id: 1") == 1
    payload = json.loads(lines[at + 1].removeprefix("data: "))
    assert update is not None and payload["id"] == update["id"]
    assert "code\n\nblock" in payload["html"]
