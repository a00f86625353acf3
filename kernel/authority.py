"""Rows that carry authority, tied to the audit entries that wrote them.

A sealed decision, a recorded decision, a delegation: such a row *is* the
authority, and the hash chain covers only the audit log, so an edit of the
row in the database (a revocation flipped back, an outcome changed) would go
unseen. Each such row therefore names, in its ``audit_sequence`` column, the
audit entry that last changed it, and that entry's details carry a digest of
the row's authority-carrying fields as they were written::

    details["authority_rows"] = {"<table>/<key>": "<hex SHA-256>", ...}

The digest is SHA-256 over the RFC 8785 canonical JSON of
``{"table": <table>, "key": <key as text>, "fields": {<name>: <value>, ...}}``,
each field normalised by its kind: text as is, instants as UTC
``YYYY-MM-DDTHH:MM:SS.ffffffZ``, flags as booleans, numbers as integers,
bytes as the hex SHA-256 of their content, missing values as null.

``check_authority`` then reports a row whose fields no longer match its
entry, a row that names no entry or an entry that is not about it, a row
that names an older entry than the newest one about it (a later change
undone), and an entry whose row is gone. The audit entries themselves are
protected by the chain and its signed checkpoints.

Each service lists its authority tables (``services/<name>/db/authority.py``),
and the code that writes such a row calls ``AuthorityRecords.record`` where
it would call ``AuditLog.append``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, TableClause, select, update

from kernel.audit import Actor, AuditLog, RowMismatch
from kernel.signing import canonical

#: The key of an audit entry's details that holds the digests of the rows it wrote.
AUTHORITY_ROWS = "authority_rows"

FIELDS_CHANGED = "fields_changed"
NO_ENTRY = "no_entry"
WRONG_ENTRY = "wrong_entry"
SUPERSEDED_ENTRY = "superseded_entry"
ROW_MISSING = "row_missing"
PROBLEMS = (FIELDS_CHANGED, NO_ENTRY, WRONG_ENTRY, SUPERSEDED_ENTRY, ROW_MISSING)


class FieldKind(StrEnum):
    TEXT = "text"
    INSTANT = "instant"
    FLAG = "flag"
    NUMBER = "number"
    BYTES = "bytes"


@dataclass(frozen=True)
class AuthorityTable:
    """A table whose rows carry authority, and which of its fields do."""

    table: TableClause
    #: The column that names a row.
    key: str
    fields: Mapping[str, FieldKind]
    #: The column that holds the sequence of the audit entry that last changed the row.
    audit_column: str = "audit_sequence"

    @property
    def name(self) -> str:
        return self.table.name

    def row_name(self, key: object) -> str:
        return f"{self.name}/{key}"


def _instant(value: Any) -> str:
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return f"unreadable:{value}"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalised(kind: FieldKind, value: Any) -> Any:
    """A field's value as the digest takes it."""
    if value is None:
        return None
    if kind == FieldKind.INSTANT:
        return _instant(value)
    if kind == FieldKind.FLAG:
        return bool(value)
    if kind == FieldKind.NUMBER:
        return int(value)
    if kind == FieldKind.BYTES:
        return hashlib.sha256(bytes(value)).hexdigest()
    return str(value)


def row_digest(spec: AuthorityTable, key: object, values: Mapping[Any, Any]) -> str:
    """The digest of a row's authority-carrying fields (module docstring)."""
    content = {"table": spec.name, "key": str(key),
               "fields": {name: normalised(kind, values[name])
                          for name, kind in spec.fields.items()}}
    return hashlib.sha256(canonical(content)).hexdigest()


class AuthorityRecords:
    """Writes the audit entry of a change to rows that carry authority, inside a unit of work."""

    def __init__(self, connection: Connection, audit: AuditLog) -> None:
        self._connection = connection
        self._audit = audit

    def _digest(self, spec: AuthorityTable, key: object) -> str:
        columns = [spec.table.c[name] for name in spec.fields]
        row = self._connection.execute(
            select(*columns).where(spec.table.c[spec.key] == key)).first()
        if row is None:
            raise LookupError(f"{spec.row_name(key)} does not exist: write the row first")
        return row_digest(spec, key, row._mapping)

    def record(self, spec: AuthorityTable, key: object, *, actor: Actor, action: str,
               subject: str, details: Mapping[str, Any] | None = None,
               at: datetime | None = None) -> int:
        """Append the audit entry of a change just written to one row; returns its sequence."""
        return self.record_many([(spec, key)], actor=actor, action=action, subject=subject,
                                details=details, at=at)

    def record_many(self, rows: Sequence[tuple[AuthorityTable, object]], *, actor: Actor,
                    action: str, subject: str, details: Mapping[str, Any] | None = None,
                    at: datetime | None = None) -> int:
        """One audit entry for changes just written to several rows; returns its sequence.

        The digests are taken from the rows as stored, so they are what a
        verifier reading the same rows will compute; each row then names
        the entry.
        """
        digests = {spec.row_name(key): self._digest(spec, key) for spec, key in rows}
        sequence = self._audit.append(actor=actor, action=action, subject=subject, at=at,
                                      details=dict(details or {}) | {AUTHORITY_ROWS: digests})
        for spec, key in rows:
            self._connection.execute(update(spec.table).where(spec.table.c[spec.key] == key)
                                     .values({spec.audit_column: sequence}))
        return sequence


