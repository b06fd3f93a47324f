"""Prometheus metrics of one app run, and the listener of their own that serves them.

``Metrics`` owns its registry (nothing is registered in ``prometheus_client``'s global
one): the lifespan makes one per app and hands it to what counts, the hub core, the
stream and the database. Counting costs a lock and an add; per-frame counts are added
once per fan-out, not once per reader. Values kept elsewhere (open streams, database
pools) are read when Prometheus scrapes, not maintained on every change.

The metrics are never served on the site's own port: ``LIVEBLOG_METRICS_ADDRESS``
opens a listener of their own, on a thread, in each process (``MetricsListener``). A
range of ports (``host:9100-9103``) lets several processes on one host share the
setting: each takes the first free port in it, and each is its own scrape target
(``serve --workers N`` widens a single port to N). docs/operations.md has each metric's
meaning and the alerts worth setting.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from sqlalchemy.pool import Pool, QueuePool

log = logging.getLogger(__name__)

# Seconds from the publish (just after the commit) to the last local stream's write.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# Events per replay: a reconnect after a blip is a few; a reader from the start, the story.
REPLAY_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class Metrics:
    """The app's metrics. Every name starts ``liveblog_``; docs/operations.md explains them."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        # Memory, CPU, open files and the garbage collector: process_*, python_*.
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)

        # --- the reader stream -----------------------------------------------------
        self.open_streams = Gauge(
            "liveblog_open_streams", "Event streams open in this process.", registry=registry
        )
        self.stream_joins = Counter(
            "liveblog_stream_joins", "Event streams opened (readers joining).", registry=registry
        )
        self.stream_leaves = Counter(
            "liveblog_stream_leaves",
            "Event streams ended, for any reason (the reader left, was dropped, the story "
            "ended, the server stopped).",
            registry=registry,
        )
        slow = Counter(
            "liveblog_slow_reader_closes",
            "Readers dropped for not reading: a write blocked past the send timeout "
            "(send_timeout) or the reader fell the stream backlog behind (backlog).",
            ["reason"],
            registry=registry,
        )
        self.slow_send_timeout = slow.labels(reason="send_timeout")
        self.slow_backlog = slow.labels(reason="backlog")
        self.replay_events = Histogram(
            "liveblog_replay_events",
            "Events replayed to a reader resuming with Last-Event-ID, per replay.",
            buckets=REPLAY_BUCKETS,
            registry=registry,
        )

        # --- the hub -----------------------------------------------------------------
        self.events_published = Counter(
            "liveblog_events_published",
            "Story events this process committed and published to the broadcast.",
            registry=registry,
        )
        self.frames_delivered = Counter(
            "liveblog_frames_delivered",
            "Event frames handed to local streams (one per stream per event).",
            registry=registry,
        )
        self.fan_out_latency = Histogram(
            "liveblog_publish_to_fan_out_seconds",
            "From publishing an event (just after its commit) to handing it to every "
            "stream of this process: measured for events published by this process.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.broadcast_reconnects = Counter(
            "liveblog_broadcast_reconnects",
            "Reconnections to the broadcast backend after it failed.",
            registry=registry,
        )
        self.gap_fills = Counter(
            "liveblog_broadcast_gap_fills",
            "Times the hub read events it missed on the broadcast from the log.",
            registry=registry,
        )

        # --- the database ------------------------------------------------------------
        self.pool_checked_out = Gauge(
            "liveblog_db_pool_checked_out",
            "Database connections in use, per pool (site, stream).",
            ["pool"],
            registry=registry,
        )
        self.pool_limit = Gauge(
            "liveblog_db_pool_limit",
            "Most database connections a pool may have checked out (size + overflow).",
            ["pool"],
            registry=registry,
        )

        # --- webhooks (the worker calls the methods below) ---------------------------
        self.webhook_backlog = Gauge(
            "liveblog_webhook_backlog", "Webhook deliveries waiting to be sent.", registry=registry
        )
        self.webhook_deliveries = Counter(
            "liveblog_webhook_deliveries", "Webhook deliveries accepted.", registry=registry
        )
        self.webhook_failures = Counter(
            "liveblog_webhook_failures",
            "Webhook delivery attempts that failed (refused, timed out, answered non-2xx).",
            registry=registry,
        )

    # --- what other parts call ---------------------------------------------------------

    def watch_streams(self, count: Callable[[], int]) -> None:
        """Read the open streams from ``count`` at each scrape."""
        self.open_streams.set_function(count)

    def watch_pool(self, name: str, pool: Pool) -> None:
        """Read a database pool's connections in use at each scrape. A pool that does not
        count them (an in-memory SQLite database's single connection) is left out."""
        if not isinstance(pool, QueuePool):
            return
        overflow = pool._max_overflow  # no public accessor; -1: no limit
        self.pool_checked_out.labels(pool=name).set_function(pool.checkedout)
        self.pool_limit.labels(pool=name).set(
            pool.size() + overflow if overflow >= 0 else float("inf")
        )

    def webhook_delivered(self) -> None:
        self.webhook_deliveries.inc()

    def webhook_failed(self) -> None:
        self.webhook_failures.inc()

    def set_webhook_backlog(self, count: int) -> None:
        self.webhook_backlog.set(count)


@dataclass(frozen=True)
class Address:
    """Where the metrics listener binds: a host and the ports it may take (first free)."""

    host: str
    first: int
    last: int

    @classmethod
    def parse(cls, value: str) -> Address:
        """``host:port`` or ``host:first-last`` (``[::1]:9100`` for IPv6)."""
        host, colon, ports = value.strip().rpartition(":")
        first, dash, last = ports.partition("-")
        host = host.removeprefix("[").removesuffix("]")
        if not colon or not host or not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"{value!r} is not host:port or host:first-last (0.0.0.0:9100)")
        low, high = int(first), int(last) if dash else int(first)
        if not 0 < low <= high < 65536:
            raise ValueError(f"{value!r}: ports must be 1-65535, the first not past the last")
        return cls(host, low, high)

    def widened(self, count: int) -> Address:
        """One port for each of ``count`` processes, from this one's first."""
        return Address(self.host, self.first, max(self.last, self.first + count - 1))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        ports = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return f"{host}:{ports}"


class MetricsListener:
    """Serves ``/metrics`` of ``registry`` at ``address``, on a thread of its own: a
    scrape never waits for the event loop, and the site's port never serves it."""

    def __init__(self, registry: CollectorRegistry, address: Address) -> None:
        self.registry = registry
        self.address = address
        self.port: int | None = None
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        for port in range(self.address.first, self.address.last + 1):
            try:
                self._server, self._thread = start_http_server(
                    port, self.address.host, registry=self.registry
                )
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            self.port = port
            log.info("metrics at http://%s/metrics", Address(self.address.host, port, port))
            return
        raise OSError(
            errno.EADDRINUSE,
            f"no free port for the metrics listener in {self.address} (LIVEBLOG_METRICS_ADDRESS)",
        )

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            # shutdown() waits for the serving loop to notice (up to half a second).
            await asyncio.to_thread(server.shutdown)
            server.server_close()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
            self._thread = None
