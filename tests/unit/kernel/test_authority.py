"""Rows that carry authority against the audit entries that wrote them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    text,
)

from kernel.audit import Actor, AuditLog, audit_table
from kernel.authority import (
    FIELDS_CHANGED,
    NO_ENTRY,
    ROW_MISSING,
    SUPERSEDED_ENTRY,
    WRONG_ENTRY,
    AuthorityEntries,
    AuthorityRecords,
    AuthorityTable,
    FieldKind,
    adopt_unreferenced_rows,
    check_authority,
    row_digest,
)
from kernel.chinatime import CHINA

metadata = MetaData()
log_table = audit_table(metadata)
permits = Table(
    "permits", metadata,
    Column("number", String(20), primary_key=True),
    Column("holder", String(20), nullable=False),
    Column("document", LargeBinary, nullable=False),
    Column("revoked", Boolean, nullable=False),
    Column("issued_at", String(40), nullable=False),
    Column("audit_sequence", BigInteger, nullable=True),
)
PERMITS = AuthorityTable(permits, key="number", fields={
    "number": FieldKind.TEXT, "holder": FieldKind.TEXT, "document": FieldKind.BYTES,
    "revoked": FieldKind.FLAG, "issued_at": FieldKind.INSTANT})
ACTOR = Actor("operator", "ZWFWZX-004")
AT = datetime(2026, 3, 5, 2, 0, tzinfo=UTC)


@pytest.fixture
def connection() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.connect() as connection:
        yield connection


def _issue(connection: Connection, number: str) -> int:
    connection.execute(permits.insert().values(
        number=number, holder="H-1", document=b"doc " + number.encode(), revoked=False,
        issued_at=AT.isoformat()))
    return AuthorityRecords(connection, AuditLog(connection, log_table)).record(
        PERMITS, number, actor=ACTOR, action="permit.issued", subject=f"permit/{number}",
        details={"number": number})


def _revoke(connection: Connection, number: str) -> int:
    connection.execute(permits.update().where(permits.c.number == number).values(revoked=True))
    return AuthorityRecords(connection, AuditLog(connection, log_table)).record(
        PERMITS, number, actor=ACTOR, action="permit.revoked", subject=f"permit/{number}")


def _problems(connection: Connection) -> list[tuple[str, str, int]]:
    entries = AuthorityEntries()
    for entry in AuditLog(connection, log_table).stream():
        entries.see(entry)
    _, mismatches = check_authority(connection, [PERMITS], entries)
    return [(m.key, m.problem, m.audit_sequence) for m in mismatches]


def test_rows_written_through_their_audit_entries_check_out(connection: Connection) -> None:
    first, second = _issue(connection, "P-1"), _issue(connection, "P-2")
    revoked = _revoke(connection, "P-1")
    entries = AuthorityEntries()
    for entry in AuditLog(connection, log_table).stream():
        entries.see(entry)
    checked, mismatches = check_authority(connection, [PERMITS], entries)
    assert (checked, mismatches) == (2, [])
    rows = {r.number: r.audit_sequence
            for r in connection.execute(permits.select().order_by(permits.c.number))}
    assert rows == {"P-1": revoked, "P-2": second}
    assert entries.newest == {"permits/P-1": revoked, "permits/P-2": second}
    assert first in entries.digests
    assert AuditLog(connection, log_table).verify().intact


@pytest.mark.parametrize(("edit", "problem"), [
    ("UPDATE permits SET revoked = 1 WHERE number = 'P-1'", FIELDS_CHANGED),
    ("UPDATE permits SET holder = 'H-2' WHERE number = 'P-1'", FIELDS_CHANGED),
    ("UPDATE permits SET document = x'00' WHERE number = 'P-1'", FIELDS_CHANGED),
    ("UPDATE permits SET issued_at = '2027-01-01T00:00:00+00:00' WHERE number = 'P-1'",
     FIELDS_CHANGED),
    ("UPDATE permits SET audit_sequence = NULL WHERE number = 'P-1'", NO_ENTRY),
    ("UPDATE permits SET audit_sequence = 2 WHERE number = 'P-1'", WRONG_ENTRY),
    ("UPDATE permits SET audit_sequence = 99 WHERE number = 'P-1'", WRONG_ENTRY),
])
def test_a_row_edited_in_the_database_is_named(connection: Connection, edit: str,
                                              problem: str) -> None:
    _issue(connection, "P-1")
    _issue(connection, "P-2")
    connection.execute(text(edit))
    [(key, found, _)] = _problems(connection)
    assert (key, found) == ("P-1", problem)


def test_a_revocation_undone_with_the_earlier_entry_is_named(connection: Connection) -> None:
    issued = _issue(connection, "P-1")
    revoked = _revoke(connection, "P-1")
    # Everything as it was before the revocation, the row naming the issuing entry again.
    connection.execute(text("UPDATE permits SET revoked = 0, audit_sequence = :s"),
                       {"s": issued})
    assert _problems(connection) == [("P-1", SUPERSEDED_ENTRY, issued)]
    assert revoked > issued


def test_a_deleted_row_and_a_row_inserted_behind_the_service_are_named(
        connection: Connection) -> None:
    issued = _issue(connection, "P-1")
    connection.execute(text("DELETE FROM permits WHERE number = 'P-1'"))
    connection.execute(permits.insert().values(number="P-9", holder="H-9", document=b"x",
                                               revoked=False, issued_at=AT.isoformat()))
    assert _problems(connection) == [("P-9", NO_ENTRY, 0), ("P-1", ROW_MISSING, issued)]


def test_an_instant_digests_the_same_as_text_or_as_a_datetime() -> None:
    values = {"number": "P-1", "holder": "H", "document": b"d", "revoked": False}
    as_text = row_digest(PERMITS, "P-1", values | {"issued_at": "2026-03-05T02:00:00+00:00"})
    naive_text = row_digest(PERMITS, "P-1", values | {"issued_at": "2026-03-05 02:00:00.000000"})
    as_datetime = row_digest(PERMITS, "P-1", values | {
        "issued_at": AT.astimezone(CHINA)})
    assert as_text == naive_text == as_datetime
    later = row_digest(PERMITS, "P-1", values | {"issued_at": AT + timedelta(microseconds=1)})
    assert later != as_text
    assert row_digest(PERMITS, "P-1", values | {"issued_at": "garbage"}) != as_text


def test_rows_from_before_the_cross_check_are_adopted_once(connection: Connection) -> None:
    for number in ("P-1", "P-2"):
        connection.execute(permits.insert().values(
            number=number, holder="H", document=b"d", revoked=False, issued_at=AT.isoformat()))
    log = AuditLog(connection, log_table)
    adopted = adopt_unreferenced_rows(connection, log, [PERMITS], at=AT)
    again = adopt_unreferenced_rows(connection, log, [PERMITS], at=AT)
    assert (adopted, again) == (1, 0)
    assert _problems(connection) == []
    assert [e["action"] for e in log.entries()] == ["authority_rows.adopted"]


def test_recording_a_row_that_was_not_written_is_a_bug(connection: Connection) -> None:
    with pytest.raises(LookupError, match="write the row first"):
        AuthorityRecords(connection, AuditLog(connection, log_table)).record(
            PERMITS, "P-404", actor=ACTOR, action="permit.issued", subject="permit/P-404")
