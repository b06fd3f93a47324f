"""The newest frames of a story, kept by the hub while the story has local readers.

After a deploy, a proxy failover or a train tunnel, readers come back by the thousand,
each with a ``Last-Event-ID`` a little behind the story's head. Every frame they missed
already passed through this process's fan-out, encoded; keeping the newest few hundred
lets every one of those readers be replayed from memory, with no database read and no
encoding, by bytes objects that all of them share.

The frames are contiguous and end at the hub's position in the story: ``(start, end]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

from liveblog.events import Frame


class RecentFrames:
    __slots__ = ("end", "frames", "limit", "start")

    def __init__(self, position: int, limit: int) -> None:
        self.start = position  # the frames cover seq start+1 .. end
        self.end = position
        self.limit = limit
        self.frames: list[Frame] = []

    def add(self, frame: Frame) -> None:
        """The hub fanned out ``frame``: its next event (anything else starts afresh)."""
        if frame.seq != self.end + 1 or not self.limit:
            self.frames.clear()
            self.start = frame.seq - 1
        if self.limit:
            self.frames.append(frame)
        else:
            self.start = frame.seq
        self.end = frame.seq
        # Trimmed by the half-limit, not per frame: a list's front deletion copies it.
        if len(self.frames) > self.limit + self.limit // 2:
            drop = len(self.frames) - self.limit
            del self.frames[:drop]
            self.start += drop

    def prime(self, older: Iterable[Frame]) -> None:
        """Put frames read from the log in front, where they join up with these."""
        floor = self.end - self.limit  # nothing older than the window
        before = [frame for frame in older if floor < frame.seq <= self.start]
        if not before or before[-1].seq != self.start:
            return
        if any(b.seq != a.seq + 1 for a, b in pairwise(before)):
            return
        self.frames[:0] = before
        self.start = before[0].seq - 1

    def between(self, after: int, until: int) -> list[Frame] | None:
        """The frames after ``after`` up to ``until``, or None if not all are here."""
        if after < self.start or until > self.end or after > until:
            return None
        return self.frames[after - self.start : until - self.start]
