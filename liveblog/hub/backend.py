"""What a broadcast backend must do: move opaque messages between processes.

Backends know nothing about stories, frames or readers. Fan-out to local streams,
encoding, ordering, gap filling, reconnecting and backpressure all live once, in
``liveblog.hub.core``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from liveblog import tasks


class BroadcastBackend(Protocol):
    # False when messages must stay small (PostgreSQL NOTIFY payloads are capped near
    # 8000 bytes): the hub then sends only "story seq" and receivers read the log.
    carries_frames: bool

    async def connect(self) -> None:
        """Open connections. Called when the app starts, and again by the hub after a
        failure (following ``disconnect``): a fresh connection has no subscriptions."""

    async def disconnect(self) -> None:
        """Close connections; ``listen`` then ends. Safe to call twice."""

    async def subscribe(self, channel: str) -> None:
        """Receive messages published on ``channel`` (by any process) from the moment
        this returns. Raises if the connection is down."""

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving messages published on ``channel`` from the moment this returns."""

    async def publish(self, channel: str, message: bytes) -> None:
        """Send ``message`` to every process subscribed to ``channel``."""

    def listen(self) -> AsyncIterator[tuple[str, bytes]]:
        """Yield ``(channel, message)`` for the subscribed channels. Ends after
        ``disconnect``; raises when the connection is lost."""
        ...


# What a network backend's reader task hands to ``listen``: a message, the failure
# that broke the connection, or None for the end (``disconnect``).
Received = tuple[str, bytes] | BaseException | None


async def received(queue: asyncio.Queue[Received]) -> AsyncIterator[tuple[str, bytes]]:
    """``listen`` for a backend whose reader task fills ``queue``: its messages, until
    the end, or until the failure, which it raises."""
    while True:
        item = await queue.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


async def stop_reader(reader: asyncio.Task[None] | None, queue: asyncio.Queue[Received]) -> None:
    """Cancel a backend's reader task and end the ``listen`` fed by ``queue``."""
    if reader is not None:
        await tasks.stop(reader)
        queue.put_nowait(None)


def split_namespace(url: str) -> tuple[str, str]:
    """``redis://host/0?namespace=site`` -> (``redis://host/0``, ``"site:"``).

    Channels are named after story ids, so two sites (or two test runs) sharing one
    Redis server would hear each other's stories; a namespace keeps them apart.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = [value for key, value in query if key == "namespace"]
    rest = urlencode([(key, value) for key, value in query if key != "namespace"])
    prefix = f"{names[-1]}:" if names and names[-1] else ""
    return urlunsplit(parts._replace(query=rest)), prefix


def connection_name(role: str, prefix: str) -> str:
    """A client/application name for a backend connection, with the namespace in it."""
    namespace = re.sub(r"[^A-Za-z0-9._-]", "", prefix.rstrip(":"))
    return f"{role}-{namespace}"[:63] if namespace else role
