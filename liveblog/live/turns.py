"""Replays take turns: at most a few replay writes per turn of the event loop."""

from __future__ import annotations

import asyncio
from collections import deque


class Turns:
    """At most ``per_turn`` replay writes per turn of the event loop; the others wait for
    the next turns, in order.

    A thousand readers replaying a story at once are a thousand writes ready in every
    turn of the loop, and everything else (an editor's post needs a dozen turns: each
    database call is one) waits behind all of them: measured with ``bench/crowd``, an
    editor's post took 1.3 s while each of its queries ran in a millisecond. Taking
    turns keeps a turn of the loop short whatever the crowd; the replays as a whole go
    as fast as before, since each turn still writes ``per_turn`` pieces.
    """

    __slots__ = ("_scheduled", "_used", "_waiting", "per_turn")

    def __init__(self, per_turn: int) -> None:
        self.per_turn = per_turn
        self._used = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._scheduled = False

    async def take(self) -> None:
        if self._used < self.per_turn and not self._waiting:
            self._used += 1
            self._schedule()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._schedule()
        await waiter

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            # Runs in the next turn: the callbacks ready now are this turn's.
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._scheduled = False
        self._used = 0
        while self._waiting and self._used < self.per_turn:
            waiter = self._waiting.popleft()
            if not waiter.done():  # (a reader that hung up while it waited)
                waiter.set_result(None)
                self._used += 1
        if self._waiting or self._used:
            self._schedule()
