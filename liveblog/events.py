"""The wire form of story events: one SSE frame, encoded once per event.

A frame is ``id: <seq>``, ``event: <kind>`` and one ``data:`` line of JSON. JSON escapes
line breaks inside strings, so the payload can never split into a second ``data:`` line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from liveblog.models import StoryEvent


@dataclass(frozen=True, slots=True)
class Frame:
    """One encoded event, shared as-is by every stream of its story."""

    story_id: int
    seq: int
    closes: bool
    data: bytes


def dump_payload(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def encode(event: StoryEvent) -> Frame:
    # The stored payload is a JSON object without "seq"; splice it in front rather
    # than parse and re-serialise.
    rest = event.data[1:] if event.data == "{}" else "," + event.data[1:]
    body = f'id: {event.seq}\nevent: {event.kind.value}\ndata: {{"seq":{event.seq}{rest}\n\n'
    body_bytes = body.encode()
    return Frame(story_id=event.story_id, seq=event.seq, closes=event.closes, data=body_bytes)


def retry_frame(milliseconds: int) -> bytes:
    return f"retry: {milliseconds}\n\n".encode()
