"""The Atom feed of a story, parsed as XML (and its HTML content parsed as HTML)."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from datetime import datetime

import httpx
import pytest

from liveblog.settings import Settings
from tests.factories import delete_update, new_story, new_update
from tests.htmltree import parse
from tests.support import Editor, bearer

pytestmark = pytest.mark.anyio

ATOM = "{http://www.w3.org/2005/Atom}"


async def fetch_feed(client: httpx.AsyncClient, slug: str = "flood") -> ET.Element:
    response = await client.get(f"/stories/{slug}/feed.atom")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/atom+xml")
    assert response.content.startswith(b"<?xml")
    return ET.fromstring(response.content)


def text_of(element: ET.Element, tag: str) -> str:
    found = element.find(ATOM + tag)
    assert found is not None, f"no <{tag}>"
    return found.text or ""


def moment(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value!r} has no time zone"
    return parsed


def html_tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """Every element of an HTML fragment, in document order, with its attributes."""
    return [(node.tag, node.attrs) for node in parse(html).iter()]


async def test_feed_has_its_metadata_and_one_entry_per_update(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor, title="Flood in the valley", summary="Rivers burst.")
    first = await new_update(client, editor, body="It **started** raining.")
    key = await new_update(
        client, editor, body="Everyone must leave.", headline="Evacuation", key_event=True
    )
    newest = await new_update(client, editor, body="- one\n- two", headline="Lists")

    feed = await fetch_feed(client)
    assert feed.tag == ATOM + "feed"
    assert text_of(feed, "id") == "http://testserver/stories/flood"
    assert text_of(feed, "title") == "Flood in the valley"
    assert text_of(feed, "subtitle") == "Rivers burst."
    assert moment(text_of(feed, "updated")) == moment(newest["created_at"])
    links = {link.get("rel"): link for link in feed.findall(ATOM + "link")}
    assert links["self"].get("href") == "http://testserver/stories/flood/feed.atom"
    assert links["self"].get("type") == "application/atom+xml"
    assert links["alternate"].get("href") == "http://testserver/stories/flood"

    entries = feed.findall(ATOM + "entry")
    expected = [newest, key, first]
    assert len(entries) == len(expected)
    for entry, update in zip(entries, expected, strict=True):
        url = f"http://testserver/stories/flood/updates/{update['id']}"
        assert text_of(entry, "id") == url
        link = entry.find(ATOM + "link")
        assert link is not None and link.get("href") == url
        assert moment(text_of(entry, "published")) == moment(update["created_at"])
        assert moment(text_of(entry, "updated")) == moment(update["created_at"])
        author = entry.find(ATOM + "author")
        assert author is not None and text_of(author, "name") == "Alice"
        content = entry.find(ATOM + "content")
        assert content is not None and content.get("type") == "html"
        assert content.text == update["body_html"]
        categories = [c.get("term") for c in entry.findall(ATOM + "category")]
        assert categories == (["key-event"] if update["key_event"] else [])

    assert text_of(entries[0], "title") == "Lists"
    assert "<li>one</li>" in text_of(entries[0], "content")
    # Without a headline, the title is the start of the text as readers see it.
    assert text_of(entries[2], "title") == "It started raining."
    assert "<strong>started</strong>" in first["body_html"]


async def test_feed_of_an_empty_story(client: httpx.AsyncClient, editor: Editor) -> None:
    story = await new_story(client, editor)
    feed = await fetch_feed(client)
    assert feed.findall(ATOM + "entry") == []
    assert feed.find(ATOM + "subtitle") is None
    assert moment(text_of(feed, "updated")) >= moment(story["created_at"])


async def test_edited_update_carries_its_new_updated_time(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor)
    older = await new_update(client, editor, body="Fist draft")
    newer = await new_update(client, editor, body="Later news")
    response = await client.patch(
        f"/api/stories/flood/updates/{older['id']}",
        json={"body": "First draft"},
        headers=bearer(editor.token),
    )
    assert response.status_code == 200
    edited = response.json()
    assert edited["edited_at"] is not None

    feed = await fetch_feed(client)
    entries = feed.findall(ATOM + "entry")
    # Order stays by posting, newest first; an edit does not move an entry.
    assert [text_of(entry, "id").rsplit("/", 1)[1] for entry in entries] == [
        str(newer["id"]),
        str(older["id"]),
    ]
    entry = entries[1]
    published = moment(text_of(entry, "published"))
    updated = moment(text_of(entry, "updated"))
    assert published == moment(older["created_at"])
    assert updated == moment(edited["edited_at"])
    assert updated > published
    assert text_of(entry, "content") == edited["body_html"]
    assert "First draft" in text_of(entry, "content")
    # The feed's own <updated> is its newest change, which is the edit.
    assert moment(text_of(feed, "updated")) == updated
    assert moment(text_of(entries[0], "updated")) == moment(newer["created_at"])


async def test_hostile_text_is_escaped(client: httpx.AsyncClient, editor: Editor) -> None:
    hostile_title = "<script>alert('title')</script>"
    await new_story(client, editor, title=hostile_title, summary="<b>bold?</b> & more")
    headline = "<script>alert(1)</script> & <img src=x onerror=alert(2)>"
    body = "<script>alert(3)</script>\n\n<img src=x onerror=alert(4)> [x](javascript:alert(5))"
    await new_update(client, editor, headline=headline, body=body)

    response = await client.get("/stories/flood/feed.atom")
    assert response.status_code == 200
    assert b"<script" not in response.content
    assert b"<img" not in response.content
    feed = ET.fromstring(response.content)
    local_names = {element.tag.rsplit("}", 1)[-1] for element in feed.iter()}
    assert "script" not in local_names
    assert "img" not in local_names
    assert text_of(feed, "title") == hostile_title
    assert text_of(feed, "subtitle") == "<b>bold?</b> & more"
    [entry] = feed.findall(ATOM + "entry")
    # The headline comes back as the same text: it was escaped, not interpreted.
    assert text_of(entry, "title") == headline

    content = text_of(entry, "content")
    tags = html_tags(content)
    assert tags, "the content is HTML"
    assert all(tag not in ("script", "img") for tag, _ in tags)
    for _tag, attrs in tags:
        assert not any(name.startswith("on") for name in attrs)
        assert not any("javascript:" in (value or "").lower() for value in attrs.values())
    assert "<script>alert(3)</script>" in content.replace("&lt;", "<").replace("&gt;", ">")


async def test_headline_less_title_is_the_rendered_text_not_the_markdown(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor)
    body = "[link](https://example.com) & <b>raw</b>"
    update = await new_update(client, editor, body=body)
    [entry] = (await fetch_feed(client)).findall(ATOM + "entry")
    title = text_of(entry, "title")
    # The title is what a reader of the update reads: the content's text, whitespace
    # collapsed, without the Markdown syntax. Raw HTML in the source is shown as text on
    # the page (the renderer escapes it), so that is what the title says too.
    content = parse(text_of(entry, "content"))
    assert title == " ".join(content.text().split())
    assert title == "link & <b>raw</b>"
    assert "](" not in title and "https://" not in title
    # The permalink page gives the same text as its title to other sites (Open Graph).
    page = await client.get(f"/stories/flood/updates/{update['id']}")
    assert title in html.unescape(page.text)


async def test_deleted_updates_leave_the_feed(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor)
    keep = await new_update(client, editor, body="keep")
    gone = await new_update(client, editor, body="gone")
    await delete_update(client, editor, gone["id"])
    entries = (await fetch_feed(client)).findall(ATOM + "entry")
    assert [text_of(entry, "id") for entry in entries] == [
        f"http://testserver/stories/flood/updates/{keep['id']}"
    ]


async def test_feed_holds_the_newest_50(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor)
    ids = [(await new_update(client, editor, body=f"n{n}"))["id"] for n in range(53)]
    entries = (await fetch_feed(client)).findall(ATOM + "entry")
    assert [int(text_of(entry, "id").rsplit("/", 1)[1]) for entry in entries] == ids[::-1][:50]


async def test_feed_uses_the_configured_base_url(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor)
    update = await new_update(client, editor)
    settings.base_url = "https://news.example/"
    feed = await fetch_feed(client)
    assert text_of(feed, "id") == "https://news.example/stories/flood"
    [entry] = feed.findall(ATOM + "entry")
    assert text_of(entry, "id") == f"https://news.example/stories/flood/updates/{update['id']}"


async def test_unknown_story_feed_is_404(client: httpx.AsyncClient, editor: Editor) -> None:
    response = await client.get("/stories/nope/feed.atom")
    assert response.status_code == 404
    await new_story(client, editor, "secret", status="draft")
    assert (await client.get("/stories/secret/feed.atom")).status_code == 404
