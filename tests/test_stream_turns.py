"""``liveblog.live.turns.Turns``: replays take turns, so a turn of the event loop stays
short whatever the crowd (what keeps an editor's post quick while a thousand readers
replay; ``bench/crowd`` measures that)."""

from __future__ import annotations

import asyncio

import pytest

from liveblog.live.turns import Turns

pytestmark = pytest.mark.anyio


async def test_no_more_than_per_turn_writers_go_in_one_turn_of_the_loop() -> None:
    loop = asyncio.get_running_loop()
    turn = 0
    running = True

    def count_turns() -> None:
        nonlocal turn
        turn += 1
        if running:
            loop.call_soon(count_turns)

    loop.call_soon(count_turns)
    turns = Turns(4)
    went: list[tuple[int, int]] = []  # (writer, turn of the loop it went in)

    async def writer(number: int) -> None:
        for _ in range(3):  # three pieces each
            await turns.take()
            went.append((number, turn))

    try:
        await asyncio.gather(*(writer(number) for number in range(20)))
    finally:
        running = False
    per_turn: dict[int, int] = {}
    for _, when in went:
        per_turn[when] = per_turn.get(when, 0) + 1
    assert len(went) == 60
    assert max(per_turn.values()) <= 4, per_turn
    assert len(per_turn) >= 15  # 60 pieces, 4 a turn
    # In order: a writer that waited earlier goes no later.
    first_turns = [min(when for number, when in went if number == writer) for writer in range(20)]
    assert first_turns == sorted(first_turns), first_turns


async def test_a_writer_that_hangs_up_while_waiting_gives_its_turn_away() -> None:
    turns = Turns(1)
    first = asyncio.create_task(turns.take())  # this turn's one
    gone = asyncio.create_task(turns.take())  # waits, then its reader hangs up
    after = asyncio.create_task(turns.take())  # waits for the next turn
    # In the same turn of the loop, right after the three have started.
    asyncio.get_running_loop().call_soon(gone.cancel)
    async with asyncio.timeout(5):
        await first
        await after
        await asyncio.gather(gone, return_exceptions=True)
    assert gone.cancelled()
