"""Markdown to sanitized HTML, and the Jinja environment every page shares.

Update bodies are Markdown with raw HTML switched off in the parser; whatever the parser
produces still goes through nh3's allow-list, so a parser quirk can never become markup
a reader's browser executes.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import secrets
from collections.abc import Callable, Mapping
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


# A paragraph whose first line is a link and nothing else (``<...>`` allowed) becomes
# an embed; the lines under it, in the same paragraph, are its caption (docs/embeds.md).
_LINK_LINE = re.compile(r"<?(https?://[^\s<>]+)>?")


def _link_paragraphs(tokens: list[Any]) -> Any:
    """(index of paragraph_open, link, caption) for each top-level link paragraph."""
    for index in range(len(tokens) - 2):
        opening, inline = tokens[index], tokens[index + 1]
        if opening.type != "paragraph_open" or opening.level != 0 or inline.type != "inline":
            continue
        first, _, rest = inline.content.partition("\n")
        match = _LINK_LINE.fullmatch(first.strip())
        if match is not None:
            yield index, match[1], " ".join(rest.split()) or None


def _mark_embeds(state: StateCore) -> None:
    """Swap the text of each link paragraph whose link has an embed (``env["embeds"]``)
    for a marker no editor can type (a nonce per render); ``sanitize`` leaves it alone,
    and the card replaces it after (``MarkdownRenderer.with_cards``)."""
    wanted = state.env.get("embeds")
    if not wanted:
        return
    marks = state.env["embed_marks"]
    for index, link, caption in list(_link_paragraphs(state.tokens)):
        if link not in wanted:
            continue
        marker = f"embed{state.env['nonce']}n{len(marks)}"
        marks[marker] = (link, caption)
        inline = state.tokens[index + 1]
        text = inline.children[0] if inline.children else None
        if text is None:
            continue
        text.type, text.content, text.children = "text", marker, None
        inline.children = [text]


@functools.cache
def _block_parser() -> MarkdownIt:
    return MarkdownIt("commonmark")


def embed_links(source: str) -> list[str]:
    """The links an update's Markdown would embed, in order (see ``_LINK_LINE``)."""
    if "http" not in source:
        return []  # most updates: no parse on the publish path
    tokens = _block_parser().parse(source)
    return [link for _, link, _ in _link_paragraphs(tokens)]


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
        self._md.core.ruler.push("embeds", _mark_embeds)

    def __call__(self, source: str) -> str:
        return sanitize(self._md.render(source), tags=self._tags, images=self._images)

    def with_cards(
        self, source: str, card: Callable[[str, str | None], str | None], links: set[str]
    ) -> str:
        """``source`` rendered, each paragraph of a link in ``links`` replaced by
        ``card(link, caption)``: markup made by our own template, so it is put in after
        the sanitizer, never through it."""
        env: dict[str, Any] = {"embeds": links, "embed_marks": {}, "nonce": secrets.token_hex(8)}
        html = sanitize(self._md.render(source, env), tags=self._tags, images=self._images)
        for marker, (link, caption) in env["embed_marks"].items():
            made = card(link, caption)
            if made is not None:
                html = html.replace(f"<p>{marker}</p>", made, 1)
        return html


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

    def __init__(self, templates: Environment, embeds: Mapping[str, Any] | None = None) -> None:
        self.templates = templates
        self.markdown = MarkdownRenderer()
        # The link embeds an update body's links resolved to (``with_embeds``).
        self.embeds: Mapping[str, Any] = embeds or {}

    def with_embeds(self, embeds: Mapping[str, Any]) -> Renderer:
        """This renderer, turning the given links (address -> ``LinkEmbed``) into cards."""
        bound = Renderer.__new__(Renderer)
        bound.templates, bound.markdown, bound.embeds = self.templates, self.markdown, embeds
        return bound

    def update_body(self, source: str) -> tuple[str, str | None]:
        """An update's body as HTML, with its link embeds as cards, and those embeds as
        JSON (``Update.embeds``; None when there are none)."""
        if not self.embeds:
            return self.markdown(source), None
        shown: list[dict[str, Any]] = []
        template = self.templates.get_template("_embed_card.html")

        def card(link: str, caption: str | None) -> str | None:
            embed = self.embeds.get(link)
            if embed is None:
                return None
            shown.append(card_data(embed, caption))
            return template.render(embed=embed, caption=caption).strip()

        html = self.markdown.with_cards(source, card, set(self.embeds))
        return html, (json.dumps(shown) if shown else None)

    def update_fragment(self, update: Any, story: Any, author: Any, *, anchor: bool = True) -> str:
        template = self.templates.get_template("_update.html")
        return template.render(update=update, story=story, author=author, anchor=anchor)


def card_data(embed: Any, caption: str | None) -> dict[str, Any]:
    """One link embed as the API and the JSON-LD give it: the card, never the
    provider's markup (``frame`` is our own address for the click-through)."""
    return {
        "url": embed.url,
        "kind": embed.kind,
        "provider": embed.provider,
        "provider_name": embed.provider_name,
        "title": embed.title,
        "author_name": embed.author_name,
        "thumbnail_url": embed.thumbnail_url,
        "thumbnail_width": embed.thumbnail_width,
        "thumbnail_height": embed.thumbnail_height,
        "caption": caption,
        "frame": f"/embed-frame/{embed.key}" if embed.frame_html else None,
    }
