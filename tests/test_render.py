"""Markdown to safe HTML, and hostile text on every page that shows it.

Output is parsed with the standard library's HTMLParser: the checks are about the
elements and attributes a browser would build, not about exact strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from liveblog.render import MarkdownRenderer
from tests.support import Editor, bearer, login

pytestmark = pytest.mark.anyio

SAFE_SCHEMES = ("http:", "https:", "mailto:")
DANGEROUS_TAGS = {
    "script", "iframe", "object", "embed", "svg", "math", "img", "style", "base", "frame",
    "frameset", "applet", "video", "audio", "source",
}  # fmt: skip
SCHEME_RE = re.compile(r"^([a-z][a-z0-9+.-]*):")  # what a browser's URL parser takes as a scheme
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    text: str = ""


@dataclass
class Collected:
    elements: list[Element] = field(default_factory=list)
    text: str = ""

    def tags(self) -> list[str]:
        return [element.tag for element in self.elements]

    def all(self, tag: str) -> list[Element]:
        return [element for element in self.elements if element.tag == tag]


class _Collector(HTMLParser):
    """Every start tag with its attributes, the text inside each, and the whole text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = Collected()
        self.open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        self.out.elements.append(element)
        self.open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.elements.append(Element(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.open) - 1, -1, -1):
            if self.open[depth].tag == tag:
                del self.open[depth:]
                return

    def handle_data(self, data: str) -> None:
        if not any(element.tag == "script" for element in self.open):  # not page text
            self.out.text += data
        for element in self.open:
            element.text += data


def collect(html: str) -> Collected:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.out


def assert_inert(html: str, where: str = "") -> Collected:
    """No script but the site's own, no event handlers, no dangerous URLs or elements."""
    found = collect(html)
    for element in found.elements:
        context = f"{where}: <{element.tag} {element.attrs}>"
        if element.tag == "script" and element.attrs.get("type") == "application/ld+json":
            # A data block browsers never run; it must parse whole as JSON, which it
            # cannot if anything inside closed the element early.
            json.loads(element.text)
        elif element.tag == "script":
            src = element.attrs.get("src") or ""
            assert re.match(r"/static/[0-9a-f]{16}/js/", src), context
            assert not element.text.strip(), context
        else:
            assert element.tag not in DANGEROUS_TAGS, context
        for name, value in element.attrs.items():
            assert not name.startswith("on"), context
            assert name not in ("style", "srcdoc", "formaction"), context
            if name in URL_ATTRIBUTES and value:
                # Browsers drop ASCII whitespace and control characters inside URLs.
                url = re.sub(r"[\x00-\x20]", "", value).lower()
                scheme = SCHEME_RE.match(url)
                assert scheme is None or url.startswith(SAFE_SCHEMES), context
        if element.tag == "meta":
            assert (element.attrs.get("http-equiv") or "").lower() != "refresh", context
    return found


@pytest.fixture
def markdown() -> MarkdownRenderer:
    return MarkdownRenderer()


# --- Markdown ------------------------------------------------------------------------


def test_inline_formatting(markdown: MarkdownRenderer) -> None:
    found = collect(markdown("Some **bold**, _italic_, `code` and ~~struck~~ text."))
    assert [e.text for e in found.all("strong")] == ["bold"]
    assert [e.text for e in found.all("em")] == ["italic"]
    assert [e.text for e in found.all("code")] == ["code"]
    assert [e.text for e in found.all("s") + found.all("del")] == ["struck"]
    assert found.tags()[0] == "p"


def test_links_get_nofollow_noopener(markdown: MarkdownRenderer) -> None:
    html = markdown(
        'See [the report](https://example.com/report "Report"), '
        "[mail](mailto:desk@example.com) and <https://example.org/auto>."
    )
    links = collect(html).all("a")
    assert [link.attrs["href"] for link in links] == [
        "https://example.com/report",
        "mailto:desk@example.com",
        "https://example.org/auto",
    ]
    assert links[0].text == "the report"
    assert links[0].attrs["title"] == "Report"
    for link in links:
        assert set((link.attrs["rel"] or "").split()) == {"nofollow", "noopener"}


