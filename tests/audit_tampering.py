"""What an attacker holding a service's database does to its audit log.

The hash is written here independently of kernel.audit, as
docs/audit-verification.md defines it, so the tests also hold the code to
the documented algorithm.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import rfc8785
from sqlalchemy import Connection, text

GENESIS = "0" * 64
HASHED = ("sequence", "recorded_at", "system", "official_id", "action", "subject", "details",
          "previous_hash")


def recomputed_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 over the RFC 8785 canonical JSON of the entry's eight hashed fields."""
    return hashlib.sha256(rfc8785.dumps({k: entry[k] for k in HASHED})).hexdigest()


def rewrite(connection: Connection, *, sequence: int, details: str | None) -> None:
    """Edit entry ``sequence``'s details (None: leave them) and recompute its hash and every
    later one, so that every link of the chain holds again."""
    if details is not None:
        connection.execute(text("UPDATE audit_log SET details = :d WHERE sequence = :s"),
                           {"d": details, "s": sequence})
    rows = [dict(r._mapping) for r in connection.execute(
        text("SELECT * FROM audit_log WHERE sequence >= :s ORDER BY sequence"), {"s": sequence})]
    previous = connection.execute(text("SELECT entry_hash FROM audit_log WHERE sequence = :s"),
                                  {"s": sequence - 1}).scalar() or GENESIS
    for row in rows:
        row["previous_hash"] = previous
        previous = recomputed_hash(row)
        connection.execute(text("UPDATE audit_log SET previous_hash = :p, entry_hash = :h "
                                "WHERE sequence = :s"),
                           {"p": row["previous_hash"], "h": previous, "s": row["sequence"]})
