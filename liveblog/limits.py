"""Limits on request bodies: their size, and how deep a JSON body nests.

The size limit is pure ASGI middleware (it never buffers a response). A declared
``Content-Length`` over the limit is refused before the app runs; a chunked body is
counted as it is read and refused as soon as it passes the limit.

JSON is parsed by ``parse_json`` only, which refuses deep nesting before parsing:
``json.loads`` recurses once per level, and a megabyte of ``[`` is a RecursionError.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A JSON string, escapes included (written so a long string is one C-level repeat).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than {limit} bytes")
        self.limit = limit  # the one applied: upload paths take more than other bodies


class JsonTooDeep(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the JSON body nests arrays and objects more than {limit} levels deep")


def parse_json(raw: bytes, *, max_depth: int) -> Any:
    """``raw`` parsed, if it nests at most ``max_depth`` levels.

    Raises ``JsonTooDeep`` past that, and ``ValueError`` (``UnicodeDecodeError``
    included) for anything that is not JSON.
    """
    text = raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads does
    if json_depth(text) > max_depth:
        raise JsonTooDeep(max_depth)
    try:
        return json.loads(text)
    except RecursionError:  # not reached past the scan; never a 500 if it were
        raise JsonTooDeep(max_depth) from None


def json_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text``, in one linear scan.

    Brackets inside strings do not count. On text that is not JSON the count may come
    out too high, never too low for what ``json.loads`` would read before failing: up
    to its first error, the scan and the parser agree on where every string is.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


class BodySizeLimit:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        uploads: re.Pattern[str] | None = None,
        max_upload_bytes: int = 0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Paths that take image uploads: an image on top of an ordinary body.
        self.uploads = uploads
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        if self.uploads is not None and self.uploads.fullmatch(scope["path"]):
            limit = self.max_bytes + self.max_upload_bytes
        else:
            limit = self.max_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self._refuse(scope, send, limit)
                    return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        text = str(BodyTooLarge(limit))
        if scope["path"].startswith("/api/"):
            body = json.dumps({"error": text}).encode()
            content_type = b"application/json"
        else:
            body = text.encode()
            content_type = b"text/plain; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
