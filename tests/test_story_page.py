"""The story page for machines and for readers' choices: JSON-LD, Open Graph, canonical
URLs, the order toggle, author pages, latest stories, permalinks in context, the demo."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from liveblog.demo import DEMO_MINUTES_AGO, DEMO_SLUG, DEMO_UPDATES, seed_demo
from tests.factories import api_story, delete_update, new_story, new_update
from tests.htmltree import Node, page, parse, timeline_ids
from tests.support import Editor, bearer, login, make_editor

pytestmark = pytest.mark.anyio


def json_ld(doc: Node) -> dict[str, Any]:
    [script] = doc.find_all("script", type="application/ld+json")
    text = "".join(child for child in script.children if isinstance(child, str))
    data: dict[str, Any] = json.loads(text)
    return data


def meta(doc: Node, key: str) -> str:
    [tag] = [
        node
        for node in doc.find_all("meta")
        if key in (node.attrs.get("property"), node.attrs.get("name"))
    ]
    return str(tag.attrs["content"])


def millis(value: str) -> datetime:
    """A time as a page's ``<time datetime>`` gives it: HTML allows at most milliseconds."""
    moment = datetime.fromisoformat(value)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_json_ld_describes_the_live_blog_as_the_page_shows_it(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor, title="Flood in the valley", summary="Rivers burst.")
    plain = await new_update(client, editor, body="It started **raining**.")
    key = await new_update(client, editor, body="Leave now.", headline="Evacuation", key_event=True)
    await client.patch(
        f"/api/stories/flood/updates/{plain['id']}",
        json={"body": "It started **raining** hard."},
        headers=bearer(editor.token),
    )
    story = await api_story(client, editor, "flood")
    doc = await page(client, "/stories/flood")
    data = json_ld(doc)

    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "LiveBlogPosting"
    assert data["url"] == data["@id"] == "http://testserver/stories/flood"
    assert data["headline"] == doc.find("h1", data_story_title=True).text()
    assert data["description"] == doc.find("p", data_story_summary=True).text()
    assert moment(data["coverageStartTime"]) == moment(story["started_at"])
    assert "coverageEndTime" not in data  # still live
    assert moment(data["dateModified"]) >= moment(data["datePublished"])

    articles = doc.find("div", data_timeline=True).find_all("article", data_update_id=True)
    postings = data["liveBlogUpdate"]
    assert len(postings) == len(articles) == 2
    for posting, article in zip(postings, articles, strict=True):
        update_id = article.attrs["data-update-id"]
        assert posting["@type"] == "BlogPosting"
        # Its place in the live page (issue 14): a #fragment, no query string; the
        # permalink stays its @id.
        assert posting["url"] == f"http://testserver/stories/flood#update-{update_id}"
        assert posting["@id"] == f"http://testserver/stories/flood/updates/{update_id}"
        published = article.find("a", class_="update__time").find("time").attrs["datetime"]
        assert millis(posting["datePublished"]) == moment(str(published))
        assert moment(posting["dateModified"]) >= moment(posting["datePublished"])
        byline = article.find("span", class_="update__author").find("a")
        assert posting["author"] == {
            "@type": "Person",
            "name": byline.text(),
            "url": f"http://testserver{byline.attrs['href']}",
        }
        assert posting["articleBody"] == article.find("div", class_="update__body").text()
    assert postings[0]["headline"] == "Evacuation"
    assert postings[0]["url"].endswith(f"#update-{key['id']}")
    # No headline: the start of the text stands in for one.
    assert postings[1]["headline"] == "It started raining hard."
    assert postings[1]["dateModified"] != postings[1]["datePublished"]

    ended = await client.patch(
        "/api/stories/flood", json={"status": "ended"}, headers=bearer(editor.token)
    )
    data = json_ld(await page(client, "/stories/flood"))
    assert moment(data["coverageEndTime"]) == moment(ended.json()["ended_at"])


async def test_json_ld_cannot_be_broken_out_of(client: httpx.AsyncClient, editor: Editor) -> None:
    hostile = "</script><script>alert(1)</script><!--"
    await new_story(client, editor, title=hostile, summary=hostile)
    await new_update(client, editor, body=hostile, headline=hostile)
    response = await client.get("/stories/flood")
    assert "</script><script>alert(1)" not in response.text
    data = json_ld(parse(response.text))
    assert data["headline"] == data["description"] == hostile
    assert data["liveBlogUpdate"][0]["headline"] == hostile


