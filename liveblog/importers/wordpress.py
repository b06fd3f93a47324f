"""A WordPress liveblog (the Automattic "Liveblog" plugin) from WordPress's own export.

What the plugin stores, as its source shows it (classes/class-wpcom-liveblog-entry.php):
a liveblog is a post with the post meta ``liveblog`` (``enable``: live, ``archive``:
ended), and each entry a comment of ``comment_type`` ``liveblog`` on it. Editing an
entry adds a new comment with the new text and the comment meta ``liveblog_replaces``
(the entry's id), and overwrites the entry's own text with it; deleting one adds an
empty comment that replaces it and sends the entry to the trash. A key event is the
comment meta ``liveblog_key_entry`` = ``true``. WordPress's export (Tools > Export, a
WXR file) writes every comment of a post except spam, with its meta, so all of this is
in it.

The result is the same document ``liveblog export`` writes: entry ids become update ids,
the entries' times the updates' and the events' times, and the event log is rebuilt in
the order of those times with the payloads this liveblog sends. Limits (also in
docs/integrations.md): the first version of an edited entry is not in the export
(WordPress overwrote it): the earliest kept version stands in for it; entries' HTML is
turned into Markdown (paragraphs, line breaks, bold, italics, links, lists, quotes; the
first image becomes the update's image, other embedded media become links); comment
authors without an account become users named after them; no media files are copied
(images stay links to the WordPress site).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, ClassVar

from liveblog import articles, store
from liveblog.auth import USERNAME_RE
from liveblog.events import dump_payload
from liveblog.models import (
    MAX_SUMMARY,
    MAX_TITLE,
    SLUG_RE,
    EventKind,
    Role,
    Story,
    StoryStatus,
    Update,
    UpdateState,
    User,
    iso,
    story_public,
    utcnow,
)
from liveblog.render import Renderer
from liveblog.transfer import FORMAT, VERSION

REPLACES = "liveblog_replaces"
KEY_ENTRY = "liveblog_key_entry"
STATE_META = "liveblog"
_WP_NS = "http://wordpress.org/export/"
_CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
_EXCERPT_NS = "http://wordpress.org/export/1.2/excerpt/"
_DC_NS = "http://purl.org/dc/elements/1.1/"


class WxrError(ValueError):
    """The file is not a WordPress export we can read, or has no liveblog to import."""


def looks_like_wxr(raw: bytes) -> bool:
    head = raw[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<") and b"wordpress.org/export/" in raw[:65536]


# --- reading the XML -------------------------------------------------------------------


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def _child(element: ET.Element, namespace: str, name: str) -> ET.Element | None:
    for child in element:
        ns, local = _local(child.tag)
        if local == name and (ns.startswith(namespace) if namespace else ns == ""):
            return child
    return None


def _children(element: ET.Element, namespace: str, name: str) -> list[ET.Element]:
    found = []
    for child in element:
        ns, local = _local(child.tag)
        if local == name and (ns.startswith(namespace) if namespace else ns == ""):
            found.append(child)
    return found


def _text(element: ET.Element, namespace: str, name: str) -> str:
    child = _child(element, namespace, name)
    return "" if child is None or child.text is None else child.text


def _wp(element: ET.Element, name: str) -> str:
    return _text(element, _WP_NS, name).strip()


def _meta(element: ET.Element, tag: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for meta in _children(element, _WP_NS, tag):
        found.setdefault(_wp(meta, "meta_key"), []).append(_text(meta, _WP_NS, "meta_value"))
    return found


def _gmt(value: str, what: str) -> datetime:
    try:
        moment = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise WxrError(f"{what}: {value!r} is not a WordPress date") from None
    return moment.replace(tzinfo=UTC)


# --- HTML to Markdown --------------------------------------------------------------------


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>])")
_LINE_START = re.compile(r"^(\s*)([#>+-]|\d+\.)(?=\s)", re.MULTILINE)


def _escape(text: str) -> str:
    return _LINE_START.sub(r"\1\\\2", _MD_SPECIAL.sub(r"\\\1", text))


@dataclass
class _Image:
    src: str
    alt: str | None


class _ToMarkdown(HTMLParser):
    """Entry HTML (as kses left it) as the Markdown an update is written in."""

    BLOCKS: ClassVar[frozenset[str]] = frozenset(
        {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "figure", "ul", "ol", "table"}
    )
    DROPPED: ClassVar[frozenset[str]] = frozenset(
        {"script", "style", "iframe", "object", "embed", "video", "audio", "noscript"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.links: list[str | None] = []
        self.lists: list[str] = []
        self.quote = 0
        self.skip = 0
        self.images: list[_Image] = []
        self.bold_heading = False

    def _break(self) -> None:
        self.out.append("\n\n" + "> " * self.quote)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if self.skip or tag in self.DROPPED or "liveblog-command" in (found.get("class") or ""):
            self.skip += 1
            return
        if tag in self.BLOCKS:
            self._break()
            if tag.startswith("h") and tag[1:].isdigit():
                self.out.append("**")
        elif tag == "blockquote":
            self.quote += 1
            self._break()
        elif tag == "br":
            self.out.append("\\\n" + "> " * self.quote)
        elif tag in ("strong", "b"):
            self.out.append("**")
        elif tag in ("em", "i"):
            self.out.append("*")
        elif tag == "li":
            ordered = bool(self.lists) and self.lists[-1] == "ol"
            self.out.append("\n" + "> " * self.quote + ("1. " if ordered else "- "))
        elif tag == "a":
            href = found.get("href") or ""
            self.links.append(href if re.match(r"(?i)(https?:|mailto:)", href) else None)
            if self.links[-1]:
                self.out.append("[")
        elif tag == "img":
            src = found.get("src") or ""
            if re.match(r"(?i)https?://", src):
                self.images.append(_Image(src, found.get("alt") or None))
                if len(self.images) > 1:
                    self.out.append(f"[{_escape(found.get('alt') or 'Image')}]({src})")
        if tag in ("ul", "ol"):
            self.lists.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            self.skip -= 1
            return
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        if tag in self.BLOCKS:
            if tag.startswith("h") and tag[1:].isdigit():
                self.out.append("**")
            self._break()
        elif tag == "blockquote":
            self.quote = max(0, self.quote - 1)
            self._break()
        elif tag in ("strong", "b"):
            self.out.append("**")
        elif tag in ("em", "i"):
            self.out.append("*")
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href:
                self.out.append(f"]({href})")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        # WordPress keeps entries without <p>: a blank line is a paragraph, a line
        # break a break (wpautop adds the tags when it shows them).
        paragraphs = re.split(r"\n\s*\n", data)
        for number, paragraph in enumerate(paragraphs):
            if number:
                self._break()
            lines = paragraph.split("\n")
            for index, line in enumerate(lines):
                if index and line.strip() and "".join(self.out).rstrip(" >"):
                    self.out.append("\\\n" + "> " * self.quote)
                self.out.append(_escape(line))

    def markdown(self) -> str:
        text = "".join(self.out)
        text = re.sub(r"\\\n(\s*\n)", r"\n\1", text)  # no break before a paragraph
        text = re.sub(r"\n(?:[ \t>]*\n)+", "\n\n", text)
        text = re.sub(r"\*\*(\s*)\*\*", r"\1", text)
        return text.strip().removesuffix("\\").strip()


def html_to_markdown(html: str) -> tuple[str, list[_Image]]:
    parser = _ToMarkdown()
    parser.feed(html)
    parser.close()
    return parser.markdown(), parser.images


def _plain(html: str) -> str:
    text, _images = html_to_markdown(html)
    return re.sub(r"[\\*_\[\]]", "", text)


_SHORTCODE = re.compile(r"\[/?[a-zA-Z_-]+[^\]]*\]")


# --- the document --------------------------------------------------------------------


@dataclass
class _Comment:
    id: int
    author: str
    user_id: int
    date: datetime
    content: str
    approved: str
    meta: dict[str, list[str]]

    @property
    def replaces(self) -> int | None:
        values = self.meta.get(REPLACES)
        if not values:
            return None
        try:
            return int(values[0])
        except ValueError:
            return None

    @property
    def key(self) -> bool:
        return "true" in self.meta.get(KEY_ENTRY, [])


@dataclass
class _People:
    """WordPress authors (logins) and comment authors, as this liveblog's usernames."""

    by_login: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_wp_id: dict[int, str] = field(default_factory=dict)
    used: dict[str, dict[str, Any]] = field(default_factory=dict)

    def username(self, base: str) -> str:
        name = re.sub(r"[^a-z0-9_.-]+", "-", base.strip().lower()).strip("-._")[:40] or "author"
        if not re.fullmatch(USERNAME_RE, name):
            name = ("wp-" + name)[:40]
        return name

    def add_login(self, wp_id: int, login: str, display: str) -> None:
        username = self.username(login)
        self.by_login[login] = {"username": username, "display_name": display or login}
        if wp_id:
            self.by_wp_id[wp_id] = login

    def of_login(self, login: str) -> str:
        entry = self.by_login.get(login) or {
            "username": self.username(login),
            "display_name": login,
        }
        self.used[entry["username"]] = entry
        return str(entry["username"])

    def of_comment(self, comment: _Comment) -> str:
        login = self.by_wp_id.get(comment.user_id)
        if login is not None:
            return self.of_login(login)
        username = self.username(comment.author or "author")
        self.used.setdefault(
            username, {"username": username, "display_name": comment.author or username}
        )
        return username


