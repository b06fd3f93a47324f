"""GRIP mode (``LIVEBLOG_GRIP_URL``): readers' streams held by a GRIP proxy (Pushpin,
Fanout), not by liveblog.

Without the setting nothing here is used. With it:

* **The stream endpoint** answers a request that came through the proxy (it carries
  ``Grip-Sig``, checked against the URL's key when it has one) with GRIP instructions
  instead of holding the connection: ``Grip-Hold: stream``, ``Grip-Channel:
  story-<id>; prev-id=<newest seq>``, ``Grip-Keep-Alive`` (the stream's heartbeat) and
  the stream's own headers, and as body the ``retry:`` line and every event after the
  reader's ``Last-Event-ID`` up to that newest one, from the log (``Replays``). The
  proxy sends that, keeps the reader's connection and subscribes it to the channel.
  Requests that did not come through the proxy (a direct client, ``HEAD``) get the
  ordinary stream, unchanged.
* **Recovery**: when the proxy sees a publish whose ``prev-id`` is not the last id it
  delivered on the channel (a lost or reordered publish, a restarted proxy, a process
  that died between commit and publish), it asks the origin again with ``Grip-Last:
  story-<id>; last-id=<id>``; the endpoint answers with the events after that id from
  the log and a new hold. Nothing is skipped silently.
* **Publishing** (``Publisher``): each committed event is published once, by the
  process that committed it (``GripNewsroom``, after the hub's publish), as an
  ``http-stream`` item with ``id`` = its seq and ``prev-id`` = seq - 1 (sequence numbers
  have no gaps). A closing event (the story ended) is followed by a ``close`` item. The
  items go out in order from one task per process, retried until the proxy takes them.
* **Readers connected now**: the proxies report them on their stats sockets
  (``LIVEBLOG_GRIP_STATS_URL``, ``liveblog/live/grip_stats.py``); ``GripPresence`` adds
  them to the process's own streams.
* **A cluster of proxies** (``LIVEBLOG_GRIP_URL`` names several, comma-separated): each
  holds some of the readers, so each gets every item, from a task of its own; a request
  signed by any of them is the proxy's.

The ``gripcontrol`` library (the ``grip`` extra) parses the GRIP URL, builds the
``Grip-Channel`` value, checks ``Grip-Sig`` and exports the published items; the
publish itself is one ``httpx`` POST to ``<control_uri>/publish/`` from the event loop
(``pubcontrol``'s client publishes from threads with blocking I/O).
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from liveblog import events as story_events
from liveblog.hub import Hub
from liveblog.hub.presence import Presence
from liveblog.live import request
from liveblog.live.grip_stats import ProxyStats
from liveblog.live.service import Live
from liveblog.live.streams import HEADERS
from liveblog.models import StoryEvent, StoryStatus
from liveblog.newsroom import Newsroom

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "story-"
HEARTBEAT = b": heartbeat\n\n"  # what liveblog.live.stream sends to an idle stream
PUBLISH_TIMEOUT = 10.0  # seconds for one POST to the proxy
RETRY_FIRST = 0.1  # seconds before re-sending a refused publish; doubles up to RETRY_MAX
RETRY_MAX = 5.0
STOP_TIMEOUT = 5.0  # seconds the shutdown waits for queued publishes to go out


def _gripcontrol() -> Any:
    """The ``grip`` extra, imported when GRIP mode is on (the app imports this module)."""
    import gripcontrol  # type: ignore[import-untyped]

    return gripcontrol


def _pubcontrol() -> Any:
    import pubcontrol  # type: ignore[import-untyped]

    return pubcontrol


def channel(story_id: int) -> str:
    return f"{CHANNEL_PREFIX}{story_id}"


@dataclass(frozen=True)
class GripConfig:
    """A GRIP URL as ``gripcontrol.parse_grip_uri`` reads it."""

    control_uri: str  # the publish endpoint's base, e.g. http://127.0.0.1:5561
    iss: str | None = None
    key: str | bytes | None = None  # publishing: JWT key with ``iss``, else a bearer token
    verify_key: str | bytes | None = None  # checks ``Grip-Sig`` (default: ``key``)
    verify_iss: str | None = None

    @classmethod
    def parse(cls, url: str) -> GripConfig:
        parsed: dict[str, Any] = _gripcontrol().parse_grip_uri(url)
        return cls(
            control_uri=parsed["control_uri"],
            iss=parsed.get("control_iss"),
            key=parsed.get("key"),
            verify_key=parsed.get("verify_key"),
            verify_iss=parsed.get("verify_iss"),
        )

    @classmethod
    def parse_all(cls, value: str) -> list[GripConfig]:
        """``LIVEBLOG_GRIP_URL``: one GRIP URL, or several separated by commas (a cluster
        of proxies, each holding some of the readers: every one of them gets every
        publish)."""
        urls = [url.strip() for url in value.split(",") if url.strip()]
        if not urls:
            raise ValueError("LIVEBLOG_GRIP_URL names no GRIP URL")
        return [cls.parse(url) for url in urls]

    @property
    def signature_key(self) -> str | bytes | None:
        return self.verify_key if self.verify_key is not None else self.key

    def authorization(self) -> str | None:
        if self.key is None:
            return None
        if self.iss is None:
            key = self.key.decode() if isinstance(self.key, bytes) else self.key
            return f"Bearer {key}"
        import jwt

        claim = {"iss": self.iss, "exp": calendar.timegm(time.gmtime()) + 3600}
        return f"Bearer {jwt.encode(claim, self.key)}"


# --- the stream endpoint ------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def from_proxy(scope: Scope, configs: Sequence[GripConfig]) -> bool:
    """Whether the request came through one of the GRIP proxies: it carries
    ``Grip-Sig``, valid for that proxy's key if its URL has one."""
    signature = _header(scope, b"grip-sig")
    if signature is None:
        return False
    for config in configs:
        key = config.signature_key
        if key is None:
            return True
        if _gripcontrol().validate_sig(signature, key, config.verify_iss):
            return True
    return False


