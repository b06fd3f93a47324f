"""The reader stream of one app run: its open streams, its replays and the stories it
follows, built from the hub and the reads the app hands over (``liveblog.loaders``).

The lifespan builds one, starts it before the hub and stops it after (the hub's stop
ends every subscription first), and puts it at ``app.state.live``, where the endpoint
finds it: the stream takes nothing else from the app.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from liveblog import events
from liveblog.hub import Hub
from liveblog.live.following import Following
from liveblog.live.join import Joins, StoryReads
from liveblog.live.replay import Replays
from liveblog.live.streams import Streams
from liveblog.metrics import Metrics


class Reads(StoryReads, Protocol):
    """Every read the stream is given: joining's, and the log's frames for replays."""

    async def frames(self, story_id: int, after: int, before: int) -> list[events.Frame]: ...


class Live:
    def __init__(
        self,
        hub: Hub,
        reads: Reads,
        *,
        heartbeat: float,
        send_timeout: float,
        retry_ms: int,
        replay_cache_bytes: int,
        site_headers: Sequence[tuple[bytes, bytes]] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self.streams = Streams(
            hub,
            heartbeat=heartbeat,
            send_timeout=send_timeout,
            site_headers=site_headers,
            metrics=metrics,
        )
        self.replays = Replays(hub, reads.frames, cache_bytes=replay_cache_bytes, metrics=metrics)
        self.joins = Joins(hub, Following(), reads)
        self.first = events.retry_frame(retry_ms)  # what every stream starts with

    async def start(self) -> None:
        await self.streams.start()

    async def stop(self) -> None:
        await self.streams.stop()
