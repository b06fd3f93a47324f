"""The XSS corpus: every vector through every user-controlled field into every output.

One live server is seeded once per module: for each vector of ``tests/xss_vectors.py``
a user whose display name is the vector posts a story (title, summary) and an update
(body, headline, image alt/caption/credit), corrects it (a revision and an ``edit``
event), changes the story (a ``story`` event) and names an API token after it. Every
text starts with a marker naming its vector and field, so each output can prove the
field really reached it. Then every output is fetched and PARSED (a WHATWG HTML parser,
ElementTree for Atom, JSON, SSE frames) and must hold nothing executable.

``FIELDS`` x ``OUTPUTS`` is the table: a new field or output is one more row.
"""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from selectolax.lexbor import LexborHTMLParser

from liveblog import auth
from liveblog.app import create_app
from liveblog.articles import render_lead
from liveblog.models import (
    MAX_CAPTION,
    MAX_HEADLINE,
    MAX_TITLE,
    Role,
    User,
)
from liveblog.render import ALLOWED_TAGS, MarkdownRenderer
from tests.htmlcheck import executable_markup
from tests.services import skip_unless_ci
from tests.support import LiveServer, bearer, csrf_from, migrated_settings_for, run_server
from tests.xss_vectors import TEMPLATE_PRODUCT, VECTORS

pytestmark = pytest.mark.anyio
ATOM = "{http://www.w3.org/2005/Atom}"
CONCURRENCY = 6


@dataclass(frozen=True)
class Field:
    """A user-controlled text: its marker code and the longest text it takes."""

    code: str
    max_length: int


FIELDS = {
    "story.title": Field("t", MAX_TITLE),
    "story.summary": Field("s", 1000),
    "update.body": Field("b", 20_000),
    "update.headline": Field("h", MAX_HEADLINE),
    "update.image_alt": Field("a", MAX_CAPTION),
    "update.image_caption": Field("c", MAX_CAPTION),
    "update.image_credit": Field("r", MAX_CAPTION),
    "user.display_name": Field("n", auth.MAX_DISPLAY_NAME),
    "token.name": Field("k", 100),
}


def text_for(index: int, name: str, vector: str) -> str:
    """The marker (``Q<index><code>Q``), then the vector, cut to the field's length."""
    spec = FIELDS[name]
    return f"Q{index}{spec.code}Q {vector}"[: spec.max_length]


def marker(index: int, name: str) -> str:
    return f"Q{index}{FIELDS[name].code}Q"


# --- seeding -------------------------------------------------------------------------


@dataclass
class Seeded:
    index: int
    vector: str
    slug: str
    username: str
    update_id: int | None = None
    refused: list[str] = field(default_factory=list)


@dataclass
class Corpus:
    server: LiveServer
    admin_cookies: httpx.Cookies
    items: list[Seeded]
    refused_image_urls: int = 0


async def _seed_users(server: LiveServer) -> tuple[str, list[str]]:
    """One user per vector (display name = vector) with a token, plus an admin."""
    liveblog = server.liveblog
    async with liveblog.db.transaction() as session:
        admin = await auth.create_user(
            session, username="ada", password="correct horse battery", role=Role.admin
        )
        tokens = []
        for index, vector in enumerate(VECTORS):
            # Made directly (one argon2 hash for all): the field under test is the name.
            user = User(
                username=f"u{index}",
                display_name=text_for(index, "user.display_name", vector),
                password_hash=admin.password_hash,
                role=Role.editor,
            )
            session.add(user)
            await session.flush()
            tokens.append(
                await auth.create_api_token(
                    session, user, name=text_for(index, "token.name", vector)
                )
            )
    return "ada", tokens