def grip_last(scope: Scope, name: str) -> int | None:
    """The ``last-id`` of ``name`` in a recovery request's ``Grip-Last`` headers."""
    for key, value in scope["headers"]:
        if key != b"grip-last":
            continue
        for entry in value.decode("latin-1").split(","):
            channel_name, *params = (part.strip() for part in entry.split(";"))
            if channel_name != name:
                continue
            for param in params:
                pname, _, pvalue = param.partition("=")
                pvalue = pvalue.strip().strip('"')
                if pname.strip() == "last-id" and pvalue.isascii() and pvalue.isdigit():
                    return int(pvalue)
    return None


class GripPresence(Presence):
    """Presence with the readers the proxies hold added: each proxy instance's counts
    (``ProxyStats``, from its stats socket) are reported under the instance's name, by
    every process that hears them. The same name from several processes is one report
    (the latest), so a reader held by the proxy counts once, however many processes
    liveblog runs. Without stats (no ``LIVEBLOG_GRIP_STATS_URL``, or Fanout) only the
    streams liveblog holds itself count."""

    def __init__(self, hub: Hub, stats: ProxyStats | None, *, interval: float) -> None:
        super().__init__(hub, interval=interval)
        self.stats = stats
        self._instances: set[str] = set()  # reported last round

    async def report(self) -> None:
        await super().report()
        if self.stats is None:
            return
        counts = self.stats.counts()
        # An instance whose readers all left: an empty report, so it stops counting now.
        for instance in self._instances - counts.keys():
            await self._publish({}, name=f"grip:{instance}")
        for instance, stories in counts.items():
            await self._publish(stories, name=f"grip:{instance}")
        self._instances = set(counts)


def keep_alive_header(interval: float) -> bytes:
    escaped = HEARTBEAT.decode().replace("\\", "\\\\").replace("\n", "\\n")
    return f"{escaped}; format=cstring; timeout={max(1, round(interval))}".encode()


def hold_headers(
    story_id: int, prev_id: int, keep_alive: float, path: str
) -> list[tuple[bytes, bytes]]:
    """The hold: the story's channel from ``prev_id`` on, the heartbeat, and the link the
    proxy asks for what a reader missed (Pushpin holds a stream with a ``prev-id`` only
    with a ``next`` link: its recovery requests go there, with ``Grip-Last``).

    The link is the same for every reader of the story and has no refresh timeout:
    Pushpin re-asks at most 10 distinct links a second, in batches of up to 100
    readers per identical link (its handler's update limiter), and holds a reader's
    events while its request is pending. Identical links let a recovery reach 1,000
    readers a second instead of 10 (``liveblog/live/grip_stats.py`` has the measurement)."""
    gripcontrol = _gripcontrol()
    value = gripcontrol.create_grip_channel_header(
        gripcontrol.Channel(channel(story_id), prev_id=str(prev_id))
    )
    return [
        (b"grip-hold", b"stream"),
        (b"grip-channel", value.encode()),
        (b"grip-keep-alive", keep_alive_header(keep_alive)),
        (b"grip-link", f"<{path}>; rel=next".encode()),
    ]


