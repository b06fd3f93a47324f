"""A cap on concurrent event streams per client address, as pure ASGI middleware
around the stream endpoint (``liveblog.live.routing`` serves streams outside the app's
stack).

One reader needs one stream per open story; a client holding hundreds is a script
trying to exhaust this process's connections and memory. Beyond the cap the stream
request is answered ``429 Too Many Requests`` with ``Retry-After`` before the endpoint
runs. The count is per process (each worker guards its own connections).

The address is ``liveblog.ratelimit.client_address``: behind a reverse proxy it is the
reader's only if uvicorn trusts the proxy's headers. Carrier-grade NAT puts many
readers behind one address: keep the cap generous.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from liveblog.ratelimit import client_address

RETRY_AFTER_SECONDS = 10


class StreamCap:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_per_client: int,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self.app = app
        self.max_per_client = max_per_client
        self.headers = list(headers)  # the site's, for the 429
        self.open: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only streams reach it (the routing sends them here, and adds this layer only
        # when a cap is set); a HEAD opens no stream.
        if scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        if self.open[address] >= self.max_per_client:
            await _refuse(send, self.max_per_client, self.headers)
            return
        self.open[address] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open[address] -= 1
            if self.open[address] <= 0:
                del self.open[address]


async def _refuse(send: Send, limit: int, headers: list[tuple[bytes, bytes]]) -> None:
    body = f"too many open streams from your address (at most {limit})".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