async def _seed_one(api: httpx.AsyncClient, item: Seeded, token: str) -> None:
    headers = bearer(token)
    i, v = item.index, item.vector
    story = await api.post(
        "/api/stories",
        json={
            "title": text_for(i, "story.title", v),
            "summary": text_for(i, "story.summary", v),
            "slug": item.slug,
            "status": "live",
        },
        headers=headers,
    )
    if story.status_code != 201:
        # Refused as a whole (e.g. a NUL byte): nothing stored, nothing to show.
        assert story.status_code == 422, story.text
        item.refused.append("story")
        story = await api.post(
            "/api/stories",
            json={"title": f"Q{i}tQ", "slug": item.slug, "status": "live"},
            headers=headers,
        )
        assert story.status_code == 201, story.text
    update = {
        "body": text_for(i, "update.body", v),
        "headline": text_for(i, "update.headline", v),
        "image_url": "https://images.example/photo.jpg",
        "image_alt": text_for(i, "update.image_alt", v),
        "image_caption": text_for(i, "update.image_caption", v),
        "image_credit": text_for(i, "update.image_credit", v),
    }
    posted = await api.post(f"/api/stories/{item.slug}/updates", json=update, headers=headers)
    if posted.status_code != 201:
        assert posted.status_code == 422, posted.text
        item.refused.append("update")
        posted = await api.post(
            f"/api/stories/{item.slug}/updates", json={"body": f"Q{i}bQ"}, headers=headers
        )
    assert posted.status_code == 201, posted.text
    item.update_id = posted.json()["id"]
    # A correction (a revision, an edit event) and a story change (a story event).
    corrected = await api.patch(
        f"/api/stories/{item.slug}/updates/{item.update_id}",
        json={"body": text_for(i, "update.body", v) + " (corrected)"},
        headers=headers,
    )
    assert corrected.status_code in (200, 422), corrected.text
    changed = await api.patch(
        f"/api/stories/{item.slug}",
        json={"summary": text_for(i, "story.summary", v) + "!", "breaking": True},
        headers=headers,
    )
    assert changed.status_code in (200, 422), changed.text
    # Image URLs are user input too: only http(s) ones may be stored.
    image = await api.post(
        f"/api/stories/{item.slug}/updates", json={"body": "img", "image_url": v}, headers=headers
    )
    assert image.status_code in (201, 422), image.text
    if image.status_code == 422:
        item.refused.append("image_url")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    data_dir: Path = tmp_path_factory.mktemp("xss")
    # A low address limit: after a few real verifications the login answers 429 (which
    # echoes the typed name too), so the reflected test stays fast.
    settings = migrated_settings_for(data_dir, login_attempts_per_address=12)
    with run_server(create_app(settings)) as server:
        username, tokens = server.run(_seed_users(server))
        items = [
            Seeded(index=i, vector=v, slug=f"x{i}", username=f"u{i}") for i, v in enumerate(VECTORS)
        ]

        async def seed() -> tuple[httpx.Cookies, int]:
            limit = asyncio.Semaphore(CONCURRENCY)
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:

                async def one(item: Seeded) -> None:
                    async with limit:
                        await _seed_one(api, item, tokens[item.index])

                await asyncio.gather(*(one(item) for item in items))
                refused = sum("image_url" in item.refused for item in items)
                page = await api.get("/login")
                login = await api.post(
                    "/login",
                    data={
                        "username": username,
                        "password": "correct horse battery",
                        "csrf_token": csrf_from(page.text),
                    },
                )
                assert login.status_code == 303
                return api.cookies, refused

        cookies, refused = asyncio.run(seed())
        yield Corpus(server=server, admin_cookies=cookies, items=items, refused_image_urls=refused)


# --- reading the outputs -------------------------------------------------------------


def html_problems(text: str) -> list[str]:
    return executable_markup(text)


def json_problems(text: str) -> list[str]:
    """HTML-carrying members of a JSON document (``html``, ``*_html``) must be clean."""
    problems: list[str] = []

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, name)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
        elif isinstance(value, str) and (key == "html" or key.endswith("_html")):
            problems.extend(executable_markup(value))

    walk(json.loads(text))
    return problems


def oembed_problems(text: str) -> list[str]:
    """The oEmbed snippet runs on the consumer's page: our scripts by absolute URL and
    an iframe's own sizing style are expected; nothing from the vector may add more."""
    data = json.loads(text)
    origin = data["provider_url"].rstrip("/")
    return executable_markup(data["html"], script_prefixes=(origin + "/static/",), styles=True)


ATOM_TAGS = {
    "feed", "id", "title", "subtitle", "updated", "link", "generator", "entry", "published",
    "author", "name", "category", "content", "summary", "uri", "icon", "logo", "rights",
}  # fmt: skip


def atom_problems(text: str) -> list[str]:
    """Well-formed XML, only Atom's own elements, and clean HTML in type="html" content."""
    root = ET.fromstring(text)  # raises on anything ill-formed
    problems: list[str] = []
    for element in root.iter():
        local = element.tag.removeprefix(ATOM)
        if not element.tag.startswith(ATOM) or local not in ATOM_TAGS:
            problems.append(f"unexpected element {element.tag}")
        if element.get("type") == "html" and element.text:
            problems.extend(executable_markup(element.text))
    return problems


