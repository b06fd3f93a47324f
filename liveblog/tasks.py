"""The app's background tasks (the hub's listener, presence reports, statistics): how
one is stopped, the same way everywhere.

A task's cancellation can be lost inside a library: the presence task (which
publishes to Redis) lost it in 2 of 8 runs of a test with two app processes
(``tests/test_presence.py``) and slept on, holding the shutdown; where it was
swallowed is not known.
``stop`` therefore cancels again, every ``RECANCEL_AFTER`` seconds, until the task ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)

RECANCEL_AFTER = 1.0  # seconds a cancelled task may take before it is cancelled again


async def stop(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task``, if there is one, and wait until it has ended. A task that had
    already failed raises its error here."""
    if task is None:
        return
    task.cancel()
    while True:
        done, _ = await asyncio.wait({task}, timeout=RECANCEL_AFTER)
        if done:
            break
        log.warning("task %s did not end when cancelled: cancelling it again", task.get_name())
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
