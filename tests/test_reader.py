"""What readers see, checked in the HTML itself (no JavaScript runs here).

Pages are parsed into a small tree (tests/htmltree.py), and checked by element and data
attribute rather than by exact markup.
"""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from tests.factories import api_story, delete_update, new_story, new_update
from tests.htmltree import Node, page, parse, pinned_ids, timeline_ids, update_id
from tests.support import Editor, bearer, login

pytestmark = pytest.mark.anyio


def millis(value: str) -> datetime:
    """A time as a page's ``<time datetime>`` gives it: HTML allows at most milliseconds."""
    moment = datetime.fromisoformat(value)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def older_link(doc: Node) -> str | None:
    links = doc.find_all("a", rel="next")
    assert len(links) <= 1
    return None if not links else str(links[0].attrs["href"])


# --- the front page --------------------------------------------------------------------


async def test_home_lists_live_before_ended_and_hides_drafts(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor, "older-live", title="Older live story")
    await new_story(client, editor, "newer-live", title="Newer live story", breaking=True)
    await new_story(client, editor, "secret", title="Secret draft", status="draft")
    # Ended last, so it is the most recently changed story of all.
    await new_story(client, editor, "finished", title="Finished story")
    ended = await client.patch(
        "/api/stories/finished", json={"status": "ended"}, headers=bearer(editor.token)
    )
    assert ended.status_code == 200

    response = await client.get("/")
    assert response.status_code == 200
    assert "Secret draft" not in response.text
    doc = parse(response.text)
    links = [
        str(a.attrs["href"])
        for a in doc.find_all("a")
        if str(a.attrs.get("href") or "").startswith("/stories/")
    ]
    assert links == ["/stories/newer-live", "/stories/older-live", "/stories/finished"]
    live_list, ended_list = doc.find_all("ul", class_="story-list")
    assert "story-list--ended" in str(ended_list.attrs["class"])
    assert [a.attrs["href"] for a in ended_list.find_all("a")] == ["/stories/finished"]
    assert ended_list.find("time").attrs["datetime"]
    newer = live_list.find("a", href="/stories/newer-live")
    assert newer.find_all("span", class_="badge--breaking")
    assert not live_list.find("a", href="/stories/older-live").find_all(class_="badge--breaking")


async def test_home_with_nothing_live(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor, "secret", title="Secret draft", status="draft")
    doc = await page(client, "/")
    assert doc.find("p", class_="empty").text() == "No story is live right now."
    assert not doc.find_all("ul", class_="story-list")


# --- the story page ----------------------------------------------------------------------


