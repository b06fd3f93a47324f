"""What a web page says about itself: Open Graph, Twitter card, ``<title>``, and the
oEmbed endpoint it names (discovery). Read with the standard library's tolerant parser;
only the page's head matters, so reading stops at ``<body>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

OEMBED_JSON = "application/json+oembed"


@dataclass
class PageMeta:
    title: str | None = None
    site_name: str | None = None
    author: str | None = None
    image: str | None = None
    oembed: str | None = None  # the discovered oEmbed (JSON) endpoint, absolute
    _properties: dict[str, str] = field(default_factory=dict)


class _HeadReader(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.meta = PageMeta()
        self.in_title = False
        self.title_parts: list[str] = []
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        values = {name: value or "" for name, value in attrs}
        if tag == "body":
            self.done = True
        elif tag == "title":
            self.in_title = True
            # Its content is text up to </title> (RCDATA, as browsers read it): a "<body>"
            # inside a hostile title must not end the head early.
            self.set_cdata_mode(tag)
        elif tag == "meta":
            name = (values.get("property") or values.get("name") or "").strip().lower()
            content = values.get("content", "").strip()
            if name and content:
                self.meta._properties.setdefault(name, content)
        elif tag == "link":
            rel = values.get("rel", "").lower().split()
            kind = values.get("type", "").lower()
            if "alternate" in rel and kind == OEMBED_JSON and values.get("href"):
                self.meta.oembed = self.meta.oembed or urljoin(self.base, values["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag == "head":
            self.done = True

    def handle_data(self, data: str) -> None:
        if self.in_title and not self.done:
            self.title_parts.append(data)


def read(html: str, base: str) -> PageMeta:
    reader = _HeadReader(base)
    reader.feed(html)
    meta = reader.meta
    props = meta._properties
    title = " ".join("".join(reader.title_parts).split())
    meta.title = props.get("og:title") or props.get("twitter:title") or title or None
    meta.site_name = props.get("og:site_name") or props.get("application-name")
    meta.author = props.get("author") or props.get("article:author") or props.get("twitter:creator")
    image = props.get("og:image") or props.get("og:image:url") or props.get("twitter:image")
    meta.image = urljoin(base, image) if image else None
    return meta
