"""The tamper-evident audit log every service keeps: a hash chain.

Each entry stores the hash of the one before it and its own hash over its
content, so editing, deleting or reordering any row breaks the chain at
that row, and ``verify`` names the first broken link. The hash covers
``recorded_at`` as the text stored (kernel.instants), so entries written
before that column type verify as they were hashed; whatever reads entries
to hash them (``stream``, ``after``: the verifier, the export) reads that
text, not the instant it names.

The chain alone cannot see a rewrite that recomputes every hash from the
edited entry on, nor a cut tail: both leave a valid, different chain. What
sees them is a *checkpoint*, the service's signature over the head at some
moment (kernel.checkpoints). Given the checkpoints' claims, ``verify_entries``
also checks that every checkpointed sequence still has its signed hash and
that the log is not shorter than the newest checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    Select,
    String,
    Table,
    Text,
    select,
    text,
    type_coerce,
)

from kernel.db import insert_rows
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
class AuditEntry:
    """One entry to append: who did what to which subject, when (now when ``at`` is None)."""

    actor: Actor
    action: str
    subject: str
    details: dict[str, Any] | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class CheckpointClaim:
    """What a validly signed checkpoint vouches for: entry ``sequence`` hashed to ``head_hash``."""

    number: int
    sequence: int
    head_hash: str
    signed_at: str


@dataclass(frozen=True)
class RefusedCheckpoint:
    """A checkpoint that vouches for nothing: forged, signed by another key, or malformed."""

    number: int
    sequence: int
    key_id: str
    reason: str


@dataclass(frozen=True)
class RowMismatch:
    """A row that carries authority and disagrees with the audit log (kernel.authority)."""

    table: str
    key: str
    audit_sequence: int
    #: One of kernel.authority.PROBLEMS.
    problem: str
    reason: str


@dataclass(frozen=True)
class Verification:
    intact: bool
    entries: int
    first_broken_sequence: int
    reason: str
    head_hash: str
    #: Valid checkpoints compared with the chain.
    checkpoints_checked: int = 0
    #: The newest sequence a valid checkpoint vouches for.
    checkpointed_sequence: int = 0
    refused_checkpoints: tuple[RefusedCheckpoint, ...] = ()
    #: After a checkpoint mismatch: the first entry after the last checkpoint that matched.
    suspect_from_sequence: int = 0
    authority_rows_checked: int = 0
    mismatched_rows: tuple[RowMismatch, ...] = ()


#: The fields an entry's hash covers, in the order of the hashed JSON object (sorted).
HASHED_FIELDS = ("action", "details", "official_id", "previous_hash", "recorded_at", "sequence",
                 "subject", "system")


#: Every column of an entry's row, in the order append_all writes them.
_STORED_COLUMNS = (*HASHED_FIELDS, "entry_hash")


def entry_hash(row: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the entry's hashed fields as canonical JSON.

    Keys sorted, no whitespace, UTF-8, non-ASCII as itself; ``sequence`` is a
    number and every other field a string. For these values this is the
    RFC 8785 canonical form (docs/audit-verification.md).
    """
    content = {key: row[key] for key in HASHED_FIELDS}
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()



def verify_entries(entries: Iterable[Mapping[str, Any]],
                   checkpoints: Sequence[CheckpointClaim] = ()) -> Verification:
    """Walk the entries in sequence order; stop at the first broken link.

    ``checkpoints`` are claims of checkpoints whose signatures were already
    checked. Each checkpointed sequence must still hold the signed hash (a
    rewrite that recomputed every later hash fails here), and the log must
    reach the newest checkpoint (a cut tail fails here).
    """
    signed: dict[int, list[CheckpointClaim]] = {}
    for claim in checkpoints:
        signed.setdefault(claim.sequence, []).append(claim)
    newest = max(checkpoints, key=lambda c: (c.sequence, c.number), default=None)

    def result(sequence: int, reason: str, head_hash: str, count: int,
               suspect: int = 0) -> Verification:
        return Verification(
            intact=not reason, entries=count, first_broken_sequence=sequence, reason=reason,
            head_hash=head_hash, checkpoints_checked=len(checkpoints),
            checkpointed_sequence=newest.sequence if newest else 0,
            suspect_from_sequence=suspect)

    for claim in signed.get(0, ()):
        if claim.head_hash != GENESIS:
            return result(1, f"checkpoint #{claim.number} signed at {claim.signed_at} says the "
                          "log was empty, with a hash other than the genesis hash", GENESIS, 0, 1)
    expected_previous = GENESIS
    expected_sequence = 1
    confirmed = 0  # the last checkpointed sequence found as signed
    count = 0
    for entry in entries:
        sequence = entry["sequence"]
        reason = ""
        suspect = 0
        if sequence != expected_sequence:
            reason = (f"entry {sequence} follows entry {expected_sequence - 1}: "
                      "entries are missing or renumbered")
        elif entry["previous_hash"] != expected_previous:
            reason = f"entry {sequence} does not link to the hash of entry {sequence - 1}"
        elif entry_hash(entry) != entry["entry_hash"]:
            reason = f"entry {sequence} was changed after it was written"
        else:
            for claim in signed.get(sequence, ()):
                if claim.head_hash != entry["entry_hash"]:
                    suspect = confirmed + 1
                    reason = (f"entry {sequence} is not the entry checkpoint #{claim.number} "
                              f"signed at {claim.signed_at}: the log was rewritten, hashes "
                              f"recomputed, somewhere in entries {suspect} to {sequence}")
                    break
            else:
                if sequence in signed:
                    confirmed = sequence
        if reason:
            return result(sequence, reason, expected_previous, count, suspect)
        expected_previous = entry["entry_hash"]
        expected_sequence += 1
        count += 1
    if newest is not None and newest.sequence >= expected_sequence:
        return result(expected_sequence, (
            f"the log ends at entry {expected_sequence - 1} but checkpoint #{newest.number} "
            f"signed entry {newest.sequence} at {newest.signed_at}: entries "
            f"{expected_sequence} to {newest.sequence} were cut off"), expected_previous,
            count, expected_sequence)
    return result(0, "", expected_previous, count)