def sse_problems(text: str) -> list[str]:
    """Each frame: id, event and ONE data line of JSON whose HTML members are clean."""
    problems: list[str] = []
    for frame in text.split("\n\n"):
        lines = [line for line in frame.split("\n") if line and not line.startswith(":")]
        if not lines or lines[0].startswith("retry:"):
            continue
        names = [line.split(":", 1)[0] for line in lines]
        if names != ["id", "event", "data"]:
            problems.append(f"malformed frame {names}: {frame[:200]!r}")
            continue
        problems.extend(json_problems(lines[2].split(":", 1)[1]))
    return problems


@dataclass(frozen=True)
class Output:
    """One place user text is shown, how to fetch it, and which fields it must show."""

    name: str
    path: Callable[[Seeded], str]
    check: Callable[[str], list[str]]
    fields: tuple[str, ...]
    desk: bool = False
    api: bool = False
    stream: bool = False


UPDATE_FIELDS = (
    "update.body",
    "update.headline",
    "update.image_alt",
    "update.image_caption",
    "update.image_credit",
    "user.display_name",
)
OUTPUTS = [
    Output(
        "reader page",
        lambda s: f"/stories/{s.slug}",
        html_problems,
        ("story.title", "story.summary", *UPDATE_FIELDS),
    ),
    Output(
        "permalink page",
        lambda s: f"/stories/{s.slug}/updates/{s.update_id}",
        html_problems,
        ("story.title", *UPDATE_FIELDS),
    ),
    Output(
        "desk story",
        lambda s: f"/desk/stories/{s.slug}",
        html_problems,
        ("story.title", "story.summary", *UPDATE_FIELDS),
        desk=True,
    ),
    Output(
        "desk edit form",
        lambda s: f"/desk/stories/{s.slug}/updates/{s.update_id}/edit",
        html_problems,
        ("story.title", "update.body", "update.headline", "update.image_caption"),
        desk=True,
    ),
    Output(
        "desk history",
        lambda s: f"/desk/stories/{s.slug}/updates/{s.update_id}/history",
        html_problems,
        (
            "story.title",
            "update.body",
            "update.headline",
            "update.image_caption",
            "user.display_name",
        ),
        desk=True,
    ),
    Output(
        "Atom feed",
        lambda s: f"/stories/{s.slug}/feed.atom",
        atom_problems,
        ("story.title", "story.summary", "update.body", "update.headline", "user.display_name"),
    ),
    Output(
        "JSON API update",
        lambda s: f"/api/stories/{s.slug}/updates/{s.update_id}",
        json_problems,
        ("update.body", "update.headline", "update.image_caption", "user.display_name"),
        api=True,
    ),
    Output(
        "JSON API story",
        lambda s: f"/api/stories/{s.slug}",
        json_problems,
        ("story.title", "story.summary"),
        api=True,
    ),
    Output(
        "stream payload",
        lambda s: f"/stories/{s.slug}/events?last_event_id=0",
        sse_problems,
        ("story.title", "story.summary", *UPDATE_FIELDS),
        stream=True,
    ),
    Output(
        # The page holds the title; its updates come from the widget snapshot below.
        "embed page",
        lambda s: f"/embed/{s.slug}",
        html_problems,
        ("story.title",),
    ),
    Output(
        "widget snapshot",
        lambda s: f"/stories/{s.slug}/updates.json",
        json_problems,
        ("story.title", *UPDATE_FIELDS),
    ),
    Output(
        "oEmbed",
        lambda s: f"/oembed?format=json&url={{base}}/stories/{s.slug}",
        oembed_problems,
        ("story.title",),
    ),
    Output(
        "author page",
        lambda s: f"/authors/{s.username}",
        html_problems,
        ("user.display_name", "update.headline"),
    ),
]


async def _fetch(client: httpx.AsyncClient, output: Output, item: Seeded, token: str | None) -> str:
    url = output.path(item).replace("{base}", quote(str(client.base_url).rstrip("/"), safe=""))
    headers = bearer(token) if token else {}
    if not output.stream:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, (output.name, url, response.status_code)
        if output.api or url.endswith(".json") or url.startswith("/oembed"):
            assert response.headers["content-type"].startswith("application/json")
        return response.text
    # The stream stays open while the story is live: read until the last event.
    story = await client.get(f"/stories/{item.slug}/updates.json")
    last_seq = story.json()["last_seq"]
    chunks: list[str] = []
    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_text():
            chunks.append(chunk)
            if f"id: {last_seq}\n" in "".join(chunks) and "".join(chunks).endswith("\n\n"):
                break
    return "".join(chunks)


