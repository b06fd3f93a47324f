"""Link embeds on the desk (docs/embeds.md): the compose and edit forms' Preview, the
"Refresh embeds" button, and the caption as the line under the link, all through the
desk's HTML forms as a browser without JavaScript sends them, against the fake
provider of tests/embed_provider.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser
from selectolax.lexbor import LexborNode as Node
from starlette.applications import Starlette

from liveblog.settings import Settings
from tests.embed_provider import FakeProvider, serving, settings_with
from tests.factories import new_story, new_update
from tests.support import Editor, bearer, login, make_editor

pytestmark = pytest.mark.anyio
FETCH_TIMEOUT = 1.5
# The compose and edit forms' Preview button (name and value): the same form, nothing saved.
PREVIEW = {"intent": "preview"}


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with serving() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, provider: FakeProvider) -> Settings:
    return settings_with(provider, tmp_path, fetch_timeout=FETCH_TIMEOUT)


@asynccontextmanager
async def browser(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def desk(client: httpx.AsyncClient, editor: Editor) -> str:
    """The editor's browser (``client``) logged in, the story "storm" made: a CSRF token."""
    await new_story(client, editor, "storm")
    return await login(client, editor)


def saved(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """The updates and story events as stored."""
    with closing(sqlite3.connect(settings.data_dir / "liveblog.db")) as conn:
        return {
            table: conn.execute(f'SELECT * FROM "{table}" ORDER BY id').fetchall()
            for table in ("update", "story_event")
        }


def events(settings: Settings) -> list[tuple[str, int | None]]:
    with closing(sqlite3.connect(settings.data_dir / "liveblog.db")) as conn:
        return conn.execute("SELECT kind, update_id FROM story_event ORDER BY seq").fetchall()


def one(node: Node | HTMLParser, selector: str) -> Node:
    found = node.css_first(selector)
    assert found is not None, f"nothing matches {selector!r}"
    return found


def preview_of(html: str) -> Node:
    return one(HTMLParser(html), "[data-desk-preview]")


def problems(html: str) -> list[str]:
    return [node.text(strip=True) for node in HTMLParser(html).css("[data-embed-problem]")]


async def test_preview_shows_the_card_keeps_the_text_and_saves_nothing(
    client: httpx.AsyncClient, desk: str, settings: Settings, provider: FakeProvider
) -> None:
    page = HTMLParser((await client.get("/desk/stories/storm")).text)
    preview_button = one(page, "form[data-compose] button[name=intent][value=preview]")
    # A button of the compose form itself: no JavaScript needed.
    assert one(page, "form[data-compose]").attributes["action"] == "/desk/stories/storm/updates"
    assert preview_button.text(strip=True) == "Preview"
    hint = "A link on its own line becomes an embed; the line right under it is its caption."
    assert one(page, "#body-embed-hint").text(strip=True) == hint
    before = saved(settings)

    link = f"{provider.base}/video/p1"
    body = f"Watch this:\n\n{link}\nThe minister, this morning.\n\nMore soon."
    form = {
        "csrf_token": desk,
        "body": body,
        "headline": "Press conference",
        "key_event": "on",
        "publish_at": "2999-01-01T10:00",
    }
    response = await client.post("/desk/stories/storm/updates", data={**form, **PREVIEW})
    assert response.status_code == 200, response.text
    preview = preview_of(response.text)
    figure = one(preview, "article.update figure.embed")
    assert figure.attributes["class"] == "embed embed--video"
    assert one(figure, ".embed__title").text() == "Press conference p1"
    assert one(figure, "figcaption").text() == "The minister, this morning."
    assert one(preview, ".update__headline").text() == "Press conference"
    assert preview.css_first(".badge--key") is not None
    assert "More soon." in one(preview, ".update__body").text()
    assert problems(response.text) == []
    # The form again, with everything typed: post it from here.
    page = HTMLParser(response.text)
    compose = one(page, "form[data-compose]")
    assert one(compose, "textarea[name=body]").text() == body
    assert one(compose, "input[name=headline]").attributes["value"] == "Press conference"
    assert "checked" in one(compose, "input[name=key_event]").attributes
    assert one(compose, "input[name=publish_at]").attributes["value"] == "2999-01-01T10:00"
    # Nothing saved, nothing sent to readers; the link was fetched once (and cached).
    assert saved(settings) == before
    assert provider.hits["/oembed"] == 1
    reader = await client.get("/stories/storm")
    assert "Press conference p1" not in reader.text

    # Posting from the preview's form publishes exactly that, from the cache.
    del form["publish_at"]
    posted = await client.post("/desk/stories/storm/updates", data=form)
    assert posted.status_code == 303, posted.text
    reader = await client.get("/stories/storm")
    assert "Press conference p1" in reader.text
    assert provider.hits["/oembed"] == 1


@pytest.mark.parametrize(
    ("path", "why"), [("/metadata/1", "private or local"), ("/broken/1", "not JSON")]
)
async def test_preview_says_why_an_embed_is_only_a_link_card(
    client: httpx.AsyncClient, desk: str, provider: FakeProvider, path: str, why: str
) -> None:
    link = provider.base + path
    data = {"csrf_token": desk, "body": f"{link}\nWhat they said.", **PREVIEW}
    response = await client.post("/desk/stories/storm/updates", data=data)
    assert response.status_code == 200, response.text
    figure = one(preview_of(response.text), "figure.embed")
    assert figure.attributes["class"] == "embed embed--link"
    (problem,) = problems(response.text)
    assert problem.startswith("Only a link card:") and why in problem and link in problem


async def test_preview_of_nothing_is_the_form_with_its_error(
    client: httpx.AsyncClient, desk: str, settings: Settings
) -> None:
    before = saved(settings)
    response = await client.post(
        "/desk/stories/storm/updates",
        data={"csrf_token": desk, "body": " ", "headline": "H", **PREVIEW},
    )
    assert response.status_code == 422
    assert "body" in response.text and HTMLParser(response.text).css("[data-desk-preview]") == []
    assert one(HTMLParser(response.text), "input[name=headline]").attributes["value"] == "H"
    assert saved(settings) == before


async def test_preview_needs_the_csrf_token(client: httpx.AsyncClient, desk: str) -> None:
    response = await client.post("/desk/stories/storm/updates", data={"body": "x", **PREVIEW})
    assert response.status_code == 403


async def test_the_edit_form_previews_and_round_trips_the_caption(
    client: httpx.AsyncClient,
    desk: str,
    editor: Editor,
    settings: Settings,
    provider: FakeProvider,
) -> None:
    link = f"{provider.base}/rich/c1"
    body = f"Statement:\n\n{link}\nThe old caption."
    update = await new_update(client, editor, "storm", body=body)
    path = f"/desk/stories/storm/updates/{update['id']}"
    form_page = HTMLParser((await client.get(f"{path}/edit")).text)
    # The edit form holds the caption line as it was typed: edited right there.
    assert one(form_page, "textarea[name=body]").text() == body
    version = one(form_page, "input[name=version]").attributes["value"]
    preview_button = one(form_page, "form button[name=intent][value=preview]")
    assert preview_button.text(strip=True) == "Preview"
    assert one(form_page, "form.stack").attributes["action"] == f"{path}/edit"
    assert one(form_page, "#body-embed-hint") is not None

    changed = body.replace("The old caption.", "The new caption.")
    data = {"csrf_token": desk, "body": changed, "version": str(version)}
    before = saved(settings)
    response = await client.post(f"{path}/edit", data={**data, **PREVIEW})
    assert response.status_code == 200, response.text
    assert one(preview_of(response.text), "figcaption").text() == "The new caption."
    page = HTMLParser(response.text)
    assert one(page, "textarea[name=body]").text() == changed
    assert one(page, "input[name=version]").attributes["value"] == version
    assert saved(settings) == before

    edited = await client.post(f"{path}/edit", data=data)
    assert edited.status_code == 303, edited.text
    got = await client.get(
        f"/api/stories/storm/updates/{update['id']}", headers=bearer(editor.token)
    )
    figcaption = one(HTMLParser(got.json()["body_html"]), "figcaption")
    assert figcaption.text() == "The new caption."
    assert got.json()["embeds"][0]["caption"] == "The new caption."
    assert events(settings)[-1] == ("edit", update["id"])
    assert provider.hits["/oembed"] == 1  # the link did not change: the cache's card


async def test_refresh_embeds_fetches_again_and_readers_get_the_edit(
    client: httpx.AsyncClient,
    desk: str,
    editor: Editor,
    settings: Settings,
    provider: FakeProvider,
) -> None:
    plain = await new_update(client, editor, "storm", body="No links here.")
    update = await new_update(client, editor, "storm", body=f"{provider.base}/video/r1")
    assert provider.hits["/oembed"] == 1
    page = HTMLParser((await client.get("/desk/stories/storm")).text)
    # Only an update with embeds has the button (on the timeline and its edit page).
    assert page.css(f'[data-desk-update="{plain["id"]}"] .desk-refresh-embeds') == []
    form = one(page, f'[data-desk-update="{update["id"]}"] form.desk-refresh-embeds')
    action = form.attributes["action"]
    assert action == f"/desk/stories/storm/updates/{update['id']}/embeds/refresh"
    version = one(form, "input[name=version]").attributes["value"]
    assert version == str(update["version"])
    edit_page = HTMLParser(
        (await client.get(f"/desk/stories/storm/updates/{update['id']}/edit")).text
    )
    assert one(edit_page, "form.desk-refresh-embeds").attributes["action"] == action

    provider.changed["video"] = {"title": "Press conference, renamed"}
    refreshed = await client.post(action, data={"csrf_token": desk, "version": version})
    assert refreshed.status_code == 303, refreshed.text
    assert refreshed.headers["location"] == f"/desk/stories/storm#update-{update['id']}"
    assert provider.hits["/oembed"] == 2
    got = await client.get(
        f"/api/stories/storm/updates/{update['id']}", headers=bearer(editor.token)
    )
    assert got.json()["embeds"][0]["title"] == "Press conference, renamed"
    assert events(settings)[-1] == ("edit", update["id"])
    reader = await client.get("/stories/storm")
    assert "Press conference, renamed" in reader.text

    # The version it was shown is old now: refused, said on the desk, nothing fetched.
    stale = await client.post(action, data={"csrf_token": desk, "version": version})
    assert stale.status_code == 412, stale.text
    assert f"Refreshing the embeds of update {update['id']} was not done" in stale.text
    assert provider.hits["/oembed"] == 2


async def test_a_preview_wants_no_json(client: httpx.AsyncClient, desk: str) -> None:
    # The desk script lets the Preview button through: even asked for JSON, it is a page.
    response = await client.post(
        "/desk/stories/storm/updates",
        data={"csrf_token": desk, "body": "Plain text.", **PREVIEW},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Plain text." in one(preview_of(response.text), ".update__body").text()


async def test_contributors_preview_on_their_stories_only(
    app: Starlette, client: httpx.AsyncClient, desk: str, editor: Editor, provider: FakeProvider
) -> None:
    cora = await make_editor(app, "cora", role="contributor")
    outsider = await make_editor(app, "otto", role="contributor")
    put = await client.put("/api/stories/storm/team/cora", headers=bearer(editor.token))
    assert put.is_success, put.text
    update = await new_update(client, editor, "storm", body=f"{provider.base}/video/t1")
    refresh = f"/desk/stories/storm/updates/{update['id']}/embeds/refresh"
    body = {"body": f"{provider.base}/photo/1\nA photo."}

    async with browser(app) as cora_browser:
        csrf = await login(cora_browser, cora)
        preview = await cora_browser.post(
            "/desk/stories/storm/updates", data={**body, "csrf_token": csrf, **PREVIEW}
        )
        assert preview.status_code == 200, preview.text
        assert one(preview_of(preview.text), "figure.embed--photo") is not None
        # The editor's update is not hers to refresh.
        theirs = await cora_browser.post(refresh, data={"csrf_token": csrf})
        assert theirs.status_code == 403
        # Her own submitted update is, from its edit page.
        mine = await cora_browser.post(
            "/desk/stories/storm/updates", data={**body, "csrf_token": csrf}
        )
        assert mine.status_code == 303, mine.text
        mine_id = int(mine.headers["location"].rsplit("-", 1)[1])
        edit = HTMLParser(
            (await cora_browser.get(f"/desk/stories/storm/updates/{mine_id}/edit")).text
        )
        own = one(edit, "form.desk-refresh-embeds")
        version = one(own, "input[name=version]").attributes["value"]
        done = await cora_browser.post(
            str(own.attributes["action"]), data={"csrf_token": csrf, "version": str(version)}
        )
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"/desk/stories/storm#mine-{mine_id}"

    async with browser(app) as otto_browser:
        csrf = await login(otto_browser, outsider)
        # Off the team: what posting answers, and refreshing what editing answers.
        posted = await otto_browser.post(
            "/desk/stories/storm/updates", data={**body, "csrf_token": csrf}
        )
        preview = await otto_browser.post(
            "/desk/stories/storm/updates", data={**body, "csrf_token": csrf, **PREVIEW}
        )
        assert preview.status_code == posted.status_code == 403
        assert "data-desk-preview" not in preview.text
        edited = await otto_browser.post(
            f"/desk/stories/storm/updates/{update['id']}/edit",
            data={**body, "csrf_token": csrf},
        )
        refreshed = await otto_browser.post(refresh, data={"csrf_token": csrf})
        assert refreshed.status_code == edited.status_code == 403
        edit_preview = await otto_browser.post(
            f"/desk/stories/storm/updates/{update['id']}/edit",
            data={**body, "csrf_token": csrf, **PREVIEW},
        )
        assert edit_preview.status_code == 403