async def test_open_graph_twitter_card_and_canonical(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor, title="Flood", summary="Rivers burst their banks.")
    for n in range(21):
        await new_update(client, editor, body=f"Update {n}")
    image = "https://images.example.org/river.jpg"
    pictured = await new_update(client, editor, body="The river.", image_url=image)
    doc = await page(client, "/stories/flood")
    [canonical] = doc.find_all("link", rel="canonical")
    assert canonical.attrs["href"] == "http://testserver/stories/flood"
    assert meta(doc, "og:url") == "http://testserver/stories/flood"
    assert meta(doc, "og:type") == "article"
    assert meta(doc, "og:title") == meta(doc, "twitter:title") == "Flood"
    assert meta(doc, "og:description") == meta(doc, "description") == "Rivers burst their banks."
    assert meta(doc, "og:image") == meta(doc, "twitter:image") == image
    assert meta(doc, "twitter:card") == "summary_large_image"
    # An older page is its own page.
    older = await page(client, f"/stories/flood?before={pictured['id']}")
    [canonical] = older.find_all("link", rel="canonical")
    assert canonical.attrs["href"] == f"http://testserver/stories/flood?before={pictured['id']}"

    permalink = await page(client, f"/stories/flood/updates/{pictured['id']}")
    assert meta(permalink, "og:url") == f"http://testserver/stories/flood/updates/{pictured['id']}"
    assert meta(permalink, "og:title") == "The river."
    posting = json_ld(permalink)
    assert posting["@type"] == "BlogPosting"
    assert posting["isPartOf"] == {"@id": "http://testserver/stories/flood"}


async def test_base_url_setting_makes_the_absolute_links(app: Starlette, editor: Editor) -> None:
    app.state.liveblog.settings.base_url = "https://news.example.org/"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
        await new_story(client, editor)
        doc = await page(client, "/stories/flood")
    assert meta(doc, "og:url") == "https://news.example.org/stories/flood"
    assert json_ld(doc)["url"] == "https://news.example.org/stories/flood"


async def test_order_by_query_then_remembered_by_cookie(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor)
    posted = [(await new_update(client, editor, body=f"Update {n}"))["id"] for n in range(23)]
    doc = await page(client, "/stories/flood")
    assert timeline_ids(doc) == posted[::-1][:20]
    assert doc.find(data_live_story=True).attrs["data-order"] == "newest"

    response = await client.get("/stories/flood?order=oldest")
    assert "liveblog_order=oldest" in response.headers["set-cookie"]
    # (and by Accept-Encoding: pages are sent gzipped, liveblog/compression.py)
    assert response.headers["vary"] == "Cookie, Accept-Encoding"
    doc = parse(response.text)
    assert timeline_ids(doc) == posted[:20]
    container = doc.find(data_live_story=True)
    # The first oldest-first page is not where new updates go: not live.
    assert container.attrs["data-order"] == "oldest"
    assert container.attrs["data-live"] == "false"
    [newer] = doc.find_all("a", rel="next")
    assert newer.attrs["href"] == f"/stories/flood?after={posted[19]}"

    # The cookie keeps the choice; the last page is the live one.
    doc = await page(client, "/stories/flood")
    assert timeline_ids(doc) == posted[:20]
    last = await page(client, str(newer.attrs["href"]))
    assert timeline_ids(last) == posted[20:]
    assert last.find(data_live_story=True).attrs["data-live"] == "true"
    # Links to older pages keep meaning newest first, whatever the cookie says.
    doc = await page(client, f"/stories/flood?before={posted[5]}")
    assert timeline_ids(doc) == posted[:5][::-1]

    await client.get("/stories/flood?order=newest")
    doc = await page(client, "/stories/flood")
    assert timeline_ids(doc) == posted[::-1][:20]
    assert (await client.get("/stories/flood?order=sideways")).status_code == 400
    assert (await client.get("/stories/flood?after=x")).status_code == 400