def _items(raw: bytes) -> tuple[ET.Element, list[ET.Element]]:
    if b"<!ENTITY" in raw[:65536] or b"<!DOCTYPE" in raw[:65536]:
        raise WxrError("the file declares a DOCTYPE or entities, which a WXR export never does")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise WxrError(f"not a readable WXR (XML) file: {exc}") from None
    channel = root.find("channel")
    if _local(root.tag)[1] != "rss" or channel is None:
        raise WxrError("not a WordPress export: no <rss><channel>")
    return channel, _children(channel, "", "item")


def liveblog_posts(raw: bytes) -> list[tuple[str, str, str]]:
    """``(post id, slug, title)`` of each liveblog post in the export."""
    _channel, items = _items(raw)
    found = []
    for item in items:
        if _meta(item, "postmeta").get(STATE_META):
            found.append((_wp(item, "post_id"), _wp(item, "post_name"), _text(item, "", "title")))
    return found


def to_document(raw: bytes, renderer: Renderer, *, post: str | None = None) -> dict[str, Any]:
    """The story document of the liveblog post in the WXR export ``raw`` (``post``: its
    id or slug, needed when the export has several)."""
    channel, items = _items(raw)
    candidates = [item for item in items if _meta(item, "postmeta").get(STATE_META)]
    if post is not None:
        candidates = [i for i in candidates if post in (_wp(i, "post_id"), _wp(i, "post_name"))]
    if not candidates:
        raise WxrError(
            "no liveblog post in this export"
            + ("" if post is None else f" with id or slug {post!r}")
            + " (a post with the 'liveblog' meta)"
        )
    if len(candidates) > 1:
        listed = ", ".join(f"{_wp(i, 'post_id')} ({_wp(i, 'post_name')})" for i in candidates)
        raise WxrError(f"the export has several liveblogs: choose one with --post ({listed})")
    item = candidates[0]
    people = _People()
    for author in _children(channel, _WP_NS, "author"):
        people.add_login(
            int(_wp(author, "author_id") or 0),
            _wp(author, "author_login"),
            _text(author, _WP_NS, "author_display_name").strip(),
        )
    return _Builder(item, people, renderer).document()


