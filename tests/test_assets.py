"""Static files the way a CDN wants them (``liveblog.assets``): content-hashed addresses
cached for a year, the widget's fixed address kept, ETags and 304s, brotli and gzip, the
favicon and the web app manifest."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from urllib.parse import urljoin

import brotli
import httpx
import pytest

from liveblog.assets import IMMUTABLE, REVALIDATE, SHORT, Assets, negotiate
from liveblog.render import STATIC_DIR
from tests.factories import new_story
from tests.support import Editor

pytestmark = pytest.mark.anyio

VERSIONED = re.compile(r"""(?:href|src)="(/static/([0-9a-f]{16})/([^"]+))\"""")
IMPORT = re.compile(r"""from\s+"(\./[^"]+)\"""")


async def raw_get(
    client: httpx.AsyncClient, path: str, **headers: str
) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent, before httpx undoes any Content-Encoding."""
    async with client.stream("GET", path, headers=headers) as response:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, body


async def linked(client: httpx.AsyncClient, page: str) -> dict[str, str]:
    """The static files ``page`` links, by file path: their addresses."""
    response = await client.get(page)
    assert response.status_code == 200, page
    return {path: address for address, _, path in VERSIONED.findall(response.text)}


async def test_pages_link_static_files_by_content_hash_cached_for_a_year(
    client: httpx.AsyncClient,
) -> None:
    links = await linked(client, "/")
    assert {"css/site.css", "favicon.svg", "manifest.webmanifest"} <= set(links)
    response, body = await raw_get(client, links["css/site.css"], **{"accept-encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE == "public, max-age=31536000, immutable"
    assert body == (STATIC_DIR / "css/site.css").read_bytes()
    assert "content-encoding" not in response.headers
    assert response.headers["content-length"] == str(len(body))
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert re.fullmatch(r'"[0-9a-f]{24}"', response.headers["etag"])  # strong
    assert response.headers["last-modified"].endswith(" GMT")
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers  # a file, not a page


async def test_a_module_imports_its_modules_under_its_own_fingerprint(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor, "storm")
    story_js = (await linked(client, "/stories/storm"))["js/story.js"]
    source = (await client.get(story_js)).text
    imports = IMPORT.findall(source)
    assert {"./live.js", "./times.js", "./share.js"} <= set(imports)
    for module in imports:
        # What the browser asks for: the import resolved against the importer's address.
        response = await client.get(urljoin(story_js, module))
        assert response.status_code == 200, module
        assert response.headers["cache-control"] == IMMUTABLE, module
        assert response.content == (STATIC_DIR / "js" / module).read_bytes()


async def test_the_widget_keeps_its_fixed_address_with_a_short_cache(
    client: httpx.AsyncClient,
) -> None:
    for path in ("widget.js", "embed-resizer.js"):
        response = await client.get(f"/static/{path}", headers={"origin": "https://news.example"})
        assert response.status_code == 200
        assert response.content == (STATIC_DIR / path).read_bytes()
        assert response.headers["cache-control"] == SHORT == "public, max-age=300"
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
        assert response.headers["access-control-allow-origin"] == "*"  # other sites load it


async def test_an_unknown_fingerprint_gets_todays_file_never_cached_as_immutable(
    client: httpx.AsyncClient,
) -> None:
    links = await linked(client, "/")
    current = links["css/site.css"]
    stale = re.sub(r"/static/[0-9a-f]{16}/", "/static/0123456789abcdef/", current)
    response = await client.get(stale)
    assert response.status_code == 200
    assert response.headers["cache-control"] == REVALIDATE == "no-cache"
    # The favicon's fingerprint vouches for the favicon alone, not for the stylesheet.
    other = current.replace(current.split("/")[2], links["favicon.svg"].split("/")[2])
    assert (await client.get(other)).headers["cache-control"] == REVALIDATE


@pytest.mark.parametrize(
    "path",
    [
        "/static/nothing.css",
        "/static/0123456789abcdef/nothing.css",
        "/static/../pyproject.toml",
        "/static/%2e%2e/pyproject.toml",
        "/static/css",
        "/static/",
    ],
)
async def test_what_is_not_a_file_is_404(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 404


async def test_revalidation_is_answered_304(client: httpx.AsyncClient) -> None:
    address = (await linked(client, "/"))["css/site.css"]
    for path in (address, "/static/widget.js"):
        for encoding in ("identity", "gzip", "br"):
            first = await client.get(path, headers={"accept-encoding": encoding})
            etag, modified = first.headers["etag"], first.headers["last-modified"]
            again = await client.get(
                path, headers={"accept-encoding": encoding, "if-none-match": etag}
            )
            assert again.status_code == 304, (path, encoding)
            assert again.content == b""
            assert again.headers["etag"] == etag
            assert again.headers["cache-control"] == first.headers["cache-control"]
            assert again.headers["vary"] == "Accept-Encoding"
            weak = await client.get(
                path, headers={"accept-encoding": encoding, "if-none-match": f"W/{etag}, *"}
            )
            assert weak.status_code == 304
            since = await client.get(
                path, headers={"accept-encoding": encoding, "if-modified-since": modified}
            )
            assert since.status_code == 304
        changed = await client.get(path, headers={"if-none-match": '"something-else"'})
        assert changed.status_code == 200
        old = await client.get(path, headers={"if-modified-since": "Thu, 01 Jan 1970 00:00:00 GMT"})
        assert old.status_code == 200


async def test_text_is_sent_brotli_or_gzip_compressed_as_accepted(
    client: httpx.AsyncClient,
) -> None:
    original = (STATIC_DIR / "widget.js").read_bytes()
    etags = set()
    for accept, expected in [
        ("gzip, deflate, br, zstd", "br"),
        ("gzip", "gzip"),
        ("br;q=0.5, gzip", "gzip"),
        ("*", "br"),
        ("br;q=0, *;q=0.1", "gzip"),
        ("identity", None),
        ("gzip;q=0, br;q=0", None),
        ("", None),
    ]:
        response, body = await raw_get(client, "/static/widget.js", **{"accept-encoding": accept})
        assert response.status_code == 200
        assert response.headers.get("content-encoding") == expected, accept
        assert response.headers["content-length"] == str(len(body))
        assert response.headers["vary"] == "Accept-Encoding"
        decoded = {"br": brotli.decompress, "gzip": gzip.decompress, None: bytes}[expected](body)
        assert decoded == original
        if expected:
            assert len(body) < len(original) / 2, (expected, len(body))
        etags.add((expected, response.headers["etag"]))
    # One ETag per representation: a cache never answers gzip to a brotli revalidation.
    assert len({etag for _, etag in etags}) == 3


async def test_images_are_not_compressed_again(client: httpx.AsyncClient) -> None:
    response, body = await raw_get(client, "/static/icon-192.png", **{"accept-encoding": "br"})
    assert response.status_code == 200
    assert "content-encoding" not in response.headers and "vary" not in response.headers
    assert response.headers["content-type"] == "image/png"
    assert body == (STATIC_DIR / "icon-192.png").read_bytes()


async def test_head_sends_the_headers_alone_and_other_methods_are_refused(
    client: httpx.AsyncClient,
) -> None:
    get = await client.get("/static/widget.js", headers={"accept-encoding": "br"})
    head = await client.head("/static/widget.js", headers={"accept-encoding": "br"})
    assert head.status_code == 200 and head.content == b""
    for name in ("etag", "content-length", "content-encoding", "cache-control"):
        assert head.headers[name] == get.headers[name]
    post = await client.post("/static/widget.js")
    assert post.status_code == 405
    assert post.headers["allow"] == "GET, HEAD"


async def test_favicon_at_the_root_and_linked_from_every_page(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    response = await client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/vnd.microsoft.icon"
    assert response.content == (STATIC_DIR / "favicon.ico").read_bytes()
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    await new_story(client, editor, "storm")
    for page in ("/", "/stories/storm", "/login", "/embed/storm"):
        icon = (await linked(client, page))["favicon.svg"]
        svg = await client.get(icon)
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
        assert svg.text.startswith("<svg ")


async def test_the_manifest_and_its_icons(client: httpx.AsyncClient) -> None:
    address = (await linked(client, "/"))["manifest.webmanifest"]
    response = await client.get(address)
    assert response.headers["content-type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    assert manifest["name"] and manifest["start_url"] == "/"
    sizes = set()
    for icon in manifest["icons"]:
        fetched = await client.get(urljoin(address, icon["src"]))
        assert fetched.status_code == 200, icon
        assert fetched.headers["content-type"] == icon["type"]
        assert fetched.headers["cache-control"] == IMMUTABLE  # covered by the fingerprint
        sizes.add(icon["sizes"])
    assert {"192x192", "512x512"} <= sizes


# --- the fingerprints, on files made here --------------------------------------------


def write(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)


def test_a_fingerprint_changes_with_any_file_it_covers_and_nothing_else(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "js/app.js": 'import { a } from "./lib/a.js";\nimport("../shared.js");\n',
            "js/lib/a.js": 'export { b } from "./b.js";\n',
            "js/lib/b.js": "export const b = 1;\n",
            "shared.js": "export {};\n",
            "other.js": "export {};\n",
            "css/site.css": '@import "base.css"; body { background: url("../img/x.png"); }\n',
            "css/base.css": "p { margin: 0 }\n",
            "img/x.png": "png",
            "app.webmanifest": '{"icons": [{"src": "img/x.png"}, {"src": "/abs.png"}]}',
        },
    )
    before = Assets.load(tmp_path)
    assert before.covers[before.fingerprints["js/app.js"]] == {
        "js/app.js",
        "js/lib/a.js",
        "js/lib/b.js",
        "shared.js",
    }
    assert before.covers[before.fingerprints["css/site.css"]] == {
        "css/site.css",
        "css/base.css",
        "img/x.png",
    }
    assert before.covers[before.fingerprints["app.webmanifest"]] == {"app.webmanifest", "img/x.png"}

    write(tmp_path, {"js/lib/b.js": "export const b = 2;\n"})
    after = Assets.load(tmp_path)
    changed = {
        path for path in before.fingerprints if before.versioned(path) != after.versioned(path)
    }
    assert changed == {"js/app.js", "js/lib/a.js", "js/lib/b.js"}
    assert after.versioned("js/app.js") == after.fingerprints["js/app.js"] + "/js/app.js"
    assert after.versioned("missing.js") == "missing.js"


def test_accept_encoding_is_negotiated_by_quality_then_our_preference() -> None:
    assert negotiate("gzip, deflate, br") == ["br", "gzip"]
    assert negotiate("gzip;q=1.0, br;q=0.9") == ["gzip", "br"]
    assert negotiate("br;q=0") == []
    assert negotiate("*;q=0.5, gzip;q=0") == ["br"]
    assert negotiate("BR; Q=0.7, identity") == ["br"]
    assert negotiate("gzip;q=nonsense") == []
    assert negotiate("") == []


def test_the_nginx_template_caches_static_files_once_per_encoding() -> None:
    """nginx's part (docs/static.md); tests/test_topology_compose.py runs ``nginx -t``."""
    template = (STATIC_DIR.parent / "deploy" / "nginx" / "liveblog.conf.template").read_text()
    block = template.split("location ~ ^/(?:static/|favicon\\.ico$) {", 1)[1].split("}", 1)[0]
    for directive in [
        "proxy_cache liveblog_static;",
        "proxy_set_header Accept-Encoding $liveblog_static_encoding;",
        "proxy_cache_key $host$request_uri|$liveblog_static_encoding;",
        "proxy_ignore_headers Vary;",
        "proxy_cache_revalidate on;",
        "gzip off;",
        # A proxy_set_header in a location drops the server's: they must be repeated.
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        'proxy_set_header Connection "";',
    ]:
        assert directive in block, directive
    assert "keys_zone=liveblog_static:" in template
    # Our negotiation and nginx's map agree on what a browser's header asks for.
    assert negotiate("gzip, deflate, br, zstd")[0] == "br"
    assert negotiate("gzip, deflate")[0] == "gzip"
