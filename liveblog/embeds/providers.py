"""Which provider a pasted link belongs to, and how to ask it about the link.

The registry is a list in the format of oembed.com's ``providers.json`` (the one list
oEmbed consumers share): each provider has URL ``schemes`` with ``*`` wildcards and an
oEmbed endpoint ``url``. liveblog ships the providers newsrooms embed most
(``providers.json`` beside this file) and reads more from ``LIVEBLOG_OEMBED_PROVIDERS``,
a file in the same format (the whole oembed.com list works as it is). Ours go first.

A few liveblog keys ride along in an entry's ``"liveblog"`` object: ``key`` (the short
name readers' "always load" choice is stored under), ``ratio`` (a player's shape), and
``frame``, for providers whose oEmbed needs an account (Instagram, Facebook, Threads):
their click-through markup is built from the link itself (``frame_for``).

A link no provider claims is still asked: its page may name an oEmbed endpoint itself
(oEmbed discovery, how every Mastodon instance is found) or carry Open Graph tags.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from markupsafe import escape

BUILT_IN = Path(__file__).with_name("providers.json")
_KEY_CHARS = re.compile(r"[^a-z0-9]+")


class RegistryError(ValueError):
    """A providers file that cannot be read; the message names the file and the fault."""


@dataclass(frozen=True)
class Provider:
    key: str
    name: str
    schemes: tuple[re.Pattern[str], ...]
    endpoint: str | None  # oEmbed; None: only Open Graph and a built frame
    frame: str | None = None  # a builder in FRAMES
    ratio: str | None = None

    def claims(self, url: str) -> bool:
        return any(scheme.fullmatch(url) for scheme in self.schemes)


def provider_key(name: str) -> str:
    """A short key from a provider's name or host ("YouTube" -> "youtube")."""
    return _KEY_CHARS.sub("-", name.lower()).strip("-")[:60] or "link"


def _scheme_pattern(scheme: str) -> re.Pattern[str]:
    """An oembed.com scheme (``*`` matches anything) as a regex; ``http`` also
    matches ``https``, as consumers of that list treat it."""
    body = ".*".join(re.escape(part) for part in scheme.split("*"))
    if body.startswith("http://"):
        body = "https?://" + body[len("http://") :]
    return re.compile(body, re.IGNORECASE)


def _provider(entry: Any, source: str) -> list[Provider]:
    if not isinstance(entry, dict) or not isinstance(entry.get("provider_name"), str):
        raise RegistryError(f"{source}: every provider needs a provider_name")
    name: str = entry["provider_name"]
    extra: dict[str, Any] = entry["liveblog"] if isinstance(entry.get("liveblog"), dict) else {}
    key = extra["key"] if isinstance(extra.get("key"), str) else provider_key(name)
    frame = extra["frame"] if isinstance(extra.get("frame"), str) else None
    frame = frame if frame in FRAMES else None
    ratio = extra["ratio"] if isinstance(extra.get("ratio"), str) else None
    found = []
    for endpoint in entry.get("endpoints") or []:
        if not isinstance(endpoint, dict):
            raise RegistryError(f"{source}: {name}: an endpoint must be an object")
        schemes = [s for s in endpoint.get("schemes") or [] if isinstance(s, str)]
        url = endpoint.get("url")
        if not schemes or not (url is None or isinstance(url, str)):
            continue  # discovery-only entries: discovery finds them anyway
        if url is not None:
            # Some entries write the format into the address: we always ask for JSON.
            url = url.replace("{format}", "json")
            if urlsplit(url).scheme not in ("http", "https"):
                raise RegistryError(f"{source}: {name}: endpoint {url!r} is not http(s)")
        found.append(
            Provider(
                key=key,
                name=name,
                schemes=tuple(_scheme_pattern(s) for s in schemes),
                endpoint=url,
                frame=frame,
                ratio=ratio,
            )
        )
    return found


def load(path: Path) -> list[Provider]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{path}: {exc}") from None
    if not isinstance(entries, list):
        raise RegistryError(f"{path}: expected a list of providers")
    return [provider for entry in entries for provider in _provider(entry, str(path))]


class Registry:
    def __init__(self, extra: Path | None = None) -> None:
        self.providers = load(BUILT_IN) + (load(extra) if extra is not None else [])

    def find(self, url: str) -> Provider | None:
        return next((p for p in self.providers if p.claims(url)), None)


# --- click-through markup built from the link (no oEmbed without an account) ----------

_INSTAGRAM = re.compile(r"https://(?:www\.)?(?:instagram\.com|instagr\.am)/(p|reel|tv)/([\w-]+)")


def _instagram(url: str) -> str | None:
    match = _INSTAGRAM.match(url)
    if match is None:
        return None
    src = f"https://www.instagram.com/{match[1]}/{match[2]}/embed/"
    return f'<iframe src="{src}" width="540" height="680" allowfullscreen></iframe>'


def _facebook(url: str) -> str | None:
    plugin = "video" if ("/videos/" in url or "/watch" in url or "fb.watch" in url) else "post"
    src = f"https://www.facebook.com/plugins/{plugin}.php?href={quote(url, safe='')}"
    return f'<iframe src="{src}" width="500" height="680" allowfullscreen></iframe>'


def _threads(url: str) -> str:
    link = escape(url)
    return (
        f'<blockquote class="text-post-media" data-text-post-permalink="{link}">'
        f'<a href="{link}">View on Threads</a></blockquote>'
        '<script async src="https://www.threads.net/embed.js"></script>'
    )


FRAMES = {"instagram": _instagram, "facebook": _facebook, "threads": _threads}


def frame_for(provider: Provider, url: str) -> str | None:
    """The click-through markup a provider with a ``frame`` builder gets for ``url``."""
    build = FRAMES.get(provider.frame or "")
    return None if build is None else build(url)
