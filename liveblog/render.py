"""Markdown to sanitized HTML, and the Jinja environment every page shares.

Update bodies are Markdown with raw HTML switched off in the parser; whatever the parser
produces still goes through nh3's allow-list, so a parser quirk can never become markup
a reader's browser executes.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nh3
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore

from liveblog.media import srcset

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h3", "h4", "hr", "i",
    "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}


def _package_or_repo_dir(name: str) -> Path:
    """``templates``/``static`` sit at the repository top; a built wheel carries them inside."""
    package = Path(__file__).resolve().parent
    bundled = package / f"_{name}"
    return bundled if bundled.is_dir() else package.parent / name


TEMPLATES_DIR = _package_or_repo_dir("templates")
STATIC_DIR = _package_or_repo_dir("static")


# A quote's last line "— Name" is its attribution: styled apart in a pull quote.
ATTRIBUTION_CLASS = "quote-attribution"
_ATTRIBUTION_DASHES = ("\u2014", "\u2013", "\u2015", "--")  # em, en, bar, two hyphens


def _mark_quote_attributions(state: StateCore) -> None:
    depth = 0
    tokens = state.tokens
    for token, following in itertools.pairwise(tokens):
        if token.type == "blockquote_open":
            depth += 1
        elif token.type == "blockquote_close":
            depth -= 1
        elif (
            depth
            and token.type == "paragraph_open"
            and following.type == "inline"
            and following.content.startswith(_ATTRIBUTION_DASHES)
        ):
            token.attrSet("class", ATTRIBUTION_CLASS)


# A lead's Markdown images (``![alt](https://...)``): https, or this site's own uploads.
IMAGE_PREFIXES = ("https://", "/media/")


def image_allowed(src: str) -> bool:
    return src.startswith(IMAGE_PREFIXES) and not src.startswith("/media//")


def _lead_images(state: StateCore) -> None:
    """An image whose address is not allowed becomes its alt text; an allowed one loads
    lazily and keeps only its address and alt text (no title)."""
    for block in state.tokens:
        for token in block.children or ():
            if token.type != "image":
                continue
            src = str(token.attrGet("src") or "")
            if image_allowed(src):
                token.attrs = {"src": src, "alt": "", "loading": "lazy"}
            else:
                alt = "".join(child.content for child in token.children or () if not child.children)
                token.type, token.tag, token.attrs, token.children = "text", "", {}, None
                token.content = alt


def _image_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not image_allowed(value):
        return None
    return value


class MarkdownRenderer:
    """``sections``: ``##`` headings are kept (a story's lead has sections; an update,
    itself headed by an ``h2``, does not). ``images``: Markdown images are kept (the
    lead's; an update's image is its own field)."""

    def __init__(self, *, sections: bool = False, images: bool = False) -> None:
        self._tags = ALLOWED_TAGS | {"h2"} if sections else ALLOWED_TAGS
        self._images = images
        if images:
            self._tags = self._tags | {"img"}
        self._md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": True})
        self._md.enable(["table", "strikethrough", "replacements", "smartquotes"])
        self._md.core.ruler.push("quote_attribution", _mark_quote_attributions)
        if images:
            self._md.core.ruler.push("lead_images", _lead_images)

    def __call__(self, source: str) -> str:
        return sanitize(self._md.render(source), tags=self._tags, images=self._images)


def sanitize(html: str, *, tags: set[str] = ALLOWED_TAGS, images: bool = False) -> str:
    attributes = ALLOWED_ATTRIBUTES | {"img": {"src", "alt"}} if images else ALLOWED_ATTRIBUTES
    return nh3.clean(
        html,
        tags=tags,
        attributes=attributes,
        url_schemes=URL_SCHEMES,
        tag_attribute_values={"p": {"class": {ATTRIBUTION_CLASS}}, "img": {"loading": {"lazy"}}},
        attribute_filter=_image_filter if images else None,
        link_rel="nofollow noopener",
        strip_comments=True,
    )


def _isoformat(moment: datetime | None) -> str:
    # HTML's <time datetime> allows at most three digits of a second's fraction.
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _clock(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%H:%M UTC")


def _long_date(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC")


def make_templates(globals_: dict[str, Any] | None = None) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["isoformat"] = _isoformat
    env.filters["clock"] = _clock
    env.filters["long_date"] = _long_date
    env.filters["srcset"] = srcset
    env.globals.update(globals_ or {})
    return env


class Renderer:
    """Turns stored updates into the HTML fragment every surface shows.

    The same ``_update.html`` template renders an update on the story page, in the
    permalink page, in stream payloads (and so in the desk and in embeds) and in feeds.
    """

    def __init__(self, templates: Environment) -> None:
        self.templates = templates
        self.markdown = MarkdownRenderer()

    def update_fragment(self, update: Any, story: Any, author: Any, *, anchor: bool = True) -> str:
        template = self.templates.get_template("_update.html")
        return template.render(update=update, story=story, author=author, anchor=anchor)
