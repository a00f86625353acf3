from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest
import rfc8785
from sqlalchemy import Connection, MetaData, create_engine, text

from kernel.audit import GENESIS, Actor, AuditLog, CheckpointClaim, audit_table, entry_hash
from tests.audit_tampering import recomputed_hash, rewrite

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


def test_an_edited_entry_with_only_its_own_hash_recomputed_breaks_the_next_link(
        session: Connection) -> None:
    session.execute(text("UPDATE audit_log SET details = '{\"n\": 99}' WHERE sequence = 2"))
    # As stored: the hash covers recorded_at's stored text, not the instant it names.
    edited = {**AuditLog(session, table).after(1, limit=1)[0], "details": '{"n": 99}'}
    session.execute(text("UPDATE audit_log SET entry_hash = :h WHERE sequence = 2"),
                    {"h": recomputed_hash(edited)})
    result = AuditLog(session, table).verify()
    assert not result.intact
    assert result.first_broken_sequence == 3
    assert "does not link" in result.reason


def test_a_rewrite_that_recomputes_every_later_hash_needs_a_checkpoint_to_be_seen(
        session: Connection) -> None:
    log = AuditLog(session, table)
    before = {e["sequence"]: e["entry_hash"] for e in log.entries()}
    kept = [CheckpointClaim(1, 2, before[2], "t1"), CheckpointClaim(2, 4, before[4], "t2")]
    assert log.verify(checkpoints=kept).intact

    rewrite(session, sequence=3, details='{"n": 99}')
    chain_alone = log.verify()
    with_checkpoints = log.verify(checkpoints=kept)

    # Every link holds, so the chain alone calls the rewritten log intact...
    assert chain_alone.intact
    assert chain_alone.head_hash != before[5]
    assert AuditLog(session, table).entries()[2]["details"] == '{"n": 99}'
    # ...and the signed head at entry 4 no longer matches; entry 2's still does.
    assert not with_checkpoints.intact
    assert with_checkpoints.first_broken_sequence == 4
    assert with_checkpoints.suspect_from_sequence == 3
    assert "checkpoint #2" in with_checkpoints.reason
    assert with_checkpoints.checkpoints_checked == 2


def test_a_rewrite_after_the_newest_checkpoint_is_not_seen_by_it(session: Connection) -> None:
    log = AuditLog(session, table)
    head = log.entries()[2]
    kept = [CheckpointClaim(1, 3, head["entry_hash"], "t1")]
    rewrite(session, sequence=4, details='{"n": 99}')
    # What a checkpoint cannot vouch for: entries written after it.
    assert log.verify(checkpoints=kept).intact


def test_a_deleted_entry_is_named(session: Connection) -> None:
    session.execute(text("DELETE FROM audit_log WHERE sequence = 4"))
    result = AuditLog(session, table).verify()
    assert not result.intact
    assert result.first_broken_sequence == 5
    assert "missing" in result.reason


def test_a_cut_tail_is_seen_only_with_a_checkpoint(session: Connection) -> None:
    log = AuditLog(session, table)
    head_before = log.verify().head_hash
    kept = [CheckpointClaim(1, 5, head_before, "t1")]
    session.execute(text("DELETE FROM audit_log WHERE sequence >= 4"))
    after = log.verify()
    checked = log.verify(checkpoints=kept)
    # Truncation leaves a valid shorter chain...
    assert after.intact
    assert after.head_hash != head_before
    # ...shorter than the signed head.
    assert not checked.intact
    assert checked.first_broken_sequence == 4
    assert "cut off" in checked.reason
    assert checked.checkpointed_sequence == 5


def test_a_cut_and_renumbered_log_is_seen_by_a_checkpoint(session: Connection) -> None:
    log = AuditLog(session, table)
    kept = [CheckpointClaim(1, 4, log.entries()[3]["entry_hash"], "t1")]
    session.execute(text("DELETE FROM audit_log WHERE sequence = 2"))
    for sequence in (3, 4, 5):
        session.execute(text("UPDATE audit_log SET sequence = :new WHERE sequence = :old"),
                        {"new": sequence - 1, "old": sequence})
    rewrite(session, sequence=2, details=None)
    assert log.verify().intact
    result = log.verify(checkpoints=kept)
    assert not result.intact
    assert result.first_broken_sequence == 4


def test_a_checkpoint_of_an_empty_log_must_hold_the_genesis_hash(session: Connection) -> None:
    result = AuditLog(session, table).verify(checkpoints=[CheckpointClaim(1, 0, "e" * 64, "t")])
    assert not result.intact
    assert result.first_broken_sequence == 1
    assert AuditLog(session, table).verify(
        checkpoints=[CheckpointClaim(1, 0, GENESIS, "t")]).intact


@pytest.mark.parametrize("value", ["plain", "中文 and 𝄞", "quote \" back \\ slash",
                                   "\x00\x01\x1f\x7f control", "\u2028\u2029 separators",
                                   "tab\tnew\nline\rcr\bbs\fff", "é composed"])
def test_the_entry_hash_is_sha256_of_rfc8785_canonical_json(value: str) -> None:
    entry: dict[str, str | int] = {
        "sequence": 12345, "recorded_at": "2026-03-05T02:00:00+00:00", "system": value,
        "official_id": "FGW-001", "action": value, "subject": value,
        "details": json.dumps({"k": value}, ensure_ascii=False), "previous_hash": GENESIS}
    assert entry_hash(entry) == hashlib.sha256(rfc8785.dumps(entry)).hexdigest()


def test_appending_continues_the_chain(session: Connection) -> None:
    log = AuditLog(session, table)
    assert log.append(actor=ACTOR, action="case.step", subject="case/6") == 6
    assert log.verify().entries == 6
    assert [e["sequence"] for e in log.entries(subject="case/6")] == [6]
