"""Redis pub/sub backend (``redis://`` or ``rediss://``; install ``liveblog[redis]``).

One subscription connection per process, whatever the number of stories and readers:
the hub subscribes one channel per followed story and fans each message out locally.
Publishing uses a separate small pool, as Redis requires.

A reader task owns the subscription connection. It hands messages to ``listen`` through
a queue and confirms each SUBSCRIBE/UNSUBSCRIBE, so ``subscribe`` returns only once
Redis has applied it: a message published after that is certain to arrive. redis-py's
own silent reconnect is switched off on that connection: a lost connection must reach
the hub, which reconnects and fills the gap from the log (a silent reconnect would lose
whatever was published meanwhile without anybody noticing).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from liveblog.hub.backend import (
    Received,
    connection_name,
    received,
    split_namespace,
    stop_reader,
)

CONFIRM_TIMEOUT = 10.0  # seconds Redis may take to confirm a (un)subscription
CONNECT_TIMEOUT = 5.0
PUBLISH_TIMEOUT = 5.0  # a publish blocks an editor's request: never hang on it
HEALTH_CHECK_INTERVAL = 10  # seconds between PINGs on an idle subscription connection


class RedisBackend:
    carries_frames = True

    def __init__(self, url: str) -> None:
        self._url, self._prefix = split_namespace(url)
        # Named in CLIENT LIST, so an operator (or a test) can find this connection.
        self.client_name = connection_name("liveblog-listen", self._prefix)
        self._publisher: Redis | None = None
        self._subscriber: Redis | None = None
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Received] = asyncio.Queue()
        # ("subscribe" | "unsubscribe", channel) -> confirmations awaited, in call order
        self._confirmations: dict[tuple[str, str], deque[asyncio.Future[None]]] = {}

    async def connect(self) -> None:
        self._queue = asyncio.Queue()
        self._confirmations = {}
        common: dict[str, Any] = {
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "socket_keepalive": True,
        }
        # One retry: a pooled connection that died with a Redis restart is replaced once.
        self._publisher = Redis.from_url(
            self._url,
            retry=Retry(NoBackoff(), 1),
            socket_timeout=PUBLISH_TIMEOUT,
            **common,
        )
        self._subscriber = Redis.from_url(
            self._url,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=HEALTH_CHECK_INTERVAL,
            client_name=self.client_name,
            **common,
        )
        try:
            await self._publisher.ping()
            self._pubsub = self._subscriber.pubsub()
            await self._pubsub.connect()  # type: ignore[no-untyped-call]
        except BaseException:
            await self._close_clients()
            raise
        self._reader = asyncio.create_task(self._read(self._queue), name="liveblog-redis-reader")

    async def disconnect(self) -> None:
        reader, self._reader = self._reader, None
        await stop_reader(reader, self._queue)
        self._fail_confirmations(ConnectionError("disconnected from Redis"))
        await self._close_clients()

    async def subscribe(self, channel: str) -> None:
        await self._command("subscribe", channel)

    async def unsubscribe(self, channel: str) -> None:
        await self._command("unsubscribe", channel)

    async def publish(self, channel: str, message: bytes) -> None:
        if self._publisher is None:
            raise ConnectionError("not connected to Redis")
        await self._publisher.publish(self._prefix + channel, message)

    def listen(self) -> AsyncIterator[tuple[str, bytes]]:
        return received(self._queue)

    # --- the subscription connection ----------------------------------------------------

    async def _command(self, kind: str, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None or self._reader is None or self._reader.done():
            raise ConnectionError("not connected to Redis")
        name = self._prefix + channel
        confirmed = asyncio.get_running_loop().create_future()
        waiting = self._confirmations.setdefault((kind, name), deque())
        waiting.append(confirmed)
        try:
            if kind == "subscribe":
                await pubsub.subscribe(name)
            else:
                await pubsub.unsubscribe(name)
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                await confirmed
        finally:
            with contextlib.suppress(ValueError):
                waiting.remove(confirmed)

    async def _read(self, queue: asyncio.Queue[Received]) -> None:
        assert self._pubsub is not None
        pubsub = self._pubsub
        prefix = self._prefix
        try:
            while True:
                # A timeout, not a blocking read, so the health-check PING goes out on
                # an idle connection and a silently dead peer is noticed.
                message = await pubsub.get_message(timeout=HEALTH_CHECK_INTERVAL)
                if message is None:
                    continue
                kind = message["type"]
                channel = message["channel"]
                name = channel.decode() if isinstance(channel, bytes) else str(channel)
                if kind == "message":
                    if name.startswith(prefix):
                        queue.put_nowait((name[len(prefix) :], message["data"]))
                elif kind in ("subscribe", "unsubscribe"):
                    waiting = self._confirmations.get((kind, name))
                    if waiting:
                        confirmed = waiting.popleft()
                        if not confirmed.done():
                            confirmed.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            queue.put_nowait(exc)
            self._fail_confirmations(exc)

    def _fail_confirmations(self, exc: BaseException) -> None:
        for waiting in self._confirmations.values():
            for confirmed in waiting:
                if not confirmed.done():
                    confirmed.set_exception(exc)
        self._confirmations = {}

    async def _close_clients(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        clients = (self._subscriber, self._publisher)
        self._subscriber = self._publisher = None
        with contextlib.suppress(Exception):  # closing a broken connection may fail too
            if pubsub is not None:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        for client in clients:
            with contextlib.suppress(Exception):
                if client is not None:
                    await client.aclose()
