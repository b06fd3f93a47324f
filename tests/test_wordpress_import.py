"""``liveblog import`` of a WordPress export (WXR) with the Liveblog plugin's entries
(liveblog/importers/wordpress.py), on a hand-written fixture made after the plugin's
source: tests/data/wordpress-liveblog.xml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liveblog.importers import wordpress
from liveblog.state import Liveblog
from tests.support import migrated_settings_for, settings_for
from tests.test_export import cli, running, without_export_time

pytestmark = pytest.mark.anyio
WXR = Path(__file__).parent / "data" / "wordpress-liveblog.xml"
SLUG = "election-night"


async def test_a_wordpress_liveblog_becomes_a_story(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    done = cli(settings, "import", str(WXR))
    assert done.returncode == 0, done.stderr.decode()
    assert "imported election-night: 5 updates, 2 revisions, 9 events" in done.stdout.decode()
    async with running(settings) as (_app, client):
        page = (await client.get(f"/stories/{SLUG}")).text
        assert "Election night: live" in page and "Follow the count as it happens." in page
        assert "Polls have closed.<br>" in page or "Polls have closed.<br />" in page
        assert "Turnout is 66%, not 64%." in page and "Turnout is 65%" not in page
        assert "A wrong call" not in page  # deleted in WordPress
        assert "Great coverage" not in page  # a reader's comment, not an entry
        assert 'href="https://example.org/turnout"' in page and "&amp; rising" in page
        assert "liveblog-command" not in page and ">key<" not in page
        assert 'src="https://news.example.org/wp-content/uploads/count.jpg"' in page
        assert "Jane Doe" in page and "Rob Smith" in page and "Guest Writer" in page
        key = (await client.get(f"/stories/{SLUG}/updates/102")).text
        assert "Key event" in key
        assert (await client.get(f"/stories/{SLUG}/updates/104")).status_code == 404
        assert (await client.get("/authors/jdoe")).status_code == 200
        assert (await client.get("/categories/politics")).status_code == 200
        events = await client.get(f"/stories/{SLUG}/events", headers={"Last-Event-ID": "0"})
        frames = [f for f in events.text.split("\n\n") if f.startswith("id:")]
        kinds = [f.split("\n")[1].removeprefix("event: ") for f in frames]
        assert kinds == [
            "update", "update", "update", "update", "edit", "edit", "delete", "update", "story",
        ]  # fmt: skip
        assert '"at":"2026-11-03T20:00:00+00:00"' in frames[0]
        assert '"status":"ended"' in frames[-1]
        story = (await client.get("/api/stories/election-night/updates")).status_code
        assert story in (401, 403)  # the API still wants a token: nothing else opened up
    # What it imported exports again as the same document.
    exported = cli(settings, "export", SLUG)
    assert exported.returncode == 0, exported.stderr.decode()
    document = without_export_time(exported.stdout)
    updates = {u["id"]: u for u in document["updates"]}
    assert sorted(updates) == [101, 102, 103, 104, 109]
    assert updates[104]["deleted_at"] == "2026-11-03T20:25:00Z"
    assert updates[102]["key_event"] is True
    assert [r["body"] for r in updates[103]["revisions"]] == ["Turnout is 65%.", "Turnout is 65%."]
    assert updates[103]["edited_at"] == "2026-11-03T20:20:00Z"
    assert updates[109]["author"] == "guest-writer"
    assert document["story"]["ended_at"] == "2026-11-03T23:00:00Z"
    assert document["article"]["categories"][0]["slug"] == "politics"
    assert document["article"]["tags"] == ["Election"]
    assert {u["username"]: u["active"] for u in document["users"]} == {
        "guest-writer": False, "jdoe": False, "rsmith": False,
    }  # fmt: skip


async def test_the_same_document_twice_is_refused(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert cli(settings, "import", str(WXR)).returncode == 0
    again = cli(settings, "import", "--from", "wordpress", "-", stdin=WXR.read_bytes())
    assert again.returncode == 1
    assert "already exists" in again.stderr.decode()


async def test_what_is_not_a_wordpress_liveblog_is_refused(tmp_path: Path) -> None:
    async with running(migrated_settings_for(tmp_path)) as (app, _client):
        liveblog: Liveblog = app.state.liveblog
        plain = WXR.read_bytes().replace(
            b"<![CDATA[liveblog]]></wp:meta_key>", b"<![CDATA[x]]></wp:meta_key>"
        )
        with pytest.raises(wordpress.WxrError, match="no liveblog post"):
            wordpress.to_document(plain, liveblog.renderer)
        bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><rss/>'
        with pytest.raises(wordpress.WxrError, match="DOCTYPE"):
            wordpress.to_document(bomb, liveblog.renderer)
        with pytest.raises(wordpress.WxrError, match=r"with id or slug .7."):
            wordpress.to_document(WXR.read_bytes(), liveblog.renderer, post="7")
        document = wordpress.to_document(WXR.read_bytes(), liveblog.renderer, post="42")
    assert json.loads(json.dumps(document))["story"]["slug"] == SLUG
