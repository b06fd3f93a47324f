"""What readers see: the front page, a story page, an update's permalink, the Atom feed."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liveblog import feed, store
from liveblog.models import Story, StoryStatus
from liveblog.state import get_liveblog
from liveblog.views.common import current_user, render


async def _visible_story(request: Request) -> Story:
    """The story named in the path; drafts only for logged-in editors."""
    async with get_liveblog(request).db.session() as session:
        story = await store.get_story(session, request.path_params["slug"])
    if story is None or (story.status == StoryStatus.draft and await current_user(request) is None):
        raise HTTPException(404, "No such story.")
    return story


def _cursor(request: Request) -> int | None:
    raw = request.query_params.get("before", "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise HTTPException(400, "'before' must be an update number.")
    return int(raw)


async def home(request: Request) -> Response:
    async with get_liveblog(request).db.session() as session:
        live = await store.list_stories(session, statuses=[StoryStatus.live])
        ended = await store.list_stories(session, statuses=[StoryStatus.ended], limit=20)
    return await render(request, "home.html", {"live": live, "ended": ended})


async def story_page(request: Request) -> Response:
    liveblog = get_liveblog(request)
    story = await _visible_story(request)
    before = _cursor(request)
    limit = liveblog.settings.page_size
    async with liveblog.db.session() as session:
        # The page's sequence number is read before its content: an event that lands
        # in between is then both on the page and replayed by the stream, which the
        # script handles, rather than on neither.
        rendered_seq = story.last_seq
        rows = await store.updates_page(session, story, before=before, limit=limit + 1)
        pinned = await store.pinned_update(session, story) if before is None else None
        key_events = await store.key_events(session, story)
    has_older = len(rows) > limit
    rows = rows[:limit]
    renderer = liveblog.renderer
    updates = [renderer.update_fragment(update, story, author) for update, author in rows]
    pinned_html = (
        renderer.update_fragment(pinned[0], story, pinned[1], anchor=False) if pinned else None
    )
    context = {
        "story": story,
        "updates": updates,
        "pinned_html": pinned_html,
        "key_events": key_events,
        "rendered_seq": rendered_seq,
        "before": before,
        "older_cursor": rows[-1][0].id if has_older and rows else None,
        "last_updated": rows[0][0].edited_at or rows[0][0].created_at if rows else None,
    }
    return await render(request, "story.html", context)


async def update_page(request: Request) -> Response:
    liveblog = get_liveblog(request)
    story = await _visible_story(request)
    async with liveblog.db.session() as session:
        update = await store.get_update(session, story, request.path_params["update_id"])
        author = None if update is None else await store.get_user(session, update.author_id)
    if update is None or author is None:
        raise HTTPException(404, "No such update.")
    html = liveblog.renderer.update_fragment(update, story, author)
    return await render(request, "update.html", {"story": story, "update": update, "html": html})


async def story_feed(request: Request) -> Response:
    liveblog = get_liveblog(request)
    story = await _visible_story(request)
    async with liveblog.db.session() as session:
        rows = await store.updates_page(session, story, limit=50)
    base = liveblog.settings.base_url or str(request.base_url)
    xml = feed.atom(story, rows, base_url=base, renderer=liveblog.renderer)
    return Response(xml, media_type="application/atom+xml; charset=utf-8")


routes = [
    Route("/", home),
    Route("/stories/{slug}", story_page),
    Route("/stories/{slug}/feed.atom", story_feed),
    Route("/stories/{slug}/updates/{update_id:int}", update_page),
]
