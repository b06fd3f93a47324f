"""Database engine and sessions. Nothing is global: ``Database`` is made per app.

SQLite (aiosqlite) by default; PostgreSQL through psycopg 3's async driver
(``Settings.sqlalchemy_url`` maps ``postgres://`` and ``postgresql://`` to it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import PoolResetState
from sqlmodel.ext.asyncio.session import AsyncSession


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (pages, stream replays) run while an editor's write commits;
    # busy_timeout makes a second writer wait instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
    """A SQLite connection back in the pool: roll back only if a transaction is open.

    The pool's own reset rolls back every time, and through aiosqlite each rollback is a
    round trip to the connection's thread (after every commit and every read session).
    pysqlite's ``rollback()`` does nothing when no transaction is open, and whether one
    is open is a flag read without the trip: same outcome, one hop fewer.
    """
    # aiosqlite's connection (the adapter's ``driver_connection``) has the flag.
    driver = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    if state.asyncio_safe and driver.in_transaction:
        dbapi_connection.rollback()


class Database:
    """The app's database: one pool for the site, and a few connections of their own for
    the reader stream path.

    A crowd of readers (a replay storm after a deploy, a script asking for the whole log
    a thousand times) must never take the connections an editor's post needs. Stream
    reads go through ``stream_session``: at most ``stream_connections`` at once, from a
    separate pool, with the rest waiting in line (in order, holding nothing) rather than
    each holding a connection or timing out in the pool.
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = 5,
        max_overflow: int = 10,
        stream_connections: int = 2,
    ) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite and self.url.database and self.url.database != ":memory:":
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        # A network database's connections go stale; a SQLite file's do not, and the
        # ping would cost every session an extra round trip through aiosqlite's thread.
        options: dict[str, Any] = {"echo": echo, "pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            options["pool_reset_on_return"] = None  # _sqlite_reset does it
        if self.url.get_backend_name() == "postgresql":
            # Named in pg_stat_activity, so an operator can tell the app's connections
            # from the broadcast backend's LISTEN connection.
            options["connect_args"] = {"application_name": "liveblog"}
            # Per process: with many processes, their sum must stay under the server's
            # max_connections (or a pooler's), see docs/scaling.md.
            options["pool_size"] = pool_size
            options["max_overflow"] = max_overflow
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine.pool, "reset", _sqlite_reset)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        stream_options = dict(options)
        if self.url.database not in (None, "", ":memory:"):  # (a memory database has no pool)
            stream_options.update(pool_size=stream_connections, max_overflow=0)
        if "connect_args" in options:
            stream_options["connect_args"] = {"application_name": "liveblog-streams"}
        self.stream_engine: AsyncEngine = create_async_engine(url, **stream_options)
        if self.is_sqlite:
            event.listen(self.stream_engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.stream_engine.sync_engine.pool, "reset", _sqlite_reset)
        self._stream_sessions = async_sessionmaker(
            self.stream_engine, class_=AsyncSession, expire_on_commit=False
        )
        self._stream_gate = asyncio.Semaphore(stream_connections)
        self.stream_waits = 0  # stream reads that had to wait for a connection
        self.stream_longest_wait = 0.0  # seconds

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; nothing is committed."""
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def stream_session(self) -> AsyncIterator[AsyncSession]:
        """A session for reading on the reader stream path, from its own connections."""
        if self._stream_gate.locked():
            self.stream_waits += 1
            began = time.monotonic()
            async with self._stream_gate:
                waited = time.monotonic() - began
                self.stream_longest_wait = max(self.stream_longest_wait, waited)
                async with self._stream_sessions() as session:
                    yield session
            return
        async with self._stream_gate, self._stream_sessions() as session:
            yield session

    def stream_wait_summary(self) -> str:
        """How long the stream path waited for its connections (logged at shutdown)."""
        return (
            f"{self.stream_waits} stream reads waited for a database connection "
            f"(longest {self.stream_longest_wait * 1000:.0f} ms)"
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits together at the end, or not at all."""
        async with self._sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def close(self) -> None:
        try:
            await self.stream_engine.dispose()
        finally:
            await self.engine.dispose()
