"""The provider's markup for the click-through frame, rebuilt from an allow-list.

It is shown only inside ``/embed-frame/{key}``: a sandboxed document with an opaque
origin (it can reach neither our cookies nor our pages) under a CSP that names the
origins the markup loads from. Even so, it is rebuilt here, element by element: an
``<iframe>`` and a ``<script src>`` are what oEmbed providers need (a player, or a
quote plus the provider's script that turns it into a post); inline script, event
handlers, ``<style>``, forms, ``<object>`` and ``javascript:`` addresses never are.
What the frame loads from (iframe and script addresses) is collected for its CSP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

from markupsafe import escape

# Elements kept (their text and children too), and the attributes each may carry.
_COMMON = {"class", "lang", "dir", "title", "cite"}
_ELEMENTS: dict[str, set[str]] = {
    "iframe": {"src", "width", "height", "allow", "allowfullscreen", "frameborder", "scrolling",
               "loading", "referrerpolicy", "name"},
    "script": {"src", "async", "defer", "charset"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "blockquote": set(), "p": set(), "div": set(), "span": set(), "br": set(), "em": set(),
    "strong": set(), "b": set(), "i": set(), "time": {"datetime"}, "figure": set(),
    "figcaption": set(), "section": set(), "small": set(), "ul": set(), "li": set(),
}  # fmt: skip
_VOID = {"br", "img"}
# Their content is never text for a reader: dropped with the element.
_SKIP_CONTENT = {"script", "style", "template", "noscript", "textarea", "title", "object"}
_URL_ATTRIBUTES = {"src", "href", "cite"}
MAX_DEPTH = 40


def _http_url(value: str) -> str | None:
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.username:
        return None
    return value


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass
class FrameMarkup:
    html: str
    origins: list[str] = field(default_factory=list)  # iframe and script sources, in order

    @property
    def loads_anything(self) -> bool:
        return bool(self.origins)


class _Rebuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.skipping: list[str] = []  # inside an element whose content is dropped
        self.origins: list[str] = []

    def _attributes(self, tag: str, attrs: list[tuple[str, str | None]]) -> str:
        allowed = _ELEMENTS[tag] | _COMMON
        kept = []
        for name, value in attrs:
            name = name.lower()
            is_data = name.startswith("data-") and name[5:].replace("-", "").isalnum()
            if name not in allowed and not is_data:
                continue
            value = value or ""
            if name in _URL_ATTRIBUTES:
                url = _http_url(value)
                if url is None:
                    continue
                value = url
                if tag in ("iframe", "script") and name == "src":
                    source = origin(url)
                    if source not in self.origins:
                        self.origins.append(source)
            kept.append(f' {name}="{escape(value)}"' if value else f" {name}")
        return "".join(kept)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping:
            if tag in _SKIP_CONTENT or tag == self.skipping[-1]:
                self.skipping.append(tag)
            return
        if tag == "iframe" and " src=" not in self._attributes(tag, attrs):
            self.skipping.append(tag)  # nothing to show: dropped, with its fallback text
            return
        if tag == "script":
            # Only a script the provider hosts, loaded by address; its content is dropped.
            attributes = self._attributes(tag, attrs)
            if " src=" in attributes:
                self.out.append(f"<script{attributes}></script>")
            self.skipping.append(tag)
            return
        if tag in _SKIP_CONTENT:
            self.skipping.append(tag)
            return
        if tag not in _ELEMENTS or len(self.open) >= MAX_DEPTH:
            return
        self.out.append(f"<{tag}{self._attributes(tag, attrs)}>")
        if tag not in _VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
            return
        if tag in self.open:
            while self.open:  # close whatever was left open inside it
                closing = self.open.pop()
                self.out.append(f"</{closing}>")
                if closing == tag:
                    break

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(str(escape(data)))

    def result(self) -> FrameMarkup:
        self.close()
        while self.open:
            self.out.append(f"</{self.open.pop()}>")
        return FrameMarkup("".join(self.out), self.origins)


def rebuild(html: str) -> FrameMarkup:
    rebuilder = _Rebuilder()
    rebuilder.feed(html)
    return rebuilder.result()
