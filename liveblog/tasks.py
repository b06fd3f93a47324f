"""The app's background tasks (the hub's listener, presence reports, statistics): how
one is stopped, the same way everywhere."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def stop(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task``, if there is one, and wait until it has ended. A task that had
    already failed raises its error here."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
