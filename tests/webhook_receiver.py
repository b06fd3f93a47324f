"""A webhook receiver on loopback, for the webhook tests: it keeps every delivery it
gets (headers and body), checks nothing itself, and answers what the test says
(``fail_with``: a status to answer instead of 204; ``delay``: seconds to wait first).
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.fail_with: int | None = None
        self.delay = 0.0
        self.refused = 0  # deliveries answered with fail_with
        self._lock = threading.Lock()

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            self.refused += 1
            return Response(b"down for maintenance", status_code=self.fail_with)
        with self._lock:
            self.deliveries.append(Delivery(dict(request.headers), body))
        return Response(status_code=204)

    def unique(self) -> list[Delivery]:
        """Deliveries in the order they first arrived, each ``webhook-id`` once."""
        seen: set[str] = set()
        first: list[Delivery] = []
        with self._lock:
            for delivery in self.deliveries:
                if delivery.id not in seen:
                    seen.add(delivery.id)
                    first.append(delivery)
        return first

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.receive, methods=["POST"])])
