"""docs/embedding.md stays true to static/widget.js: its size, its styling hooks."""

from __future__ import annotations

import re
from pathlib import Path

from bench.widget_size import sizes

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "embedding.md").read_text()
WIDGET = (ROOT / "static" / "widget.js").read_text()


def section(title: str) -> str:
    start = DOC.index(title)
    end = DOC.find("\n#", start + len(title))
    return DOC[start:end]


def test_documented_sizes_are_the_current_ones() -> None:
    raw, packed = sizes("widget.js")
    assert f"`widget.js` is {raw} bytes raw, {packed} bytes gzipped" in DOC, (
        f"update docs/embedding.md: widget.js is {raw} bytes raw, {packed} gzipped"
    )
    resizer, _ = sizes("embed-resizer.js")
    assert f"`embed-resizer.js` ({resizer} bytes)" in DOC


def test_every_custom_property_is_documented_and_exists() -> None:
    in_code = set(re.findall(r"var\((--liveblog-[a-z-]+)", WIDGET))
    documented = set(re.findall(r"^\| `(--liveblog-[a-z-]+)`", DOC, re.M))
    assert in_code == documented


def test_every_documented_part_exists() -> None:
    table = section("**`::part()` names**")
    documented = set(re.findall(r"`([a-z-]+)`", table.split("```")[0])) - {"::part()"}
    assert documented >= {"container", "update", "key-event", "body", "footer"}
    # Parts are set as strings in widget.js: el(tag, class, "part"), the parts map and
    # "update key-event".
    in_code = {word for text in re.findall(r'"([a-z -]+)"', WIDGET) for word in text.split()}
    assert documented <= in_code, documented - in_code
