"""Stories as articles (issue 14, items 1-4, 7-9): bylines and date lines, the lead,
categories (API, pages, feeds, the front page, JSON-LD, Open Graph, sitemap), the
announced start, author pages, the desk's forms and the demo story.

tests/test_postgres_articles.py runs these again on PostgreSQL.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from liveblog.demo import DEMO_SLUG, seed_demo
from liveblog.models import utcnow
from liveblog.settings import Settings
from liveblog.views import reader
from tests import services
from tests.factories import api_story, new_story, new_update
from tests.htmltree import Node, page, parse
from tests.support import Editor, LiveServer, bearer, login, make_editor
from tests.test_sitemaps import valid
from tests.test_stream import WAIT, open_stream

pytestmark = pytest.mark.anyio

ATOM = "{http://www.w3.org/2005/Atom}"
LEAD = "Why it matters.\n\n## What to expect\n\nRain.\n\n## How to stay safe\n\nStay in."


async def new_category(client: httpx.AsyncClient, editor: Editor, name: str) -> str:
    response = await client.post(
        "/api/categories", json={"name": name}, headers=bearer(editor.token)
    )
    assert response.status_code == 201, response.text
    slug: str = response.json()["slug"]
    return slug


def json_ld(doc: Node) -> dict[str, Any]:
    [script] = doc.find_all("script", type="application/ld+json")
    data: dict[str, Any] = json.loads("".join(c for c in script.children if isinstance(c, str)))
    return data


def metas(doc: Node, prop: str) -> list[str | None]:
    return [node.attrs.get("content") for node in doc.find_all("meta", property=prop)]


# --- the API contract ---------------------------------------------------------------------


async def test_categories_api_creates_with_a_slug_and_lists_in_order(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    assert await new_category(client, editor, "World News") == "world-news"
    assert await new_category(client, editor, "Politics") == "politics"
    # The same name again gets a slug of its own.
    assert await new_category(client, editor, "Politics") == "politics-2"
    taken = await client.post(
        "/api/categories", json={"name": "X", "slug": "politics"}, headers=bearer(editor.token)
    )
    assert taken.status_code == 409
    empty = await client.post("/api/categories", json={"name": " "}, headers=bearer(editor.token))
    assert empty.status_code == 422
    listed = await client.get("/api/categories", headers=bearer(editor.token))
    assert listed.status_code == 200
    assert [c["slug"] for c in listed.json()["categories"]] == [
        "world-news",
        "politics",
        "politics-2",
    ]


async def test_only_editors_make_categories(
    app: Starlette, client: httpx.AsyncClient, editor: Editor
) -> None:
    contributor = await make_editor(app, "carol", role="contributor")
    refused = await client.post(
        "/api/categories", json={"name": "Sport"}, headers=bearer(contributor.token)
    )
    assert refused.status_code == 403
    assert (await client.get("/api/categories", headers=bearer(contributor.token))).json() == {
        "categories": []
    }


async def test_story_create_and_patch_take_the_article_fields(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    politics = await new_category(client, editor, "Politics")
    world = await new_category(client, editor, "World")
    starts = (utcnow() + timedelta(hours=2)).replace(microsecond=0)
    story = await new_story(
        client,
        editor,
        authors=[editor.username, {"name": "Staff and agencies"}],
        lead=LEAD,
        categories=[politics, world],
        starts_at=starts.isoformat(),
    )
    assert story["authors"] == [
        {"name": "Alice", "username": "alice"},
        {"name": "Staff and agencies", "username": None},
    ]
    assert [c["slug"] for c in story["categories"]] == ["politics", "world"]
    assert story["lead"] == LEAD
    assert story["lead_html"].count("<h2>") == 2
    assert datetime.fromisoformat(story["starts_at"]) == starts
    assert story["started_at"] is None  # announced: it starts with its first update

    patched = await client.patch(
        "/api/stories/flood",
        json={"authors": [{"username": "alice"}], "categories": [world], "lead": "New lead."},
        headers=bearer(editor.token),
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["authors"] == [{"name": "Alice", "username": "alice"}]
    assert [c["slug"] for c in body["categories"]] == ["world"]
    assert body["lead_html"] == "<p>New lead.</p>\n"
    assert (await api_story(client, editor, "flood"))["lead"] == "New lead."
    # The audit trail names what changed (the lead by name only).
    [(detail,)] = services.rows(
        settings, "SELECT detail FROM audit_entry WHERE action = 'story_changed'"
    )
    assert detail == "lead, authors: Alice, categories: world"

    cleared = await client.patch(
        "/api/stories/flood", json={"starts_at": None}, headers=bearer(editor.token)
    )
    assert cleared.json()["starts_at"] is None


async def test_unknown_names_are_422_and_change_nothing(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    before = services.rows(settings, "SELECT * FROM story_event")
    for body in (
        {"categories": ["no-such-category"], "lead": "Changed."},
        {"authors": ["nobody-by-that-name"], "lead": "Changed."},
        {"authors": [{"name": "A", "username": "alice"}]},
        {"starts_at": "2026-12-03T14:00:00"},  # no time zone
    ):
        response = await client.patch("/api/stories/flood", json=body, headers=bearer(editor.token))
        assert response.status_code == 422, (body, response.text)
    assert (await api_story(client, editor, "flood"))["lead"] == ""
    assert services.rows(settings, "SELECT * FROM story_event") == before


# --- the story page ------------------------------------------------------------------------


async def test_story_page_shows_byline_date_line_categories_and_lead(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    politics = await new_category(client, editor, "Politics")
    await new_story(
        client,
        editor,
        authors=["alice", {"name": "Staff and agencies"}],
        categories=[politics],
        lead=LEAD,
    )
    await new_update(client, editor)
    doc = await page(client, "/stories/flood")
    byline = doc.find("p", data_story_byline=True)
    assert " ".join(byline.text().split()).startswith("By Alice and Staff and agencies | ")
    assert byline.find("a", rel="author").attrs["href"] == "/authors/alice"
    assert byline.find("time").text().endswith(str(utcnow().year))
    assert byline.find("span", class_="story-byline__sections").find("a").attrs == {
        "href": "/categories/politics"
    }
    lead = doc.find("details", data_lead=True)
    assert "open" in lead.attrs and "hidden" not in lead.attrs
    assert [h.text() for h in lead.find_all("h2")] == ["What to expect", "How to stay safe"]
    assert doc.find("nav", class_="more-from").find("a").text() == "Read more from Alice"
    # Open Graph: the first category is the section, every one a tag.
    assert metas(doc, "article:section") == ["Politics"]
    assert metas(doc, "article:tag") == ["Politics"]


async def test_tags_are_free_words_apart_from_categories(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    politics = await new_category(client, editor, "Politics")
    story = await new_story(
        client, editor, categories=[politics], tags=["  river   Thames ", "floods", "Floods"]
    )
    # Spaces tidied, the same word in another case once; categories untouched.
    assert story["tags"] == ["river Thames", "floods"]
    assert [c["slug"] for c in story["categories"]] == ["politics"]
    doc = await page(client, "/stories/flood")
    # Open Graph: the categories, then the tags; JSON-LD: the tags as keywords.
    assert metas(doc, "article:tag") == ["Politics", "river Thames", "floods"]
    assert json_ld(doc)["keywords"] == ["river Thames", "floods"]
    assert json_ld(doc)["articleSection"] == ["Politics"]
    patched = await client.patch(
        "/api/stories/flood", json={"tags": ["weather"]}, headers=bearer(editor.token)
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["tags"] == ["weather"]
    # Unchanged tags are no change; an empty list removes them.
    same = await client.patch(
        "/api/stories/flood", json={"tags": ["weather"]}, headers=bearer(editor.token)
    )
    assert same.status_code == 200
    cleared = await client.patch(
        "/api/stories/flood", json={"tags": []}, headers=bearer(editor.token)
    )
    assert cleared.json()["tags"] == []
    doc = await page(client, "/stories/flood")
    assert "keywords" not in json_ld(doc)
    assert metas(doc, "article:tag") == ["Politics"]
    for bad in ([""], ["x" * 51], ["t"] * 21, "weather"):
        refused = await client.patch(
            "/api/stories/flood", json={"tags": bad}, headers=bearer(editor.token)
        )
        assert refused.status_code == 422, bad


async def test_the_lead_folds_once_the_story_has_many_updates(
    client: httpx.AsyncClient, editor: Editor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "LEAD_FOLD", 2)
    await new_story(client, editor, lead=LEAD)
    for _ in range(2):
        await new_update(client, editor)
    assert "open" in (await page(client, "/stories/flood")).find("details", data_lead=True).attrs
    await new_update(client, editor)
    assert (
        "open" not in (await page(client, "/stories/flood")).find("details", data_lead=True).attrs
    )


async def test_a_story_without_a_lead_or_byline_shows_neither(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor)
    doc = await page(client, "/stories/flood")
    assert "hidden" in doc.find("details", data_lead=True).attrs
    assert not doc.find_all("span", class_="story-byline__authors")
    assert not doc.find_all("nav", class_="more-from")
    assert "articleSection" not in json_ld(doc) and "author" not in json_ld(doc)


async def test_the_lead_uses_the_updates_sanitizer(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    lead = "## Safe\n\n<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=1>"
    story = await new_story(client, editor, lead=lead)
    html = story["lead_html"]
    assert "<h2>Safe</h2>" in html
    # Raw HTML is shown as text and a javascript: link is no link.
    assert "<script" not in html and "<img" not in html and "href" not in html
    assert "&lt;script&gt;" in html


async def test_the_lead_shows_https_images_only(client: httpx.AsyncClient, editor: Editor) -> None:
    lead = "\n\n".join(
        [
            '![The *river* at noon](https://img.example/river.png "a title")',
            "![An upload](/media/abc123.jpg)",
            "![script](javascript:alert(1))",
            "![inline](data:image/png;base64,iVBORw0KGgo=)",
            "![plain](http://img.example/plain.png)",
            "![elsewhere](//img.example/x.png)",
        ]
    )
    story = await new_story(client, editor, lead=lead)
    images = parse(story["lead_html"]).find_all("img")
    # An https image and an upload of this site's: the address, the alt text (as
    # text), lazy loading and nothing else; the others are their alt text only.
    assert [img.attrs for img in images] == [
        {"src": "https://img.example/river.png", "alt": "The river at noon", "loading": "lazy"},
        {"src": "/media/abc123.jpg", "alt": "An upload", "loading": "lazy"},
    ]
    for alt in ("inline", "plain", "elsewhere"):
        assert f"<p>{alt}</p>" in story["lead_html"]
    # (Markdown itself refuses a javascript: address: the source stays text.)
    assert "<p>![script](javascript:alert(1))</p>" in story["lead_html"]
    assert "data:" not in story["lead_html"]
    # The reader's page shows them; its CSP's img-src allows https: and 'self'.
    response = await client.get("/stories/flood")
    assert '<img src="https://img.example/river.png"' in response.text
    policy = response.headers["content-security-policy"]
    img_src = next(part for part in policy.split(";") if part.strip().startswith("img-src"))
    assert "https:" in img_src.split() and "'self'" in img_src.split()
    # An update's Markdown keeps no images (its image is a field of its own).
    update = await new_update(client, editor, body="![x](https://img.example/river.png)")
    assert "<img" not in update["body_html"]


# --- pre-live ------------------------------------------------------------------------------


async def test_an_announced_story_turns_live_with_its_first_update(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    starts = (utcnow() + timedelta(hours=3)).replace(microsecond=0)
    await new_story(client, editor, starts_at=starts.isoformat())
    doc = await page(client, "/stories/flood")
    assert doc.find("p", data_prelive=True).text().startswith("Coverage starts at")
    assert doc.find("span", data_story_status=True).text() == "Coming up"
    assert datetime.fromisoformat(json_ld(doc)["coverageStartTime"]) == starts
    assert (await api_story(client, editor, "flood"))["started_at"] is None

    update = await new_update(client, editor)
    started = (await api_story(client, editor, "flood"))["started_at"]
    assert started is not None
    assert abs(datetime.fromisoformat(started) - datetime.fromisoformat(update["created_at"])) < (
        timedelta(seconds=5)
    )
    doc = await page(client, "/stories/flood")
    assert not doc.find_all("p", data_prelive=True)
    assert doc.find("span", data_story_status=True).text() == "Live"
    assert json_ld(doc)["coverageStartTime"] == started


async def test_a_start_in_the_past_starts_the_story_at_once(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    story = await new_story(client, editor, starts_at="2020-01-01T14:00:00Z")
    assert story["started_at"] is not None


# --- categories for readers ---------------------------------------------------------------


async def _story_in(
    client: httpx.AsyncClient, editor: Editor, slug: str, category: str, status: str
) -> None:
    await new_story(client, editor, slug, categories=[category], status=status)


async def test_category_page_lists_live_first_and_pages_without_script(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    world = await new_category(client, editor, "World")
    for n in range(21):
        await _story_in(client, editor, f"ended-{n}", world, "ended")
    await _story_in(client, editor, "live-one", world, "live")
    await _story_in(client, editor, "secret", world, "draft")
    first = await page(client, "/categories/world")
    links = [a.attrs["href"] for a in first.find("ul", class_="story-list").find_all("a")]
    assert links[0] == "/stories/live-one"
    assert len(links) == 20
    older = first.find("a", rel="next").attrs["href"]
    assert older == "/categories/world?page=2"
    second = await page(client, str(older))
    more = [a.attrs["href"] for a in second.find("ul", class_="story-list").find_all("a")]
    assert len(more) == 2 and not set(links) & set(more)
    assert second.find("a", rel="prev").attrs["href"] == "/categories/world"
    assert "/stories/secret" not in links + more
    assert (await client.get("/categories/nowhere")).status_code == 404
    assert (await client.get("/categories/world?page=0")).status_code == 400


async def test_category_feed_is_atom_of_its_published_stories(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    world = await new_category(client, editor, "World")
    await new_story(client, editor, "a", categories=[world], authors=["alice"])
    await new_story(client, editor, "b", categories=[world], status="ended")
    await new_story(client, editor, "hidden", categories=[world], status="draft")
    await new_story(client, editor, "elsewhere")
    response = await client.get("/categories/world/feed.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(response.content)
    assert root.findtext(f"{ATOM}title") == "World"
    ids = [entry.findtext(f"{ATOM}id") or "" for entry in root.iter(f"{ATOM}entry")]
    assert sorted(ids) == ["http://testserver/stories/a", "http://testserver/stories/b"]
    names = [e.findtext(f"{ATOM}author/{ATOM}name") for e in root.iter(f"{ATOM}entry")]
    assert "Alice" in names


async def test_home_page_is_a_front_live_first_then_by_category(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    world = await new_category(client, editor, "World")
    sport = await new_category(client, editor, "Sport")
    await new_story(client, editor, "live-world", categories=[world])
    await new_story(client, editor, "old-world", categories=[world], status="ended")
    await new_story(client, editor, "old-sport", categories=[sport], status="ended")
    await new_story(client, editor, "old-none", status="ended")
    await new_story(client, editor, "draft-sport", categories=[sport], status="draft")
    html = (await client.get("/")).text
    order = [html.index(f'href="/stories/{slug}"') for slug in ("live-world", "old-world")]
    order += [html.index(f'href="/stories/{slug}"') for slug in ("old-sport", "old-none")]
    assert order == sorted(order)
    assert html.count('href="/stories/live-world"') == 1  # live: not again under World
    assert html.index(">World</a></h2>") < html.index(">Sport</a></h2>")
    assert "draft-sport" not in html


async def test_sitemap_lists_categories_with_published_stories(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    world = await new_category(client, editor, "World")
    empty = await new_category(client, editor, "Empty")
    await new_category(client, editor, "Drafts only")
    await new_story(client, editor, "a", categories=[world])
    await new_story(client, editor, "d", categories=["drafts-only"], status="draft")
    response = await client.get("/sitemap.xml")
    valid(response.content, "sitemap.xsd")
    text = response.text
    assert "<loc>http://testserver/categories/world</loc>" in text
    assert f"/categories/{empty}<" not in text and "/categories/drafts-only<" not in text


async def test_the_lead_is_searched(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor, lead="The aqueduct was built in 1820.")
    await new_story(client, editor, "secret", status="draft", lead="Another aqueduct.")
    hits = (await client.get("/api/search?q=aqueduct", headers=bearer(editor.token))).json()
    assert [hit["url"] for hit in hits["results"]] == ["http://testserver/stories/flood"]
    await client.patch(
        "/api/stories/flood", json={"lead": "Rewritten."}, headers=bearer(editor.token)
    )
    hits = (await client.get("/api/search?q=aqueduct", headers=bearer(editor.token))).json()
    assert hits["results"] == []


# --- author pages ---------------------------------------------------------------------------


async def test_author_page_has_bio_photo_and_bylined_stories(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    csrf = await login(client, editor)
    saved = await client.post(
        "/desk/profile",
        data={
            "csrf_token": csrf,
            "bio": "Covers floods.",
            "photo_url": "https://img.example/a.jpg",
        },
    )
    assert saved.status_code == 303
    await new_story(client, editor, "bylined", authors=["alice"])
    await new_story(client, editor, "draft-bylined", authors=["alice"], status="draft")
    await new_story(client, editor, "not-hers")
    client.cookies.clear()
    doc = await page(client, "/authors/alice")
    assert doc.find("p", class_="author-profile__bio").text() == "Covers floods."
    assert doc.find("img", class_="author-profile__photo").attrs["src"] == (
        "https://img.example/a.jpg"
    )
    stories = doc.find("section", class_="author-stories").find_all("a")
    assert [a.attrs["href"] for a in stories] == ["/stories/bylined"]


async def test_a_bad_photo_address_is_refused(client: httpx.AsyncClient, editor: Editor) -> None:
    csrf = await login(client, editor)
    bad = await client.post(
        "/desk/profile", data={"csrf_token": csrf, "bio": "x", "photo_url": "javascript:x"}
    )
    assert bad.status_code == 422
    assert "photo_url" in bad.text or "image" in bad.text
    assert not (await page(client, "/authors/alice")).find_all("p", class_="author-profile__bio")


# --- the desk ------------------------------------------------------------------------------


async def test_desk_settings_form_sets_the_article_fields(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    world = await new_category(client, editor, "World")
    await new_category(client, editor, "Sport")
    await new_story(client, editor)
    csrf = await login(client, editor)
    desk = await page(client, "/desk/stories/flood")
    assert desk.find_all("textarea", name="lead")
    form = {
        "csrf_token": csrf,
        "title": "Flood",
        "summary": "",
        "status": "live",
        "authors": "alice, Staff and agencies",
        "lead": LEAD,
        "categories": world,
        "starts_at": "",
    }
    response = await client.post("/desk/stories/flood", data=form)
    assert response.status_code == 303, response.text
    story = await api_story(client, editor, "flood")
    assert story["authors"] == [
        {"name": "Alice", "username": "alice"},
        {"name": "Staff and agencies", "username": None},
    ]
    assert [c["slug"] for c in story["categories"]] == ["world"]
    assert story["lead"] == LEAD
    refused = await client.post("/desk/stories/flood", data={**form, "categories": "nope"})
    assert refused.status_code == 422
    assert "no such category" in refused.text


async def test_desk_settings_form_sets_the_tags(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor, tags=["old"])
    csrf = await login(client, editor)
    desk = await page(client, "/desk/stories/flood")
    assert desk.find("input", name="tags").attrs["value"] == "old"
    form = {"csrf_token": csrf, "title": "Flood", "summary": "", "status": "live"}
    form |= {"authors": "", "lead": "", "starts_at": ""}
    # Tidied as the API's are: spaces, the same word in another case once, empties gone.
    sent = await client.post(
        "/desk/stories/flood", data={**form, "tags": " river   Thames, floods,,Floods "}
    )
    assert sent.status_code == 303, sent.text
    assert (await api_story(client, editor, "flood"))["tags"] == ["river Thames", "floods"]
    desk = await page(client, "/desk/stories/flood")
    assert desk.find("input", name="tags").attrs["value"] == "river Thames, floods"
    # A form without the field leaves them; an empty one clears them.
    assert (await client.post("/desk/stories/flood", data=form)).status_code == 303
    assert (await api_story(client, editor, "flood"))["tags"] == ["river Thames", "floods"]
    assert (await client.post("/desk/stories/flood", data={**form, "tags": ""})).status_code == 303
    assert (await api_story(client, editor, "flood"))["tags"] == []
    too_long = await client.post("/desk/stories/flood", data={**form, "tags": "x" * 51})
    assert too_long.status_code == 422


async def test_desk_coverage_start_is_the_browsers_wall_clock(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor)
    csrf = await login(client, editor)
    form = {"csrf_token": csrf, "title": "Flood", "summary": "", "status": "live"}
    form |= {"authors": "", "lead": "", "starts_at": "2031-06-01T14:00"}
    # With the desk's script: its offset east of UTC (here +05:30) says whose 14:00.
    sent = await client.post("/desk/stories/flood", data={**form, "starts_tz_offset": "330"})
    assert sent.status_code == 303, sent.text
    story = await api_story(client, editor, "flood")
    assert datetime.fromisoformat(story["starts_at"]) == datetime.fromisoformat(
        "2031-06-01T08:30:00+00:00"
    )
    # The form shows it as UTC, labelled so, with the moment for the script to localise.
    desk = await page(client, "/desk/stories/flood")
    field = desk.find("input", name="starts_at")
    assert field.attrs["value"] == "2031-06-01T08:30"
    assert field.attrs["data-utc"] == "2031-06-01T08:30:00.000+00:00"
    assert desk.find("input", name="starts_tz_offset").attrs["data-tz-offset"] == "starts_at"
    label = next(n for n in desk.find_all("label") if field in n.iter())
    assert "(UTC)" in label.text()
    # Without the script (no offset) the time is UTC, as the label says.
    sent = await client.post("/desk/stories/flood", data={**form, "starts_tz_offset": ""})
    assert sent.status_code == 303, sent.text
    story = await api_story(client, editor, "flood")
    assert story["starts_at"].startswith("2031-06-01T14:00:00")
    bad = await client.post("/desk/stories/flood", data={**form, "starts_tz_offset": "9999"})
    assert bad.status_code == 422
    assert "starts_at" in bad.text


async def test_desk_categories_page_adds_and_reorders(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    csrf = await login(client, editor)
    for name in ("World", "Sport"):
        added = await client.post("/desk/categories", data={"csrf_token": csrf, "name": name})
        assert added.status_code == 303
    moved = await client.post(
        "/desk/categories/sport/move", data={"csrf_token": csrf, "direction": "up"}
    )
    assert moved.status_code == 303
    doc = await page(client, "/desk/categories")
    assert [li.attrs["data-category"] for li in doc.find_all("li", data_category=True)] == [
        "sport",
        "world",
    ]
    listed = (await client.get("/api/categories", headers=bearer(editor.token))).json()
    assert [c["slug"] for c in listed["categories"]] == ["sport", "world"]
    nowhere = await client.post(
        "/desk/categories/nowhere/move", data={"csrf_token": csrf, "direction": "up"}
    )
    assert nowhere.status_code == 404


async def test_desk_categories_page_renames_and_deletes(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    world = await new_category(client, editor, "World")
    sport = await new_category(client, editor, "Sport")
    await new_story(client, editor, categories=[world, sport])
    csrf = await login(client, editor)
    renamed = await client.post(
        f"/desk/categories/{world}/rename", data={"csrf_token": csrf, "name": "Abroad"}
    )
    assert renamed.status_code == 303
    # The slug stays, so the links keep working; the new name shows.
    assert (await page(client, "/categories/world")).find("h1").text() == "Abroad"
    story = await api_story(client, editor, "flood")
    assert [(c["slug"], c["name"]) for c in story["categories"]] == [
        ("world", "Abroad"),
        ("sport", "Sport"),
    ]
    empty = await client.post(
        f"/desk/categories/{world}/rename", data={"csrf_token": csrf, "name": " "}
    )
    assert empty.status_code == 422
    no_csrf = await client.post(f"/desk/categories/{world}/delete", data={})
    assert no_csrf.status_code == 403
    deleted = await client.post(f"/desk/categories/{world}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    story = await api_story(client, editor, "flood")
    assert [c["slug"] for c in story["categories"]] == ["sport"]
    doc = await page(client, "/desk/categories")
    assert [li.attrs["data-category"] for li in doc.find_all("li", data_category=True)] == ["sport"]
    assert (await client.get("/categories/world")).status_code == 404
    for action, data in (("rename", {"name": "X"}), ("delete", {})):
        nowhere = await client.post(
            f"/desk/categories/world/{action}", data={"csrf_token": csrf, **data}
        )
        assert nowhere.status_code == 404


async def test_categories_api_renames_and_deletes(
    client: httpx.AsyncClient, editor: Editor, app: Starlette
) -> None:
    contributor = await make_editor(app, "carol", role="contributor")
    world = await new_category(client, editor, "World")
    await new_story(client, editor, categories=[world])
    path = f"/api/categories/{world}"
    refused = await client.patch(path, json={"name": "X"}, headers=bearer(contributor.token))
    assert refused.status_code == 403
    renamed = await client.patch(path, json={"name": "Abroad"}, headers=bearer(editor.token))
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {"name": "Abroad", "slug": "world", "position": 1}
    empty = await client.patch(path, json={"name": ""}, headers=bearer(editor.token))
    assert empty.status_code == 422
    assert (await client.delete(path, headers=bearer(contributor.token))).status_code == 403
    assert (await client.delete(path, headers=bearer(editor.token))).status_code == 204
    assert (await client.delete(path, headers=bearer(editor.token))).status_code == 404
    story = await api_story(client, editor, "flood")
    assert story["categories"] == []


# --- the demo -------------------------------------------------------------------------------


async def test_demo_story_json_ld_is_a_complete_live_blog_posting(app: Starlette) -> None:
    await seed_demo(app.state.liveblog)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        doc = await page(client, f"/stories/{DEMO_SLUG}")
        data = json_ld(doc)
        logo = await client.get(data["publisher"]["logo"]["url"].removeprefix("http://testserver"))
    assert data["@type"] == "LiveBlogPosting"
    assert data["author"][0] == {
        "@type": "Person",
        "name": "Demo Desk",
        "url": "http://testserver/authors/demo",
    }
    assert data["author"][1] == {"@type": "Organization", "name": "Staff and agencies"}
    assert data["articleSection"] == ["Weather", "Coast"]
    assert datetime.fromisoformat(data["coverageStartTime"])
    assert data["publisher"]["name"] == "liveblog"
    assert logo.status_code == 200 and logo.headers["content-type"] == "image/png"
    assert data["liveBlogUpdate"]
    for posting in data["liveBlogUpdate"]:
        assert posting["headline"] and posting["articleBody"]
        assert datetime.fromisoformat(posting["datePublished"])
        assert "#update-" in posting["url"] and "?" not in posting["url"]
    # And the reader sees them: the byline, the lead's two sections, two categories.
    assert " ".join(doc.find("p", data_story_byline=True).text().split()).startswith(
        "By Demo Desk and Staff and agencies | "
    )
    assert len(doc.find("details", data_lead=True).find_all("h2")) == 2
    assert len(doc.find("span", class_="story-byline__sections").find_all("a")) == 2


# --- live ------------------------------------------------------------------------------------


async def test_a_lead_change_arrives_live(server: LiveServer) -> None:
    alice = server.run(make_editor(server.app, "alice"))
    async with httpx.AsyncClient(
        base_url=server.url, headers=bearer(alice.token), timeout=WAIT
    ) as api:
        await new_story(api, alice, "storm-watch")
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=WAIT) as reader_client,
            open_stream(reader_client, "storm-watch") as stream,
        ):
            patched = await api.patch(
                "/api/stories/storm-watch", json={"lead": "## Background\n\nIt *rained*."}
            )
            assert patched.status_code == 200, patched.text
            event = await stream.next_event()
    assert event.event == "story"
    data = event.json()
    assert data["change"] == ["lead"]
    assert data["lead_html"] == "<h2>Background</h2>\n<p>It <em>rained</em>.</p>\n"
    doc = parse(data["lead_html"])
    assert doc.find("h2").text() == "Background"
