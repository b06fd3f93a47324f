"""Readers held by GRIP proxies, as the proxies report them (``LIVEBLOG_GRIP_STATS_URL``).

Pushpin publishes statistics on a ZeroMQ PUB socket (``stats_spec`` in pushpin.conf).
For each channel it sends a ``sub`` packet with the channel's number of subscribers when
that number changes (within about a second) and again every three quarters of
``stats_subscription_ttl``; an ``unsub`` packet (a ``sub`` packet without subscribers)
when the last one leaves. Each packet names the Pushpin instance it came from, so a
cluster of proxies reports per instance and the counts are added up.

Why not count the proxy's requests instead: a count needs each held reader to ask the
origin now and then (a per-reader link with a refresh timeout), and Pushpin makes at
most 10 such requests a second per distinct link (its handler's update limiter; batches
of up to 100 readers only when the links are identical). With 10,000 readers a round
took about 1,000 s, and a reader's events wait while its refresh is pending: the bench
saw a quarter of the readers get an update within 30 s. The hold's link is now the
same for every reader of a story and has no refresh; the proxy tells how many it holds.

Packets are ``sub J{json}`` or ``sub T{tnetstring}`` (``stats_format``); both are read.
A count not refreshed within its ``ttl`` (a proxy that died) is dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from liveblog import tasks

log = logging.getLogger(__name__)

TOPIC = b"sub "
DEFAULT_TTL = 60.0  # seconds, when a packet names none


def decode_tnetstring(data: bytes) -> tuple[Any, bytes]:
    """One tnetstring value from the front of ``data``, and what follows it.

    The format (tnetstrings.info): ``<length>:<payload><type>``, type one of ``,`` bytes,
    ``#`` integer, ``^`` float, ``!`` boolean, ``~`` null, ``}`` dict, ``]`` list."""
    length_text, colon, rest = data.partition(b":")
    if not colon or not length_text.isdigit() or len(length_text) > 9:
        raise ValueError("not a tnetstring")
    length = int(length_text)
    if len(rest) < length + 1:
        raise ValueError("tnetstring cut short")
    payload, kind, rest = rest[:length], rest[length : length + 1], rest[length + 1 :]
    if kind == b",":
        return payload, rest
    if kind == b"#":
        return int(payload), rest
    if kind == b"^":
        return float(payload), rest
    if kind == b"!":
        return payload == b"true", rest
    if kind == b"~":
        return None, rest
    if kind == b"]":
        items: list[Any] = []
        while payload:
            item, payload = decode_tnetstring(payload)
            items.append(item)
        return items, rest
    if kind == b"}":
        table: dict[str, Any] = {}
        while payload:
            key, payload = decode_tnetstring(payload)
            value, payload = decode_tnetstring(payload)
            table[key.decode() if isinstance(key, bytes) else str(key)] = value
        return table, rest
    raise ValueError(f"unknown tnetstring type {kind!r}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_packet(message: bytes) -> dict[str, Any]:
    """A ``sub`` packet's fields (JSON or tnetstring); ValueError if it is not one."""
    if not message.startswith(TOPIC) or len(message) < len(TOPIC) + 1:
        raise ValueError("not a sub packet")
    kind, body = message[len(TOPIC) : len(TOPIC) + 1], message[len(TOPIC) + 1 :]
    if kind == b"J":
        packet = json.loads(body)
    elif kind == b"T":
        packet, _ = decode_tnetstring(body)
    else:
        raise ValueError(f"unknown stats format {kind!r}")
    if not isinstance(packet, dict):
        raise ValueError("a sub packet is an object")
    return packet


class ProxyStats:
    """Subscribers per story channel per proxy instance, from the proxies' stats."""

    def __init__(
        self,
        specs: Sequence[str],
        *,
        channel_prefix: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.specs = list(specs)
        self.prefix = channel_prefix
        self._clock = clock
        # instance -> story id -> (subscribers, when the count expires)
        self._counts: dict[str, dict[int, tuple[int, float]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._socket: Any = None
        self.packets = 0  # sub packets taken (tests, metrics)

    async def start(self) -> None:
        import zmq
        import zmq.asyncio

        socket = zmq.asyncio.Context.instance().socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SUBSCRIBE, TOPIC)
        for spec in self.specs:
            socket.connect(spec)  # ZeroMQ connects (and reconnects) in the background
        self._socket = socket
        self._task = asyncio.create_task(self._run(), name="liveblog-grip-stats")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await tasks.stop(task)
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def _run(self) -> None:
        while True:
            message = await self._socket.recv()
            self.heard(message)

    def heard(self, message: bytes) -> None:
        try:
            packet = parse_packet(message)
            instance = _text(packet["from"])
            channel = _text(packet["channel"])
        except (ValueError, KeyError, UnicodeDecodeError):
            log.warning("grip stats: ignored a malformed packet")
            return
        if not channel.startswith(self.prefix) or not channel[len(self.prefix) :].isdigit():
            return  # not a story's channel
        story_id = int(channel[len(self.prefix) :])
        self.packets += 1
        stories = self._counts.setdefault(instance, {})
        subscribers = packet.get("subscribers")
        if packet.get("unavailable") or not isinstance(subscribers, int) or subscribers <= 0:
            stories.pop(story_id, None)  # the last reader left (an unsub packet)
            return
        ttl = packet.get("ttl")
        life = float(ttl) if isinstance(ttl, int | float) and ttl > 0 else DEFAULT_TTL
        stories[story_id] = (subscribers, self._clock() + life)

    def counts(self) -> dict[str, dict[int, int]]:
        """Readers per story, per proxy instance, as last reported and not expired."""
        now = self._clock()
        out: dict[str, dict[int, int]] = {}
        for instance, stories in list(self._counts.items()):
            for story_id, (count, expires) in list(stories.items()):
                if expires < now:
                    del stories[story_id]
                else:
                    out.setdefault(instance, {})[story_id] = count
            if not stories:
                del self._counts[instance]
        return out
