"""Garbage-collector settings for a process that serves the app (not for tests).

An open stream is a few dozen small objects (uvicorn's connection, the ASGI call chain,
its subscription) that live as long as the reader stays, and a busy process holds tens
of thousands of them. CPython runs a full collection each time its tracked heap grows by
a quarter, so while a crowd connects it scans every live object again and again: with
the default settings, connecting 10,000 readers spent 3.3 s of 10.7 s in seven full
collections (docs/performance.md). So: objects alive at start (modules, the app) are
frozen out of collections, and young collections and full ones run less often.
Reference counting still frees nearly everything at once; cycles are still collected.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 10, 100)  # CPython's defaults are (700, 10, 10)


def tune_for_serving() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
