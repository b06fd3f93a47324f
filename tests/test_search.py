"""Search (docs/search.md): ranking, paging without a script, the API's hits, and that
nothing readers may not see is ever found. tests/test_postgres_search.py runs these
again on PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from liveblog.settings import Settings
from tests.factories import new_story, new_update
from tests.services import execute
from tests.support import Editor, bearer

pytestmark = pytest.mark.anyio

RESULT_LINK = re.compile(r'<h2 class="search-result__title"><a href="([^"]+)">')


async def api_search(client: httpx.AsyncClient, editor: Editor, **params: Any) -> httpx.Response:
    return await client.get("/api/search", params=params, headers=bearer(editor.token))


async def hits(
    client: httpx.AsyncClient, editor: Editor, query: str, page: int = 1
) -> list[dict[str, Any]]:
    response = await api_search(client, editor, q=query, page=page)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def urls(client: httpx.AsyncClient, editor: Editor, query: str) -> list[str]:
    return [hit["url"] for hit in await hits(client, editor, query)]


async def test_a_title_match_ranks_above_a_body_match(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor, "bridge", title="Roads and rail")
    # Many words around it: a body match in a long text, as updates are.
    await new_update(
        client, editor, "bridge", body="Crews say the harbour wall " + "and more " * 30
    )
    await new_story(client, editor, "harbour", title="Harbour wall gives way")
    await new_update(client, editor, "bridge", headline="Ferries stop", body="No crossings.")
    found = await hits(client, editor, "harbour")
    assert [(hit["kind"], hit["story"]["slug"]) for hit in found] == [
        ("story", "harbour"),
        ("update", "bridge"),
    ]
    # An update's headline ranks above another's body, the same way.
    await new_update(client, editor, "bridge", body="The ferries are in port " + "now " * 30)
    found = await hits(client, editor, "ferries")
    assert [hit["title"][:12] for hit in found] == ["Ferries stop", "The ferries "]


async def test_results_link_to_the_update_permalink_and_words_are_stemmed(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor, "flood", title="Rivers")
    update = await new_update(client, editor, "flood", body="Streets were flooded overnight.")
    assert await urls(client, editor, "flooding streets") == [
        f"http://testserver/stories/flood/updates/{update['id']}"
    ]
    page = await client.get("/search", params={"q": "flooding streets"})
    assert page.status_code == 200
    assert RESULT_LINK.findall(page.text) == [
        f"http://testserver/stories/flood/updates/{update['id']}"
    ]
    permalink = await client.get(f"/stories/flood/updates/{update['id']}")
    assert permalink.status_code == 200


async def test_nothing_unpublished_is_searchable(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    await new_story(client, editor, "secret", title="Zebra draft story", status="draft")
    await new_update(client, editor, "secret", body="A zebra in a draft story.")
    await new_story(client, editor, "open", title="Open story")
    for state in ("draft", "submitted"):
        await new_update(client, editor, "open", body=f"zebra {state}", state=state)
    gone = await new_update(client, editor, "open", body="zebra deleted")
    response = await client.delete(
        f"/api/stories/open/updates/{gone['id']}", headers=bearer(editor.token)
    )
    assert response.status_code == 204
    await new_update(
        client, editor, "open", body="zebra scheduled", publish_at="2099-01-01T00:00:00Z"
    )
    assert await hits(client, editor, "zebra") == []
    page = await client.get("/search?q=zebra")
    assert RESULT_LINK.findall(page.text) == []
    assert "Nothing published matches" in page.text

    # Published, then corrected: the old words are gone, the new ones found.
    shown = await new_update(client, editor, "open", body="zebra crossing")
    assert await urls(client, editor, "zebra") == [
        f"http://testserver/stories/open/updates/{shown['id']}"
    ]
    response = await client.patch(
        f"/api/stories/open/updates/{shown['id']}",
        json={"body": "pelican crossing"},
        headers=bearer(editor.token),
    )
    assert response.status_code == 200, response.text
    assert await hits(client, editor, "zebra") == []
    assert len(await hits(client, editor, "pelican")) == 1
    # An ended story stays searchable; a story taken back to draft is not.
    response = await client.patch(
        "/api/stories/open", json={"status": "ended"}, headers=bearer(editor.token)
    )
    assert response.status_code == 200
    assert len(await hits(client, editor, "pelican")) == 1
    execute(settings, "UPDATE story SET status = 'draft' WHERE slug = 'open'")
    assert await hits(client, editor, "pelican") == []
    assert await hits(client, editor, "open") == []


async def test_paging_without_a_script(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor, "vote", title="Election night")
    for n in range(23):
        await new_update(client, editor, "vote", body=f"Ballot count number {n}.")
    first = await client.get("/search?q=ballot")
    assert first.status_code == 200
    assert len(RESULT_LINK.findall(first.text)) == 20
    assert 'rel="prev"' not in first.text
    more = re.search(r'<a rel="next" href="([^"]+)">', first.text)
    assert more is not None
    second = await client.get(more.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    on_second = RESULT_LINK.findall(second.text)
    assert len(on_second) == 3
    assert not set(on_second) & set(RESULT_LINK.findall(first.text))
    assert 'rel="next"' not in second.text
    assert 'rel="prev"' in second.text
    # The API pages the same way, and says where the next page is.
    api = await api_search(client, editor, q="ballot")
    assert api.json()["next_page"] == 2
    assert [hit["url"] for hit in api.json()["results"]] == RESULT_LINK.findall(first.text)
    for bad in ("0", "-1", "x", "51", "99999999999999999999"):
        assert (await client.get(f"/search?q=ballot&page={bad}")).status_code == 400
        assert (await api_search(client, editor, q="ballot", page=bad)).status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "'",
        "AND",
        "a OR",
        "NEAR(a b",
        "title:flood",
        "flood*",
        "^flood",
        "-flood",
        "(flood",
        "!!!",
        "flood & | ! <->",
        "x" * 5000,
        " ".join(["flood"] * 500),
        "洪水 Überschwemmung",
        "",
    ],
)
async def test_no_query_fails(client: httpx.AsyncClient, editor: Editor, query: str) -> None:
    await new_story(client, editor, "flood", title="Flood")
    page = await client.get("/search", params={"q": query})
    assert page.status_code == 200
    api = await api_search(client, editor, q=query)
    assert api.status_code == 200
    assert api.json()["query"] == query[:200].strip()


async def test_every_reader_page_has_a_labelled_search_box(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor, "flood")
    for path in ("/", "/stories/flood", "/authors/alice"):
        html = (await client.get(path)).text
        form = re.search(
            r'<form class="search-form[^"]*" method="get" action="/search" role="search">'
            r"(.*?)</form>",
            html,
            re.S,
        )
        assert form is not None, path
        assert '<label class="visually-hidden" for="site-search-q">' in form.group(1)
        assert 'id="site-search-q" type="search" name="q"' in form.group(1)
    page = (await client.get("/search")).text
    assert page.count('role="search"') == 1  # the page's own form, not the header's too
    assert '<label for="search-page-q">' in page
