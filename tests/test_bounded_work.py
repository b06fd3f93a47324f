"""Bounded work per request where a stranger can push: JSON nesting (400), image decodes
at a time (a line, then 503), and every unexpected failure answered by us (500 with the
security headers and a plain message, its traceback logged once)."""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.routing import Route

from liveblog.app import SERVER_ERROR, create_app
from liveblog.headers import headers_for
from liveblog.limits import json_depth
from liveblog.media import MAX_WIDTH, ORIENTATION_TAG, MediaStore
from liveblog.settings import Settings
from liveblog.views import api
from tests.support import Editor, LiveServer, bearer, login, make_editor, migrated_settings_for
from tests.test_fanout import wait_until

pytestmark = pytest.mark.anyio

JSON = {"Content-Type": "application/json"}
WAIT = 10  # seconds any single step may take before the test calls it hung
BLUE, YELLOW = (10, 120, 200), (250, 250, 0)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def png(width: int, height: int, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in headers_for(response.request.url.path, https=False).items():
        assert response.headers.get(name) == value, (response.request.url.path, name)


def json_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message: str = response.json()["error"]
    return message


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


def media_of(app: Starlette) -> MediaStore:
    media: MediaStore = app.state.liveblog.media
    return media


async def upload(
    client: httpx.AsyncClient, editor: Editor, data: bytes, content_type: str = "image/png"
) -> httpx.Response:
    return await client.post(
        "/api/media", content=data, headers={**bearer(editor.token), "Content-Type": content_type}
    )


# --- JSON nesting ----------------------------------------------------------------------


# Workflow steps and team changes that take no body (the step or the path says it all).
BODYLESS = {
    "api.submit_update",
    "api.publish_update",
    "api.reject_update",
    "api.unschedule_update",
    "api.add_team_member",
    "api.refresh_embeds",
}


def json_routes(update_id: int) -> list[tuple[str, str]]:
    """Every API route that takes a body: all of them take JSON (uploads live elsewhere)."""
    found = []
    for route in api.routes:
        assert isinstance(route, Route) and route.methods is not None
        if route.name in BODYLESS:
            continue
        for method in sorted(route.methods - {"GET", "HEAD", "DELETE"}):
            path = route.path.replace("{slug}", "storm").replace("{webhook_id:int}", "1")
            found.append((method, path.replace("{update_id:int}", str(update_id))))
    return found


async def test_deep_json_is_400_naming_the_limit_on_every_json_route(
    client: httpx.AsyncClient, app: Starlette, settings: Settings
) -> None:
    # An admin: every JSON route is theirs, the webhooks' too.
    editor = await make_editor(app, "root", role="admin")
    limit = settings.max_json_depth
    story = {"title": "Storm", "slug": "storm", "status": "live"}
    assert (await client.post("/api/stories", json=story, headers=bearer(editor.token))).is_success
    posted = await client.post(
        "/api/stories/storm/updates", json={"body": "first"}, headers=bearer(editor.token)
    )
    routes = json_routes(posted.json()["id"])
    assert {method for method, _ in routes} == {"POST", "PATCH"} and len(routes) == 11
    for method, path in routes:
        for body in [
            nested(5000),  # json.loads alone: RecursionError, a bare 500
            nested(limit + 1),
            '{"deep": ' + nested(limit) + "}",
            "[" * 100_000,  # not even JSON: refused before anything recurses
        ]:
            response = await client.request(
                method, path, content=body, headers={**bearer(editor.token), **JSON}
            )
            message = json_error(response, 400)
            assert f"more than {limit} levels deep" in message, (method, path)
        # One level less is JSON like any other: the model answers (no such field).
        at_limit = await client.request(
            method,
            path,
            content='{"deep": ' + nested(limit - 1) + "}",
            headers={**bearer(editor.token), **JSON},
        )
        assert "deep" in json_error(at_limit, 422), (method, path)
    updates = await client.get("/api/stories/storm/updates", headers=bearer(editor.token))
    assert [update["body"] for update in updates.json()["updates"]] == ["first"]


async def test_brackets_inside_strings_do_not_count(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    story = {"title": "Storm", "slug": "storm", "status": "live"}
    assert (await client.post("/api/stories", json=story, headers=bearer(editor.token))).is_success
    text = '[{"\\"]' * 1000
    response = await client.post(
        "/api/stories/storm/updates", json={"body": text}, headers=bearer(editor.token)
    )
    assert response.status_code == 201, response.text
    assert response.json()["body"] == text


def test_json_depth_counts_nesting_outside_strings() -> None:
    assert json_depth("") == 0 and json_depth('"[[["') == 0 and json_depth("1") == 0
    assert json_depth('{"a": [{"b": [1, {}]}]}') == 5
    assert json_depth('["]", "\\"[", "\\\\", [[]]]') == 3
    assert json_depth('{"a": "b\\\\"} [[[') == 3  # an escaped backslash ends no string
    assert json_depth('"unterminated [[[') == 3  # not JSON: counts high, never low


# --- image decodes ---------------------------------------------------------------------


async def test_a_large_turned_photo_is_scaled_before_it_is_turned_upright(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    # Scaled in its own orientation first (that is cheaper), so the size to scale to
    # must be worked out for the upright image: 5000 wide once turned.
    photo = Image.new("RGB", (3000, 5000), BLUE)
    photo.paste(YELLOW, (0, 0, 1500, 1250))  # top left, until turned
    tags = Image.Exif()
    tags[ORIENTATION_TAG] = 6  # shown turned 90 degrees clockwise
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", exif=tags)
    response = await upload(client, editor, buffer.getvalue(), "image/jpeg")
    assert response.status_code == 201, response.text
    assert (response.json()["width"], response.json()["height"]) == (MAX_WIDTH, 1440)
    with Image.open(settings.media_dir() / response.json()["url"].removeprefix("/media/")) as kept:
        assert kept.size == (MAX_WIDTH, 1440) and not kept.getexif()
        top_right, bottom_left = kept.getpixel((MAX_WIDTH - 50, 50)), kept.getpixel((50, 1390))
    assert isinstance(top_right, tuple) and isinstance(bottom_left, tuple)
    assert max(abs(a - b) for a, b in zip(top_right, YELLOW, strict=True)) < 16
    assert max(abs(a - b) for a, b in zip(bottom_left, BLUE, strict=True)) < 16


def decode_settings(tmp_path: Path, *, queue: int) -> Settings:
    return migrated_settings_for(tmp_path, image_decode_concurrency=1, image_decode_queue=queue)


async def test_an_upload_while_the_decoder_is_busy_and_no_line_gets_503(tmp_path: Path) -> None:
    async with running(decode_settings(tmp_path, queue=0)) as (app, client):
        editor = await make_editor(app, "alice")
        media = media_of(app)
        big = png(7000, 7000)  # about a second of decoding, 46 KiB on the wire
        with anyio.fail_after(WAIT):
            first = asyncio.create_task(upload(client, editor, big))
            await wait_until(lambda: media.decoders.borrowed_tokens == 1, WAIT, "a decode")
            second = await upload(client, editor, png(20, 20))
            assert (await first).status_code == 201
        assert "busy" in json_error(second, 503)
        assert int(second.headers["retry-after"]) > 0
        assert_security_headers(second)
        # The decoder is free again: the same upload goes through.
        assert (await upload(client, editor, png(20, 20))).status_code == 201


async def test_uploads_wait_in_line_up_to_its_length(tmp_path: Path) -> None:
    async with running(decode_settings(tmp_path, queue=1)) as (app, client):
        editor = await make_editor(app, "alice")
        media = media_of(app)
        with anyio.fail_after(WAIT):
            async with media.decoders:  # the app's one decoder, busy
                waiting = asyncio.create_task(upload(client, editor, png(30, 20)))
                in_line = media.decoders.statistics
                await wait_until(lambda: in_line().tasks_waiting == 1, WAIT, "one in line")
                refused = await upload(client, editor, png(20, 30))
                assert not waiting.done()
            assert (await waiting).status_code == 201
        json_error(refused, 503)
        assert int(refused.headers["retry-after"]) > 0


async def test_the_desk_keeps_what_was_typed_when_the_decoders_are_busy(tmp_path: Path) -> None:
    async with running(decode_settings(tmp_path, queue=0)) as (app, client):
        editor = await make_editor(app, "alice")
        story = {"title": "Storm", "slug": "storm", "status": "live"}
        assert (
            await client.post("/api/stories", json=story, headers=bearer(editor.token))
        ).is_success
        posted = await client.post(
            "/api/stories/storm/updates", json={"body": "first"}, headers=bearer(editor.token)
        )
        update_id = posted.json()["id"]
        token = await login(client, editor)
        image = {"image_file": ("river.png", png(40, 30), "image/png")}
        with anyio.fail_after(WAIT):
            async with media_of(app).decoders:
                composed = await client.post(
                    "/desk/stories/storm/updates",
                    data={"csrf_token": token, "body": "Typed while busy."},
                    files=image,
                )
                edited = await client.post(
                    f"/desk/stories/storm/updates/{update_id}/edit",
                    data={"csrf_token": token, "body": "Edited while busy."},
                    files=image,
                )
                scripted = await client.post(
                    "/desk/stories/storm/updates",
                    data={"csrf_token": token, "body": "From the desk script."},
                    files=image,
                    headers={"Accept": "application/json"},
                )
        for response, typed in [(composed, "Typed while busy."), (edited, "Edited while busy.")]:
            assert response.status_code == 503
            assert int(response.headers["retry-after"]) > 0
            assert typed in response.text and "busy with other images" in response.text
            assert_security_headers(response)
        assert "busy" in json_error(scripted, 503)
        assert int(scripted.headers["retry-after"]) > 0
        # Nothing was posted or changed while the decoder was busy.
        updates = await client.get("/api/stories/storm/updates", headers=bearer(editor.token))
        assert [update["body"] for update in updates.json()["updates"]] == ["first"]


# --- unexpected failures ---------------------------------------------------------------


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record not in self.records:  # seen by two loggers' handlers: counted once
            self.records.append(record)

    def errors(self) -> list[logging.LogRecord]:
        return [record for record in self.records if record.levelno >= logging.ERROR]


@contextmanager
def collected_logs() -> Iterator[Collected]:
    """Every record of the app's and the server's loggers (uvicorn's do not propagate)."""
    handler = Collected()
    loggers = [
        logging.getLogger(),
        logging.getLogger("uvicorn"),
        logging.getLogger("uvicorn.error"),
    ]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def wait_for_errors(logs: Collected, count: int) -> list[logging.LogRecord]:
    # The server logs after the answer is sent: give it a moment, then a little longer,
    # to see that nothing else comes.
    deadline = time.monotonic() + WAIT
    while len(logs.errors()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    return logs.errors()


async def test_an_unexpected_failure_is_our_500_with_headers_logged_once(
    server: LiveServer, settings: Settings
) -> None:
    editor: Editor = server.run(make_editor(server.app, "alice"))
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as client:
        story = {"title": "Storm", "slug": "storm", "status": "live"}
        assert (
            await client.post("/api/stories", json=story, headers=bearer(editor.token))
        ).is_success
        token = await login(client, editor)
        # A real fault, not a planted one: the media directory became a file.
        shutil.rmtree(settings.media_dir())
        settings.media_dir().write_text("not a directory")
        with collected_logs() as logs:
            from_api = await upload(client, editor, png(20, 20))
            from_desk = await client.post(
                "/desk/stories/storm/updates",
                data={"csrf_token": token, "body": "With a picture."},
                files={"image_file": ("a.png", png(20, 20), "image/png")},
            )
            errors = wait_for_errors(logs, 2)
    assert json_error(from_api, 500) == SERVER_ERROR
    assert from_desk.status_code == 500
    assert from_desk.headers["content-type"].startswith("text/plain")
    assert from_desk.text == SERVER_ERROR
    for response in (from_api, from_desk):
        assert_security_headers(response)
        assert response.headers["cache-control"] == "no-store"
        assert "Traceback" not in response.text and "FileExistsError" not in response.text
    # Each failure logged once, at ERROR, with its traceback.
    assert len(errors) == 2, [record.getMessage() for record in errors]
    for record in errors:
        assert record.exc_info is not None and record.exc_info[0] is FileExistsError, record.name