#: The statement reading each audit table's head, built once per table.
_HEADS: dict[Table, Any] = {}


def _head_of(table: Table) -> Any:
    statement = _HEADS.get(table)
    if statement is None:
        statement = select(table.c.sequence, table.c.entry_hash).order_by(
            table.c.sequence.desc()).limit(1)
        _HEADS[table] = statement
    return statement


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
        return self.append_all([AuditEntry(actor=actor, action=action, subject=subject,
                                           details=details, at=at)])[0]

    def append_all(self, entries: Sequence[AuditEntry]) -> list[int]:
        """Add ``entries`` after the current head, in order; returns their sequence numbers.

        One read of the head and one insert for them all: a batch of pushes taken in
        one transaction chains its entries here rather than re-reading the head each.
        """
        if not entries:
            return []
        if self._connection.dialect.name == "postgresql":
            # Serialises appenders on this log for the rest of the transaction.
            self._connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext('govhall_audit'))"))
        head = self._connection.execute(_head_of(self._table)).first()
        sequence = head.sequence if head else 0
        previous_hash = head.entry_hash if head else GENESIS
        # One pass over the batch: each entry's hash chains on the one before, and its row
        # goes to the driver as stored (recorded_at as the very text hashed).
        rows: list[tuple[Any, ...]] = []
        for entry in entries:
            sequence += 1
            row: dict[str, Any] = {
                "sequence": sequence,
                "recorded_at": utc_text(entry.at or datetime.now(UTC)),
                "system": entry.actor.system,
                "official_id": entry.actor.official_id,
                "action": entry.action,
                "subject": entry.subject,
                "details": json.dumps(entry.details or {}, sort_keys=True, ensure_ascii=False),
                "previous_hash": previous_hash,
            }
            row["entry_hash"] = previous_hash = entry_hash(row)
            rows.append(tuple(row[name] for name in _STORED_COLUMNS))
        insert_rows(self._connection, self._table, _STORED_COLUMNS, rows)
        return list(range(sequence - len(rows) + 1, sequence + 1))

    def entries(self, *, subject: str | None = None) -> list[dict[str, Any]]:
        query = select(self._table).order_by(self._table.c.sequence)
        if subject is not None:
            query = query.where(self._table.c.subject == subject)
        return [dict(row._mapping) for row in self._connection.execute(query)]

    def head(self) -> tuple[int, str]:
        """The sequence and hash of the newest entry; (0, GENESIS) for an empty log."""
        head = self._connection.execute(
            select(self._table.c.sequence, self._table.c.entry_hash)
            .order_by(self._table.c.sequence.desc()).limit(1)).first()
        return (int(head.sequence), str(head.entry_hash)) if head else (0, GENESIS)

    def _as_stored(self) -> Select[Any]:
        """Every column, ``recorded_at`` as its stored text (the text the hash covers)."""
        return select(*[type_coerce(c, String).label(c.name) if c.name == "recorded_at" else c
                        for c in self._table.c])

    def after(self, sequence: int, *, limit: int) -> list[dict[str, Any]]:
        """The entries after ``sequence``, oldest first, exactly as stored."""
        query = (self._as_stored().where(self._table.c.sequence > sequence)
                 .order_by(self._table.c.sequence).limit(limit))
        return [dict(row._mapping) for row in self._connection.execute(query)]

    def stream(self) -> Iterator[dict[str, Any]]:
        """Every entry, oldest first, exactly as stored, read as the caller goes."""
        query = self._as_stored().order_by(self._table.c.sequence)
        for row in self._connection.execute(query):
            yield dict(row._mapping)

    def verify(self, *, checkpoints: Sequence[CheckpointClaim] = ()) -> Verification:
        """Walk the chain from the start; stop at the first broken link."""
        return verify_entries(self.stream(), checkpoints)
