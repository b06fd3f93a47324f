"""Readers connected now, counted across every process through the broadcast backend.

A process only knows its own open streams (the hub's local subscribers). Every
``interval`` seconds each process publishes those counts on one dedicated channel, and
every process keeps the latest report of each process and adds them up. A report older
than ``EXPIRY_INTERVALS`` intervals is dropped, so a process that died stops counting
within seconds; one that stops cleanly says so at once with an empty report. With the
memory backend the single process hears its own report back: the same path as with
many workers on Redis or PostgreSQL.

Only ``backend.publish`` and the hub's listener are used: the backend stays a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable

from liveblog import tasks
from liveblog.hub.core import Hub

log = logging.getLogger(__name__)

CHANNEL = "liveblog.presence"
EXPIRY_INTERVALS = 3


class Presence:
    def __init__(
        self, hub: Hub, *, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.hub = hub
        self.interval = interval
        self.process = secrets.token_hex(8)
        self._clock = clock
        # process -> (when its report arrived, by our clock; story id -> open streams)
        self._reports: dict[str, tuple[float, dict[int, int]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.hub.route(CHANNEL, self._heard)
        self._task = asyncio.create_task(self._run(), name="liveblog-presence")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await tasks.stop(task)
        with contextlib.suppress(Exception):  # shutting down: best effort
            await self._publish({})

    def readers(self, story_id: int) -> int:
        """Streams open on ``story_id`` in every live process, as last reported."""
        return self.totals().get(story_id, 0)

    def totals(self) -> dict[int, int]:
        deadline = self._clock() - EXPIRY_INTERVALS * self.interval
        totals: dict[int, int] = {}
        for process, (heard_at, counts) in list(self._reports.items()):
            if heard_at < deadline:
                del self._reports[process]
                continue
            for story_id, count in counts.items():
                totals[story_id] = totals.get(story_id, 0) + count
        return totals

    async def report(self) -> None:
        """Publish this process's counts now (the periodic task calls this)."""
        await self._publish(self.hub.subscriber_counts())

    async def _publish(self, counts: dict[int, int], *, name: str | None = None) -> None:
        """Report ``counts`` as this process's, or under ``name`` (a reporter that is not
        a process of ours: the latest report of one name counts, once)."""
        message = {
            "process": name or self.process,
            "readers": {str(k): v for k, v in counts.items()},
        }
        await self.hub.backend.publish(CHANNEL, json.dumps(message).encode())

    async def _run(self) -> None:
        while True:
            try:
                await self.report()
            except Exception as exc:  # the backend is down: counts go stale, then expire
                log.warning("presence: could not publish reader counts (%r)", exc)
            await asyncio.sleep(self.interval)

    def _heard(self, message: bytes) -> None:
        try:
            report = json.loads(message)
            process = str(report["process"])
            counts = {int(k): int(v) for k, v in report["readers"].items() if int(v) > 0}
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("presence: ignored a malformed report")
            return
        self._reports[process] = (self._clock(), counts)
