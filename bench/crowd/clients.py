"""The crowd's members, each one raw ``asyncio.Protocol`` per connection.

* ``Checked``: a reader that reads everything and checks the ``id:`` of every event:
  each exactly once, in order, none missing. It is ``bench.client.Reader`` (its head
  parsing and chunked decoding) with its own request and a check in place of the
  latency bookkeeping.
* ``Holder``: sends its request and never reads a byte (reading is paused at once), so
  the server's writes to it pile up in the socket buffers and then in the server.
* ``Slowloris``: sends a request line, then one header byte per ``drip()``, and never
  finishes the head.

A ``Group`` is one kind of member: what it asks for, its members, and what happened to
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from bench.client import Reader, Swarm

monotonic = time.monotonic


def stream_request(host: str, port: int, slug: str, last_event_id: int | None) -> bytes:
    resume = "" if last_event_id is None else f"Last-Event-ID: {last_event_id}\r\n"
    return (
        f"GET /stories/{slug}/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Accept: text/event-stream\r\nCache-Control: no-cache\r\n{resume}\r\n"
    ).encode()


@dataclass
class Group(Swarm):
    """Members of one kind. ``Swarm`` counts the error answers and the unexpected closes."""

    name: str = ""
    members: list[asyncio.BaseProtocol] = field(default_factory=list)
    connect_errors: list[str] = field(default_factory=list)
    served: int = 0  # readers that got all they came for (their replay, or the retry line)
    wanted: int = 0  # how many must be served before ``served_all`` is set
    served_all: asyncio.Event = field(default_factory=asyncio.Event)

    def reader_served(self) -> None:
        self.served += 1
        if self.served >= self.wanted:
            self.served_all.set()

    def ports(self) -> set[int]:
        """The client-side port of each member's connection (the server's peer port)."""
        found: set[int] = set()
        for member in self.members:
            port = getattr(member, "port", 0)
            if port:
                found.add(port)
        return found

    def close_all(self) -> None:
        self._closing = True
        for member in self.members:
            transport = getattr(member, "transport", None)
            if transport is not None:
                # abort: a member that never read has data waiting, and a close would
                # not reach the server before it is read (abort sends a reset).
                transport.abort()


class Checked(Reader):
    """Reads the whole stream; checks each event's id. ``target``: the id that serves it."""

    __slots__ = (
        "closed_at",
        "count",
        "expect",
        "first_id",
        "last_at",
        "port",
        "problem",
        "ready_at",
        "request",
        "served_at",
        "started",
        "target",
    )

    def __init__(
        self, group: Group, request: bytes, *, expect: int | None, target: int | None
    ) -> None:
        super().__init__(group)
        self.request = request
        self.expect = expect  # the next id this reader must get (None: whatever comes first)
        self.target = target  # served once it has this id (None: once it has the retry line)
        self.first_id: int | None = None
        self.count = 0
        self.problem = ""  # the first thing that went wrong
        self.port = 0
        self.started = monotonic()
        self.ready_at = 0.0
        self.served_at = 0.0
        self.closed_at = 0.0
        self.last_at = 0.0  # when the newest event came

    @property
    def group(self) -> Group:
        return cast(Group, self._swarm)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.port = transport.get_extra_info("sockname")[1]
        self.transport.write(self.request)

    def _read_head(self, data: bytes) -> bytes:
        errors = len(self._swarm.errors)
        rest = super()._read_head(data)
        if len(self._swarm.errors) > errors and not self.problem:
            self.problem = f"answered {self._swarm.errors[-1]!r}"
        return rest

    def _block(self, data: bytes, start: int, end: int, now: float) -> None:
        if data.startswith(b"id: ", start):
            stop = data.find(b"\n", start, end)
            self._event(int(data[start + 4 : end if stop < 0 else stop]), now)
        elif not self.ready:  # the retry line, first of every stream
            self.ready = True
            self.ready_at = now
            if self.target is None or (self.last_seq or 0) >= self.target:
                self._served(now)

    def _event(self, seq: int, now: float) -> None:
        if not self.ready:
            self.ready = True
            self.ready_at = now
        if self.first_id is None:
            self.first_id = seq
        if self.expect is not None and seq != self.expect and not self.problem:
            if self.last_seq is not None and seq <= self.last_seq:
                what = "again" if seq == self.last_seq else "out of order"
                self.problem = f"got id {seq} {what} after {self.last_seq}"
            else:
                self.problem = f"got id {seq} where {self.expect} was due (a gap)"
        self.count += 1
        self.last_seq = seq
        self.last_at = now
        self.expect = seq + 1
        if self.target is not None and seq == self.target and not self.served_at:
            self._served(now)

    def _served(self, now: float) -> None:
        self.served_at = now
        self.group.reader_served()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed_at = monotonic()
        if not self.group._closing and not self.problem:
            self.problem = f"closed by the server after id {self.last_seq}"
        super().connection_lost(exc)


class Holder(asyncio.Protocol):
    """Asks for a stream, then never reads."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.port = 0
        self.read = 0  # bytes read before reading stopped (uvloop: the first read)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.port = transport.get_extra_info("sockname")[1]
        self.transport.write(self.request)
        # uvloop starts reading after connection_made returns, whatever it was told
        # here: pausing now does nothing, so it is paused at the first data instead.
        self.transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        self.read += len(data)
        if self.transport is not None and self.transport.is_reading():
            self.transport.pause_reading()


class Slowloris(asyncio.Protocol):
    """A request line, then a header one byte at a time, never ended."""

    DRIP = b"X-Waiting: " + b"a" * 4000

    def __init__(self, group: Group, request_line: bytes) -> None:
        self.group = group
        self.request_line = request_line
        self.transport: asyncio.Transport | None = None
        self.port = 0
        self.sent = 0
        self.answer = b""  # what the server said, if anything (a 408, say)
        self.opened_at = 0.0
        self.closed_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.port = transport.get_extra_info("sockname")[1]
        self.opened_at = monotonic()
        self.transport.write(self.request_line)

    def drip(self) -> None:
        if self.transport is not None and not self.closed_at and self.sent < len(self.DRIP):
            self.transport.write(self.DRIP[self.sent : self.sent + 1])
            self.sent += 1

    def data_received(self, data: bytes) -> None:
        if len(self.answer) < 200:
            self.answer += data[:200]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed_at = monotonic()
        if not self.group._closing:
            self.group.unexpected_closes += 1


async def open_members(
    group: Group,
    count: int,
    make: Callable[[], asyncio.Protocol],
    gate: asyncio.Semaphore,
    *,
    within: float = 30.0,
) -> None:
    """Open ``count`` connections of ``group``, at most ``gate`` at a time; a connection
    that fails (or takes longer than ``within``) is counted, not raised."""
    loop = asyncio.get_running_loop()

    async def one() -> None:
        async with gate:
            member = make()
            group.members.append(member)
            try:
                async with asyncio.timeout(within):
                    await loop.create_connection(lambda: member, group.host, group.port)
            except (OSError, TimeoutError) as exc:
                group.connect_errors.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(one() for _ in range(count)))


async def drip(slow: Group, stop: asyncio.Event, *, limit: float, period: float = 1.0) -> None:
    """One header byte per ``period`` to each slowloris member, until ``stop`` (or for
    ``limit`` seconds at most)."""
    for _ in range(round(limit / period)):
        for member in slow.members:
            if isinstance(member, Slowloris):
                member.drip()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(period):
                await stop.wait()
        if stop.is_set():
            return
