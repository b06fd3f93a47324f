"""PostgreSQL LISTEN/NOTIFY backend (``postgres://``; install ``liveblog[postgres]``).

No service beyond the database. NOTIFY payloads are capped near 8000 bytes, so this
backend does not carry frames (``carries_frames = False``): the hub sends only
"story seq closes" and every process reads the frame from the event log, which is
committed before the NOTIFY is sent.

Two connections per process: one LISTENs, one sends NOTIFYs. psycopg holds a
connection's lock while it waits for notifications, so a reader task owns the
LISTEN connection: it waits for notifications, and when a (UN)LISTEN is asked for it
interrupts that wait, runs the commands in call order, and resumes. ``subscribe``
returns once the server has run the LISTEN.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from liveblog.hub.backend import (
    Received,
    connection_name,
    received,
    split_namespace,
    stop_reader,
)

MAX_PAYLOAD = 7999  # bytes: PostgreSQL refuses 8000 and more
MAX_CHANNEL = 63  # bytes: longer identifiers are truncated by the server
PUBLISH_TIMEOUT = 5.0  # seconds
# libpq connection parameters (the conninfo keywords)
CONNECT_PARAMS: dict[str, Any] = {
    "connect_timeout": 5,
    # Notice a silently vanished server (no RST) within about half a minute.
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


class PostgresBackend:
    carries_frames = False

    def __init__(self, url: str) -> None:
        self._url, self._prefix = split_namespace(url)
        # Named in pg_stat_activity, so an operator (or a test) can find the connection.
        self.listen_name = connection_name("liveblog-listen", self._prefix)
        self._listener: psycopg.AsyncConnection[TupleRow] | None = None
        self._notifier: psycopg.AsyncConnection[TupleRow] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Received] = asyncio.Queue()
        self._commands: deque[tuple[sql.Composed, asyncio.Future[None]]] = deque()
        self._wake = asyncio.Event()

    async def connect(self) -> None:
        self._queue = asyncio.Queue()
        self._commands = deque()
        self._wake = asyncio.Event()
        try:
            self._listener = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, application_name=self.listen_name, **CONNECT_PARAMS
            )
            self._notifier = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, application_name="liveblog-notify", **CONNECT_PARAMS
            )
        except BaseException:
            await self._close_connections()
            raise
        self._reader = asyncio.create_task(
            self._read(self._listener, self._queue), name="liveblog-postgres-reader"
        )

    async def disconnect(self) -> None:
        reader, self._reader = self._reader, None
        await stop_reader(reader, self._queue)
        self._fail_commands(ConnectionError("disconnected from PostgreSQL"))
        await self._close_connections()

    async def subscribe(self, channel: str) -> None:
        await self._command(sql.SQL("LISTEN {}").format(sql.Identifier(self._name(channel))))

    async def unsubscribe(self, channel: str) -> None:
        await self._command(sql.SQL("UNLISTEN {}").format(sql.Identifier(self._name(channel))))

    async def publish(self, channel: str, message: bytes) -> None:
        if len(message) > MAX_PAYLOAD:
            raise ValueError(f"NOTIFY payloads are limited to {MAX_PAYLOAD} bytes")
        notifier = self._notifier
        if notifier is None:
            raise ConnectionError("not connected to PostgreSQL")
        # Bounded: an editor's request waits on this, and a server that stopped
        # answering must not hold it (the hub re-sends after reconnecting).
        async with asyncio.timeout(PUBLISH_TIMEOUT):
            await notifier.execute(
                "SELECT pg_notify(%s, %s)", (self._name(channel), message.decode())
            )

    def listen(self) -> AsyncIterator[tuple[str, bytes]]:
        return received(self._queue)

    # --- the LISTEN connection ----------------------------------------------------------

    def _name(self, channel: str) -> str:
        name = self._prefix + channel
        if len(name.encode()) > MAX_CHANNEL:
            raise ValueError(f"channel name longer than {MAX_CHANNEL} bytes: {name!r}")
        return name

    async def _command(self, statement: sql.Composed) -> None:
        if self._reader is None or self._reader.done():
            raise ConnectionError("not connected to PostgreSQL")
        done = asyncio.get_running_loop().create_future()
        self._commands.append((statement, done))
        self._wake.set()
        await done

    async def _read(
        self, conn: psycopg.AsyncConnection[TupleRow], queue: asyncio.Queue[Received]
    ) -> None:
        prefix = self._prefix

        async def receive() -> None:
            async for notify in conn.notifies():
                if notify.channel.startswith(prefix):
                    queue.put_nowait((notify.channel[len(prefix) :], notify.payload.encode()))

        receiving: asyncio.Task[None] | None = None
        woken: asyncio.Task[bool] | None = None
        try:
            while True:
                while self._commands:
                    statement, done = self._commands[0]
                    await conn.execute(statement)
                    self._commands.popleft()
                    if not done.done():
                        done.set_result(None)
                self._wake.clear()
                receiving = asyncio.create_task(receive())
                woken = asyncio.create_task(self._wake.wait())
                await asyncio.wait({receiving, woken}, return_when=asyncio.FIRST_COMPLETED)
                if receiving.done():
                    receiving.result()  # raises what broke the connection
                    raise ConnectionError("PostgreSQL stopped sending notifications")
                # A command is waiting: interrupt the wait for notifications (psycopg
                # keeps any that arrive meanwhile and hands them out next time).
                receiving.cancel()
                await asyncio.wait({receiving})
                if not receiving.cancelled():
                    receiving.result()  # it failed just before the cancel
                receiving = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            queue.put_nowait(exc)
            self._fail_commands(exc)
        finally:
            for task in (receiving, woken):
                if task is not None and not task.done():
                    task.cancel()

    def _fail_commands(self, exc: BaseException) -> None:
        while self._commands:
            _statement, done = self._commands.popleft()
            if not done.done():
                done.set_exception(exc)

    async def _close_connections(self) -> None:
        connections = (self._listener, self._notifier)
        self._listener = self._notifier = None
        for conn in connections:
            if conn is None:
                continue
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                # Under the connection's own lock: psycopg closes at once, and a NOTIFY
                # still in flight on it would then hang instead of finishing.
                async with asyncio.timeout(PUBLISH_TIMEOUT), conn.lock:
                    await conn.close()
            with contextlib.suppress(Exception):
                await conn.close()  # (a no-op when it closed above)