class GripStoryEvents:
    """The stream endpoint in GRIP mode: GRIP instructions for the proxy's requests,
    ``inner`` (the ordinary stream endpoint) for everything else."""

    def __init__(
        self,
        inner: ASGIApp,
        configs: Sequence[GripConfig],
        *,
        keep_alive: float,
    ) -> None:
        self.inner = inner
        self.configs = list(configs)
        self.keep_alive = keep_alive
        self.holds = 0  # hold instructions given (new readers and recoveries)
        self.recoveries = 0  # answers to Grip-Last

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "GET" or not from_proxy(scope, self.configs):
            await self.inner(scope, receive, send)
            return
        live: Live = scope["app"].state.live
        site_headers = live.streams.site_headers
        try:
            status, headers, body = await self.answer(live, scope)
        except HTTPException as exc:
            status, body = exc.status_code, b"" if exc.status_code == 204 else exc.detail.encode()
            headers = [(b"cache-control", b"no-store"), *site_headers]
            if body:
                headers.append((b"content-type", b"text/plain; charset=utf-8"))
        if not any(name == b"grip-hold" for name, _ in headers):
            # Not for a hold: the proxy would pass the length on, and the reader's
            # stream would end with this body.
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def answer(
        self, live: Live, scope: Scope
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        joins = live.joins
        story = await joins.reads.story_by_slug(scope["path_params"]["slug"])
        story = await joins.visible(story, lambda: request.session_token(scope))
        assert story.id is not None
        last = story.last_seq
        recovered = grip_last(scope, channel(story.id))
        after = recovered if recovered is not None else request.last_event_id(scope)
        ended = story.status == StoryStatus.ended
        if ended and recovered is None and (after is None or after >= last):
            raise HTTPException(204)  # nothing more will ever come: EventSource stops
        after = last if after is None else min(after, last)
        parts = [] if recovered is not None else [live.first]
        if after < last:
            parts += [piece async for piece in live.replays.replay(story.id, after, last)]
        headers = [*HEADERS, *live.streams.site_headers]
        if recovered is not None:
            self.recoveries += 1
        if not ended:  # hold the reader on the channel, from the last event sent
            headers += hold_headers(story.id, last, self.keep_alive, quote(scope["path"]))
            self.holds += 1
        return 200, headers, b"".join(parts)


# --- publishing ---------------------------------------------------------------------------


def items(events: Sequence[StoryEvent]) -> list[dict[str, Any]]:
    """The publish items of committed events, in order (``gripcontrol``'s formats)."""
    HttpStreamFormat = _gripcontrol().HttpStreamFormat
    Item = _pubcontrol().Item
    out: list[dict[str, Any]] = []
    for event in events:
        frame = story_events.encode(event)
        name = channel(frame.story_id)
        item = Item(
            HttpStreamFormat(frame.data.decode()), id=str(frame.seq), prev_id=str(frame.seq - 1)
        ).export(formats_field=True)
        out.append({"channel": name, **item})
        if frame.closes:  # the story ended: end every held stream after the event
            out.append(
                {"channel": name, **Item(HttpStreamFormat(close=True)).export(formats_field=True)}
            )
    return out


class Publisher:
    """Publishes to the GRIP proxy, in order, from one task; never raises to the caller
    (events are committed: a publish that fails is retried, and one that never arrives
    is recovered by the proxy from the log when the next one shows the gap)."""

    def __init__(self, config: GripConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.url = config.control_uri.rstrip("/") + "/publish/"
        self._client = client
        self._own_client = client is None
        self._queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.published = 0  # items the proxy took
        self.failures = 0

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=PUBLISH_TIMEOUT)
        self._task = asyncio.create_task(self._run(), name="liveblog-grip-publisher")

    async def stop(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT):
                await self._queue.join()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._own_client and self._client is not None:
            await self._client.aclose()

    def put(self, batch: list[dict[str, Any]]) -> None:
        """Queue items made by ``items``: made once, whatever the number of proxies."""
        if batch:
            self._queue.put_nowait(batch)

    async def idle(self) -> None:
        """Wait until everything queued has been taken by the proxy (tests)."""
        await self._queue.join()

    async def _run(self) -> None:
        delay = RETRY_FIRST
        while True:
            batch = await self._queue.get()
            # Whatever else is queued goes in the same POST, in order.
            taken = 1
            while not self._queue.empty():
                batch = batch + self._queue.get_nowait()
                taken += 1
            while True:
                try:
                    await self._post(batch)
                    self.published += len(batch)
                    delay = RETRY_FIRST
                    break
                except Exception as exc:
                    self.failures += 1
                    log.warning(
                        "grip: the proxy refused %d items (%r); retrying in %.1fs",
                        len(batch),
                        exc,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
            for _ in range(taken):
                self._queue.task_done()

    async def _post(self, batch: list[dict[str, Any]]) -> None:
        assert self._client is not None
        headers = {"content-type": "application/json"}
        authorization = self.config.authorization()
        if authorization is not None:
            headers["authorization"] = authorization
        response = await self._client.post(
            self.url, content=json.dumps({"items": batch}).encode(), headers=headers
        )
        response.raise_for_status()


class GripNewsroom(Newsroom):
    """The newsroom, publishing every committed event to each GRIP proxy too, once, from
    the process that committed it (after the hub's publish, as before). Each proxy has
    a publisher (a queue and a task) of its own: one that is down or slow holds back
    only its own readers, and catches up by the same recovery."""

    grip: Sequence[Publisher] = ()

    async def _publish(self, events: Sequence[StoryEvent]) -> None:
        await super()._publish(events)
        if events and self.grip:
            batch = items(events)  # encoded once, whatever the number of proxies
            for publisher in self.grip:
                publisher.put(batch)
