"""Group commit: calls arriving together are written as one batch, each answered on its own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from kernel.groupcommit import GroupCommit


class Writer:
    """Doubles numbers, refuses negative ones; the first batch waits for ``go``."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.go = threading.Event()
        self.writing = threading.Event()

    def __call__(self, items: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        self.writing.set()
        if len(self.batches) == 1:
            self.go.wait(timeout=10)
        return [ValueError(f"{n} is negative") if n < 0 else 2 * n for n in items]


async def test_calls_arriving_while_a_batch_is_written_share_the_next_batch() -> None:
    writer = Writer()
    group = GroupCommit(writer)
    first = asyncio.create_task(group.submit(1))
    await asyncio.to_thread(writer.writing.wait, 10)
    assert group.quiet_seconds() == 0.0  # a batch is being written
    rest = [asyncio.create_task(group.submit(n)) for n in (2, -3, 4)]
    await asyncio.sleep(0)  # the three calls are queued behind the first batch
    writer.go.set()
    assert await first == 2
    assert await rest[0] == 4 and await rest[2] == 8
    with pytest.raises(ValueError, match="-3 is negative"):
        await rest[1]
    assert writer.batches == [[1], [2, -3, 4]]
    assert group.quiet_seconds() > 0.0


async def test_a_batch_takes_at_most_max_batch_items() -> None:
    writer = Writer()
    writer.go.set()
    group = GroupCommit(writer, max_batch=2)
    assert await asyncio.gather(*(group.submit(n) for n in range(5))) == [0, 2, 4, 6, 8]
    assert all(len(batch) <= 2 for batch in writer.batches)
    assert sorted(n for batch in writer.batches for n in batch) == list(range(5))


async def test_a_writer_that_fails_as_a_whole_fails_each_call_of_the_batch() -> None:
    def broken(items: Sequence[int]) -> list[int | Exception]:
        raise RuntimeError("the database is gone")

    group = GroupCommit(broken)
    outcomes = await asyncio.gather(group.submit(1), group.submit(2), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    # The group carries on with the next calls.
    group.write = lambda items: [n for n in items]
    assert await group.submit(3) == 3


async def test_a_lingering_batch_takes_the_calls_that_arrive_during_its_linger() -> None:
    writer = Writer()
    writer.go.set()
    # Without a linger the first call is written alone; with one, the second joins it, and
    # the batch, full at two, is written at once rather than after the five seconds.
    for linger, expected in ((0.0, [[1], [2]]), (5.0, [[1, 2]])):
        writer.batches.clear()
        group = GroupCommit(writer, max_batch=2, linger_seconds=linger)
        first = asyncio.create_task(group.submit(1))
        for _ in range(3):  # the writer's task runs up to its write, or into its linger
            await asyncio.sleep(0)
        second = asyncio.create_task(group.submit(2))
        assert list(await asyncio.wait_for(asyncio.gather(first, second), 2.0)) == [2, 4]
        assert writer.batches == expected


async def test_a_lingering_batch_that_does_not_fill_is_written_after_its_linger() -> None:
    writer = Writer()
    writer.go.set()
    group = GroupCommit(writer, max_batch=10, linger_seconds=0.05)
    first = asyncio.create_task(group.submit(1))
    for _ in range(3):
        await asyncio.sleep(0)
    second = asyncio.create_task(group.submit(2))
    assert list(await asyncio.wait_for(asyncio.gather(first, second), 5.0)) == [2, 4]
    assert writer.batches == [[1, 2]]
