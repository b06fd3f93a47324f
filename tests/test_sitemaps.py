"""Sitemaps and robots.txt (docs/search.md): what they list, that they validate against
the published XSD schemas (tests/data/), and their validators. Run again on PostgreSQL
by tests/test_postgres_search.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
from lxml import etree
from starlette.applications import Starlette

from liveblog.models import utcnow
from liveblog.settings import Settings
from tests.factories import new_story, new_update
from tests.services import execute
from tests.support import Editor, bearer, make_editor

pytestmark = pytest.mark.anyio

DATA = Path(__file__).resolve().parent / "data"
NS = {
    "s": "http://www.sitemaps.org/schemas/sitemap/0.9",
    "n": "http://www.google.com/schemas/sitemap-news/0.9",
}


def valid(document: bytes, schema: str) -> etree._Element:
    """``document`` parsed, after validating it against ``tests/data/{schema}``."""
    xsd = etree.XMLSchema(etree.parse(str(DATA / schema)))
    root = etree.fromstring(document)
    assert xsd.validate(root), xsd.error_log
    return root


def test_the_schemas_refuse_what_they_should() -> None:
    """The schemas are read and enforce something: a sitemap without <loc>, and a news
    entry without its publication, fail."""
    xsd = etree.XMLSchema(etree.parse(str(DATA / "sitemap.xsd")))
    assert not xsd.validate(
        etree.fromstring(
            b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url/></urlset>'
        )
    )
    news = etree.XMLSchema(etree.parse(str(DATA / "sitemap-news-urlset.xsd")))
    assert not news.validate(
        etree.fromstring(
            b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            b'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url>'
            b"<loc>https://example.com/a</loc><news:news><news:title>t</news:title></news:news>"
            b"</url></urlset>"
        )
    )


async def test_the_sitemap_lists_what_readers_see_and_validates(
    app: Starlette, client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor, "flood", title="Flood & <rain>")
    await new_update(client, editor, "flood")
    await new_story(client, editor, "storm")
    ended = await client.patch(
        "/api/stories/storm", json={"status": "ended"}, headers=bearer(editor.token)
    )
    assert ended.status_code == 200
    await new_story(client, editor, "secret", status="draft")
    # Bob has only a draft and an update in a draft story: no author page listed.
    bob = await make_editor(app, "bob")
    await new_update(client, bob, "flood", state="draft")
    await new_update(client, editor, "secret")

    response = await client.get("/sitemap.xml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    root = valid(response.content, "sitemap.xsd")
    entries = {
        url.findtext("s:loc", namespaces=NS): url.findtext("s:lastmod", namespaces=NS)
        for url in root.iterfind("s:url", NS)
    }
    base = "http://testserver"
    assert set(entries) == {
        f"{base}/",
        f"{base}/stories/flood",
        f"{base}/stories/storm",
        f"{base}/authors/alice",
    }
    # lastmod: the newest event of each story (storm's end is newer than flood's update);
    # the front page has the newest of all.
    flood, storm = entries[f"{base}/stories/flood"], entries[f"{base}/stories/storm"]
    assert flood is not None and storm is not None
    assert datetime.fromisoformat(flood) < datetime.fromisoformat(storm)
    assert entries[f"{base}/"] == storm
    await new_update(client, editor, "flood", body="Later.")
    root = valid((await client.get("/sitemap.xml")).content, "sitemap.xsd")
    later = root.xpath(
        "//s:url[s:loc = $loc]/s:lastmod/text()", namespaces=NS, loc=f"{base}/stories/flood"
    )
    assert datetime.fromisoformat(later[0]) > datetime.fromisoformat(storm)


async def test_the_news_sitemap_lists_the_last_two_days_and_validates(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor, "today", title="Storm hits the coast")
    await new_story(client, editor, "old", title="Last week's storm")
    await new_story(client, editor, "secret", status="draft")
    three_days_ago = utcnow() - timedelta(days=3)
    execute(
        settings,
        "UPDATE story SET started_at = ?, created_at = ? WHERE slug = 'old'",
        three_days_ago,
        three_days_ago,
    )
    response = await client.get("/sitemap-news.xml")
    assert response.status_code == 200
    root = valid(response.content, "sitemap-news-urlset.xsd")
    urls = root.findall("s:url", NS)
    assert [url.findtext("s:loc", namespaces=NS) for url in urls] == [
        "http://testserver/stories/today"
    ]
    news = urls[0].find("n:news", NS)
    assert news is not None
    assert news.findtext("n:publication/n:name", namespaces=NS) == "liveblog"
    assert news.findtext("n:publication/n:language", namespaces=NS) == "en"
    assert news.findtext("n:title", namespaces=NS) == "Storm hits the coast"
    assert news.findtext("n:publication_date", namespaces=NS)


async def test_the_sitemaps_answer_revalidation_with_304(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor, "flood")
    await new_update(client, editor, "flood")
    for path in ("/sitemap.xml", "/sitemap-news.xml"):
        first = await client.get(path)
        tag, modified = first.headers["etag"], first.headers["last-modified"]
        assert parsedate_to_datetime(modified).tzinfo is not None
        again = await client.get(path, headers={"If-None-Match": tag})
        assert again.status_code == 304
        assert again.headers["etag"] == tag
        assert again.content == b""
        since = await client.get(path, headers={"If-Modified-Since": modified})
        assert since.status_code == 304
    # A new event changes both.
    tags = {
        path: (await client.get(path)).headers["etag"]
        for path in ("/sitemap.xml", "/sitemap-news.xml")
    }
    await new_update(client, editor, "flood", body="More rain.")
    for path, tag in tags.items():
        fresh = await client.get(path, headers={"If-None-Match": tag})
        assert fresh.status_code == 200, path
        assert fresh.headers["etag"] != tag


async def test_robots_txt_points_at_both_sitemaps(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    response = await client.get("/robots.txt")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert lines[0] == "User-agent: *"
    assert "Disallow: /desk" in lines
    assert "Disallow: /search" in lines
    assert "Sitemap: http://testserver/sitemap.xml" in lines
    assert "Sitemap: http://testserver/sitemap-news.xml" in lines