async def test_author_pages_and_bylines(
    app: Starlette, client: httpx.AsyncClient, editor: Editor
) -> None:
    bob = await make_editor(app, "bob")
    await new_story(client, editor, "flood")
    await new_story(client, editor, "fire", title="Harbour fire")
    await new_story(client, editor, "secret", title="Embargoed", status="draft")
    first = await new_update(client, editor, "flood", body="Water rising.")
    await new_update(client, editor, "secret", body="Not public.")
    await new_update(client, bob, "flood", body="Bob was here.")
    second = await new_update(client, editor, "fire", body="Smoke over the docks.")
    gone = await new_update(client, editor, "fire", body="Deleted later.")
    await delete_update(client, editor, gone["id"], "fire")

    doc = await page(client, "/stories/flood")
    bylines = [a.attrs["href"] for a in doc.find_all("a", rel="author") if a.text() == "Alice"]
    assert bylines == ["/authors/alice"]

    author = await page(client, "/authors/alice")
    assert author.find("h1").text() == "Alice"
    ids = [int(str(a.attrs["data-update-id"])) for a in author.find_all("article")]
    assert ids == [second["id"], first["id"]]  # newest first; no draft, no deleted
    stories = [
        h.find("a").attrs["href"] for h in author.find_all("h2", class_="author-entry__story")
    ]
    assert stories == ["/stories/fire", "/stories/flood"]
    assert "Not public" not in (await client.get("/authors/alice")).text

    await login(client, editor)
    assert "Not public" in (await client.get("/authors/alice")).text
    assert (await client.get("/authors/nobody")).status_code == 404


async def test_latest_stories_and_permalink_context(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor, "flood")
    await new_story(client, editor, "fire", title="Harbour fire")
    await new_story(client, editor, "secret", title="Embargoed", status="draft")
    doc = await page(client, "/stories/flood")
    latest = doc.find("section", class_="latest-stories")
    assert [a.attrs["href"] for a in latest.find_all("a")] == ["/stories/fire"]

    updates = [
        await new_update(client, editor, body=f"Update {n}", headline=f"Headline {n}")
        for n in range(5)
    ]
    middle = updates[2]
    doc = await page(client, f"/stories/flood/updates/{middle['id']}")
    [article] = doc.find_all("article", data_update_id=True)
    assert article.attrs["data-update-id"] == str(middle["id"])
    newer = doc.find("section", aria_labelledby="context-newer").find_all("a")
    older = doc.find("section", aria_labelledby="context-older").find_all("a")
    assert [a.text() for a in newer] == ["Headline 4", "Headline 3"]
    assert [a.text() for a in older] == ["Headline 1", "Headline 0"]
    back = doc.find("p", class_="permalink__back").find("a")
    assert back.attrs["href"] == f"/stories/flood#update-{middle['id']}"


async def test_ended_story_says_so_first_and_stays_an_archive(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor)
    update = await new_update(client, editor, body="Last words.")
    await client.patch("/api/stories/flood", json={"status": "ended"}, headers=bearer(editor.token))
    doc = await page(client, "/stories/flood")
    container = doc.find(data_live_story=True)
    first = next(node for node in container.children if isinstance(node, Node))
    assert first.attrs.get("data-ended-note", "") is None and "hidden" not in first.attrs
    assert "has ended" in first.text()
    assert container.attrs["data-live"] == "false"
    assert timeline_ids(doc) == [update["id"]]
    assert (await client.get("/stories/flood/events")).status_code == 204
    assert (await client.get(f"/stories/flood/updates/{update['id']}")).status_code == 200


async def test_demo_story_has_spread_out_times_and_an_image(app: Starlette) -> None:
    await seed_demo(app.state.liveblog)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        doc = await page(client, f"/stories/{DEMO_SLUG}")
        image = doc.find("figure").find("img")
        response = await client.get(str(image.attrs["src"]))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    times = [
        moment(str(article.find("a", class_="update__time").find("time").attrs["datetime"]))
        for article in doc.find("div", data_timeline=True).find_all("article")
    ]
    assert len(times) == len(DEMO_UPDATES)
    gaps = [newer - older for newer, older in itertools.pairwise(times)]
    assert all(gap >= timedelta(minutes=5) for gap in gaps)
    assert times[0] - times[-1] == timedelta(minutes=DEMO_MINUTES_AGO[0] - DEMO_MINUTES_AGO[-1])
    data = json_ld(doc)
    assert moment(data["coverageStartTime"]) < times[-1]


async def test_quotes_are_pull_quotes_with_their_attribution(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor)
    update = await new_update(
        client,
        editor,
        body=(
            "> Go now.\n>\n> — Tamsin Rowe, Mayor\n\n— not in a quote\n\n"
            '<p class="quote-attribution">x</p>'
        ),
    )
    doc = parse(update["body_html"])
    [quote] = doc.find_all("blockquote")
    assert [p.attrs.get("class") for p in quote.find_all("p")] == [None, "quote-attribution"]
    assert quote.find("p", class_="quote-attribution").text() == "— Tamsin Rowe, Mayor"
    # Only our own marking: a class typed by an editor stays text, outside quotes none.
    assert len(doc.find_all(class_="quote-attribution")) == 1
