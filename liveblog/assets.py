"""The files under ``static/``, served the way a CDN wants them, as one pure ASGI app.

Every file is read and hashed once, when the app is built (``Assets.load``); pages link
to ``/static/{fingerprint}/{path}`` (``url_path("static", path=...)`` asks ``versioned``),
served ``immutable`` for a year. A fingerprint is a content hash of the file *and of the
files it refers to by relative address* (a module's ``import "./live.js"``, a manifest's
icons), so ``story.js`` loaded from ``/static/{fp}/js/story.js`` imports
``/static/{fp}/js/live.js``: the same fingerprint, immutable too, and changed whenever any
of them changes. The plain ``/static/{path}`` stays (the widget's script is loaded by
other sites by that fixed address) with a short cache and revalidation. A fingerprint
this build does not know (a page from the previous release, during a deploy) still gets
today's file, but ``no-cache``: never a year of the wrong bytes.

Every answer carries a strong ``ETag`` and ``Last-Modified`` and answers a conditional GET
``304``. Text files are sent brotli- or gzip-compressed when the request accepts it
(``Vary: Accept-Encoding``), each variant compressed once, on its first request, in a
worker thread, and kept. ``docs/static.md`` has the whole policy and nginx's part in it.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path, PurePosixPath

import brotli
from anyio import to_thread
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

IMMUTABLE = "public, max-age=31536000, immutable"
# The unversioned address (the widget's, on other sites): a change reaches them within
# five minutes, and a revalidation after that is a 304.
SHORT = "public, max-age=300"
# An unknown fingerprint: today's bytes, checked again on every use.
REVALIDATE = "no-cache"

FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/vnd.microsoft.icon",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
COMPRESSIBLE = ("text/", "image/svg+xml", "application/manifest+json", "application/json")
# Relative addresses a file loads more files by: module imports, stylesheet urls and
# imports, a manifest's icons. Absolute ones and other sites' are not ours to version.
_REFERENCES = {
    ".js": re.compile(r"""\b(?:from|import)\s*\(?\s*["'](\.\.?/[^"'?#]+)["']"""),
    ".css": re.compile(r"""(?:url\(\s*|@import\s+)["']?(?![a-z]+:|/|#)([^"')?#\s]+)"""),
    ".webmanifest": re.compile(r""""src"\s*:\s*"(?![a-z]+:|/)([^"?#]+)\""""),
}
ENCODINGS = ("br", "gzip")  # preferred first, at equal quality


def _compress(body: bytes, encoding: str) -> bytes:
    if encoding == "br":
        compressed: bytes = brotli.compress(body, quality=11)
        return compressed
    return gzip.compress(body, compresslevel=9, mtime=0)


@dataclass
class Asset:
    path: str
    body: bytes
    media_type: str
    digest: str  # the file's own content hash: its ETag
    last_modified: str
    references: frozenset[str]
    variants: dict[str, bytes | None] = field(default_factory=dict)  # None: not smaller

    @property
    def compressible(self) -> bool:
        return self.media_type.startswith(COMPRESSIBLE)

    async def encoded(self, encoding: str) -> bytes | None:
        """The body in ``encoding``, or None where that does not make it smaller."""
        if encoding not in self.variants:
            body = await to_thread.run_sync(_compress, self.body, encoding)
            self.variants[encoding] = body if len(body) < len(self.body) else None
        return self.variants[encoding]

    def etag(self, encoding: str | None) -> str:
        return f'"{self.digest}-{encoding}"' if encoding else f'"{self.digest}"'


class Assets:
    """The static files of one app: read once, fingerprinted, served from memory."""

    def __init__(self, assets: dict[str, Asset]) -> None:
        self.assets = assets
        self.fingerprints: dict[str, str] = {}  # path -> fingerprint
        self.covers: dict[str, frozenset[str]] = {}  # fingerprint -> paths it vouches for
        for path in assets:
            closure = self._closure(path)
            digest = hashlib.blake2b(digest_size=8)
            for member in sorted(closure):
                digest.update(f"{member}\0{assets[member].digest}\0".encode())
            fingerprint = digest.hexdigest()
            self.fingerprints[path] = fingerprint
            self.covers[fingerprint] = closure

    @classmethod
    def load(cls, directory: Path) -> Assets:
        assets: dict[str, Asset] = {}
        for file in sorted(directory.rglob("*")):
            if not file.is_file() or file.name.startswith("."):
                continue
            path = file.relative_to(directory).as_posix()
            body = file.read_bytes()
            suffix = file.suffix.lower()
            media_type = MEDIA_TYPES.get(suffix) or (
                mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            )
            assets[path] = Asset(
                path=path,
                body=body,
                media_type=media_type,
                digest=hashlib.blake2b(body, digest_size=12).hexdigest(),
                last_modified=formatdate(file.stat().st_mtime, usegmt=True),
                references=frozenset(_references(path, suffix, body)),
            )
        return cls(assets)

    def _closure(self, path: str) -> frozenset[str]:
        seen: set[str] = set()
        todo = [path]
        while todo:
            current = todo.pop()
            if current in seen or current not in self.assets:
                continue
            seen.add(current)
            todo.extend(self.assets[current].references)
        return frozenset(seen)

    def versioned(self, path: str) -> str:
        """``path`` under its fingerprint (``3f2a.../css/site.css``); as it is if unknown."""
        fingerprint = self.fingerprints.get(path)
        return f"{fingerprint}/{path}" if fingerprint else path

    def lookup(self, path: str) -> tuple[Asset, str] | None:
        """The file a request path names, with the Cache-Control its address earns."""
        first, _, rest = path.partition("/")
        if rest and FINGERPRINT.match(first) and path not in self.assets:
            asset = self.assets.get(rest)
            if asset is None:
                return None
            return asset, IMMUTABLE if rest in self.covers.get(first, ()) else REVALIDATE
        asset = self.assets.get(path)
        return (asset, SHORT) if asset else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            raise HTTPException(405, headers={"Allow": "GET, HEAD"})
        # The path under the mount (Starlette's Mount leaves it in ``root_path``).
        found = self.lookup(scope["path"].removeprefix(scope.get("root_path", "")).lstrip("/"))
        if found is None:
            raise HTTPException(404)
        asset, cache_control = found
        request = Headers(scope=scope)
        encoding, body = None, asset.body
        headers = {"Cache-Control": cache_control, "Last-Modified": asset.last_modified}
        if asset.compressible:
            headers["Vary"] = "Accept-Encoding"
            for candidate in negotiate(request.get("accept-encoding", "")):
                encoded = await asset.encoded(candidate)
                if encoded is not None:
                    encoding, body = candidate, encoded
                    break
        headers["ETag"] = asset.etag(encoding)
        if not_modified(request, headers["ETag"], asset.last_modified):
            await _respond(send, 304, headers, b"")
            return
        headers["Content-Type"] = asset.media_type
        headers["Content-Length"] = str(len(body))
        if encoding:
            headers["Content-Encoding"] = encoding
        await _respond(send, 200, headers, b"" if method == "HEAD" else body)


def _references(path: str, suffix: str, body: bytes) -> Iterable[str]:
    pattern = _REFERENCES.get(suffix)
    if pattern is None:
        return
    base = PurePosixPath(path).parent
    for reference in pattern.findall(body.decode("utf-8", "replace")):
        parts: list[str] = []
        for part in (base / reference).parts:
            if part == "..":
                if not parts:
                    break
                parts.pop()
            elif part != ".":
                parts.append(part)
        else:
            yield "/".join(parts)


def negotiate(accept_encoding: str) -> list[str]:
    """The encodings of ours the client accepts, best first (by ``q``, then ours)."""
    quality: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, *params = (piece.strip() for piece in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name:
            quality[name.lower()] = q
    wildcard = quality.get("*", 0.0)
    ranked = [(quality.get(name, wildcard), -rank, name) for rank, name in enumerate(ENCODINGS)]
    return [name for q, _, name in sorted(ranked, reverse=True) if q > 0]


def not_modified(request: Headers, etag: str, last_modified: str) -> bool:
    """A conditional GET that the client's copy already answers (RFC 9110 13.2.2)."""
    if_none_match = request.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    if_modified_since = request.get("if-modified-since")
    if if_modified_since:
        try:
            return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
    return False


async def _respond(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": body})


class FaviconAlias:
    """``/favicon.ico``, which browsers and crawlers ask the root for whatever a page
    links, is ``/static/favicon.ico``: the same file, the same route and rule (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, target: str = "/static/favicon.ico") -> None:
        self.app = app
        self.target = target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/favicon.ico":
            scope = {**scope, "path": self.target, "raw_path": self.target.encode()}
        await self.app(scope, receive, send)
