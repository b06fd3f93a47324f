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

After a crowd leaves (a replay storm, a story's readers going home), what it held is
free but mostly stays in the process: cycles wait for the rarer full pass, and glibc's
malloc keeps freed heap pages for reuse. ``return_freed_memory`` runs a full collection
and asks malloc to give its free pages back (``malloc_trim``); the stream ticker calls it
when the number of open streams has fallen well below its peak
(``liveblog/live/streams.py``), so it runs once per burst, not per reader.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable

THRESHOLDS = (700, 10, 1000)  # CPython's defaults are (700, 10, 10)


def tune_for_serving() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)  # glibc only
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    result: Callable[[int], int] = trim
    return result


def return_freed_memory() -> None:
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
