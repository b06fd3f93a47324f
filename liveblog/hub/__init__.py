"""Broadcast hub: the core fans out; backends (chosen by URL) only move messages."""

from __future__ import annotations

from liveblog.hub.backend import BroadcastBackend
from liveblog.hub.core import BroadcastDown, Hub, HubStats, LoadFrames, LoadLastSeq, Subscription

# URL scheme -> (module, the install extra that brings its client library)
SCHEMES = {
    "memory": ("memory", None),
    "redis": ("redis", "redis"),
    "rediss": ("redis", "redis"),
    "postgres": ("postgres", "postgres"),
    "postgresql": ("postgres", "postgres"),
}


def backend_from_url(url: str) -> BroadcastBackend:
    """The backend for a broadcast URL. Imported lazily: each needs its own client
    library, installed with its extra (``pip install 'liveblog[redis]'``)."""
    scheme = url.split("://", 1)[0]
    if scheme not in SCHEMES:
        raise ValueError(f"unsupported broadcast backend {scheme!r}")
    module, extra = SCHEMES[scheme]
    try:
        if module == "redis":
            from liveblog.hub.redis import RedisBackend

            return RedisBackend(url)
        if module == "postgres":
            from liveblog.hub.postgres import PostgresBackend

            return PostgresBackend(url)
    except ImportError as exc:
        raise ValueError(
            f"the {scheme}:// broadcast backend needs {exc.name}: pip install 'liveblog[{extra}]'"
        ) from exc
    from liveblog.hub.memory import MemoryBackend

    return MemoryBackend()


__all__ = [
    "BroadcastBackend",
    "BroadcastDown",
    "Hub",
    "HubStats",
    "LoadFrames",
    "LoadLastSeq",
    "Subscription",
    "backend_from_url",
]