def route_exists(corpus: Corpus, output: Output) -> bool:
    probe = output.path(corpus.items[0]).split("?")[0]
    prefix = "/" + probe.strip("/").split("/")[0]
    return any(getattr(route, "path", "").startswith(prefix) for route in corpus.server.app.routes)


@pytest.mark.parametrize("output", OUTPUTS, ids=[output.name for output in OUTPUTS])
def test_no_vector_survives_as_executable_markup(corpus: Corpus, output: Output) -> None:
    if not route_exists(corpus, output):
        skip_unless_ci(f"{output.name}: no route for {output.path(corpus.items[0])}")

    async def run() -> dict[int, str]:
        limit = asyncio.Semaphore(CONCURRENCY)
        cookies = corpus.admin_cookies if output.desk else None
        async with httpx.AsyncClient(
            base_url=corpus.server.url, cookies=cookies, timeout=30
        ) as client:
            admin_token = None
            if output.api:
                admin_token = await _admin_token(corpus)

            async def one(item: Seeded) -> tuple[int, str]:
                async with limit:
                    return item.index, await _fetch(client, output, item, admin_token)

            return dict(await asyncio.gather(*(one(item) for item in corpus.items)))

    texts = asyncio.run(run())
    problems: dict[int, list[str]] = {}
    missing: list[str] = []
    for item in corpus.items:
        text = texts[item.index]
        found = output.check(text)
        if TEMPLATE_PRODUCT in text:
            found.append("a template expression was evaluated")
        if found:
            problems[item.index] = found
        for name in output.fields:
            refused = ("story" in item.refused and name.startswith("story.")) or (
                "update" in item.refused and name.startswith("update.")
            )
            if not refused and marker(item.index, name) not in text:
                missing.append(f"{name} of vector {item.index}")
    assert problems == {}, {VECTORS[i]: p for i, p in problems.items()}
    # Proof that each field really reached this output (else the check proves nothing).
    assert missing == []
    stored = sum(1 for item in corpus.items if not {"story", "update"} & set(item.refused))
    print(f"{output.name}: {stored} of {len(VECTORS)} vectors stored and checked")
    assert stored >= 0.9 * len(VECTORS)


async def _admin_token(corpus: Corpus) -> str:
    liveblog = corpus.server.liveblog

    async def make() -> str:
        async with liveblog.db.transaction() as session:
            admin = await session.get(User, 1)
            assert admin is not None
            return await auth.create_api_token(session, admin, name="reader")

    token: str = await asyncio.wrap_future(
        asyncio.run_coroutine_threadsafe(make(), corpus.server.loop)
    )
    return token


@pytest.mark.parametrize(
    ("name", "path", "field"),
    [
        ("front page", "/", "story.title"),
        ("desk home", "/desk", "story.title"),
        ("desk users", "/desk/users", "user.display_name"),
        ("desk tokens", "/desk/tokens", "token.name"),
    ],
)
def test_pages_listing_many_fields_stay_clean(
    corpus: Corpus, name: str, path: str, field: str
) -> None:
    async def run() -> str:
        async with httpx.AsyncClient(
            base_url=corpus.server.url, cookies=corpus.admin_cookies, timeout=30
        ) as client:
            response = await client.get(path)
            assert response.status_code == 200
            return response.text

    text = asyncio.run(run())
    assert executable_markup(text) == []
    assert TEMPLATE_PRODUCT not in text
    shown = [item for item in corpus.items if marker(item.index, field) in text]
    assert len(shown) >= min(40, len(VECTORS)), f"{name} shows {len(shown)} of the fields"


def test_image_urls_must_be_http_or_https(corpus: Corpus) -> None:
    # Every vector is something other than a plain http(s) URL: all are refused.
    assert corpus.refused_image_urls == len(VECTORS)


