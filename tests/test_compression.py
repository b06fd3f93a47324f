"""Pages, JSON and feeds are sent gzipped (``liveblog.compression``); static files keep
their own encoding (``liveblog.assets``) and the event stream is never compressed."""

from __future__ import annotations

import gzip

import httpx
import pytest

from tests.factories import new_story, new_update
from tests.support import Editor, LiveServer, make_editor

pytestmark = pytest.mark.anyio


async def raw_get(
    client: httpx.AsyncClient, path: str, **headers: str
) -> tuple[httpx.Response, bytes]:
    async with client.stream("GET", path, headers=headers) as response:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, body


async def test_pages_json_and_feeds_are_gzipped_when_accepted(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor, "storm")
    for n in range(5):
        await new_update(client, editor, "storm", body=f"Update {n}: the wind rises. " * 10)
    for path in ("/stories/storm", "/stories/storm/updates.json", "/stories/storm/feed.atom"):
        plain, identity = await raw_get(client, path, **{"accept-encoding": "identity"})
        response, body = await raw_get(client, path, **{"accept-encoding": "gzip, br"})
        assert "content-encoding" not in plain.headers, path
        assert response.headers["content-encoding"] == "gzip", path
        assert "Accept-Encoding" in response.headers["vary"], path
        assert response.headers["content-length"] == str(len(body))
        assert gzip.decompress(body) == identity, path
        assert len(body) < len(identity) / 2, (path, len(body), len(identity))
        if "etag" in response.headers:  # the page and its JSON: revalidation is untouched
            again = await client.get(
                path,
                headers={"accept-encoding": "gzip", "if-none-match": response.headers["etag"]},
            )
            assert again.status_code == 304, path


async def test_small_answers_and_static_files_are_left_alone(client: httpx.AsyncClient) -> None:
    health, _ = await raw_get(client, "/healthz", **{"accept-encoding": "gzip"})
    assert "content-encoding" not in health.headers
    widget, _ = await raw_get(client, "/static/widget.js", **{"accept-encoding": "gzip, br"})
    assert widget.headers["content-encoding"] == "br"  # the assets' own choice, not gzip
    assert widget.headers["vary"] == "Accept-Encoding"  # said once


async def test_the_event_stream_is_never_compressed(server: LiveServer) -> None:
    editor = server.run(make_editor(server.app, "alice"))
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        await new_story(client, editor, "storm")
        headers = {"accept-encoding": "gzip, br", "accept": "text/event-stream"}
        async with client.stream("GET", "/stories/storm/events", headers=headers) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in stream.headers
            async for chunk in stream.aiter_raw():
                assert chunk.startswith(b"retry:") or b"\n" in chunk  # plain SSE text
                break
