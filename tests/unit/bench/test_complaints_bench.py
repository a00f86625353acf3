"""bench.complaints waits for the outbox between rounds, bounded by its deadline."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bench.complaints import Drain, unstarted_cases, wait_for_outbox


def _database(path: Path, flags: list[bool]) -> Path:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE complaint_cases (case_number TEXT PRIMARY KEY, "
                           "workflow_started BOOLEAN NOT NULL)")
        connection.executemany("INSERT INTO complaint_cases VALUES (?, ?)",
                               [(f"CP-{n}", flag) for n, flag in enumerate(flags)])
    return path


def test_only_cases_whose_workflow_is_not_started_are_counted(tmp_path: Path) -> None:
    assert unstarted_cases(_database(tmp_path / "c.db", [True, False, False])) == 2


async def test_the_wait_ends_when_the_outbox_has_started_every_case(tmp_path: Path) -> None:
    database = _database(tmp_path / "c.db", [True, False, False])

    async def outbox() -> None:
        with sqlite3.connect(database) as connection:
            connection.execute("UPDATE complaint_cases SET workflow_started = 1")

    waiting = asyncio.create_task(wait_for_outbox(database, deadline_seconds=30,
                                                  poll_seconds=0.01))
    await asyncio.sleep(0)  # a yield, not a wait: the waiter counts and starts polling
    await outbox()
    drain = await waiting
    assert drain.drained and drain.left == 2 and drain.seconds < 30


async def test_the_wait_gives_up_at_its_deadline(tmp_path: Path) -> None:
    database = _database(tmp_path / "c.db", [False])
    drain = await wait_for_outbox(database, deadline_seconds=0.05, poll_seconds=0.01)
    assert not drain.drained and drain.left == 1 and drain.seconds >= 0.05


def test_the_start_rate_counts_the_round_and_its_drain() -> None:
    assert Drain(left=10, seconds=1.0, drained=True).rate(300, 2.0) == pytest.approx(100.0)
    assert Drain(left=0, seconds=0.0, drained=True).rate(0, 0.0) == 0.0
