"""``liveblog export`` / ``liveblog import`` (liveblog/transfer.py): a rich story built
through the real API, exported, imported into a fresh database, and every reader-visible
output compared byte for byte. The PostgreSQL leg is tests/test_postgres_export.py."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette

from liveblog import articles, store, transfer
from liveblog.app import create_app
from liveblog.models import ProfilePatch
from liveblog.settings import Settings
from liveblog.state import Liveblog
from tests.embed_provider import FakeProvider
from tests.support import (
    SECRET_KEY,
    bearer,
    login,
    make_editor,
    migrated_settings_for,
    run_server,
    settings_for,
)

pytestmark = pytest.mark.anyio
SLUG = "storm-aurelia"


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


async def build_story(app: Starlette, client: httpx.AsyncClient) -> None:
    """A story with every kind of thing an export must carry."""
    alice = await make_editor(app, "alice", role="admin")
    await make_editor(app, "bob", role="editor")
    auth = bearer(alice.token)
    upload = await client.post(
        "/api/media", content=png(1200, 700), headers={**auth, "Content-Type": "image/png"}
    )
    assert upload.status_code in (200, 201), upload.text
    image = upload.json()
    portrait = await client.post(
        "/api/media", content=png(300, 300), headers={**auth, "Content-Type": "image/png"}
    )
    liveblog: Liveblog = app.state.liveblog
    async with liveblog.db.transaction() as session:
        user = await store.get_user_by_username(session, "alice")
        assert user is not None
        await articles.change_profile(
            session, user, ProfilePatch(bio="Weather desk.", photo_url=portrait.json()["url"])
        )
    created = await client.post("/api/categories", json={"name": "Weather"}, headers=auth)
    assert created.status_code == 201, created.text
    story = await client.post(
        "/api/stories",
        json={
            "title": "Storm Aurelia",
            "slug": SLUG,
            "summary": "Live coverage of the storm.",
            "status": "live",
            "breaking": True,
            "lead": "## What we know\n\nThe storm made landfall **overnight**.",
            "authors": ["alice", {"name": "Staff and agencies"}],
            "categories": ["weather"],
            "tags": ["storm", "floods"],
        },
        headers=auth,
    )
    assert story.status_code == 201, story.text
    base = f"/api/stories/{SLUG}/updates"

    async def post(body: dict[str, Any], token: str = alice.token) -> dict[str, Any]:
        response = await client.post(base, json=body, headers=bearer(token))
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    await post({"body": "Winds of 120 km/h on the coast.", "headline": "Red alert"})
    key = await post({"body": "The A4 bridge is **closed**.", "key_event": True})
    await post(
        {
            "body": "Flooding in the harbour.",
            "image_url": image["url"],
            "image_alt": "A flooded street",
            "image_caption": "The harbour at noon",
            "image_credit": "Photo: Alice",
        }
    )
    bob = await make_editor(app, "carol", role="editor")
    corrected = await post({"body": "Some 3,000 homes without power."}, token=bob.token)
    patched = await client.patch(
        f"{base}/{corrected['id']}", json={"body": "Some 30,000 homes without power."}, headers=auth
    )
    assert patched.status_code == 200, patched.text
    gone = await post({"body": "A wrong report."})
    deleted = await client.delete(f"{base}/{gone['id']}", headers=auth)
    assert deleted.status_code == 204, deleted.text
    await post({"body": "Not yet: waiting for the police.", "state": "draft"})
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    await post({"body": "The next briefing.", "publish_at": later})
    await post({"body": "Stay indoors tonight.", "pinned": True})
    if liveblog.settings.oembed_providers is not None:  # round_trip runs the provider
        # A link embed: its card (a re-hosted thumbnail) and its click-through frame.
        body = f"The briefing:\n\n{PROVIDER.base}/video/briefing\nLive."
        embedded = await post({"body": body})
        assert 'data-embed-frame="/embed-frame/' in embedded["body_html"], embedded["body_html"]
    patched = await client.patch(f"{base}/{key['id']}", json={"headline": "Bridge"}, headers=auth)
    assert patched.status_code == 200, patched.text
    ended = await client.patch(f"/api/stories/{SLUG}", json={"status": "ended"}, headers=auth)
    assert ended.status_code == 200, ended.text


async def reader_outputs(app: Starlette, client: httpx.AsyncClient) -> dict[str, Any]:
    """Every output a reader (or an API client) gets of the story, as bytes."""
    liveblog: Liveblog = app.state.liveblog
    reader = "apireader"
    async with liveblog.db.session() as session:
        exists = await store.get_user_by_username(session, reader)
    token = (await make_editor(app, reader, role="editor")).token if exists is None else ""
    api = await client.get(f"/api/stories/{SLUG}/updates?limit=100", headers=bearer(token))
    assert api.status_code == 200, api.text
    ids = sorted({u["id"] for u in api.json()["updates"]} | set(range(1, 12)))
    paths = [
        f"/stories/{SLUG}",
        f"/stories/{SLUG}/feed.atom",
        f"/stories/{SLUG}/updates.json",
        f"/stories/{SLUG}/updates.json?order=oldest&limit=3",
        f"/embed/{SLUG}",
        "/authors/alice",
        "/authors/carol",
        "/categories/weather",
        *(f"/stories/{SLUG}/updates/{i}" for i in ids),
    ]
    outputs: dict[str, Any] = {}
    for path in paths:
        response = await client.get(path)
        outputs[path] = (
            response.status_code,
            response.headers.get("content-type"),
            response.content,
        )
    for path in (f"/api/stories/{SLUG}", f"/api/stories/{SLUG}/updates?limit=100"):
        response = await client.get(path, headers=bearer(token))
        outputs[path] = (response.status_code, response.content)
    events = await client.get(f"/stories/{SLUG}/events", headers={"Last-Event-ID": "0"})
    outputs["events"] = (events.status_code, events.content)
    assert b"event: delete" in events.content and b'"status":"ended"' in events.content
    page = outputs[f"/stories/{SLUG}"][2].decode()
    frames = sorted(set(__import__("re").findall(r'data-embed-frame="(/embed-frame/[^"]+)"', page)))
    for path in frames:
        response = await client.get(path)
        outputs[path] = (
            response.status_code,
            response.headers.get("content-type"),
            response.content,
        )
    media = sorted(set(__import__("re").findall(r"/media/([0-9a-f]{24}[^\" ,]*\.png)", page)))
    assert len(media) >= 3, page  # the image, its smaller widths
    for name in [*media, *_author_media(outputs)]:
        response = await client.get(f"/media/{name}")
        outputs[f"/media/{name}"] = (response.status_code, response.content)
    return outputs


def _author_media(outputs: dict[str, Any]) -> list[str]:
    page = outputs["/authors/alice"][2].decode()
    return sorted(set(__import__("re").findall(r"/media/([0-9a-f]{24}\.png)", page)))


def cli(
    settings: Settings, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "LIVEBLOG_DATA_DIR": str(settings.data_dir),
        "LIVEBLOG_SECRET_KEY": SECRET_KEY.get_secret_value(),
    }
    if settings.database_url:
        env["LIVEBLOG_DATABASE_URL"] = settings.database_url
    else:
        env.pop("LIVEBLOG_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "liveblog.cli", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


def export_with_cli(settings: Settings) -> bytes:
    done = cli(settings, "export", SLUG)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def import_with_cli(settings: Settings, document: bytes) -> str:
    done = cli(settings, "import", "-", stdin=document)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def without_export_time(document: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(document)
    assert parsed.pop("exported_at")
    return parsed


def _active_dropped(user: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in user.items() if name != "active"}


def assert_same_outputs(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before.keys() == after.keys()
    for path in before:
        assert before[path] == after[path], f"{path} differs after the round trip"


# The fake provider the source story's link embed is fetched from (tests/embed_provider.py):
# only the source reaches it; the targets get the embed from the document.
PROVIDER = FakeProvider()


async def round_trip(source: Settings, targets: list[Settings]) -> None:
    """Build on ``source``, then export and import along ``targets`` in turn, comparing
    every output and every document with the first."""
    with run_server(PROVIDER.app()) as live:
        PROVIDER.base = live.url
        source.data_dir.mkdir(parents=True, exist_ok=True)
        source = source.model_copy(
            update={
                "fetch_allow_hosts": live.url.removeprefix("http://"),
                "oembed_providers": PROVIDER.providers_file(source.data_dir),
            }
        )
        async with running(source) as (app, client):
            await build_story(app, client)
            expected = await reader_outputs(app, client)
    assert any(path.startswith("/embed-frame/") for path in expected), "no link embed"
    document = export_with_cli(source)
    first = without_export_time(document)
    assert {u["state"] for u in first["updates"]} >= {"published", "draft", "scheduled"}
    assert any(u["revisions"] for u in first["updates"])
    assert any(u["deleted_at"] for u in first["updates"])
    assert len(first["media"]) >= 4
    assert len(first["link_embeds"]) == 1
    for target in targets:
        summary = import_with_cli(target, document)
        assert f"imported {SLUG}" in summary
        async with running(target) as (app, client):
            assert_same_outputs(expected, await reader_outputs(app, client))
        document = export_with_cli(target)
        again = without_export_time(document)
        for story in (again["story"], first["story"]):
            # Desk statistics: the readers just counted there, not the story's content.
            story.pop("page_views", None), story.pop("peak_readers", None)
        for user in again["users"]:
            assert user.pop("active") is False  # created by the import: cannot log in
        assert again == {**first, "users": [_active_dropped(u) for u in first["users"]]}


async def test_round_trip_on_sqlite_reproduces_every_output(tmp_path: Path) -> None:
    await round_trip(migrated_settings_for(tmp_path / "a"), [migrated_settings_for(tmp_path / "b")])


# --- refusals -------------------------------------------------------------------------


@pytest.fixture
async def exported(tmp_path: Path) -> dict[str, Any]:
    source = migrated_settings_for(tmp_path / "source")
    async with running(source) as (app, client):
        await build_story(app, client)
        liveblog: Liveblog = app.state.liveblog
        async with liveblog.db.session() as session:
            return await transfer.export_story(
                session, SLUG, media_dir=source.media_dir(), media_url=source.media_url
            )


async def try_import(settings: Settings, document: Any) -> str:
    async with running(settings) as (app, _client):
        liveblog: Liveblog = app.state.liveblog
        with pytest.raises(transfer.TransferError) as caught:
            async with liveblog.db.transaction() as session:
                await transfer.import_story(session, document, media_dir=settings.media_dir())
        async with liveblog.db.session() as session:
            assert await store.get_story(session, SLUG) is None or "already" in str(caught.value)
    return str(caught.value)


async def test_an_import_is_refused_whole_with_a_clear_reason(
    tmp_path: Path, exported: dict[str, Any]
) -> None:
    target = migrated_settings_for(tmp_path / "target")
    assert "format" in await try_import(target, {"format": "other"})
    assert "version 2" in await try_import(target, {**exported, "version": 2})
    broken = json.loads(json.dumps(exported))
    broken["updates"][0]["created_at"] = "yesterday"
    assert "updates.0.created_at" in await try_import(target, broken)
    traversal = {**exported, "media": {"../../etc/passwd": "AAAA"}}
    assert "not the name of a media file" in await try_import(target, traversal)
    gap = json.loads(json.dumps(exported))
    del gap["events"][1]
    assert "gap-free" in await try_import(target, gap)
    # Nothing of the refused imports is left: the real one goes through, once.
    async with running(target) as (app, _client):
        liveblog: Liveblog = app.state.liveblog
        async with liveblog.db.transaction() as session:
            imported = await transfer.import_story(session, exported, media_dir=target.media_dir())
    assert imported.users_created == ["alice", "carol"]
    assert "already exists" in await try_import(target, exported)
    other = json.loads(json.dumps(exported))
    other["story"]["slug"] = "another-story"
    message = await try_import(target, other)
    assert "update ids" in message and "already used" in message


async def test_imported_users_cannot_log_in(tmp_path: Path, exported: dict[str, Any]) -> None:
    target = migrated_settings_for(tmp_path / "target")
    async with running(target) as (app, client):
        liveblog: Liveblog = app.state.liveblog
        async with liveblog.db.transaction() as session:
            await transfer.import_story(session, exported, media_dir=target.media_dir())
        async with liveblog.db.session() as session:
            alice = await store.get_user_by_username(session, "alice")
        assert alice is not None and not alice.active
        page = await client.get("/login")
        token = __import__("re").search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        response = await client.post(
            "/login",
            data={"username": "alice", "password": "correct horse battery staple",
                  "csrf_token": token.group(1)},
        )  # fmt: skip
        assert response.status_code != 303
        assert (await client.get("/authors/alice")).status_code == 200


async def test_admins_export_and_import_on_the_desk(tmp_path: Path) -> None:
    async with running(settings_for(tmp_path / "a")) as (app, client):
        await build_story(app, client)
        expected = await reader_outputs(app, client)
        editor = await make_editor(app, "ed", role="editor")
        await login(client, editor)
        assert (await client.get(f"/desk/stories/{SLUG}/export")).status_code == 403
        client.cookies.clear()
        await login(client, await make_editor(app, "root", role="admin"))
        download = await client.get(f"/desk/stories/{SLUG}/export")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == f'attachment; filename="{SLUG}.json"'
    assert json.loads(download.content)["story"]["slug"] == SLUG
    async with running(settings_for(tmp_path / "b")) as (app, client):
        csrf = await login(client, await make_editor(app, "root", role="admin"))
        form = await client.get("/desk/import")
        assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
        empty = await client.post("/desk/import", data={"csrf_token": csrf})
        assert empty.status_code == 400
        files = {"document": ("story.json", download.content, "application/json")}
        done = await client.post("/desk/import", data={"csrf_token": csrf}, files=files)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"/desk/stories/{SLUG}"
        again = await client.post("/desk/import", data={"csrf_token": csrf}, files=files)
        assert again.status_code == 422 and "already exists" in again.text
        client.cookies.clear()
        assert_same_outputs(expected, await reader_outputs(app, client))
