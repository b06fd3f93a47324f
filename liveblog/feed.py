"""Atom (RFC 4287) feed of a story's newest updates, built with ElementTree (which escapes)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from liveblog.models import Story, Update, User, iso
from liveblog.plaintext import plain_text
from liveblog.urls import Absolute

ATOM = "http://www.w3.org/2005/Atom"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    """An Atom element under ``parent``."""
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    if text is not None:
        # Input validation refuses these characters; rows stored before it did (or
        # written around it) must still not make the whole feed unreadable.
        element.text = xml_text(text)
    return element


def atom(story: Story, rows: list[tuple[Update, User]], *, site: Absolute) -> bytes:
    ET.register_namespace("", ATOM)
    story_url = site.page("story_page", slug=story.slug)
    root = ET.Element(f"{{{ATOM}}}feed")
    sub(root, "id", story_url)
    sub(root, "title", story.title)
    if story.summary:
        sub(root, "subtitle", story.summary)
    updated = max(
        [update.edited_at or update.created_at for update, _ in rows] or [story.updated_at]
    )
    sub(root, "updated", iso(updated))
    sub(root, "link", rel="alternate", type="text/html", href=story_url)
    feed_url = site.page("story_feed", slug=story.slug)
    sub(root, "link", rel="self", type="application/atom+xml", href=feed_url)
    sub(root, "generator", "liveblog")
    for update, author in rows:
        url = site.page("update_page", slug=story.slug, update_id=update.id)
        entry = sub(root, "entry")
        sub(entry, "id", url)
        # The words readers see, not the Markdown source (``[link](...)``, raw tags).
        sub(entry, "title", update.headline or first_words(plain_text(update.body_html)))
        sub(entry, "published", iso(update.created_at))
        sub(entry, "updated", iso(update.edited_at or update.created_at))
        sub(sub(entry, "author"), "name", author.display_name)
        sub(entry, "link", rel="alternate", type="text/html", href=url)
        if update.key_event:
            sub(entry, "category", term="key-event", label="Key event")
        sub(entry, "content", update.body_html, type="html")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def stories_atom(
    stories: list[Story],
    *,
    title: str,
    self_url: str,
    alternate_url: str,
    site: Absolute,
    authors: dict[int, list[str]],
) -> bytes:
    """Atom feed of stories (a category's): an entry per story, newest event first."""
    ET.register_namespace("", ATOM)
    root = ET.Element(f"{{{ATOM}}}feed")
    sub(root, "id", self_url)
    sub(root, "title", title)
    newest = max((story.updated_at for story in stories), default=None)
    sub(root, "updated", iso(newest) or "1970-01-01T00:00:00+00:00")
    sub(root, "link", rel="alternate", type="text/html", href=alternate_url)
    sub(root, "link", rel="self", type="application/atom+xml", href=self_url)
    sub(root, "generator", "liveblog")
    if not any(authors.get(story.id or 0) for story in stories):
        sub(sub(root, "author"), "name", "liveblog")
    for story in stories:
        url = site.page("story_page", slug=story.slug)
        entry = sub(root, "entry")
        sub(entry, "id", url)
        sub(entry, "title", story.title)
        sub(entry, "published", iso(story.started_at or story.created_at))
        sub(entry, "updated", iso(story.updated_at))
        for name in authors.get(story.id or 0, []):
            sub(sub(entry, "author"), "name", name)
        sub(entry, "link", rel="alternate", type="text/html", href=url)
        if story.summary:
            sub(entry, "summary", story.summary)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry at all."""
    return _NOT_XML.sub("\ufffd", text)


def first_words(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rsplit(" ", 1)[0] + "…"
