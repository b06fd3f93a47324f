"""What a broadcast backend must do: move opaque messages between processes.

Backends know nothing about stories, frames or readers. Fan-out to local streams,
encoding, ordering, gap filling and backpressure all live once, in ``liveblog.hub.core``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class BroadcastBackend(Protocol):
    async def connect(self) -> None:
        """Open connections; called once when the app starts."""

    async def disconnect(self) -> None:
        """Close connections; ``listen`` then ends."""

    async def subscribe(self, channel: str) -> None:
        """Start receiving messages published on ``channel`` (by any process)."""

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving messages published on ``channel``."""

    async def publish(self, channel: str, message: bytes) -> None:
        """Send ``message`` to every process subscribed to ``channel``."""

    def listen(self) -> AsyncIterator[tuple[str, bytes]]:
        """Yield ``(channel, message)`` for the subscribed channels, until disconnected."""
        ...
