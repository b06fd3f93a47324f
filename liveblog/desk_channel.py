"""The desk channel: small staff-only signals per story, across every process.

Two kinds of message travel on one channel of the broadcast backend, routed by the hub
to this module instead of the story fan-out (as ``liveblog.hub.presence`` does for reader
counts), and never written to a story's event log, so no reader stream can carry them:

* ``changed``: a story's queue, drafts or schedule changed (``topic`` says roughly what):
  open desks re-fetch. The newsroom calls ``changed`` after every committed change.
* presence: who has each story's desk open, and which update each is editing (the soft
  lock). Every process reports its own open desks per story every ``interval`` seconds,
  and at once when one opens, closes or starts editing; a report older than
  ``EXPIRY_INTERVALS`` intervals is dropped, so the desks of a process that died vanish
  within seconds. A process applies its own desks directly and ignores its own echoes,
  so its desks see each other even while the backend is down.

Each open desk stream of this process is a ``Seat``: what it has not been sent yet,
bounded (the newest presence replaces an unsent one; topics are kept once each).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from liveblog import tasks
from liveblog.hub.core import Hub

log = logging.getLogger(__name__)

CHANNEL = "liveblog.desk"
EXPIRY_INTERVALS = 3
MAX_REPORTED = 30  # desks one process reports per story: a NOTIFY payload stays small
MAX_TOPICS = 16  # distinct topics a seat holds before it is read
MAX_TOPIC = 40  # characters of a topic


@dataclass(frozen=True)
class OnDesk:
    """One open desk: who, and the update they are editing (None: just the desk)."""

    name: str
    username: str
    editing: int | None = None

    def public(self) -> dict[str, Any]:
        return {"username": self.username, "name": self.name, "editing": self.editing}

    def order(self) -> tuple[str, str, int]:
        return (self.name, self.username, self.editing or 0)


class Seat:
    """One open desk stream in this process, and what it has not been sent yet."""

    def __init__(self, story_id: int, who: OnDesk) -> None:
        self.story_id = story_id
        self.who = who
        self._presence: list[dict[str, Any]] | None = None
        self._topics: list[str] = []
        self._wake = asyncio.Event()

    def tell_presence(self, people: list[dict[str, Any]]) -> None:
        self._presence = people
        self._wake.set()

    def tell_changed(self, topic: str) -> None:
        if topic not in self._topics:
            self._topics = [*self._topics, topic][-MAX_TOPICS:]
        self._wake.set()

    async def next(self) -> list[tuple[str, str]]:
        """Wait for news: ``(event, JSON data)`` pairs, presence first."""
        await self._wake.wait()
        self._wake.clear()
        out: list[tuple[str, str]] = []
        if self._presence is not None:
            out.append(("presence", json.dumps(self._presence)))
        out += [("changed", json.dumps({"topic": topic})) for topic in self._topics]
        self._presence, self._topics = None, []
        return out


class DeskChannel:
    def __init__(
        self, hub: Hub, *, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.hub = hub
        self.interval = interval
        self.process = secrets.token_hex(8)
        self._clock = clock
        self._seats: dict[int, set[Seat]] = {}
        # story id -> process -> (when its report arrived, by our clock; its desks)
        self._reports: dict[int, dict[str, tuple[float, tuple[OnDesk, ...]]]] = {}
        self._shown: dict[int, list[dict[str, Any]]] = {}  # the presence our seats were sent
        self._reported: set[int] = set()  # stories our last report said we have desks on
        self._due: set[int] = set()  # stories whose report must go out now
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.hub.route(CHANNEL, self._heard)
        self._task = asyncio.create_task(self._run(), name="liveblog-desk-channel")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await tasks.stop(task)
        with contextlib.suppress(Exception):  # shutting down: best effort
            for story_id in list(self._reported):
                await self._publish({"process": self.process, "story": story_id, "desks": []})

    # --- what the desk streams and the newsroom call -------------------------------------

    @contextlib.contextmanager
    def seat(self, story_id: int, who: OnDesk) -> Iterator[Seat]:
        """An open desk on ``story_id`` for as long as the block runs; announced at once,
        and its first news is who is on the desk."""
        seat = Seat(story_id, who)
        self._seats.setdefault(story_id, set()).add(seat)
        self._announce(story_id)
        seat.tell_presence(self._shown.get(story_id, []))
        try:
            yield seat
        finally:
            seats = self._seats.get(story_id, set())
            seats.discard(seat)
            if not seats:
                self._seats.pop(story_id, None)
            self._announce(story_id)

    def people(self, story_id: int) -> list[OnDesk]:
        """Who is on the story's desk in every live process: one row per person, or per
        update a person is editing."""
        self._expire(story_id)
        desks = [seat.who for seat in self._seats.get(story_id, ())]
        for _, reported in self._reports.get(story_id, {}).values():
            desks += reported
        editing = {desk.username for desk in desks if desk.editing is not None}
        shown = {d for d in desks if d.editing is not None or d.username not in editing}
        return sorted(shown, key=OnDesk.order)

    async def changed(self, story_id: int, topic: str) -> None:
        """Tell every open desk of the story to re-fetch. Never raises: the change it
        reports is committed, and a desk that misses this sees it on its next load."""
        topic = topic[:MAX_TOPIC]
        self._tell_changed(story_id, topic)
        message = {"process": self.process, "story": story_id, "topic": topic}
        try:
            await self._publish(message)
        except Exception as exc:
            log.warning("desk channel: could not publish a change of story %s (%r)", story_id, exc)

    # --- inside --------------------------------------------------------------------------

    def _announce(self, story_id: int) -> None:
        self._refresh(story_id)
        self._due.add(story_id)
        self._wake.set()

    def _refresh(self, story_id: int) -> None:
        """Send the story's seats who is on the desk, if that changed."""
        seats = self._seats.get(story_id)
        if not seats:
            self._shown.pop(story_id, None)
            return
        people = [desk.public() for desk in self.people(story_id)]
        if people != self._shown.get(story_id):
            self._shown[story_id] = people
            for seat in seats:
                seat.tell_presence(people)

    def _tell_changed(self, story_id: int, topic: str) -> None:
        for seat in self._seats.get(story_id, ()):
            seat.tell_changed(topic)

    def _expire(self, story_id: int) -> bool:
        reports = self._reports.get(story_id)
        if not reports:
            return False
        deadline = self._clock() - EXPIRY_INTERVALS * self.interval
        old = [process for process, (heard_at, _) in reports.items() if heard_at < deadline]
        for process in old:
            del reports[process]
        if not reports:
            del self._reports[story_id]
        return bool(old)

    async def _publish(self, message: dict[str, Any]) -> None:
        await self.hub.backend.publish(CHANNEL, json.dumps(message).encode())

    async def _report(self, story_ids: set[int]) -> None:
        for story_id in sorted(story_ids):
            seats = self._seats.get(story_id, ())
            desks = sorted({seat.who for seat in seats}, key=OnDesk.order)[:MAX_REPORTED]
            rows = [[desk.username, desk.name, desk.editing] for desk in desks]
            if rows:
                self._reported.add(story_id)
            else:
                self._reported.discard(story_id)
            await self._publish({"process": self.process, "story": story_id, "desks": rows})

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_full = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_full - loop.time())):
                    await self._wake.wait()
            self._wake.clear()
            due, self._due = self._due, set()
            if loop.time() >= next_full:
                due |= set(self._seats) | self._reported
                next_full = loop.time() + self.interval
            try:
                await self._report(due)
            except Exception as exc:  # the backend is down: our reports go stale, then expire
                log.warning("desk channel: could not publish who is on the desk (%r)", exc)
            for story_id in list(self._reports):
                if self._expire(story_id):
                    self._refresh(story_id)

    def _heard(self, message: bytes) -> None:
        try:
            heard = json.loads(message)
            process, story_id = str(heard["process"]), int(heard["story"])
            if process == self.process:
                return  # applied when it was sent
            if "topic" in heard:
                self._tell_changed(story_id, str(heard["topic"])[:MAX_TOPIC])
                return
            desks = tuple(
                OnDesk(name=str(name), username=str(username), editing=_id_or_none(editing))
                for username, name, editing in heard["desks"][:MAX_REPORTED]
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("desk channel: ignored a malformed message")
            return
        reports = self._reports.setdefault(story_id, {})
        if desks:
            reports[process] = (self._clock(), desks)
        else:
            reports.pop(process, None)
            if not reports:
                del self._reports[story_id]
        self._refresh(story_id)


def _id_or_none(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("an update id is a whole number")
    return value
