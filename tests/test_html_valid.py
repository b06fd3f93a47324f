"""Every page type is valid HTML, as the Nu HTML Checker (vnu, the W3C's validator) says.

The pages are fetched from the real app, written to files and checked in one vnu run (the
JVM takes seconds to start). Any error fails the test; so does any warning, but for the
few listed in ``ALLOWED_WARNINGS`` with the reason each is right as it is.

vnu is npm's ``vnu-jar`` (a pinned version, installed by ``.ci/run`` under
``.cache/vnu``, or wherever ``LIVEBLOG_VNU_JAR`` points) run by Debian's Java. Without
either the test is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from liveblog import articles, store
from liveblog.models import ProfilePatch, Webhook, WebhookAttempt, utcnow
from liveblog.settings import Settings
from tests.factories import new_story, new_update
from tests.services import unavailable
from tests.support import Editor, bearer, csrf_from, login, make_editor, migrated_settings_for

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
VNU_JAR = Path(
    os.environ.get("LIVEBLOG_VNU_JAR", ROOT / ".cache/vnu/node_modules/vnu-jar/build/dist/vnu.jar")
)

# The page types checked, by name (each is one file in the vnu run). Kept here so the
# list of what is validated is in one place; the test asserts it fetched all of them.
PAGES = (
    "home",
    "story",
    "story-page-2",
    "story-oldest-first",
    "permalink",
    "permalink-headline-less",
    "author",
    "story-announced",
    "category",
    "desk-categories",
    "profile",
    "search",
    "search-empty",
    "api-docs",
    "embed",
    "error-404",
    "error-403",
    "login",
    "login-failed",
    "desk-home",
    "story-desk",
    "story-desk-step-error",
    "desk-preview",
    "edit-preview",
    "contributor-home",
    "contributor-desk",
    "edit-form",
    "history",
    "tokens",
    "users",
    "webhooks",
    "webhook-created",
)

# A page vnu must find fault with, checked in the same run: proof that the checker ran and
# reads our files (an empty report from a checker that checked nothing passes nothing).
CANARY = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>canary</title></head>'
    '<body><time datetime="2026-11-28T08:27:02.721960+00:00">then</time></body></html>'
)

# Warnings vnu gives that are right as they are, with why.
ALLOWED_WARNINGS: dict[str, str] = {}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Two updates a page, so the story has a second page with few updates.
    return migrated_settings_for(tmp_path / "data", page_size=2)


def _vnu() -> list[str]:
    java = shutil.which("java")
    if java is None:
        unavailable("Java (Debian's default-jre-headless, for the Nu HTML Checker)")
    if not VNU_JAR.is_file():
        unavailable(f"the Nu HTML Checker ({VNU_JAR}; .ci/run installs npm's vnu-jar)")
    return [java, "-Xss16m", "-jar", str(VNU_JAR)]


async def _get(client: httpx.AsyncClient, path: str, status: int = 200) -> str:
    response = await client.get(path)
    assert response.status_code == status, (path, response.status_code)
    assert response.headers["content-type"].startswith("text/html"), path
    return response.text


def _link(html: str, rel_text: str) -> str:
    match = re.search(r'<a rel="next" href="([^"]+)">' + rel_text, html)
    assert match is not None, f"no {rel_text!r} link"
    return match.group(1).replace("&amp;", "&")


async def _pages(app: Starlette, client: httpx.AsyncClient) -> dict[str, str]:
    """Every page type, with content that exercises each part of its template."""
    admin: Editor = await make_editor(app, "alice", role="admin")
    bob = await make_editor(app, "bob", role="editor")
    for name in ("World", "Weather"):
        made = await client.post(
            "/api/categories", json={"name": name}, headers=bearer(admin.token)
        )
        assert made.status_code == 201, made.text
    await new_story(
        client,
        admin,
        "flood",
        summary="Rivers rise across the region.",
        authors=["alice", {"name": "Staff and agencies"}],
        categories=["weather", "world"],
        lead="Background.\n\n## What to expect\n\nRain.\n\n## Stay safe\n\n> Stay in.\n> — Fire",
    )
    soon_start = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    await new_story(client, admin, "summit", starts_at=soon_start, authors=["bob"])
    async with app.state.liveblog.db.transaction() as session:
        alice = await store.get_user(session, admin.user_id)
        assert alice is not None
        profile = ProfilePatch(bio="Covers floods.", photo_url="https://img.example/a.jpg")
        await articles.change_profile(session, alice, profile)
    await new_update(client, admin, "flood", headline="Levee holds", key_event=True)
    loose = await new_update(
        client, admin, "flood", body="[link](https://example.com) & <b>raw</b> *text*"
    )
    await new_update(client, admin, "flood", body="Roads closed.", pinned=True)
    await new_update(client, admin, "flood", headline="Rain stops", body="Sun **out**.")
    await new_story(client, admin, "storm")
    headed = await new_update(client, admin, "storm", headline="Storm passes")
    ended = await client.patch(
        "/api/stories/storm", json={"status": "ended"}, headers=bearer(admin.token)
    )
    assert ended.status_code == 200, ended.text

    pages: dict[str, str] = {}
    pages["login"] = await _get(client, "/login")
    failed = await client.post(
        "/login",
        data={"username": "alice", "password": "wrong", "csrf_token": csrf_from(pages["login"])},
    )
    assert 400 <= failed.status_code < 500, failed.status_code
    pages["login-failed"] = failed.text
    pages["home"] = await _get(client, "/")
    pages["story"] = await _get(client, "/stories/flood")
    pages["story-page-2"] = await _get(client, _link(pages["story"], "Older updates"))
    pages["story-oldest-first"] = await _get(client, "/stories/flood?order=oldest")
    pages["permalink"] = await _get(client, f"/stories/storm/updates/{headed['id']}")
    pages["permalink-headline-less"] = await _get(client, f"/stories/flood/updates/{loose['id']}")
    pages["author"] = await _get(client, "/authors/alice")
    pages["story-announced"] = await _get(client, "/stories/summit")
    pages["category"] = await _get(client, "/categories/weather")
    pages["search"] = await _get(client, "/search?q=levee+rain+storm")
    pages["search-empty"] = await _get(client, "/search?q=nothing+like+this")
    pages["api-docs"] = await _get(client, "/api/docs")
    pages["embed"] = await _get(client, "/embed/flood")
    pages["error-404"] = await _get(client, "/stories/no-such-story", 404)
    # The newsroom's sections: a contributor's submission, draft and returned update;
    # the admin's own draft and a scheduled update (docs/newsroom.md).
    cleo = await make_editor(app, "cleo", role="contributor")
    await client.put("/api/stories/flood/team/cleo", headers=bearer(admin.token))
    waiting = await new_update(client, cleo, "flood", body="Crowds at the *bridge*.")
    await new_update(client, cleo, "flood", body="Unconfirmed.", state="draft")
    sent_back = await new_update(client, cleo, "flood", body="A second breach.")
    returned = await client.post(
        f"/api/stories/flood/updates/{sent_back['id']}/return",
        json={"note": "Who says so? Add the source."},
        headers=bearer(admin.token),
    )
    assert returned.status_code == 200, returned.text
    await new_update(client, admin, "flood", body="Notes to self.", state="draft")
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    await new_update(client, admin, "flood", body="At noon.", publish_at=soon)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await login(other, cleo)
        pages["contributor-home"] = await _get(other, "/desk")
        pages["contributor-desk"] = await _get(other, "/desk/stories/flood")

    csrf = await login(client, admin)
    edited = await client.post(
        f"/desk/stories/flood/updates/{loose['id']}/edit",
        data={"csrf_token": csrf, "body": loose["body"] + " Edited.", "headline": ""},
    )
    assert edited.status_code == 303, edited.text
    pages["desk-home"] = await _get(client, "/desk")
    pages["story-desk"] = await _get(client, "/desk/stories/flood")
    refused = await client.post(
        f"/desk/stories/flood/updates/{waiting['id']}/steps/schedule",
        data={"csrf_token": csrf, "publish_at": "2000-01-01T10:00"},
    )
    assert refused.status_code == 422, refused.status_code
    pages["story-desk-step-error"] = refused.text
    # Preview: a link on its own line that is never fetched (a local address) is a
    # link card, with the reason shown; the edit form's preview too.
    typed = {
        "csrf_token": csrf,
        "body": "Look:\n\nhttp://127.0.0.1/x\nIts caption.",
        "intent": "preview",
        "headline": "H",
    }
    previewed = await client.post("/desk/stories/flood/updates", data=typed)
    assert previewed.status_code == 200 and "data-embed-problem" in previewed.text
    pages["desk-preview"] = previewed.text
    previewed = await client.post(f"/desk/stories/flood/updates/{loose['id']}/edit", data=typed)
    assert previewed.status_code == 200, previewed.status_code
    pages["edit-preview"] = previewed.text
    pages["edit-form"] = await _get(client, f"/desk/stories/flood/updates/{loose['id']}/edit")
    pages["history"] = await _get(client, f"/desk/stories/flood/updates/{loose['id']}/history")
    pages["tokens"] = await _get(client, "/desk/tokens")
    pages["users"] = await _get(client, "/desk/users")
    # Webhooks: one just registered (its secret shown), one failing with its answers.
    created = await client.post(
        "/desk/webhooks",
        data={"csrf_token": csrf, "url": "http://192.0.2.1/hook", "events": ["update", "edit"]},
    )
    assert created.status_code == 201, created.status_code
    pages["webhook-created"] = created.text
    created = await client.post(
        "/desk/webhooks",
        data={"csrf_token": csrf, "url": "https://hooks.example/in", "stories": ["flood"]},
    )
    assert created.status_code == 201, created.status_code
    async with app.state.liveblog.db.transaction() as session:
        failing = await session.get(Webhook, 2)
        assert failing is not None
        failing.failing_since = utcnow()
        session.add(failing)
        flood = await store.get_story(session, "flood")
        assert flood is not None and flood.id is not None
        session.add(WebhookAttempt(webhook_id=2, story_id=flood.id, seq=3, status=503))
        session.add(
            WebhookAttempt(webhook_id=2, story_id=flood.id, seq=3, error="connection refused")
        )
    pages["webhooks"] = await _get(client, "/desk/webhooks")
    assert "Failing since" in pages["webhooks"] and "connection refused" in pages["webhooks"]
    pages["desk-categories"] = await _get(client, "/desk/categories")
    pages["profile"] = await _get(client, "/desk/profile")
    # An editor who is not an admin asks for the accounts page: the 403 error page.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await login(other, bob)
        pages["error-403"] = await _get(other, "/desk/users", 403)
    return pages


async def test_every_page_type_is_valid_html(
    app: Starlette, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    command = _vnu()
    pages = await _pages(app, client)
    assert sorted(pages) == sorted(PAGES), "PAGES lists every page type checked"
    out = tmp_path / "pages"
    out.mkdir()
    files = []
    for name, html in {**pages, "canary": CANARY}.items():
        path = out / f"{name}.html"
        path.write_text(html, encoding="utf-8")
        files.append(str(path))
    with anyio.fail_after(300):
        run = await anyio.run_process(
            [*command, "--format", "json", "--stdout", *files], check=False
        )
    stderr = run.stderr.decode(errors="replace")
    assert run.stdout.strip(), f"vnu said nothing on stdout: {stderr}"
    messages = json.loads(run.stdout)["messages"]
    problems = []
    canary = []
    for message in messages:
        kind = message.get("subType") if message["type"] == "info" else message["type"]
        if kind not in ("error", "warning", "fatal", "non-document-error"):
            continue
        if kind == "warning" and message["message"] in ALLOWED_WARNINGS:
            continue
        page = Path(message.get("url", "?")).stem
        if page == "canary":
            canary.append(message["message"])
            continue
        line = message.get("lastLine", "?")
        problems.append(f"{page}:{line}: {kind}: {message['message']}")
    assert any("fraction of a second" in text for text in canary), (canary, stderr)
    assert problems == [], f"{len(problems)} vnu problems:\n" + "\n".join(problems)