@dataclass
class AuthorityEntries:
    """What the audit log says about rows that carry authority, gathered entry by entry."""

    #: The digests each entry recorded, by sequence.
    digests: dict[int, dict[str, str]] = field(default_factory=dict)
    #: The newest entry about each row, by row name.
    newest: dict[str, int] = field(default_factory=dict)

    def see(self, entry: Mapping[str, Any]) -> None:
        details = entry.get("details") or ""
        if AUTHORITY_ROWS not in details:
            return
        try:
            parsed = json.loads(details)
        except ValueError:
            return
        rows = parsed.get(AUTHORITY_ROWS) if isinstance(parsed, dict) else None
        if not isinstance(rows, dict):
            return
        sequence = int(entry["sequence"])
        self.digests[sequence] = {str(name): str(digest) for name, digest in rows.items()}
        for name in self.digests[sequence]:
            self.newest[name] = max(self.newest.get(name, 0), sequence)


def check_authority(connection: Connection, specs: Sequence[AuthorityTable],
                    entries: AuthorityEntries) -> tuple[int, list[RowMismatch]]:
    """How many rows were checked, and those that disagree with the audit log."""
    mismatches: list[RowMismatch] = []
    checked = 0
    present: set[str] = set()
    for spec in specs:
        columns = [spec.table.c[spec.key], spec.table.c[spec.audit_column],
                   *(spec.table.c[name] for name in spec.fields if name != spec.key)]
        for row in connection.execute(select(*columns).order_by(spec.table.c[spec.key])):
            checked += 1
            values = row._mapping
            key = values[spec.key]
            name = spec.row_name(key)
            present.add(name)
            sequence = values[spec.audit_column]
            newest = entries.newest.get(name, 0)
            if sequence is None:
                problem, at, reason = NO_ENTRY, newest, (
                    f"{name} names no audit entry: it was written outside the service")
            elif name not in entries.digests.get(int(sequence), {}):
                problem, at, reason = WRONG_ENTRY, int(sequence), (
                    f"{name} names audit entry {sequence}, which records no change to it")
            elif newest != sequence:
                problem, at, reason = SUPERSEDED_ENTRY, int(sequence), (
                    f"{name} names audit entry {sequence}, but entry {newest} changed it "
                    "later: that change was undone outside the service")
            elif entries.digests[int(sequence)][name] != row_digest(spec, key, values):
                problem, at, reason = FIELDS_CHANGED, int(sequence), (
                    f"{name} no longer matches audit entry {sequence}: its fields were "
                    "edited outside the service")
            else:
                continue
            mismatches.append(RowMismatch(spec.name, str(key), at, problem, reason))
    tables = {spec.name for spec in specs}
    for name, sequence in sorted(entries.newest.items(), key=lambda item: item[1]):
        table, _, key = name.partition("/")
        if table in tables and name not in present:
            mismatches.append(RowMismatch(table, key, sequence, ROW_MISSING, (
                f"audit entry {sequence} changed {name}, which no longer exists: the row "
                "was deleted outside the service")))
    return checked, mismatches


def adopt_unreferenced_rows(connection: Connection, audit: AuditLog,
                            specs: Sequence[AuthorityTable], *, at: datetime) -> int:
    """Give rows written before rows named their audit entries one entry that records them.

    For a migration that adds ``audit_sequence`` to a table with rows in it:
    the entry says what the rows held when they were adopted, no more.
    Returns the entry's sequence, or 0 when there was nothing to adopt.
    """
    rows: list[tuple[AuthorityTable, object]] = []
    for spec in specs:
        keys = connection.execute(select(spec.table.c[spec.key])
                                  .where(spec.table.c[spec.audit_column].is_(None))
                                  .order_by(spec.table.c[spec.key])).scalars()
        rows += [(spec, key) for key in keys]
    if not rows:
        return 0
    return AuthorityRecords(connection, audit).record_many(
        rows, actor=Actor("govhall-migrations"), action="authority_rows.adopted",
        subject="authority_rows", at=at, details={"rows": len(rows)})
