"""``python -m bench.widget_size``: what a partner page downloads to embed a story.

Prints each embed asset's size raw and gzipped (level 9, as a server or CDN would send
it), in the form docs/embedding.md states it; tests/test_embedding_docs.py checks that
the documented figures are the current ones.
"""

from __future__ import annotations

import gzip
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "static"
ASSETS = ("widget.js", "embed-resizer.js", "js/embed-frame.js")


def sizes(name: str) -> tuple[int, int]:
    data = (STATIC / name).read_bytes()
    return len(data), len(gzip.compress(data, compresslevel=9, mtime=0))


def main() -> None:
    for name in ASSETS:
        raw, packed = sizes(name)
        print(f"{name}: {raw} bytes raw, {packed} bytes gzipped")


if __name__ == "__main__":
    main()