def test_reflected_input_is_escaped(corpus: Corpus) -> None:
    """Input echoed back without being stored: query strings, paths, typed form values."""

    async def run() -> list[tuple[str, httpx.Response]]:
        limit = asyncio.Semaphore(CONCURRENCY)
        async with httpx.AsyncClient(base_url=corpus.server.url, timeout=30) as client:
            token = csrf_from((await client.get("/login")).text)

            async def one(vector: str) -> list[tuple[str, httpx.Response]]:
                async with limit:
                    return [
                        (vector, await client.get("/login", params={"next": vector})),
                        (vector, await client.get("/stories/" + quote(vector, safe=""))),
                        (vector, await client.get("/stories/x0", params={"before": vector})),
                        (
                            vector,
                            await client.post(
                                "/login",
                                data={"username": vector, "password": "x", "csrf_token": token},
                            ),
                        ),
                    ]

            batches = await asyncio.gather(*(one(vector) for vector in VECTORS))
        return [pair for batch in batches for pair in batch]

    found: list[tuple[str, list[str]]] = []
    for vector, response in asyncio.run(run()):
        assert response.status_code < 500, (vector, response.request.url)
        if response.headers.get("content-type", "").startswith("text/html"):
            found.append((vector, executable_markup(response.text)))
    results = found
    assert len(results) >= 3 * len(VECTORS)
    assert [(vector, problems) for vector, problems in results if problems] == []


def test_bodies_keep_only_allowed_tags_and_safe_links(corpus: Corpus) -> None:
    """Every stored body: only the sanitizer's tags; links http(s)/mailto, nofollow noopener."""

    async def run() -> list[str]:
        token = await _admin_token(corpus)
        async with httpx.AsyncClient(base_url=corpus.server.url, timeout=30) as client:
            pages = [
                await client.get(f"/api/stories/{item.slug}/updates", headers=bearer(token))
                for item in corpus.items
            ]
        return [update["body_html"] for page in pages for update in page.json()["updates"]]

    bodies = asyncio.run(run())
    assert len(bodies) >= len(VECTORS)
    links = 0
    for html in bodies:
        tree = LexborHTMLParser(html)
        assert tree.body is not None
        for node in tree.body.traverse(include_text=False):
            if node.tag == "body":
                continue  # the parser's own wrapper
            assert node.tag in ALLOWED_TAGS, (node.tag, html)
            if node.tag == "a":
                links += 1
                href = node.attributes.get("href") or ""
                assert urlsplit(href).scheme in ("http", "https", "mailto", ""), html
                assert {"nofollow", "noopener"} <= set((node.attributes.get("rel") or "").split())
    assert links >= 3  # the corpus has plain links, which must survive (and be marked)


def test_only_http_https_and_mailto_links_survive() -> None:
    render = MarkdownRenderer()
    kept = {
        "[a](https://example.com/x)": "https://example.com/x",
        "[b](http://example.com/)": "http://example.com/",
        "[c](mailto:desk@example.com)": "mailto:desk@example.com",
        "<https://example.com/auto>": "https://example.com/auto",
    }
    for source, href in kept.items():
        tree = LexborHTMLParser(render(source))
        link = tree.css_first("a")
        assert link is not None and link.attributes.get("href") == href, source
        assert link.attributes.get("rel") == "nofollow noopener"
    for source in [
        "[x](javascript:alert(1))",
        "[x](data:text/html,hi)",
        "[x](ftp://example.com/)",
        "[x](file:///etc/passwd)",
        "[x](vbscript:msgbox)",
        "![i](https://example.com/tracker.gif)",
    ]:
        html = render(source)
        tree = LexborHTMLParser(html)
        assert all(not (a.attributes.get("href") or "") for a in tree.css("a")), (source, html)
        assert tree.css("img") == [], (source, html)


def test_the_lead_keeps_no_vector_and_only_https_or_own_images() -> None:
    """The lead's renderer (sections and images allowed): each vector, alone and as an
    image's address or alt text, leaves nothing executable and no other image address."""
    images = 0
    for vector in VECTORS:
        for source in (vector, f"![{vector}](https://img.example/a.png)", f"![a]({vector})"):
            html = render_lead(source)
            assert executable_markup(html) == [], (source, html)
            for img in LexborHTMLParser(html).css("img"):
                images += 1
                src = img.attributes.get("src") or ""
                assert src.startswith(("https://", "/media/")), (source, html)
                assert set(img.attributes) == {"src", "alt", "loading"}, (source, html)
    # Most vectors as alt text leave the https image standing (a "]" or a blank line ends it).
    assert images >= len(VECTORS) * 9 // 10
