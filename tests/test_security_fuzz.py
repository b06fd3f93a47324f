"""Property-based fuzzing of every endpoint (hypothesis).

Random and malformed JSON, forms, raw bodies, headers, cookies, path parameters and
query strings, with Unicode edge cases and huge values, go to every route of one real
app. For every request: never a 5xx, and a request that fails (4xx) or only reads
changes nothing at all (the database and the event log are compared row by row before
and after); one that succeeds leaves every story's event log gap-free.

Requests go straight to the ASGI app (no HTTP parser in front to tidy them up), on the
live server's own event loop; the event stream, which never ends while its story is
live, is fuzzed over real HTTP. ``LIVEBLOG_FUZZ_EXAMPLES`` sets examples per test.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount, Route

from liveblog import auth
from liveblog.app import create_app
from liveblog.models import Role, StoryCreate, StoryStatus, UpdateCreate, User
from liveblog.settings import Settings
from tests.security_support import db_state, event_log_is_gap_free
from tests.support import LiveServer, migrated_settings_for, password_hash, run_server

EXAMPLES = int(os.environ.get("LIVEBLOG_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
READS = {"GET", "HEAD", "OPTIONS"}

# --- values --------------------------------------------------------------------------

EDGE_TEXT = [
    "",
    " ",
    "\x00",
    "\ud800",
    "\udfff",
    "\x1b[2J",
    "\u202eevil",
    "\u200b\u200d\ufeff",
    "\u2028\u2029",
    "e\u0301" * 50,
    "👩‍👩‍👧‍👦" * 20,
    "İ" * 40,
    "ﬁ" * 30,
    "\uffff\ufffe",
    "\U0001d54f" * 60,  # a letter outside the BMP
    "0",
    "-1",
    "1e309",
    "99999999999999999999999999",
    "NaN",
    "null",
    "true",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "%00%2e%2e%2f",
    "a" * 201,
    "b" * 20_001,
    "c" * 300_000,
]
texts = st.one_of(st.sampled_from(EDGE_TEXT), st.text(max_size=300))
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
KNOWN_FIELDS = [
    "title", "summary", "slug", "status", "breaking", "body", "headline", "key_event",
    "pinned", "image_url", "image_alt", "image_caption", "image_credit", "image_width",
    "image_height", "username", "password", "display_name", "role", "active", "name",
    "read_only", "next", "csrf_token",
]  # fmt: skip
field_names = st.one_of(st.sampled_from(KNOWN_FIELDS), st.text(max_size=20))
json_objects = st.dictionaries(field_names, json_values, max_size=8)
form_values = st.one_of(
    texts.filter(lambda t: not re.search("[\ud800-\udfff]", t)),
    st.sampled_from(["on", "off", "true", "draft", "live", "ended", "admin", "editor"]),
)
QUERY_KEYS = ["limit", "before", "after", "order", "last_event_id", "next", "url", "format"]
queries = st.dictionaries(
    st.one_of(st.sampled_from(QUERY_KEYS), st.text(max_size=10)),
    st.one_of(st.sampled_from(EDGE_TEXT[:27]), st.text(max_size=40)).filter(
        lambda t: not re.search("[\ud800-\udfff]", t)
    ),
    max_size=4,
)
header_bytes = st.binary(max_size=200).map(
    lambda raw: bytes(b for b in raw if b not in b"\r\n\x00") or b"x"
)
CONTENT_TYPES = [
    b"application/json",
    b"application/json; charset=latin-1",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=xyz",
    b"multipart/form-data",
    b"text/plain",
    b"image/png",
    b"",
    b"application/json\x01",
]
extra_headers = st.dictionaries(
    st.sampled_from(
        [
            b"content-type",
            b"accept",
            b"origin",
            b"sec-fetch-site",
            b"last-event-id",
            b"x-csrf-token",
            b"x-forwarded-for",
            b"range",
            b"if-none-match",
            b"x-fuzz",
        ]
    ),
    st.one_of(st.sampled_from(CONTENT_TYPES), header_bytes),
    max_size=3,
)


# --- the world -----------------------------------------------------------------------


@dataclass
class World:
    server: LiveServer
    settings: Settings
    routes: list[tuple[str, str]]
    editor: User
    admin: User
    update_id: int
    client: httpx.AsyncClient


async def _setup(server: LiveServer) -> tuple[User, User, int, httpx.AsyncClient]:
    liveblog = server.liveblog
    async with liveblog.db.transaction() as session:
        editor = User(username="ed", display_name="Ed", password_hash=password_hash())
        admin = User(
            username="ada", display_name="Ada", password_hash=password_hash(), role=Role.admin
        )
        victims = [
            User(username=f"v{n}", display_name=f"V{n}", password_hash=password_hash())
            for n in range(3)
        ]
        session.add_all([editor, admin, *victims])
    await liveblog.newsroom.create_story(
        StoryCreate(title="Storm", slug="storm", status=StoryStatus.live), actor=editor
    )
    await liveblog.newsroom.create_story(
        StoryCreate(title="Draft", slug="draft", status=StoryStatus.draft), actor=editor
    )
    update = await liveblog.newsroom.post_update("storm", UpdateCreate(body="First"), author=editor)
    assert update.id is not None
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.app), base_url="http://testserver"
    )
    return editor, admin, update.id, client


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    config = migrated_settings_for(data_dir, login_attempts_per_account=5, max_body_bytes=1_048_576)
    with run_server(create_app(config)) as server:
        editor, admin, update_id, client = server.run(_setup(server))
        routes: list[tuple[str, str]] = []
        for route in server.app.routes:
            if isinstance(route, Route):
                routes += [(method, route.path) for method in sorted(route.methods or ())]
            elif isinstance(route, Mount):
                routes.append(("GET", route.path + "/{path}"))
        yield World(server, config, sorted(routes), editor, admin, update_id, client)
        server.run(client.aclose())


async def _credentials(world: World, user: User) -> tuple[dict[str, str], str, str]:
    """A fresh login, CSRF cookie and API token for ``user`` (the fuzz may end them)."""
    liveblog = world.server.liveblog
    csrf_cookie = auth.new_csrf_cookie()
    async with liveblog.db.transaction() as session:
        session_token = await auth.start_login(session, user, days=1)
        token = await auth.create_api_token(session, user, name="fuzz")
    cookies = {auth.SESSION_COOKIE: session_token, auth.CSRF_COOKIE: csrf_cookie}
    return cookies, liveblog.csrf.token_for(csrf_cookie), token


def _state(world: World) -> dict[str, list[tuple[Any, ...]]]:
    state = db_state(world.settings)
    # Logins and tokens are made for each example, and a login may start one.
    state.pop("login_session")
    state.pop("api_token")
    return state


def _fill(template: str, data: st.DataObject, world: World) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        good = {
            "slug": st.sampled_from(["storm", "draft", "nope"]),
            "update_id": st.sampled_from([str(world.update_id), "1", "0"]),
            "user_id": st.sampled_from(["3", "4", "5", "999"]),  # the victims, not us
            "token_id": st.integers(min_value=0, max_value=50).map(str),
            "username": st.sampled_from(["ed", "v1", "nobody"]),
            "path": st.sampled_from(["css/site.css", "../secret_key", "nope.png", "%2e%2e/x"]),
        }.get(name, st.just("x"))
        weird = st.sampled_from(["99999999999999999999999", "%00", "%F0%9F%92%A9", "a" * 300])
        chosen: str = data.draw(st.one_of(good, good, weird))
        return chosen

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, template)


async def _send(
    world: World,
    method: str,
    path: str,
    *,
    cookies: dict[str, str],
    headers: dict[bytes, bytes],
    body: bytes | None,
) -> httpx.Response:
    world.client.cookies.clear()  # each example brings its own
    if cookies:
        jar = "; ".join(f"{name}={value}" for name, value in cookies.items()).encode()
        headers = {**headers, b"cookie": b"; ".join(filter(None, [headers.get(b"cookie"), jar]))}
    request = world.client.build_request(method, path, headers=list(headers.items()), content=body)
    return await world.client.send(request)


def _check(world: World, before: dict[str, Any], response: httpx.Response, method: str) -> None:
    what = f"{method} {response.request.url} -> {response.status_code}: {response.text[:300]}"
    assert response.status_code < 500, what
    if response.status_code >= 400 or method in READS:
        # A refused request (or a read) must leave no trace, not even half a change.
        assert _state(world) == before, what
    else:
        assert event_log_is_gap_free(world.settings), what


def _exchange(
    world: World,
    method: str,
    path: str,
    *,
    user: str,
    csrf: bool,
    bearer: bool,
    headers: dict[bytes, bytes],
    body: bytes | None,
) -> None:
    principal = {"editor": world.editor, "admin": world.admin}.get(user)
    cookies: dict[str, str] = {}
    if principal is not None:
        cookies, csrf_token, token = world.server.run(_credentials(world, principal))
        if bearer:
            headers = {b"authorization": f"Bearer {token}".encode(), **headers}
        if csrf:
            headers = {b"x-csrf-token": csrf_token.encode(), **headers}
    before = _state(world)
    response = world.server.run(
        _send(world, method, path, cookies=cookies, headers=headers, body=body)
    )
    _check(world, before, response, method)


def _is_stream(template: str) -> bool:
    return template.endswith("/events")


# --- the tests -----------------------------------------------------------------------


@FUZZ
@given(data=st.data(), payload=json_values, user=st.sampled_from(["editor", "admin", "none"]))
def test_fuzz_the_json_api(world: World, data: st.DataObject, payload: Any, user: str) -> None:
    routes = [r for r in world.routes if r[1].startswith("/api/")]
    method, template = data.draw(st.sampled_from(routes))
    if data.draw(st.booleans()):
        payload = data.draw(json_objects)
    try:
        body = json.dumps(payload).encode()
    except (ValueError, UnicodeEncodeError):  # pragma: no cover - json.dumps escapes all
        body = b"{"
    if data.draw(st.integers(0, 9)) == 0:
        body = data.draw(
            st.sampled_from([b"", b"{", b"[]", b"\xff\xfe", b'{"body": "\xed\xa0\x80"}'])
        )
    headers = {b"content-type": data.draw(st.sampled_from(CONTENT_TYPES[:2] + CONTENT_TYPES[5:]))}
    query = data.draw(queries)
    path = _fill(template, data, world)
    if query:
        path += "?" + str(httpx.QueryParams(query))
    _exchange(
        world,
        method,
        path,
        user=user,
        csrf=False,
        bearer=data.draw(st.integers(0, 4)) > 0,
        headers=headers,
        body=None if method in READS else body,
    )


@FUZZ
@given(
    data=st.data(),
    form=st.dictionaries(field_names, form_values, max_size=8),
    user=st.sampled_from(["editor", "admin", "none"]),
)
def test_fuzz_the_forms(world: World, data: st.DataObject, form: dict[str, str], user: str) -> None:
    routes = [r for r in world.routes if r[0] == "POST" and not r[1].startswith("/api/")]
    method, template = data.draw(st.sampled_from(routes))
    if template == "/logout":
        user = "none"  # (logging out is fine; it would only make the example pointless)
    encoded = str(httpx.QueryParams(form)).encode()
    headers = {b"content-type": b"application/x-www-form-urlencoded"}
    if data.draw(st.integers(0, 4)) == 0:
        headers.update(data.draw(extra_headers))
    if data.draw(st.integers(0, 6)) == 0:
        headers[b"accept"] = b"application/json"
    _exchange(
        world,
        method,
        _fill(template, data, world),
        user=user,
        csrf=data.draw(st.integers(0, 5)) > 0,
        bearer=False,
        headers=headers,
        body=encoded,
    )


@FUZZ
@given(
    data=st.data(),
    body=st.one_of(st.none(), st.binary(max_size=2000), st.sampled_from([b"x" * 1_100_000])),
    headers=extra_headers,
    user=st.sampled_from(["editor", "admin", "none"]),
)
def test_fuzz_any_route_with_any_request(
    world: World, data: st.DataObject, body: bytes | None, headers: dict[bytes, bytes], user: str
) -> None:
    routes = [r for r in world.routes if not _is_stream(r[1])]
    method, template = data.draw(st.sampled_from(routes))
    method = data.draw(st.sampled_from([method, method, "PUT", "DELETE", "PATCH", "OPTIONS"]))
    path = _fill(template, data, world)
    query = data.draw(queries)
    if query:
        path += "?" + str(httpx.QueryParams(query))
    if data.draw(st.booleans()):
        headers = {b"cookie": data.draw(header_bytes), **headers}
    _exchange(
        world,
        method,
        path,
        user=user,
        csrf=data.draw(st.booleans()),
        bearer=data.draw(st.booleans()),
        headers=headers,
        body=None if method in ("GET", "HEAD") else body,
    )


@settings(
    max_examples=max(20, EXAMPLES // 5),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    slug=st.sampled_from(["storm", "draft", "nope", "%00", "a" * 200]),
    last_event_id=st.one_of(
        st.none(), st.sampled_from(["0", "-1", "1e3", "²", "9" * 30, "  3 ", "abc"]), header_bytes
    ),
    query=queries,
)
def test_fuzz_the_event_stream(
    world: World, slug: str, last_event_id: bytes | str | None, query: dict[str, str]
) -> None:
    headers: dict[bytes, bytes] = {}
    if last_event_id is not None:
        value = last_event_id if isinstance(last_event_id, bytes) else last_event_id.encode()
        headers[b"Last-Event-ID"] = value.strip(b" \t") or b"x"
    before = _state(world)
    with httpx.Client(base_url=world.server.url, timeout=10) as client:
        try:
            with client.stream(
                "GET", f"/stories/{slug}/events", params=query, headers=headers
            ) as response:
                status = response.status_code
                if status == 200:
                    assert next(response.iter_lines()).startswith("retry:")
        except httpx.LocalProtocolError:
            return  # a header value no HTTP client may send: nothing reached the server
    assert status in (200, 204, 400, 404, 429), status
    assert _state(world) == before