async def test_story_page_renders_without_javascript(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(
        client, editor, title="Flood in the valley", summary="Rivers burst.", breaking=True
    )
    first = await new_update(client, editor, body="It started raining.")
    key = await new_update(
        client, editor, body="Everyone must leave.", headline="Evacuation ordered", key_event=True
    )
    pinned = await new_update(
        client, editor, body="Shelters are open.", headline="Read this first", pinned=True
    )
    newest = await new_update(client, editor, body="Still raining.")
    story = await api_story(client, editor, "flood")

    response = await client.get("/stories/flood")
    assert response.status_code == 200
    doc = parse(response.text)

    assert doc.find("title").text().startswith("Flood in the valley")
    assert doc.find("h1", data_story_title=True).text() == "Flood in the valley"
    assert doc.find("p", data_story_summary=True).text() == "Rivers burst."
    breaking = doc.find(data_story_breaking=True)
    assert "hidden" not in breaking.attrs
    assert breaking.text() == "Breaking"
    status = doc.find(data_story_status=True)
    assert status.text() == "Live"
    assert "badge--live" in str(status.attrs["class"])
    assert "hidden" in doc.find(data_ended_note=True).attrs

    container = doc.find(data_live_story=True)
    assert container.attrs["data-slug"] == "flood"
    assert container.attrs["data-seq"] == str(story["last_seq"])
    assert story["last_seq"] == 5  # four updates and one pin
    assert container.attrs["data-live"] == "true"

    # The pinned update comes first, in the pinned section, before the timeline.
    articles = doc.find_all("article", data_update_id=True)
    assert update_id(articles[0]) == pinned["id"]
    section = doc.find("section", data_pinned=True)
    assert "hidden" not in section.attrs
    assert pinned_ids(doc) == [pinned["id"]]
    assert timeline_ids(doc) == [newest["id"], pinned["id"], key["id"], first["id"]]
    # Only the timeline copy carries the #update-N anchor, so element ids stay unique.
    ids = [node.attrs["id"] for node in doc.iter() if "id" in node.attrs]
    assert len(ids) == len(set(ids))
    assert f"update-{pinned['id']}" in ids

    published = {update["id"]: update for update in (first, key, pinned, newest)}
    timeline = doc.find("div", data_timeline=True)
    for article in timeline.find_all("article", data_update_id=True):
        update = published[update_id(article)]
        assert article.attrs["id"] == f"update-{update['id']}"
        stamp = article.find("time").attrs["datetime"]
        assert datetime.fromisoformat(str(stamp)) == millis(update["created_at"])
        assert article.find("span", class_="update__author").text() == "Alice"
        assert article.find("div", class_="update__body").text() == update["body"]
        headlines = article.find_all("h2", class_="update__headline")
        assert [h.text() for h in headlines] == ([update["headline"]] if update["headline"] else [])
        markers = article.find_all(class_="badge--key")
        assert len(markers) == (1 if update["key_event"] else 0)
        assert ("update--key" in str(article.attrs["class"])) == update["key_event"]
        permalink = article.find("a", class_="update__time")
        assert permalink.attrs["href"] == f"/stories/flood/updates/{update['id']}"

    key_nav = doc.find("nav", class_="key-events")
    [entry] = key_nav.find_all("a")
    assert entry.attrs["href"] == f"/stories/flood/updates/{key['id']}"
    assert entry.text() == "Evacuation ordered"

    last_updated = doc.find("time", data_last_updated=True)
    assert datetime.fromisoformat(str(last_updated.attrs["datetime"])) == millis(
        newest["created_at"]
    )
    feeds = doc.find_all("link", type="application/atom+xml")
    assert [link.attrs["href"] for link in feeds] == ["/stories/flood/feed.atom"]


async def test_permalinks_show_their_update(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor, title="Flood in the valley")
    updates = [
        await new_update(client, editor, body=f"Update number {n}", headline=f"Headline {n}")
        for n in range(3)
    ]
    doc = await page(client, "/stories/flood")
    hrefs = [
        str(a.attrs["href"])
        for a in doc.find("div", data_timeline=True).find_all("a")
        if str(a.attrs.get("href") or "").startswith("/stories/flood/updates/")
    ]
    assert hrefs == [f"/stories/flood/updates/{u['id']}" for u in reversed(updates)]
    for href, update in zip(hrefs, reversed(updates), strict=True):
        single = await page(client, href)
        [article] = single.find_all("article", data_update_id=True)
        assert update_id(article) == update["id"]
        assert article.find("h2").text() == update["headline"]
        assert article.find("div", class_="update__body").text() == update["body"]
        assert single.find("title").text().startswith(update["headline"])
        back = single.find("p", class_="crumbs").find("a")
        assert back.attrs["href"] == "/stories/flood"
        assert back.text().endswith("Flood in the valley")


async def test_pagination_with_older_links(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor)
    posted = [(await new_update(client, editor, body=f"Update {n}"))["id"] for n in range(45)]
    newest_first = posted[::-1]

    pages: list[list[int]] = []
    url: str | None = "/stories/flood"
    while url is not None:
        doc = await page(client, url)
        pages.append(timeline_ids(doc))
        if len(pages) > 1:
            # Older pages are archives: no live stream, a way back, no pinned copy.
            assert doc.find(data_live_story=True).attrs["data-live"] == "false"
            assert doc.find("p", class_="pager--top").find("a").attrs["href"] == "/stories/flood"
        url = older_link(doc)
        if url is not None:
            assert url == f"/stories/flood?before={pages[-1][-1]}"
        assert len(pages) <= 3

    assert pages[0] == newest_first[:20]
    assert pages[1] == newest_first[20:40]
    assert pages[2] == newest_first[40:]
    assert [len(ids) for ids in pages] == [20, 20, 5]
    every = [update for ids in pages for update in ids]
    assert sorted(every) == sorted(posted)
    assert len(every) == len(set(every)) == 45


async def test_exactly_one_full_page_has_no_older_link(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor)
    for n in range(20):
        await new_update(client, editor, body=f"Update {n}")
    doc = await page(client, "/stories/flood")
    assert len(timeline_ids(doc)) == 20
    assert older_link(doc) is None


async def test_empty_story(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor)
    doc = await page(client, "/stories/flood")
    assert timeline_ids(doc) == []
    assert doc.find("p", data_empty=True)
    assert doc.find(data_live_story=True).attrs["data-seq"] == "0"
    assert older_link(doc) is None


@pytest.mark.parametrize("before", ["abc", "-1", "1.5", "9" * 19, "%2F"])
async def test_bad_before_is_400(client: httpx.AsyncClient, editor: Editor, before: str) -> None:
    await new_story(client, editor)
    response = await client.get(f"/stories/flood?before={before}")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "before" in response.text


async def test_draft_is_404_for_readers_and_200_for_editors(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor, title="Embargoed", status="draft")
    update = await new_update(client, editor, body="Not yet public.")
    urls = [
        "/stories/flood",
        f"/stories/flood/updates/{update['id']}",
        "/stories/flood/feed.atom",
    ]
    for url in urls:
        response = await client.get(url)
        assert response.status_code == 404, url
        assert "Embargoed" not in response.text
        assert "Not yet public" not in response.text
    await login(client, editor)
    for url in urls:
        response = await client.get(url)
        assert response.status_code == 200, url
        assert "Not yet public" in response.text
    doc = parse((await client.get("/stories/flood")).text)
    assert doc.find(data_story_status=True).text() == "Draft"


async def test_unknown_story_and_update_are_404_pages(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor, "one")
    await new_story(client, editor, "two")
    update = await new_update(client, editor, "one")
    for url in [
        "/stories/nope",
        "/stories/nope/updates/1",
        "/stories/one/updates/999999",
        f"/stories/two/updates/{update['id']}",
    ]:
        response = await client.get(url)
        assert response.status_code == 404, url
        assert response.headers["content-type"].startswith("text/html")
        doc = parse(response.text)
        assert doc.find("h1").text() == "Not found"
        assert "Go to the front page" in [a.text() for a in doc.find_all("a", href="/")]


async def test_deleted_updates_disappear(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor)
    keep = await new_update(client, editor, body="keep me")
    gone = await new_update(
        client, editor, body="delete me", headline="Wrong", key_event=True, pinned=True
    )
    doc = await page(client, "/stories/flood")
    assert timeline_ids(doc) == [gone["id"], keep["id"]]
    assert pinned_ids(doc) == [gone["id"]]
    assert "hidden" not in doc.find("nav", class_="key-events").attrs

    await delete_update(client, editor, gone["id"])

    response = await client.get("/stories/flood")
    assert "delete me" not in response.text
    doc = parse(response.text)
    assert timeline_ids(doc) == [keep["id"]]
    assert pinned_ids(doc) == []
    assert "hidden" in doc.find("section", data_pinned=True).attrs
    # The key events box stays on the page (the script fills it live), hidden and empty.
    key_box = doc.find("nav", class_="key-events")
    assert "hidden" in key_box.attrs and not key_box.find_all("li")
    assert (await client.get(f"/stories/flood/updates/{gone['id']}")).status_code == 404
    story = await api_story(client, editor, "flood")
    assert doc.find(data_live_story=True).attrs["data-seq"] == str(story["last_seq"])


async def test_ended_story_page(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor)
    await new_update(client, editor)
    ended = await client.patch(
        "/api/stories/flood", json={"status": "ended"}, headers=bearer(editor.token)
    )
    assert ended.status_code == 200
    doc = await page(client, "/stories/flood")
    assert "hidden" not in doc.find(data_ended_note=True).attrs
    assert doc.find(data_story_status=True).text() == "Ended"
    container = doc.find(data_live_story=True)
    assert container.attrs["data-live"] == "false"
    assert container.attrs["data-seq"] == "2"
