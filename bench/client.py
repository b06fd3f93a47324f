"""The load client: N readers of one event stream on raw asyncio protocols, and a publisher.

It must cost far less per delivery than the servers it measures, so there is no HTTP
library per reader: each reader is one ``asyncio.Protocol`` that writes a GET, decodes
``Transfer-Encoding: chunked`` if the server uses it (uvicorn does, nginx streams without
it), splits the body into SSE blocks and, for each event, reads the number at the start
of its data line (``data: {"seq":N``). Both servers get the same client: our frames
start that way, and the payloads published to nchan are made to.

Every reader must see every published number exactly once and in order; a reader that
skips, repeats or reorders one is counted in ``Swarm.disorders``.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

SEQ_MARK = b'data: {"seq":'
monotonic = time.monotonic


def raise_open_files_limit(wanted: int) -> int:
    """Lift RLIMIT_NOFILE towards ``wanted`` (root may raise the hard limit too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    for new_hard in (max(hard, wanted), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, new_hard), new_hard))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Reader(asyncio.Protocol):
    """One open stream. Arrival times go straight into the swarm's per-number lists."""

    __slots__ = (
        "_chunk_left",
        "_chunked",
        "_crlf_left",
        "_head",
        "_pending",
        "_sse",
        "_swarm",
        "closed",
        "head_waiter",
        "last_seq",
        "ready",
        "transport",
    )

    def __init__(self, swarm: Swarm) -> None:
        self._swarm = swarm
        self._head: bytes | None = b""  # None once the response head has been read
        self._chunked = False
        self._chunk_left = 0
        self._crlf_left = 0
        self._pending = b""  # an incomplete chunk-size line
        self._sse = b""  # an incomplete SSE block
        self.last_seq: int | None = None
        self.ready = False
        self.closed = False
        self.transport: asyncio.Transport | None = None
        self.head_waiter: asyncio.Future[None] | None = None  # done at the head (or close)

    def _headed(self) -> None:
        if self.head_waiter is not None and not self.head_waiter.done():
            self.head_waiter.set_result(None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._swarm.request)

    def data_received(self, data: bytes) -> None:
        now = monotonic()
        if self._head is not None:
            data = self._read_head(data)
            if not data:
                return
        if self._chunked:
            data = self._dechunk(data)
        if self._sse:
            data = self._sse + data
        end = data.find(b"\n\n")
        if end < 0:
            self._sse = data
            return
        start = 0
        while end >= 0:
            self._block(data, start, end, now)
            start = end + 2
            end = data.find(b"\n\n", start)
        self._sse = data[start:]

    def _read_head(self, data: bytes) -> bytes:
        assert self._head is not None
        head = self._head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            self._head = head
            return b""
        self._head = None
        self._headed()
        status_line, _, headers = head[:end].partition(b"\r\n")
        if not status_line.startswith(b"HTTP/1.1 200"):
            self._swarm.errors.append(status_line.decode(errors="replace"))
            self._swarm.reader_refused()
            self.close()
            return b""
        self._chunked = b"transfer-encoding: chunked" in headers.lower()
        self._swarm.reader_headed()
        return head[end + 4 :]

    def _dechunk(self, data: bytes) -> bytes:
        if self._pending:
            data = self._pending + data
            self._pending = b""
        parts: list[bytes] = []
        pos, size = 0, len(data)
        while pos < size:
            if self._crlf_left:
                skip = min(self._crlf_left, size - pos)
                self._crlf_left -= skip
                pos += skip
                continue
            if self._chunk_left:
                take = min(self._chunk_left, size - pos)
                parts.append(data[pos : pos + take])
                self._chunk_left -= take
                pos += take
                if not self._chunk_left:
                    self._crlf_left = 2
                continue
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                self._pending = data[pos:]
                break
            length = int(data[pos:eol].split(b";", 1)[0], 16)
            pos = eol + 2
            if length == 0:  # the last chunk: the server ended the stream
                break
            self._chunk_left = length
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _block(self, data: bytes, start: int, end: int, now: float) -> None:
        mark = data.find(SEQ_MARK, start, end)
        if mark < 0:
            if not self.ready:  # the first block (our retry line, nchan's ": hi")
                self.ready = True
                self._swarm.reader_ready()
            return
        digits = mark + len(SEQ_MARK)
        stop = digits
        while stop < end and 48 <= data[stop] <= 57:
            stop += 1
        seq = int(data[digits:stop])
        swarm = self._swarm
        if self.last_seq is not None and seq != self.last_seq + 1:
            swarm.disorders += 1
        self.last_seq = seq
        arrivals = swarm.arrivals.get(seq)
        if arrivals is None:
            arrivals = swarm.arrivals[seq] = []
            swarm.block_sizes[seq] = end + 2 - start
        arrivals.append(now)
        swarm.event_received(seq)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._headed()
        self._swarm.reader_closed(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class Swarm:
    """N readers of one stream: connect them, then collect what they receive."""

    host: str
    port: int
    path: str
    readers: list[Reader] = field(default_factory=list)
    arrivals: dict[int, list[float]] = field(default_factory=dict)
    block_sizes: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    disorders: int = 0
    refused: int = 0  # readers answered other than 200 (and closed)
    ready_count: int = 0
    headed_count: int = 0  # readers that got their response head
    unexpected_closes: int = 0
    closed_count: int = 0
    _closing: bool = False
    _fail_on_refusal: bool = True
    _all_closed: asyncio.Future[None] | None = None
    _waiters: list[tuple[int, int, asyncio.Future[None]]] = field(default_factory=list)
    _ready_waiter: asyncio.Future[None] | None = None
    _head_target: int = 0
    _head_waiter: asyncio.Future[None] | None = None

    @property
    def request(self) -> bytes:
        return (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
        ).encode()

    def reader_headed(self) -> None:
        self.headed_count += 1
        waiter = self._head_waiter
        if waiter is not None and self.headed_count >= self._head_target and not waiter.done():
            waiter.set_result(None)

    def reader_ready(self) -> None:
        self.ready_count += 1
        self._check_ready()

    def reader_refused(self) -> None:
        self.refused += 1
        self._check_ready()

    def _check_ready(self) -> None:
        waiter = self._ready_waiter
        if (
            waiter is not None
            and self.ready_count + self.refused >= len(self.readers)
            and not waiter.done()
        ):
            waiter.set_result(None)

    def reader_closed(self, reader: Reader) -> None:
        self.closed_count += 1
        if not self._closing:
            self.unexpected_closes += 1
            waiter = self._ready_waiter
            if (
                self._fail_on_refusal
                and not reader.ready
                and waiter is not None
                and not waiter.done()
            ):
                # Refused (a 5xx) or hung up while connecting: it will never be ready.
                waiter.set_exception(
                    RuntimeError(f"a reader was refused while connecting: {self.errors[-3:]}")
                )
        elif (
            self.closed_count >= len(self.readers)
            and self._all_closed is not None
            and not self._all_closed.done()
        ):
            self._all_closed.set_result(None)

    def event_received(self, seq: int) -> None:
        if not self._waiters:
            return
        count = len(self.arrivals[seq])
        for wanted_seq, wanted, future in self._waiters:
            if wanted_seq == seq and count >= wanted and not future.done():
                future.set_result(None)

    async def connect(
        self, count: int, *, concurrency: int = 500, within: float = 120, until_head: bool = False
    ) -> float:
        """Open ``count`` more readers, at most ``concurrency`` connects in flight (the
        bench's own pattern); returns seconds until every one got its first block.

        A connect is in flight until the TCP connection is made, or with ``until_head``
        until the response head arrived: at most ``concurrency`` requests waiting for
        their answer (a proxy that forwards each request to the origin is not sent
        thousands at once)."""
        loop = asyncio.get_running_loop()
        target = len(self.readers) + count
        self._ready_waiter = loop.create_future()
        gate = asyncio.Semaphore(concurrency)
        started = monotonic()

        async def open_one() -> None:
            async with gate:
                reader = Reader(self)
                self.readers.append(reader)
                if until_head:
                    reader.head_waiter = loop.create_future()
                await loop.create_connection(lambda: reader, self.host, self.port)
                if reader.head_waiter is not None:
                    await reader.head_waiter

        self._fail_on_refusal = not until_head
        async with asyncio.timeout(within):
            await asyncio.gather(*(open_one() for _ in range(count)))
            # With ``until_head``, refused readers (counted in ``refused`` and
            # ``errors``) are left out; without, one fails the connect.
            if self.ready_count + self.refused < target:
                await self._ready_waiter
        return monotonic() - started

    @property
    def live(self) -> int:
        """Readers that were not refused (those whose events are waited for)."""
        return len(self.readers) - self.refused

    async def connect_paced(
        self, count: int, *, batch: int = 500, interval: float = 0.05, within: float = 120
    ) -> float:
        """Open ``count`` more readers, ``batch`` new connects every ``interval`` seconds
        whether or not earlier ones completed (a crowd arriving, as an outside
        measurement loaded it); returns seconds until every one got its response head.
        Returns once each also has its first block (not timed)."""
        loop = asyncio.get_running_loop()
        target = len(self.readers) + count
        self._ready_waiter = loop.create_future()
        self._head_target = self.headed_count + count
        self._head_waiter = loop.create_future()
        started = monotonic()
        connects: list[asyncio.Future[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]]] = []
        async with asyncio.timeout(within):
            opened = rounds = 0
            while opened < count:
                delay = started + rounds * interval - monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                for _ in range(min(batch, count - opened)):
                    reader = Reader(self)
                    self.readers.append(reader)
                    connects.append(
                        asyncio.ensure_future(
                            loop.create_connection(lambda r=reader: r, self.host, self.port)  # type: ignore[misc]
                        )
                    )
                opened += min(batch, count - opened)
                rounds += 1
            await asyncio.gather(*connects)
            if self.headed_count < self._head_target:
                await self._head_waiter
            seconds = monotonic() - started
            if self.ready_count < target:
                await self._ready_waiter
        return seconds

    async def wait_for(self, seq: int, count: int, within: float) -> bool:
        """Wait until ``count`` readers have event ``seq``; False on timeout."""
        if len(self.arrivals.get(seq, ())) >= count:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (seq, count, future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(within):
                await future
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters.remove(entry)

    async def close(self) -> None:
        """Hang up every reader and wait (a while) until each connection is gone."""
        self._closing = True
        self._all_closed = asyncio.get_running_loop().create_future()
        for reader in self.readers:
            reader.close()
        if self.closed_count < len(self.readers):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await self._all_closed


class Publisher:
    """One keep-alive HTTP/1.1 connection that POSTs and reads each answer in full."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self.host = host
        self.port = port
        self.headers = headers or {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(
        self, path: str, body: bytes, content_type: str = "application/json"
    ) -> tuple[int, bytes, float]:
        """POST; returns (status, body, monotonic time the request was written)."""
        if self._reader is None or self._reader.at_eof():
            # New, or closed by the server while idle (uvicorn's keep-alive timeout).
            await self.close()
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None and self._writer is not None
        extra = "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{extra}"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        sent = monotonic()
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = await self._reader.readexactly(length) if length else b""
        return status, answer, sent

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = None


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of unsorted values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


@dataclass
class Delivery:
    """One published event: who got it and how long after the publish was written."""

    seq: int
    sent: float
    latencies: list[float]

    @property
    def delivered(self) -> int:
        return len(self.latencies)

    def summary(self) -> tuple[float, float, float]:
        if not self.latencies:
            return (float("nan"),) * 3
        return (
            percentile(self.latencies, 0.5),
            percentile(self.latencies, 0.99),
            max(self.latencies),
        )


def deliveries(swarm: Swarm, sent: dict[int, float]) -> list[Delivery]:
    return [
        Delivery(seq, at, [arrival - at for arrival in swarm.arrivals.get(seq, ())])
        for seq, at in sorted(sent.items())
    ]
