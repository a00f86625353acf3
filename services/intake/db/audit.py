"""Intake's audit trail: its log, its checkpoint feed, and the rows that carry authority.

A sealed decision is the center's act: its row names the audit entry that
last changed it (sealing, then a revocation), whose details hold the digest
of the fields below (kernel.authority). The revocation fields are part of
it, so a revocation flipped in the database is reported.
"""

from __future__ import annotations

from kernel.audittrail import AuditTrail
from kernel.authority import AuthorityTable, FieldKind
from services.intake.db import tables

SEALED_DECISIONS = AuthorityTable(tables.sealed_decisions, key="certificate_number", fields={
    "certificate_number": FieldKind.TEXT,
    "case_number": FieldKind.TEXT,
    "key_id": FieldKind.TEXT,
    "decision": FieldKind.TEXT,
    "document": FieldKind.BYTES,
    "signature": FieldKind.BYTES,
    "document_sha256": FieldKind.TEXT,
    "issued_at": FieldKind.INSTANT,
    "revoked": FieldKind.FLAG,
    "revocation_reason": FieldKind.TEXT,
    "revoked_at": FieldKind.INSTANT,
    "revoked_by": FieldKind.TEXT,
})

AUTHORITY_TABLES = (SEALED_DECISIONS,)

AUDIT_TRAIL = AuditTrail(log=tables.audit_log, checkpoints=tables.audit_checkpoints,
                         officials=tables.officials, authority=AUTHORITY_TABLES)
