"""Stopping the app's background tasks (``liveblog.tasks``), even one whose cancellation
a library swallowed: a stop that never ends holds the whole shutdown."""

from __future__ import annotations

import asyncio

import pytest

from liveblog import tasks

pytestmark = pytest.mark.anyio


async def test_stop_cancels_again_a_task_that_swallowed_its_cancellation() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # what a client that turns a cancellation into its error does

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(tasks.stop(task), timeout=10 * tasks.RECANCEL_AFTER)
    assert task.cancelled()
    assert swallowed == 1


async def test_stop_raises_what_a_task_failed_with() -> None:
    async def broken() -> None:
        raise ValueError("it broke")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="it broke"):
        await tasks.stop(task)
    await tasks.stop(None)  # no task: nothing to do
