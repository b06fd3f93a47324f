"""HTTP validators for what readers fetch: ETags, Cache-Control, and 304 before any work.

Everything a story page or a story's JSON shows changes only through an event in the
story's log, so the story's ``last_seq`` (with whatever else picks the representation:
the page, the order, the limit...) identifies what a response would contain. Views
compute the ETag from what they have already read (the story row), compare it with
``If-None-Match``, and answer ``304 Not Modified`` before querying updates or rendering
anything. The ETag also covers this release's templates and version, so a deploy that
changes how pages look does not leave caches holding the old ones.

Cache-Control: public pages get a short ``max-age`` (a CDN absorbs a crowd without
serving anything older than a few seconds) and ``stale-while-revalidate``; whatever
depends on a login (an editor's view, token-authenticated JSON) is ``private``.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import Response

from liveblog import __version__
from liveblog.render import TEMPLATES_DIR

# A CDN serves a page at most 5 s old, and a little older while it fetches a fresh one.
PUBLIC = "public, max-age=5, stale-while-revalidate=30"
# Token-authenticated JSON: any cache but the client's own stays out; revalidate each time.
PRIVATE = "private, no-cache"
# An editor's view of a page (it shows their name and forms): kept nowhere.
LOGGED_IN = "private, no-store"


@lru_cache(maxsize=4)
def release_fingerprint(templates: Path = TEMPLATES_DIR) -> str:
    """The version and every template's bytes: what else decides how a page looks."""
    digest = hashlib.blake2b(__version__.encode(), digest_size=8)
    for path in sorted(templates.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(templates).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def etag(kind: str, *parts: object) -> str:
    """A weak ETag for a response of ``kind`` made from ``parts`` (ints, strings, None)."""
    key = "|".join([release_fingerprint(), kind, *(str(part) for part in parts)])
    return 'W/"' + hashlib.blake2b(key.encode(), digest_size=12).hexdigest() + '"'


def is_fresh(headers: Headers, tag: str) -> bool:
    """Whether ``If-None-Match`` names ``tag`` (the weak comparison a GET uses)."""
    header = headers.get("if-none-match")
    if not header:
        return False
    wanted = tag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def validator_headers(tag: str, cache_control: str) -> dict[str, str]:
    return {"ETag": tag, "Cache-Control": cache_control}


def not_modified(tag: str, cache_control: str, *, vary: str | None = None) -> Response:
    headers = validator_headers(tag, cache_control)
    if vary:
        headers["Vary"] = vary
    return Response(status_code=304, headers=headers)
