"""What other sites use to show a story: the widget's first render, the iframe page, oEmbed.

All three are public and read-only, and none of them shows drafts to anyone: they are
read across origins without cookies (see ``liveblog/cors.py``), so there is no editor
to recognise, and an embed must never be the way a draft leaks out.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from liveblog import caching, embedding, store
from liveblog.headers import frame_source
from liveblog.models import Story, iso, story_public
from liveblog.state import get_liveblog
from liveblog.views.common import BadParameter, choice_param, find_story, int_param

MAX_LIMIT = 50
ORDERS = ("newest", "oldest")
THEMES = ("light", "dark", "auto")
# Story addresses an oEmbed consumer may ask about: the page, an update's permalink
# (embeds the whole story) and the iframe page itself.
OEMBED_PATH = re.compile(r"^/(?:stories|embed)/([a-z0-9]+(?:-[a-z0-9]+)*)(?:/updates/\d+)?/?$")
# A snapshot may be a few seconds old: the widget resumes the stream from the snapshot's
# own last_seq, so whatever happened since is replayed, not lost.
SNAPSHOT_CACHE = "public, max-age=5"
# The iframe page is built to be framed by anyone; everything else on it stays strict.
EMBED_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors *"
)


def _json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": message}, status_code=status, headers={"Cache-Control": "no-store"}
    )


async def _public_story(request: Request, slug: str) -> Story | None:
    return await find_story(request, slug, drafts="never")


def _limit(request: Request) -> int:
    return int_param(
        request, "limit", default=embedding.DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT
    )


def _choice(request: Request, name: str, choices: tuple[str, ...]) -> str:
    """``?name=``, the first of ``choices`` when it is not given."""
    return choice_param(request, name, choices) or choices[0]


# --- the widget's first render -------------------------------------------------------


async def story_snapshot(request: Request) -> Response:
    """``GET /stories/{slug}/updates.json``: the latest updates as rendered fragments.

    ``limit`` picks the newest N updates; ``order`` only sorts them for display. The
    answer carries the ``last_seq`` it was read at, which the widget hands to the stream.
    """
    try:
        limit = _limit(request)
        order = _choice(request, "order", ORDERS)
    except BadParameter as exc:
        return _json_error(400, exc.detail)
    story = await _public_story(request, request.path_params["slug"])
    if story is None:
        return _json_error(404, "no such story")
    # Everything it shows changes only with an event: a copy at this seq is current.
    url = embedding.story_url(request, story.slug)
    tag = caching.etag("snapshot", story.id, story.last_seq, limit, order, url)
    if caching.is_fresh(request.headers, tag):
        return caching.not_modified(tag, SNAPSHOT_CACHE)
    liveblog = get_liveblog(request)
    async with liveblog.db.session() as session:
        # The sequence number is read before the content (as on the story page): an
        # event landing in between is then both here and replayed, never on neither.
        last_seq = story.last_seq
        rows = await store.updates_page(session, story, limit=limit)
        pinned = await store.pinned_update(session, story)
    fragment = liveblog.renderer.update_fragment
    updates = [
        {
            "id": update.id,
            "html": fragment(update, story, author),
            "key_event": update.key_event,
            "pinned": update.pinned,
            "created_at": iso(update.created_at),
            "edited_at": iso(update.edited_at),
        }
        for update, author in rows
    ]
    if order == "oldest":
        updates.reverse()
    body: dict[str, Any] = {
        "story": {**story_public(story), "url": url},
        "last_seq": last_seq,
        "order": order,
        "limit": limit,
        "updates": updates,
        "pinned": None
        if pinned is None
        else {"id": pinned[0].id, "html": fragment(pinned[0], story, pinned[1], anchor=False)},
    }
    return JSONResponse(body, headers=caching.validator_headers(tag, SNAPSHOT_CACHE))


# --- the iframe page -----------------------------------------------------------------


async def embed_page(request: Request) -> Response:
    """``GET /embed/{slug}``: the widget on a page of its own, made to be framed."""
    limit = _limit(request)  # a bad parameter: BadParameter, a 400 page
    order = _choice(request, "order", ORDERS)
    theme = _choice(request, "theme", THEMES)
    story = await _public_story(request, request.path_params["slug"])
    if story is None:
        raise HTTPException(404, "No such story.")
    liveblog = get_liveblog(request)
    html = liveblog.renderer.templates.get_template("embed.html").render(
        story=story,
        story_url=embedding.story_url(request, story.slug),
        site_url=embedding.site_url(request),
        limit=limit,
        order=order,
        theme=theme,
    )
    # The widget on it may frame the link embeds' click-through (docs/embeds.md), and
    # nothing else: as on every other page (liveblog/headers.py).
    settings = liveblog.settings
    frames = frame_source(settings.frames_base())
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": f"{EMBED_CSP}; frame-src {frames}",
            "Cache-Control": "public, max-age=60",
        },
    )


# --- oEmbed --------------------------------------------------------------------------


async def oembed(request: Request) -> Response:
    """``GET /oembed?url=...&format=json``: the oEmbed provider (https://oembed.com/)."""
    fmt = request.query_params.get("format", "json")
    if fmt != "json":
        return _json_error(501, "only format=json is available")
    url = request.query_params.get("url", "").strip()
    if not url:
        return _json_error(400, "give the story's address as 'url'")
    try:
        parts = urlsplit(url)
        max_width = int_param(request, "maxwidth", minimum=1, maximum=100_000)
        max_height = int_param(request, "maxheight", minimum=1, maximum=100_000)
    except (BadParameter, ValueError) as exc:
        return _json_error(400, exc.detail if isinstance(exc, BadParameter) else "bad 'url'")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return _json_error(400, "'url' must be an absolute http(s) address")
    site = urlsplit(embedding.site_url(request))
    match = OEMBED_PATH.match(parts.path)
    if parts.netloc.lower() != site.netloc.lower() or match is None:
        return _json_error(404, "that address is not a story on this site")
    story = await _public_story(request, match.group(1))
    if story is None:
        return _json_error(404, "no such story")
    width = min(embedding.DEFAULT_FRAME_WIDTH, max_width or embedding.DEFAULT_FRAME_WIDTH)
    height = min(embedding.DEFAULT_FRAME_HEIGHT, max_height or embedding.DEFAULT_FRAME_HEIGHT)
    # The resizer grows the frame to its content, so it only comes along when the
    # consumer set no height limit it would break.
    html = embedding.iframe_snippet(
        request, story, width=width, height=height, resizer=max_height is None
    )
    body = {
        "version": "1.0",
        "type": "rich",
        "title": story.title,
        "provider_name": "liveblog",
        "provider_url": embedding.site_address(request, "home"),
        "html": html,
        "width": width,
        "height": height,
        "cache_age": 3600,
    }
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})


routes = [
    Route("/stories/{slug}/updates.json", story_snapshot, methods=["GET"], name="story_snapshot"),
    Route("/embed/{slug}", embed_page, methods=["GET"], name="embed_page"),
    Route("/oembed", oembed, methods=["GET"], name="oembed"),
]