class _Builder:
    def __init__(self, item: ET.Element, people: _People, renderer: Renderer) -> None:
        self.item = item
        self.people = people
        self.renderer = renderer

    def story(self) -> Story:
        item = self.item
        created = _gmt(_wp(item, "post_date_gmt"), "the post's date")
        state = _meta(item, "postmeta")[STATE_META][-1].strip()
        title = " ".join(_text(item, "", "title").split())[:MAX_TITLE] or "Untitled liveblog"
        slug = _wp(item, "post_name")
        if not SLUG_RE.fullmatch(slug):
            slug = store.slugify(title)
        summary = " ".join(_plain(_text(item, _EXCERPT_NS, "encoded")).split())[:MAX_SUMMARY]
        return Story(
            slug=slug,
            title=title,
            summary=summary,
            status=StoryStatus.ended if state == "archive" else StoryStatus.live,
            breaking=False,
            last_seq=0,
            created_at=created,
            updated_at=created,
            started_at=created,
            ended_at=None,
            starts_at=None,
        )

    def comments(self) -> list[_Comment]:
        found = []
        for comment in _children(self.item, _WP_NS, "comment"):
            if _wp(comment, "comment_type") != "liveblog":
                continue  # readers' comments on the post: not the liveblog
            ident = int(_wp(comment, "comment_id"))
            found.append(
                _Comment(
                    id=ident,
                    author=_text(comment, _WP_NS, "comment_author").strip(),
                    user_id=int(_wp(comment, "comment_user_id") or 0),
                    date=_gmt(_wp(comment, "comment_date_gmt"), f"entry {ident}"),
                    content=_text(comment, _WP_NS, "comment_content"),
                    approved=_wp(comment, "comment_approved"),
                    meta=_meta(comment, "commentmeta"),
                )
            )
        return sorted(found, key=lambda c: (c.date, c.id))

    def document(self) -> dict[str, Any]:
        story = self.story()
        comments = self.comments()
        creator = self.people.of_login(_text(self.item, _DC_NS, "creator").strip() or "author")
        replacing: dict[int, list[_Comment]] = {}
        for comment in comments:
            if comment.replaces is not None:
                replacing.setdefault(comment.replaces, []).append(comment)
        originals = [c for c in comments if c.replaces is None]
        # (time, comment id, order) -> the event's kind, data builder, update id, closes
        pending: list[tuple[tuple[datetime, int, int], EventKind, Any, int | None]] = []
        updates: list[dict[str, Any]] = []
        for entry in originals:
            updates.append(self._entry(entry, replacing.get(entry.id, []), story, pending))
        pending.sort(key=lambda event: event[0])
        events = []
        seqs: dict[int, int] = {}
        for seq, (order, kind, payload, update_id) in enumerate(pending, start=1):
            if kind == EventKind.update and update_id is not None:
                seqs[update_id] = seq
            events.append((seq, order[0], kind, payload, update_id))
        moments = [story.created_at] + [event[1] for event in events]
        if story.status == StoryStatus.ended:
            ended = max(moments)
            modified = _wp(self.item, "post_modified_gmt")
            if modified and modified != "0000-00-00 00:00:00":
                ended = max(ended, _gmt(modified, "the post's modified date"))
            story.ended_at = ended
            events.append((len(events) + 1, ended, EventKind.story, {"change": ["status"]}, None))
            moments.append(ended)
        story.last_seq = len(events)
        story.updated_at = max(moments)
        for update in updates:
            update["published_seq"] = seqs.get(update["id"])
        event_docs = []
        for seq, when, kind, payload, update_id in events:
            if kind == EventKind.story:
                shown = story.model_copy(update={"last_seq": seq})
                payload = {**payload, "story": story_public(shown)}
            data = dump_payload({"kind": kind.value, **payload, "at": iso(when)})
            event_docs.append(
                {
                    "seq": seq,
                    "kind": kind.value,
                    "update_id": update_id,
                    "actor": creator
                    if kind == EventKind.story
                    else self._actor(update_id, updates),
                    "data": data,
                    "closes": kind == EventKind.story,
                    "created_at": iso(when),
                }
            )
        lead, _images = html_to_markdown(
            _SHORTCODE.sub("", _text(self.item, _CONTENT_NS, "encoded"))
        )
        categories: list[dict[str, Any]] = []
        tags: list[str] = []
        for position, element in enumerate(_children(self.item, "", "category"), start=1):
            name = " ".join((element.text or "").split())
            if element.get("domain") == "category" and name:
                slug = element.get("nicename") or store.slugify(name)
                if SLUG_RE.fullmatch(slug) and slug not in [c["slug"] for c in categories]:
                    categories.append({"slug": slug, "name": name[:60], "position": position})
            elif element.get("domain") == "post_tag" and name and name not in tags:
                tags.append(name[:50])
        users = [
            {
                **entry,
                "role": Role.contributor.value,
                "active": False,
                "bio": "",
                "photo_url": None,
                "created_at": iso(story.created_at),
            }
            for entry in sorted(self.people.used.values(), key=lambda e: e["username"])
        ]
        return {
            "format": FORMAT,
            "version": VERSION,
            "exported_at": iso(utcnow()),
            "story": {
                **story.model_dump(
                    include={
                        "slug",
                        "title",
                        "summary",
                        "status",
                        "breaking",
                        "last_seq",
                        "page_views",
                        "peak_readers",
                    }
                ),
                "id": None,
                "created_at": iso(story.created_at),
                "updated_at": iso(story.updated_at),
                "started_at": iso(story.started_at),
                "ended_at": iso(story.ended_at),
                "starts_at": None,
                "created_by": creator,
            },
            "article": {
                "lead": lead,
                "lead_html": articles.render_lead(lead) if lead else "",
                "authors": [{"username": creator, "name": None}],
                "categories": categories[:10],
                "tags": tags[:20],
            },
            "users": users,
            "team": [],
            "updates": updates,
            "events": event_docs,
            "audit": [],
            "link_embeds": [],
            "media": {},
        }

    def _actor(self, update_id: int | None, updates: list[dict[str, Any]]) -> str | None:
        for update in updates:
            if update["id"] == update_id:
                return str(update["author"])
        return None

    def _entry(
        self,
        entry: _Comment,
        replacements: list[_Comment],
        story: Story,
        pending: list[tuple[tuple[datetime, int, int], EventKind, Any, int | None]],
    ) -> dict[str, Any]:
        username = self.people.of_comment(entry)
        author = User(
            username=username,
            display_name=self.people.used[username]["display_name"],
            password_hash="",
        )
        deletions = [c for c in replacements if not c.content.strip()]
        edits = [c for c in replacements if c.content.strip()]
        deleted = deletions[0] if deletions or entry.approved == "trash" else None
        if deleted is None and entry.approved == "trash":
            deleted = entry
        # Versions as readers saw them: the first edit's text stands in for the
        # original, which WordPress overwrote.
        texts = [c.content for c in edits] or [entry.content]
        versions = [self._content(text) for text in texts]
        key_event = entry.key or any(c.key for c in replacements)
        update = Update(
            id=entry.id,
            story_id=0,
            author_id=0,
            state=UpdateState.published,
            key_event=key_event,
            pinned=False,
            created_at=entry.date,
            **versions[0],
        )
        pending.append(
            (
                (entry.date, entry.id, 0),
                EventKind.update,
                store._update_payload(self.renderer, update, story, author),
                entry.id,
            )
        )
        revisions = []
        for number, edit in enumerate(edits):
            before = update.model_copy()
            revisions.append(
                {
                    "editor": username,
                    "headline": None,
                    "body": before.body,
                    "key_event": before.key_event,
                    **{name: getattr(before, name) for name in _IMAGE_TEXT},
                    "created_at": iso(before.edited_at or before.created_at),
                }
            )
            for name, value in versions[number].items():
                setattr(update, name, value)
            update.edited_at = edit.date
            update.version += 1
            pending.append(
                (
                    (edit.date, edit.id, 1),
                    EventKind.edit,
                    store._update_payload(self.renderer, update, story, author),
                    entry.id,
                )
            )
        deleted_at = None
        if deleted is not None:
            deleted_at = (
                deleted.date
                if deleted is not entry
                else max([entry.date, *(c.date for c in edits)])
            )
            update.version += 1
            pending.append(
                ((deleted_at, deleted.id, 2), EventKind.delete, {"id": entry.id}, entry.id)
            )
        return {
            "id": entry.id,
            "author": username,
            "state": UpdateState.published.value,
            "version": update.version,
            "headline": None,
            "body": update.body,
            "body_html": update.body_html,
            "embeds": None,
            "key_event": key_event,
            "pinned": False,
            **{name: getattr(update, name) for name in _IMAGE_FIELDS},
            "created_at": iso(entry.date),
            "edited_at": iso(update.edited_at),
            "deleted_at": iso(deleted_at),
            "published_seq": None,  # filled in once the log is in order
            "publish_at": None,
            "return_note": None,
            "revisions": revisions,
        }

    def _content(self, html: str) -> dict[str, Any]:
        body, images = html_to_markdown(html)
        image = images[0] if images else None
        body = body or (image.alt or "Image" if image else "(empty)")
        body_html, _embeds = self.renderer.update_body(body)
        return {
            "body": body,
            "body_html": body_html,
            "image_url": None if image is None else image.src,
            "image_alt": None if image is None else (image.alt or None),
            "image_caption": None,
            "image_credit": None,
            "image_width": None,
            "image_height": None,
        }


_IMAGE_TEXT = ("image_url", "image_alt", "image_caption", "image_credit")
_IMAGE_FIELDS = (*_IMAGE_TEXT, "image_width", "image_height")
