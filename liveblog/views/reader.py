"""What readers see: the front page, a story page, an update's permalink, the Atom feed."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liveblog import articles, caching, feed, seo, store
from liveblog.models import Story, StoryStatus, iso
from liveblog.plaintext import plain_text
from liveblog.state import get_liveblog
from liveblog.store import Order
from liveblog.views.common import choice_param, current_user, int_param, render, story_or_404


async def _visible_story(request: Request) -> Story:
    """The story named in the path; drafts only for logged-in editors."""
    return await story_or_404(request, drafts="logged_in")


async def home(request: Request) -> Response:
    # A newsroom front: live stories first, then each category's, then the rest.
    async with get_liveblog(request).db.session() as session:
        front = await articles.front_page(session)
    context = {"live": front.live, "sections": front.sections, "ended": front.others}
    return await render(request, "home.html", context)


ORDER_COOKIE = "liveblog_order"
ORDER_COOKIE_DAYS = 365
LATEST_STORIES = 5
# Above this many updates the lead starts folded (a <details> the reader opens).
LEAD_FOLD = 20
ORDERS: tuple[Order, ...] = ("newest", "oldest")


def _chosen_order(request: Request) -> Order | None:
    """The order the reader chose with this request (?order=), if any."""
    return choice_param(request, "order", ORDERS)


def _remembered_order(request: Request) -> Order:
    # Kept per browser in a cookie, so the choice works without JavaScript too.
    return "oldest" if request.cookies.get(ORDER_COOKIE) == "oldest" else "newest"


async def story_page(request: Request) -> Response:
    liveblog = get_liveblog(request)
    story = await _visible_story(request)
    assert story.id is not None
    before = int_param(request, "before")
    after = int_param(request, "after")
    chosen = _chosen_order(request)
    order = chosen or _remembered_order(request)
    # A cursor decides the order: links to older/newer pages stay what they were.
    if before is not None:
        order = "newest"
    elif after is not None:
        order = "oldest"
    limit = liveblog.settings.page_size
    listed = [StoryStatus.live, StoryStatus.ended]  # the "latest stories" the page lists
    async with liveblog.db.session() as session:
        versions = await store.story_versions(session, statuses=listed, limit=LATEST_STORIES + 1)
    # Before anything else is read or rendered: can the reader's copy be used again?
    anonymous = await current_user(request) is None
    tag = caching.etag(
        "story-page",
        story.id,
        story.last_seq,
        order,
        before,
        after,
        limit,
        seo.base_url(request, liveblog.settings.base_url),
        *(f"{story_id}.{seq}" for story_id, seq in versions),
    )
    # Shared caches may keep it only if it is everybody's page and sets no cookie.
    cache_control = (
        caching.LOGGED_IN if not anonymous else caching.PRIVATE if chosen else caching.PUBLIC
    )
    if anonymous and chosen is None and caching.is_fresh(request.headers, tag):
        liveblog.stats.count_view(story.id)
        return caching.not_modified(tag, cache_control, vary="Cookie")
    async with liveblog.db.session() as session:
        # The page's sequence number is read before its content: an event that lands
        # in between is then both on the page and replayed by the stream, which the
        # script handles, rather than on neither.
        rendered_seq = story.last_seq
        rows = await store.updates_page(
            session, story, before=before, after=after, limit=limit + 1, order=order
        )
        first_page = before is None and after is None
        pinned = await store.pinned_update(session, story) if first_page else None
        key_events = await store.key_events(session, story)
        last_updated = await store.last_updated(session, story)
        latest = await store.list_stories(session, statuses=listed, limit=LATEST_STORIES + 1)
        byline = (await articles.bylines(session, [story.id])).get(story.id, [])
        sections = (await articles.categories_of(session, [story.id])).get(story.id, [])
        tags = (await articles.tags_of(session, [story.id])).get(story.id, [])
        update_count = await store.count_updates(session, story) if story.lead_html else 0
        # The structured data lists the newest updates, whichever page this is.
        newest = (
            rows[:limit]
            if order == "newest" and first_page
            else await store.updates_page(session, story, limit=limit)
        )
    more = len(rows) > limit
    rows = rows[:limit]
    renderer = liveblog.renderer
    updates = [renderer.update_fragment(update, story, author) for update, author in rows]
    pinned_html = (
        renderer.update_fragment(pinned[0], story, pinned[1], anchor=False) if pinned else None
    )
    cursor = rows[-1][0].id if more and rows else None
    # Live when this page is where new updates go: the top of the newest page, or the
    # bottom of the last oldest-first page.
    at_the_edge = first_page if order == "newest" else cursor is None
    site = seo.site(request, liveblog.settings.base_url)
    canonical = site.page("story_page", slug=story.slug)
    if before is not None:
        canonical += f"?before={before}"
    elif after is not None:
        canonical += f"?after={after}"
    started = story.started_at or story.created_at
    context = {
        "story": story,
        "updates": updates,
        "pinned_html": pinned_html,
        "key_events": [(update, seo.update_headline(update)) for update in key_events],
        "rendered_seq": rendered_seq,
        "before": before,
        "after": after,
        "first_page": first_page,
        "order": order,
        "live": at_the_edge and story.status != StoryStatus.ended,
        "older_cursor": cursor if order == "newest" else None,
        "newer_cursor": cursor if order == "oldest" else None,
        "last_updated": last_updated,
        "latest_stories": [other for other in latest if other.id != story.id][:LATEST_STORIES],
        "byline": byline,
        "sections": sections,
        "lead_open": update_count <= LEAD_FOLD,
        # Announced: live, waiting for its first update (docs/reader.md, "Pre-live").
        "announced": story.status == StoryStatus.live and story.started_at is None,
        "json_ld": seo.json_ld(
            seo.live_blog_posting(
                story,
                newest,
                site=site,
                article=seo.Article(
                    authors=[(line.name, line.username) for line in byline],
                    sections=[category.name for category in sections],
                    tags=tags,
                    publisher=liveblog.settings.site_name,
                    logo=site.page("static", path="icon-512.png"),
                ),
            )
        ),
        "meta": seo.PageMeta(
            canonical=canonical,
            title=story.title,
            description=story.summary or story.title,
            image=seo.first_image(newest, site),
            published=iso(started),
            modified=iso(last_updated or story.updated_at),
            section=sections[0].name if sections else None,
            tags=(*(category.name for category in sections), *tags),
        ),
    }
    liveblog.stats.count_view(story.id)
    response = await render(request, "story.html", context)
    response.headers["Vary"] = "Cookie"
    response.headers["Cache-Control"] = cache_control
    if anonymous:
        response.headers["ETag"] = tag
    if chosen is not None:
        response.set_cookie(
            ORDER_COOKIE,
            chosen,
            max_age=ORDER_COOKIE_DAYS * 86400,
            httponly=True,
            samesite="lax",
            secure=liveblog.settings.https,
            path="/",
        )
    return response


CONTEXT_UPDATES = 2  # how many neighbours on each side a permalink page shows


async def update_page(request: Request) -> Response:
    liveblog = get_liveblog(request)
    story = await _visible_story(request)
    async with liveblog.db.session() as session:
        update = await store.get_update(session, story, request.path_params["update_id"])
        author = None if update is None else await store.get_user(session, update.author_id)
        if update is not None:
            older = await store.updates_page(
                session, story, before=update.id, limit=CONTEXT_UPDATES
            )
            newer = await store.updates_page(
                session, story, after=update.id, limit=CONTEXT_UPDATES, order="oldest"
            )
    if update is None or author is None:
        raise HTTPException(404, "No such update.")
    html = liveblog.renderer.update_fragment(update, story, author)
    site = seo.site(request, liveblog.settings.base_url)
    context = {
        "story": story,
        "update": update,
        "html": html,
        # Newest first, as on the story page.
        "newer": [row[0] for row in reversed(newer)],
        "older": [row[0] for row in older],
        "json_ld": seo.json_ld(
            {
                "@context": "https://schema.org",
                **seo.blog_posting(update, author, story=story, site=site),
                "isPartOf": {"@id": site.page("story_page", slug=story.slug)},
            }
        ),
        "meta": seo.PageMeta(
            canonical=site.page("update_page", slug=story.slug, update_id=update.id),
            title=seo.update_headline(update),
            description=feed.first_words(plain_text(update.body_html), 200),
            image=site.of(update.image_url) if update.image_url else None,
            published=iso(update.created_at),
            modified=iso(update.edited_at or update.created_at),
        ),
    }
    return await render(request, "update.html", context)


async def story_feed(request: Request) -> Response:
    liveblog = get_liveblog(request)
    story = await _visible_story(request)
    async with liveblog.db.session() as session:
        rows = await store.updates_page(session, story, limit=50)
    xml = feed.atom(story, rows, site=seo.site(request, liveblog.settings.base_url))
    return Response(xml, media_type="application/atom+xml; charset=utf-8")


routes = [
    Route("/", home, name="home"),
    Route("/stories/{slug}", story_page, name="story_page"),
    Route("/stories/{slug}/feed.atom", story_feed, name="story_feed"),
    Route("/stories/{slug}/updates/{update_id:int}", update_page, name="update_page"),
]
