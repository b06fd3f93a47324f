"""Broadcast hub: the core fans out; backends (chosen by URL) only move messages."""

from __future__ import annotations

from liveblog.hub.backend import BroadcastBackend
from liveblog.hub.core import Hub, HubStats, LoadFrames, Subscription


def backend_from_url(url: str) -> BroadcastBackend:
    scheme = url.split("://", 1)[0]
    if scheme == "memory":
        from liveblog.hub.memory import MemoryBackend

        return MemoryBackend()
    raise ValueError(f"unsupported broadcast backend {scheme!r}")


__all__ = ["BroadcastBackend", "Hub", "HubStats", "LoadFrames", "Subscription", "backend_from_url"]
