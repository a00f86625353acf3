"""bench.complaints waits for the outbox between rounds, and for the cases to be opened,
bounded by its deadline."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bench.complaints import Drain, unopened_cases, unstarted_cases, wait_for_outbox


def _database(path: Path, flags: list[bool], opened: list[bool] | None = None) -> Path:
    """Cases with these workflow_started flags; opened (a policy version) as ``opened`` says,
    else the started ones."""
    opened = flags if opened is None else opened
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE complaint_cases (case_number TEXT PRIMARY KEY, "
                           "workflow_started BOOLEAN NOT NULL, policy_version INTEGER)")
        connection.executemany("INSERT INTO complaint_cases VALUES (?, ?, ?)",
                               [(f"CP-{n}", flag, 1 if is_open else None)
                                for n, (flag, is_open) in enumerate(zip(flags, opened,
                                                                        strict=True))])
    return path


def test_only_cases_whose_workflow_is_not_started_are_counted(tmp_path: Path) -> None:
    assert unstarted_cases(_database(tmp_path / "c.db", [True, False, False])) == 2


def test_only_cases_not_opened_yet_are_counted(tmp_path: Path) -> None:
    assert unopened_cases(_database(tmp_path / "c.db", [True, True, False],
                                    opened=[True, False, False])) == 2


async def test_the_wait_ends_when_the_outbox_has_started_every_case(tmp_path: Path) -> None:
    database = _database(tmp_path / "c.db", [True, False, False])

    async def outbox() -> None:
        with sqlite3.connect(database) as connection:
            connection.execute("UPDATE complaint_cases SET workflow_started = 1, "
                               "policy_version = 1")

    waiting = asyncio.create_task(wait_for_outbox(database, deadline_seconds=30,
                                                  poll_seconds=0.01))
    await asyncio.sleep(0)  # a yield, not a wait: the waiter counts and starts polling
    await outbox()
    drain = await waiting
    assert drain.drained and drain.left == 2 and drain.seconds < 30
    assert drain.opened


async def test_the_wait_lasts_until_every_started_case_is_opened(tmp_path: Path) -> None:
    # Every workflow started, two still running their first steps.
    database = _database(tmp_path / "c.db", [True, True, True], opened=[True, False, False])
    waiting = asyncio.create_task(wait_for_outbox(database, deadline_seconds=30,
                                                  poll_seconds=0.01))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE complaint_cases SET policy_version = 1")
    drain = await waiting
    assert drain.drained and drain.left == 0 and drain.opened
    assert drain.seconds <= drain.opened_seconds < 30


async def test_the_wait_gives_up_at_its_deadline(tmp_path: Path) -> None:
    database = _database(tmp_path / "c.db", [False])
    drain = await wait_for_outbox(database, deadline_seconds=0.05, poll_seconds=0.01)
    assert not drain.drained and drain.left == 1 and drain.seconds >= 0.05


async def test_the_wait_for_the_openings_gives_up_at_the_deadline_too(tmp_path: Path) -> None:
    database = _database(tmp_path / "c.db", [True], opened=[False])
    drain = await wait_for_outbox(database, deadline_seconds=0.05, poll_seconds=0.01)
    assert drain.drained and not drain.opened and drain.opened_seconds >= 0.05


def test_the_start_rate_counts_the_round_and_its_drain() -> None:
    assert Drain(left=10, seconds=1.0, drained=True).rate(300, 2.0) == pytest.approx(100.0)
    assert Drain(left=0, seconds=0.0, drained=True).rate(0, 0.0) == 0.0
