"""Links to embeds: asked of the provider once, kept in ``link_embed``, shared by every
update (and every editor) that pastes the same address.

An editor's save waits for this, readers never do: the update's event carries the
finished card. So every step is bounded. One link gets ``timeout`` seconds in all
(page or oEmbed, discovery, thumbnail), each request goes through the one SSRF-safe
``Fetcher``, and whatever fails leaves a plain link card with the reason kept for the
desk (``problem``) instead of failing the save.

Fifty editors pasting the same link make one fetch: a fresh row is reused (for
``fresh_for``; a failed fetch is retried only after ``retry_after``), and fetches of the
same address in one process wait for the first one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import anyio
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from liveblog.db import Database
from liveblog.embeds import frame_markup, page_meta
from liveblog.embeds.providers import Provider, Registry, frame_for, provider_key
from liveblog.fetcher import Fetcher, FetchError
from liveblog.media import DecodersBusy, ImageRejected, MediaStore, StoredImage
from liveblog.models import MAX_CAPTION, MAX_URL, LinkEmbed, utcnow

log = logging.getLogger(__name__)

KINDS = ("video", "rich", "photo", "link")
PAGE_BYTES = 2_000_000  # a bigger page is a link card (its head cannot be read alone)
OEMBED_BYTES = 256_000
MAX_FRAME_HTML = 20_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_ACCEPT_HTML = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"}
_ACCEPT_JSON = {"Accept": "application/json"}


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def embeddable(url: str) -> bool:
    """A link we try to embed: an absolute http(s) address without credentials."""
    parts = urlsplit(url)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.username is None
        and len(url) <= MAX_URL
    )


def clean_text(value: Any, limit: int = MAX_CAPTION) -> str | None:
    """A provider's text as one plain line: no controls or bidi overrides, bounded."""
    if not isinstance(value, str):
        return None
    text = " ".join(_CONTROL.sub(" ", value).split())
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value) and 0 < value < 100_000:
        return float(value)
    return None


def _fallback_title(url: str) -> str:
    parts = urlsplit(url)
    return clean_text(f"{parts.hostname or ''}{parts.path}".rstrip("/")) or url[:MAX_CAPTION]


@dataclass
class _Found:
    """What the provider said, before it is stored."""

    kind: str = "link"
    title: str | None = None
    author: str | None = None
    provider_name: str | None = None
    thumbnail: str | None = None  # the provider's address
    stored_thumbnail: StoredImage | None = None  # ours
    frame_html: str | None = None
    ratio: str | None = None
    problem: str | None = None


