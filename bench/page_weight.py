"""Page weight of the demo story page: HTML, CSS, JS (with the modules it imports) and
images, raw and gzipped, as a first visit downloads them.

    python bench/page_weight.py
"""

from __future__ import annotations

import asyncio
import gzip
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import httpx
from pydantic import SecretStr

from liveblog.app import create_app
from liveblog.demo import DEMO_SLUG, seed_demo
from liveblog.settings import Settings

IMPORT_RE = re.compile(r"""^import\s.*?from\s+["'](?P<path>[^"']+)["']""", re.M)


class Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.css: list[str] = []
        self.js: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "link" and found.get("rel") == "stylesheet" and found.get("href"):
            self.css.append(str(found["href"]))
        elif tag == "script" and found.get("src"):
            self.js.append(str(found["src"]))
        elif tag == "img" and found.get("src"):
            self.images.append(str(found["src"]))


def sizes(body: bytes) -> tuple[int, int]:
    return len(body), len(gzip.compress(body, compresslevel=6))


async def measure() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), secret_key=SecretStr("bench" * 8))
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            await seed_demo(app.state.liveblog)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                page = await client.get(f"/stories/{DEMO_SLUG}")
                assets = Assets()
                assets.feed(page.text)
                rows = [("HTML", f"/stories/{DEMO_SLUG}", *sizes(page.content))]
                for href in assets.css:
                    rows.append(("CSS", href, *sizes((await client.get(href)).content)))
                seen: set[str] = set()
                queue = list(assets.js)
                while queue:
                    src = queue.pop(0)
                    if src in seen:
                        continue
                    seen.add(src)
                    body = (await client.get(src)).content
                    rows.append(("JS", src, *sizes(body)))
                    imports = IMPORT_RE.finditer(body.decode())
                    queue += [urljoin(src, match["path"]) for match in imports]
                for src in assets.images:  # lazy: only those scrolled to are fetched
                    rows.append(("image", src, *sizes((await client.get(src)).content)))
    width = max(len(path) for _, path, _, _ in rows)
    print(f"{'kind':<6} {'path':<{width}} {'bytes':>8} {'gzip':>8}")
    for kind, path, raw, packed in rows:
        print(f"{kind:<6} {path:<{width}} {raw:>8} {packed:>8}")
    for kind in ("HTML", "CSS", "JS", "image"):
        raw = sum(row[2] for row in rows if row[0] == kind)
        packed = sum(row[3] for row in rows if row[0] == kind)
        print(f"total {kind:<{width + 1}} {raw:>8} {packed:>8}")


if __name__ == "__main__":
    asyncio.run(measure())
