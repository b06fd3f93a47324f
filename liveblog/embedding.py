"""Addresses and paste-ready snippets for embedding a story on other sites.

One place builds them, so the desk's copy boxes, the oEmbed answer and the story page's
discovery link always agree. Every address is absolute: a snippet is pasted on another
site, where a relative link would point at that site.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from markupsafe import escape
from starlette.requests import Request

from liveblog import urls
from liveblog.models import Story
from liveblog.state import get_liveblog

DEFAULT_LIMIT = 10
DEFAULT_FRAME_WIDTH = 600
DEFAULT_FRAME_HEIGHT = 800


def site_url(request: Request) -> str:
    """The site's public address without a trailing slash (``LIVEBLOG_BASE_URL`` wins)."""
    configured = get_liveblog(request).settings.base_url
    return (configured or str(request.base_url)).rstrip("/")


def site_address(request: Request, name: str, /, **params: Any) -> str:
    """The absolute address of the route ``name`` under ``site_url``."""
    return site_url(request) + urls.path(request, name, **params)


def story_url(request: Request, slug: str) -> str:
    return site_address(request, "story_page", slug=slug)


def embed_url(request: Request, slug: str) -> str:
    return site_address(request, "embed_page", slug=slug)


def oembed_discovery_url(request: Request, story: Story) -> str:
    query = urlencode({"url": story_url(request, story.slug), "format": "json"})
    return f"{site_address(request, 'oembed')}?{query}"


def widget_snippet(request: Request, story: Story, *, limit: int = DEFAULT_LIMIT) -> str:
    site = site_url(request)
    script = site_address(request, "static", path="widget.js")
    # The link inside the element is what shows where the script cannot run.
    return (
        f'<script src="{escape(script)}" async></script>\n'
        f'<live-blog story="{escape(story.slug)}" src="{escape(site)}" limit="{limit}">'
        f'<a href="{escape(story_url(request, story.slug))}">{escape(story.title)}</a>'
        "</live-blog>"
    )


def iframe_snippet(
    request: Request,
    story: Story,
    *,
    width: int | None = None,
    height: int = DEFAULT_FRAME_HEIGHT,
    resizer: bool = True,
) -> str:
    # A fixed width is only given when asked for (oEmbed's maxwidth); otherwise the frame
    # takes the width of its column.
    width_attr = f'width="{width}"' if width is not None else 'width="100%"'
    frame = (
        f'<iframe src="{escape(embed_url(request, story.slug))}" {width_attr} height="{height}"'
        f' title="{escape(story.title)} (live updates)" loading="lazy"'
        ' style="border:0;max-width:100%" data-liveblog-embed></iframe>'
    )
    if not resizer:
        return frame
    resizer_script = site_address(request, "static", path="embed-resizer.js")
    return frame + f'\n<script src="{escape(resizer_script)}" async></script>'


def template_globals() -> dict[str, Callable[..., Any]]:
    """What templates may call: the story page's discovery link, the desk's snippets."""
    return {
        "oembed_discovery_url": oembed_discovery_url,
        "widget_snippet": widget_snippet,
        "iframe_snippet": iframe_snippet,
        "story_url": story_url,
    }
