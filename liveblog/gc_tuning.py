"""Garbage-collector settings for a process that serves the app (not for tests).

An open stream is a few dozen small objects (uvicorn's connection, the ASGI call chain,
its subscription) that live as long as the reader stays, and a busy process holds tens
of thousands of them. CPython runs a full collection whenever its tracked heap has grown
by a quarter, so while a crowd connects it scans every live object again and again.
Measured in-process (docs/performance.md), connecting 10,000 readers with the default
settings spent 1.8-2.1 s in eight full collections, 210-240 us per reader of ~460 us of
CPU; with these settings the collector took 26 us per reader. Objects alive once the
process has started (modules, the app) are frozen out of collections, the young
generations keep CPython's thresholds (small, cache-friendly passes), and a full pass
waits for a hundred times as many young ones. Reference counting still frees nearly
everything at once; cycles are still collected.
"""

from __future__ import annotations

import gc

THRESHOLDS = (700, 10, 1000)  # CPython's defaults are (700, 10, 10)


def tune_for_serving() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