def test_lists_blockquote_and_headings(markdown: MarkdownRenderer) -> None:
    found = collect(
        markdown("- one\n- two\n\n1. first\n2. second\n\n> Quoted **words**\n\n### Small heading")
    )
    assert [e.text for e in found.all("ul")[0:1]] and len(found.all("ul")) == 1
    assert [e.text.strip() for e in found.all("li")] == ["one", "two", "first", "second"]
    assert len(found.all("ol")) == 1
    [quote] = found.all("blockquote")
    assert quote.text.strip() == "Quoted words"
    assert [e.text for e in found.all("h3")] == ["Small heading"]


def test_tables(markdown: MarkdownRenderer) -> None:
    found = collect(
        markdown("| Town | Level |\n|:-----|------:|\n| Ely | 4.2 m |\n| Diss | 3.1 m |")
    )
    assert len(found.all("table")) == 1
    assert [e.text for e in found.all("th")] == ["Town", "Level"]
    assert [e.text for e in found.all("td")] == ["Ely", "4.2 m", "Diss", "3.1 m"]
    assert len(found.all("thead")) == len(found.all("tbody")) == 1
    # Alignment survives, as the one attribute cells may carry.
    assert {e.attrs.get("align") for e in found.all("td")} <= {"left", "right", None}


def test_headings_are_demoted_or_dropped(markdown: MarkdownRenderer) -> None:
    # h1/h2 belong to the page; in an update they are not allowed through.
    found = collect(markdown("# Big\n\n## Bigger"))
    assert not found.all("h1") and not found.all("h2")
    assert "Big" in found.text and "Bigger" in found.text


@pytest.mark.parametrize(
    "source",
    [
        "<b>bold</b>",
        "<script>alert(1)</script>",
        '<div onclick="alert(1)">x</div>',
        "<img src=x onerror=alert(1)>",
        "<!-- comment --><p>para</p>",
        '<a href="https://example.com">raw link</a>',
    ],
)
def test_raw_html_is_shown_as_text(markdown: MarkdownRenderer, source: str) -> None:
    html = markdown(source)
    found = assert_inert(html, source)
    # Nothing of the raw markup became an element: only Markdown's own paragraph.
    assert found.tags() == ["p"]
    # The markup is shown as text (the typographer may curl its quotes).
    opening = source.split(" ", 1)[0].split(">", 1)[0]
    assert found.text.startswith(opening), found.text
    assert "&lt;" in html


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](JavaScript:alert(1))",
        "[x](  javascript:alert(1)  )",
        "[x](javas&#99;ript:alert(1))",
        "[x](javascript&colon;alert(1))",
        "[x](java%73cript:alert(1))",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](DATA:text/html,<script>alert(1)</script>)",
        "<javascript:alert(1)>",
        "<data:text/html,alert(1)>",
        "[x][ref]\n\n[ref]: javascript:alert(1)",
        "![x](javascript:alert(1))",
        "![x](data:image/svg+xml;base64,PHN2Zz4=)",
        "[x](file:///etc/passwd)",
    ],
)
def test_dangerous_links_are_removed(markdown: MarkdownRenderer, source: str) -> None:
    html = markdown(source)
    found = assert_inert(html, source)
    # No link or image survives with a script, data or file URL (assert_inert checks
    # every URL attribute); a link whose "scheme" is not one a browser would parse, like
    # java%73cript:, may stay as a harmless relative link.
    for link in found.all("a"):
        href = (link.attrs.get("href") or "").lower()
        assert not href.startswith(("javascript:", "vbscript:", "data:", "file:")), html
    assert not found.all("img")


def test_safe_link_next_to_a_dangerous_one(markdown: MarkdownRenderer) -> None:
    html = markdown("[good](https://example.com) and [bad](javascript:alert(1))")
    links = collect(html).all("a")
    assert [link.attrs["href"] for link in links] == ["https://example.com"]
    assert "good" in collect(html).text


# --- hostile text on the pages -------------------------------------------------------

XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    '<iframe src="javascript:alert(1)"></iframe>',
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<div onmouseover="alert(1)">hover</div>',
    "`<script>alert(1)</script>`",
    "<style>body{background:url(javascript:alert(1))}</style>",
    "<!--<script>alert(1)//-->",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    "{{ 7*7 }} {% raw %}",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
]


async def post(client: httpx.AsyncClient, editor: Editor, url: str, body: dict[str, Any]) -> Any:
    response = await client.post(url, json=body, headers=bearer(editor.token))
    assert response.status_code == 201, response.text
    return response.json()


async def get_html(client: httpx.AsyncClient, url: str) -> str:
    response = await client.get(url)
    assert response.status_code == 200, (url, response.text)
    assert response.headers["content-type"].startswith("text/html")
    return response.text


async def test_hostile_updates_never_become_markup(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await post(
        client, editor, "/api/stories", {"title": "Flood", "slug": "flood", "status": "live"}
    )
    ids = []
    for n, text in enumerate(XSS):
        update = await post(
            client,
            editor,
            "/api/stories/flood/updates",
            {"body": text, "headline": text, "key_event": True, "pinned": n == 0},
        )
        assert update["headline"] == text.strip()
        assert_inert(update["body_html"], f"body_html of {text!r}")
        ids.append(update["id"])

    story_page = await get_html(client, "/stories/flood")
    found = assert_inert(story_page, "story page")
    # The text is all there, shown as text.
    headlines = [
        e.text for e in found.elements if "update__headline" in (e.attrs.get("class") or "")
    ]
    # Each once in the timeline, and the pinned one again in the pinned section.
    assert len(headlines) == len(XSS) + 1
    assert set(headlines) == {text.strip() for text in XSS}
    # Shown literally, never evaluated (a bare "49" could be a clock time elsewhere).
    assert "{{ 7*7 }} {% raw %}" in headlines

    for update_id in ids:
        assert_inert(
            await get_html(client, f"/stories/flood/updates/{update_id}"), f"permalink {update_id}"
        )

    await login(client, editor)
    assert_inert(await get_html(client, "/desk/stories/flood"), "desk")
    for update_id in ids:
        edit_page = await get_html(client, f"/desk/stories/flood/updates/{update_id}/edit")
        assert_inert(edit_page, f"edit form {update_id}")
    # The edit form gives the editor back exactly what was typed.
    form = collect(await get_html(client, f"/desk/stories/flood/updates/{ids[5]}/edit"))
    [textarea] = form.all("textarea")
    assert textarea.text == XSS[5]
    [headline] = [e for e in form.all("input") if e.attrs.get("name") == "headline"]
    assert headline.attrs["value"] == XSS[5]


async def test_hostile_story_titles_and_summaries(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await login(client, editor)
    for n, text in enumerate(XSS):
        slug = f"hostile-{n}"
        story = await post(
            client,
            editor,
            "/api/stories",
            {"title": text, "summary": text, "slug": slug, "status": "live", "breaking": True},
        )
        assert story["title"] == text.strip()
        await post(client, editor, f"/api/stories/{slug}/updates", {"body": "fine"})

        found = assert_inert(await get_html(client, f"/stories/{slug}"), f"story page {text!r}")
        assert text.strip() in found.text
        descriptions = [e for e in found.all("meta") if e.attrs.get("name") == "description"]
        assert [e.attrs["content"] for e in descriptions] == [text.strip()]
        assert_inert(await get_html(client, f"/desk/stories/{slug}"), f"desk story {text!r}")
    assert_inert(await get_html(client, "/"), "home")
    assert_inert(await get_html(client, "/desk"), "desk home")


async def test_hostile_text_in_a_rejected_form_is_escaped(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await post(
        client, editor, "/api/stories", {"title": "Flood", "slug": "flood", "status": "live"}
    )
    csrf = await login(client, editor)
    for text in XSS:
        response = await client.post(
            "/desk/stories/flood/updates",
            data={"csrf_token": csrf, "body": "", "headline": text},
        )
        assert response.status_code == 422
        found = assert_inert(response.text, f"re-rendered form with {text!r}")
        values = [
            e.attrs.get("value") for e in found.all("input") if e.attrs.get("name") == "headline"
        ]
        assert values == [text]
