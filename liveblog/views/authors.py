"""Author pages: ``/authors/{username}``: the author's bio and photo, the stories with
them in the byline, and their recent updates across stories."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liveblog import articles, policy, seo, store
from liveblog.models import StoryStatus
from liveblog.state import get_liveblog
from liveblog.views.common import render

RECENT = 30


async def author_page(request: Request) -> Response:
    liveblog = get_liveblog(request)
    # Drafts stay hidden from readers here as everywhere else.
    statuses = [StoryStatus.live, StoryStatus.ended]
    if await policy.sees_drafts(request):
        statuses.append(StoryStatus.draft)
    async with liveblog.db.session() as session:
        author = await store.get_user_by_username(session, request.path_params["username"])
        rows = (
            []
            if author is None
            else await store.updates_by_author(session, author, statuses=statuses, limit=RECENT)
        )
        stories = (
            []
            if author is None
            else await articles.stories_by_author(session, author, statuses=statuses)
        )
    if author is None:
        raise HTTPException(404, "No such author.")
    fragment = liveblog.renderer.update_fragment
    entries = [(story, fragment(update, story, author, anchor=False)) for update, story in rows]
    site = seo.site(request, liveblog.settings.base_url)
    meta = seo.PageMeta(
        canonical=site.page("author_page", username=author.username),
        title=f"Updates by {author.display_name}",
        description=author.bio or f"The latest live updates by {author.display_name}.",
        image=site.of(author.photo_url) if author.photo_url else None,
    )
    context = {"author": author, "entries": entries, "stories": stories, "meta": meta}
    return await render(request, "author.html", context)


routes = [Route("/authors/{username}", author_page, name="author_page")]
