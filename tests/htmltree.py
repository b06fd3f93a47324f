"""A small HTML tree for the page tests: the standard library's HTMLParser builds it, and
checks find elements by tag and data attribute rather than by exact markup.

Also how the tests read the reader's page: fetching one, and the ids of the updates in its
timeline and its pinned slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)

    def iter(self) -> Iterator[Node]:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str | bool) -> list[Node]:
        """Descendants by tag and attributes (``True``: present, a str: that value)."""
        wanted = {name.rstrip("_").replace("_", "-"): want for name, want in attrs.items()}
        return [
            node
            for node in self.iter()
            if (tag is None or node.tag == tag)
            and all(node.has(name, want) for name, want in wanted.items())
        ]

    def has(self, name: str, want: str | bool) -> bool:
        if want is True:
            return name in self.attrs
        if name == "class":
            return want in (self.attrs.get("class") or "").split()
        return self.attrs.get(name) == want

    def find(self, tag: str | None = None, **attrs: str | bool) -> Node:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"expected one {tag} {attrs}, found {len(found)}"
        return found[0]

    def text(self) -> str:
        return " ".join(
            " ".join(child.split()) if isinstance(child, str) else child.text()
            for child in self.children
        ).strip()


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


async def page(client: httpx.AsyncClient, url: str) -> Node:
    """GET an HTML page that must be there (200), parsed."""
    response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return parse(response.text)


def update_id(node: Node) -> int:
    return int(str(node.attrs["data-update-id"]))


def timeline_ids(doc: Node) -> list[int]:
    """The updates in a story page's timeline, in page order."""
    timeline = doc.find("div", data_timeline=True)
    return [update_id(node) for node in timeline.find_all("article", data_update_id=True)]


def pinned_ids(doc: Node) -> list[int]:
    """The updates in a story page's pinned slot."""
    section = doc.find("section", data_pinned=True)
    return [update_id(node) for node in section.find_all("article", data_update_id=True)]
