"""The tamper-evident audit log every service keeps: a hash chain.

Each entry stores the hash of the one before it and its own hash over its
content, so editing, deleting or reordering any row breaks the chain at
that row, and ``verify`` names the first broken link. The hash covers
``recorded_at`` as the text stored (kernel.instants), so entries written
before that column type verify as they were hashed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
    type_coerce,
)

from kernel.instants import UtcDateTime, utc_text

GENESIS = "0" * 64


def audit_table(metadata: MetaData) -> Table:
    """The audit log's table, added to a service's metadata."""
    return Table(
        "audit_log",
        metadata,
        Column("sequence", BigInteger, primary_key=True,
               autoincrement=False),
        Column("recorded_at", UtcDateTime, nullable=False),
        Column("system", String(100), nullable=False),
        Column("official_id", String(40), nullable=False),
        Column("action", String(100), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("details", Text, nullable=False),
        Column("previous_hash", String(64), nullable=False),
        Column("entry_hash", String(64), nullable=False, unique=True),
    )


@dataclass(frozen=True)
class Actor:
    """Who did it: the calling system and the official it asserted."""

    system: str
    official_id: str = ""


@dataclass(frozen=True)
class Verification:
    intact: bool
    entries: int
    first_broken_sequence: int
    reason: str
    head_hash: str


def _entry_hash(row: dict[str, Any]) -> str:
    content = {key: row[key] for key in (
        "sequence", "recorded_at", "system", "official_id", "action", "subject", "details",
        "previous_hash")}
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AuditLog:
    """Appends to and verifies one service's audit log, inside a unit of work."""

    def __init__(self, connection: Connection, table: Table) -> None:
        self._connection = connection
        self._table = table

    def append(self, *, actor: Actor, action: str, subject: str,
               details: dict[str, Any] | None = None,
               at: datetime | None = None) -> int:
        """Add one entry after the current head; returns its sequence number.

        ``details`` must hold no personal data: identifiers and codes only.
        """
        if self._connection.dialect.name == "postgresql":
            # Serialises appenders on this log for the rest of the transaction.
            self._connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext('govhall_audit'))"))
        head = self._connection.execute(
            select(self._table.c.sequence, self._table.c.entry_hash)
            .order_by(self._table.c.sequence.desc()).limit(1)
        ).first()
        sequence = (head.sequence + 1) if head else 1
        recorded_at = at or datetime.now(UTC)
        row: dict[str, Any] = {
            "sequence": sequence,
            "recorded_at": utc_text(recorded_at),
            "system": actor.system,
            "official_id": actor.official_id,
            "action": action,
            "subject": subject,
            "details": json.dumps(details or {}, sort_keys=True, ensure_ascii=False),
            "previous_hash": head.entry_hash if head else GENESIS,
        }
        row["entry_hash"] = _entry_hash(row)
        self._connection.execute(self._table.insert().values(**row | {"recorded_at": recorded_at}))
        return sequence

    def entries(self, *, subject: str | None = None) -> list[dict[str, Any]]:
        query = select(self._table).order_by(self._table.c.sequence)
        if subject is not None:
            query = query.where(self._table.c.subject == subject)
        return [dict(row._mapping) for row in self._connection.execute(query)]

    def verify(self) -> Verification:
        """Walk the chain from the start; stop at the first broken link."""
        expected_previous = GENESIS
        expected_sequence = 1
        count = 0
        stored = [type_coerce(c, String).label(c.name) if c.name == "recorded_at" else c
                  for c in self._table.c]
        for row in self._connection.execute(select(*stored).order_by(self._table.c.sequence)):
            entry = dict(row._mapping)
            sequence = entry["sequence"]
            reason = ""
            if sequence != expected_sequence:
                reason = (f"entry {sequence} follows entry {expected_sequence - 1}: "
                          "entries are missing or renumbered")
            elif entry["previous_hash"] != expected_previous:
                reason = f"entry {sequence} does not link to the hash of entry {sequence - 1}"
            elif _entry_hash(entry) != entry["entry_hash"]:
                reason = f"entry {sequence} was changed after it was written"
            if reason:
                return Verification(False, count, sequence, reason, expected_previous)
            expected_previous = entry["entry_hash"]
            expected_sequence += 1
            count += 1
        return Verification(True, count, 0, "", expected_previous)