class Embeds:
    def __init__(
        self,
        db: Database,
        fetcher: Fetcher,
        media: MediaStore,
        registry: Registry,
        *,
        timeout: float = 5.0,
        fresh_for: timedelta = timedelta(days=1),
        retry_after: timedelta = timedelta(minutes=5),
    ) -> None:
        self.db = db
        self.fetcher = fetcher
        self.media = media
        self.registry = registry
        self.timeout = timeout
        self.fresh_for = fresh_for
        self.retry_after = retry_after
        self._fetching: dict[str, anyio.Event] = {}

    async def by_key(self, key: str) -> LinkEmbed | None:
        async with self.db.session() as session:
            query = select(LinkEmbed).where(LinkEmbed.key == key)
            return (await session.exec(query)).first()

    async def _stored(self, url: str) -> LinkEmbed | None:
        async with self.db.session() as session:
            query = select(LinkEmbed).where(LinkEmbed.url_hash == url_hash(url))
            return (await session.exec(query)).first()

    def _fresh(self, embed: LinkEmbed) -> bool:
        age = utcnow() - embed.fetched_at
        return age < (self.retry_after if embed.problem else self.fresh_for)

    async def resolve_all(
        self, urls: Iterable[str], *, refresh: bool = False
    ) -> dict[str, LinkEmbed]:
        """Each address's embed, fetched side by side (a slow provider holds up the save
        by at most ``timeout``, not once per link)."""
        wanted = list(dict.fromkeys(url for url in urls if embeddable(url)))
        found: dict[str, LinkEmbed] = {}

        async def one(url: str) -> None:
            found[url] = await self.resolve(url, refresh=refresh)

        async with anyio.create_task_group() as group:
            for url in wanted:
                group.start_soon(one, url)
        return found

    async def resolve(self, url: str, *, refresh: bool = False) -> LinkEmbed:
        while True:
            stored = await self._stored(url)
            if stored is not None and not refresh and self._fresh(stored):
                return stored
            waiting = self._fetching.get(url)
            if waiting is None:
                break
            await waiting.wait()  # another save here is fetching it: take its result
            refresh = False
        done = self._fetching[url] = anyio.Event()
        try:
            if not refresh:
                # A fetch here may have finished between our read and our claim.
                stored = await self._stored(url)
                if stored is not None and self._fresh(stored):
                    return stored
            found = await self._ask(url)
            return await self._store(url, found, stored)
        finally:
            del self._fetching[url]
            done.set()

    # --- asking the provider ---------------------------------------------------------

    async def _ask(self, url: str) -> _Found:
        provider = self.registry.find(url)
        found = _Found()
        deadline = anyio.current_time() + self.timeout
        with anyio.move_on_after(self.timeout) as scope:
            try:
                await self._describe(url, provider, found, deadline)
            except FetchError as exc:
                found.problem = str(exc)
            except Exception:
                # A provider's answer we did not foresee must not lose the editor's post.
                log.exception("embed %s: the provider's answer could not be read", url)
                found.problem = "the provider's answer could not be read"
        if scope.cancelled_caught:
            found.problem = f"the provider did not answer within {self.timeout:g} s"
        if found.problem is not None and provider is None:
            found.kind, found.frame_html = "link", None
        if provider is not None:
            found.provider_name = provider.name
            built = frame_for(provider, url)
            if built is not None:
                found.frame_html, found.kind = built, "rich" if found.kind == "link" else found.kind
            found.ratio = found.ratio or provider.ratio
        if found.problem is not None:
            log.info("embed %s: %s", url, found.problem)
        return found

    async def _describe(
        self, url: str, provider: Provider | None, found: _Found, deadline: float
    ) -> None:
        def left() -> float:
            return max(0.1, deadline - anyio.current_time())

        oembed: dict[str, Any] | None = None
        if provider is not None and provider.endpoint is not None:
            oembed = await self._oembed(provider.endpoint, url, left())
        else:
            page = await self.fetcher.get(
                url, headers=_ACCEPT_HTML, max_bytes=PAGE_BYTES, timeout=left()
            )
            if page.content_type in ("text/html", "application/xhtml+xml"):
                meta = page_meta.read(page.text(), page.url)
                found.title, found.author = meta.title, meta.author
                found.provider_name, found.thumbnail = meta.site_name, meta.image
                if meta.oembed is not None and provider is None:
                    # oEmbed discovery (Mastodon and most publishing platforms).
                    oembed = await self._oembed_at(meta.oembed, left())
            elif page.content_type.startswith("image/"):
                found.kind, found.thumbnail = "photo", page.url
        if oembed is not None:
            self._take_oembed(oembed, found)
        if found.thumbnail is not None:
            found.stored_thumbnail = await self._rehost(found.thumbnail, left())

    async def _oembed(self, endpoint: str, url: str, seconds: float) -> dict[str, Any]:
        separator = "&" if "?" in endpoint else "?"
        query = urlencode({"url": url, "format": "json", "maxwidth": 960})
        return await self._oembed_at(f"{endpoint}{separator}{query}", seconds)

    async def _oembed_at(self, address: str, seconds: float) -> dict[str, Any]:
        answer = await self.fetcher.get(
            address, headers=_ACCEPT_JSON, max_bytes=OEMBED_BYTES, timeout=seconds
        )
        if answer.status != 200:
            raise FetchError(f"the provider answered {answer.status} for this link")
        try:
            data = json.loads(answer.body)
        except ValueError:
            raise FetchError("the provider's answer is not JSON") from None
        if not isinstance(data, dict):
            raise FetchError("the provider's answer is not an oEmbed object")
        return data

    def _take_oembed(self, data: dict[str, Any], found: _Found) -> None:
        kind = data.get("type")
        found.kind = kind if kind in KINDS else "link"
        found.title = clean_text(data.get("title")) or found.title
        found.author = clean_text(data.get("author_name")) or found.author
        found.provider_name = clean_text(data.get("provider_name")) or found.provider_name
        thumbnail = data.get("thumbnail_url")
        if found.kind == "photo" and isinstance(data.get("url"), str):
            thumbnail = data["url"]
        if isinstance(thumbnail, str) and embeddable(thumbnail):
            found.thumbnail = thumbnail
        html = data.get("html")
        if found.kind in ("video", "rich") and isinstance(html, str) and html.strip():
            found.frame_html = html[: MAX_FRAME_HTML * 2]
        width, height = _number(data.get("width")), _number(data.get("height"))
        if found.kind == "video" and width and height:
            found.ratio = f"{round(width)}/{round(height)}"

    async def _rehost(self, address: str, seconds: float) -> StoredImage | None:
        """The thumbnail, re-encoded and resized into our media store: readers load it
        from us, so the provider learns nothing before the click."""
        try:
            image = await self.fetcher.get(address, max_bytes=self.media.max_bytes, timeout=seconds)
            if image.status != 200:
                return None
            return await self.media.save(image.body)
        except (FetchError, ImageRejected, DecodersBusy) as exc:
            log.info("embed thumbnail %s: %s", address, exc)
            return None

    # --- keeping it ------------------------------------------------------------------

    async def _store(self, url: str, found: _Found, stored: LinkEmbed | None) -> LinkEmbed:
        frame_html, origins = None, None
        if found.frame_html is not None:
            rebuilt = frame_markup.rebuild(found.frame_html)
            if rebuilt.loads_anything and len(rebuilt.html) <= MAX_FRAME_HTML:
                frame_html, origins = rebuilt.html, " ".join(rebuilt.origins)[:MAX_URL]
        image = found.stored_thumbnail
        host = urlsplit(url).hostname or "link"
        provider_name = clean_text(found.provider_name) or host
        fields: dict[str, Any] = {
            "kind": found.kind if frame_html or found.kind in ("photo", "link") else "link",
            "provider": provider_key(self._provider_key(url, provider_name)),
            "provider_name": provider_name,
            "title": clean_text(found.title) or _fallback_title(url),
            "author_name": clean_text(found.author)
            if found.author and not found.author.startswith(("http:", "https:"))
            else None,
            "thumbnail_url": image and image.url,
            "thumbnail_width": image and image.width,
            "thumbnail_height": image and image.height,
            "frame_html": frame_html,
            "frame_origins": origins,
            "ratio": found.ratio if frame_html else None,
            "problem": clean_text(found.problem),
            "fetched_at": utcnow(),
        }
        for attempt in range(2):
            try:
                async with self.db.transaction() as session:
                    query = select(LinkEmbed).where(col(LinkEmbed.url_hash) == url_hash(url))
                    row = (await session.exec(query)).first()
                    if row is None:
                        row = LinkEmbed(
                            url=url, url_hash=url_hash(url), key=secrets.token_urlsafe(12), **fields
                        )
                    else:
                        for name, value in fields.items():
                            setattr(row, name, value)
                    session.add(row)
                    await session.flush()
                    await session.refresh(row)
                    session.expunge(row)
                    return row
            except IntegrityError:
                if attempt:  # another process stored it first: theirs is as good
                    raise
        raise AssertionError("unreachable")

    def _provider_key(self, url: str, provider_name: str) -> str:
        provider = self.registry.find(url)
        return provider.key if provider is not None else provider_name
