"""In-process backend: one process, no other service. The embedded default."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

_CLOSED = ("", b"")


class MemoryBackend:
    carries_frames = True

    def __init__(self) -> None:
        self._channels: set[str] = set()
        # Unbounded on purpose: its one consumer is the hub's listener, which only
        # hands frames to bounded per-stream backlogs and never waits on a reader.
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._connected = False

    async def connect(self) -> None:
        # A fresh "connection", as after a reconnect: no subscriptions, no leftovers.
        self._channels = set()
        self._queue = asyncio.Queue()
        self._connected = True

    async def disconnect(self) -> None:
        if self._connected:
            self._connected = False
            self._queue.put_nowait(_CLOSED)

    async def subscribe(self, channel: str) -> None:
        self._require_connection()
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, message: bytes) -> None:
        self._require_connection()
        if channel in self._channels:
            self._queue.put_nowait((channel, message))

    async def listen(self) -> AsyncIterator[tuple[str, bytes]]:
        queue = self._queue
        while True:
            item = await queue.get()
            if item is _CLOSED:
                return
            yield item

    def _require_connection(self) -> None:
        if not self._connected:
            raise ConnectionError("memory backend is not connected")
