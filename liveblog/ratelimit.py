"""Rate limits for login attempts, behind a two-method interface.

``Limiter`` is what the login view needs and all a shared backend must implement:
``hit(key)`` counts one attempt and says how long to wait when the key is over its
limit; ``reset(key)`` forgets a key. ``MemoryLimiter`` keeps the counts in this
process (right for one process; with several workers each counts on its own, so an
attacker gets at most workers x the limit). A Redis implementation can keep the same
sliding window in a sorted set per key (ZADD, ZREMRANGEBYSCORE, ZCARD, EXPIRE).

Attempts are counted *before* the password is checked, so a burst of parallel guesses
cannot all slip through while the first ones are still being verified.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.types import Scope


def client_address(scope: Scope) -> str:
    """The ASGI client address, what per-client limits count by (logins, open streams).

    Behind a reverse proxy, run uvicorn with ``--proxy-headers
    --forwarded-allow-ips=<proxy>`` so it is the client's, not the proxy's."""
    client = scope.get("client")
    return client[0] if client else "unknown"


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """The key is over its limit: wait this many whole seconds (at least 1)."""

    seconds: int


class Limiter(Protocol):
    async def hit(self, key: str) -> RetryAfter | None:
        """Count one attempt for ``key``; None if it is allowed, else how long to wait."""
        ...

    async def reset(self, key: str) -> None:
        """Forget every attempt counted for ``key``."""
        ...


class MemoryLimiter:
    """At most ``limit`` attempts per key in any ``window`` seconds (a sliding window).

    An attempt refused for being over the limit is not counted: the key opens again
    ``window`` seconds after its oldest counted attempt, whatever happens meanwhile.
    Memory stays bounded: keys whose attempts have all expired are dropped, and past
    ``max_keys`` live keys the oldest are dropped first.
    """

    def __init__(
        self,
        *,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window positive")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    async def hit(self, key: str) -> RetryAfter | None:
        now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            self._make_room(now)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return RetryAfter(max(1, math.ceil(hits[0] + self.window - now)))
        hits.append(now)
        return None

    async def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    def __len__(self) -> int:
        return len(self._hits)

    def _make_room(self, now: float) -> None:
        if len(self._hits) < self.max_keys:
            return
        cutoff = now - self.window
        for key in [key for key, hits in self._hits.items() if not hits or hits[-1] <= cutoff]:
            del self._hits[key]
        while len(self._hits) >= self.max_keys:  # all live: drop the oldest keys
            del self._hits[next(iter(self._hits))]


class LoginThrottle:
    """Failed-login limits per account and per client address.

    Every attempt counts against its client address; an attempt from an address that
    is not blocked also counts against the account, so a blocked address cannot keep
    locking an account. A successful login clears its account's count (a mistyped
    password an hour ago should not count), never the address's: an attacker holding
    one valid account must not be able to wipe the count of his guesses at others.
    """

    def __init__(self, *, per_account: Limiter, per_address: Limiter) -> None:
        self.per_account = per_account
        self.per_address = per_address

    @staticmethod
    def account_key(username: str) -> str:
        # The same normalisation the login uses, so "Alice " and "alice" are one account;
        # unknown usernames are counted exactly like real ones (no enumeration).
        return "account:" + username.strip().lower()[:100]

    async def attempt(self, username: str, address: str) -> RetryAfter | None:
        blocked = await self.per_address.hit("address:" + address)
        if blocked is not None:
            return blocked
        return await self.per_account.hit(self.account_key(username))

    async def succeeded(self, username: str) -> None:
        await self.per_account.reset(self.account_key(username))
