from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, MetaData, create_engine, text

from kernel.audit import GENESIS, Actor, AuditLog, audit_table

metadata = MetaData()
table = audit_table(metadata)
ACTOR = Actor("hall-window-system", "FGW-001")


@pytest.fixture
def session() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.connect() as session:
        log = AuditLog(session, table)
        for n in range(1, 6):
            log.append(actor=ACTOR, action="case.step", subject=f"case/{n}", details={"n": n})
        session.commit()
        yield session


def test_an_untouched_chain_is_intact(session: Connection) -> None:
    result = AuditLog(session, table).verify()
    assert result.intact
    assert result.entries == 5
    assert result.first_broken_sequence == 0
    entries = AuditLog(session, table).entries()
    assert entries[0]["previous_hash"] == GENESIS
    assert [e["previous_hash"] for e in entries[1:]] == [e["entry_hash"] for e in entries[:-1]]
    assert result.head_hash == entries[-1]["entry_hash"]


def test_an_edited_entry_is_named(session: Connection) -> None:
    session.execute(text("UPDATE audit_log SET details = '{\"n\": 99}' WHERE sequence = 3"))
    result = AuditLog(session, table).verify()
    assert not result.intact
    assert result.first_broken_sequence == 3
    assert "changed" in result.reason


def test_an_edited_entry_with_a_recomputed_hash_breaks_the_next_link(session: Connection) -> None:
    log = AuditLog(session, table)
    session.execute(text("UPDATE audit_log SET entry_hash = :h WHERE sequence = 2"),
                    {"h": "f" * 64})
    result = log.verify()
    assert result.first_broken_sequence == 2


def test_a_deleted_entry_is_named(session: Connection) -> None:
    session.execute(text("DELETE FROM audit_log WHERE sequence = 4"))
    result = AuditLog(session, table).verify()
    assert not result.intact
    assert result.first_broken_sequence == 5
    assert "missing" in result.reason


def test_a_deleted_tail_is_caught_by_the_head_hash(session: Connection) -> None:
    log = AuditLog(session, table)
    head_before = log.verify().head_hash
    session.execute(text("DELETE FROM audit_log WHERE sequence = 5"))
    after = log.verify()
    # Truncation leaves a valid shorter chain: the published head hash is what shows it.
    assert after.intact
    assert after.head_hash != head_before


def test_appending_continues_the_chain(session: Connection) -> None:
    log = AuditLog(session, table)
    assert log.append(actor=ACTOR, action="case.step", subject="case/6") == 6
    assert log.verify().entries == 6
    assert [e["sequence"] for e in log.entries(subject="case/6")] == [6]
