"""The feed's numbering rule on the repository, on SQLite and PostgreSQL.

What SQLite can show of the gap-free rule (its write lock serialises writers,
so the concurrent-readers test over gRPC holds there trivially): a number is
taken inside the publishing transaction, so one rolled back leaves no gap
and is given again; writers in threads, some rolling back, leave 1..n
without a gap; every entry is built knowing its number and the previous
entry's SHA-256 (the chain).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from services.trading.db.repository import TradingUnitOfWork
from services.trading.domain.feed import GENESIS, FeedLink, NewFeedEntry
from tests.support import ServiceUnderTest


def _maker(name: str, seen: list[FeedLink]) -> Callable[[FeedLink], NewFeedEntry]:
    def make(link: FeedLink) -> NewFeedEntry:
        seen.append(link)
        return NewFeedEntry.of("test.entry", f"test/{name}",
                               {"name": name, "feed": {"sequence": link.sequence,
                                                       "previous_sha256": link.previous_sha256}})
    return make


def _append(trading: ServiceUnderTest, name: str, *, commit: bool = True) -> int:
    with TradingUnitOfWork(trading.running.engine) as uow:
        sequence = uow.feed.append(_maker(name, []), at=datetime.now(UTC))
        if commit:
            uow.commit()
    return sequence


def test_a_rolled_back_entry_leaves_no_gap(trading: ServiceUnderTest) -> None:
    assert _append(trading, "a") == 1
    assert _append(trading, "rolled back", commit=False) == 2
    assert _append(trading, "b") == 2
    with TradingUnitOfWork(trading.running.engine, write=False) as uow:
        entries = uow.feed.after(0, limit=10)
    assert [(e.sequence, e.subject) for e in entries] == [(1, "test/a"), (2, "test/b")]


def test_concurrent_writers_some_rolling_back_leave_a_gap_free_chain(
        trading: ServiceUnderTest) -> None:
    writers, each = 4, 10
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            for n in range(each):
                _append(trading, f"{writer}-{n}", commit=n % 3 != 2)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    with TradingUnitOfWork(trading.running.engine, write=False) as uow:
        entries = uow.feed.after(0, limit=1000)
    committed = writers * sum(1 for n in range(each) if n % 3 != 2)
    assert [e.sequence for e in entries] == list(range(1, committed + 1))
    assert {e.subject for e in entries} == {f"test/{w}-{n}" for w in range(writers)
                                           for n in range(each) if n % 3 != 2}
    previous = GENESIS
    for entry in entries:
        assert f'"previous_sha256":"{previous}"' in entry.body
        assert f'"sequence":{entry.sequence}' in entry.body
        previous = entry.body_sha256
