"""In-process backend: one process, no other service. The embedded default."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

_CLOSED = ("", b"")


class MemoryBackend:
    def __init__(self) -> None:
        self._channels: set[str] = set()
        # Unbounded on purpose: its one consumer is the hub's listener, which only
        # hands frames to bounded per-stream backlogs and never waits on a reader.
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._connected = False

    async def connect(self) -> None:
        self._connected = True

    async def disconnect(self) -> None:
        if self._connected:
            self._connected = False
            self._queue.put_nowait(_CLOSED)

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, message: bytes) -> None:
        if not self._connected:
            raise RuntimeError("memory backend is not connected")
        if channel in self._channels:
            self._queue.put_nowait((channel, message))

    async def listen(self) -> AsyncIterator[tuple[str, bytes]]:
        while True:
            item = await self._queue.get()
            if item is _CLOSED:
                return
            yield item
