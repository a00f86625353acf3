"""Review's audit trail: its log, its checkpoint feed, and the rows that carry authority.

A recorded decision (review, sign, seal, extension) and a delegation of
signing authority name the audit entry that last changed them, whose details
hold the digest of the fields below (kernel.authority). A decision's
``statement`` (the signed statement review kept) is not among them: it is
protected by its own signature and names the fields that are, and decisions
recorded before it existed were adopted (revision 0004) without it.
"""

from __future__ import annotations

from kernel.audittrail import AuditTrail
from kernel.authority import AuthorityTable, FieldKind
from services.review.db import tables

DECISIONS = AuthorityTable(tables.decisions, key="id", fields={
    "case_number": FieldKind.TEXT,
    "stage": FieldKind.TEXT,
    "outcome": FieldKind.TEXT,
    "official_id": FieldKind.TEXT,
    "system": FieldKind.TEXT,
    "decided_at": FieldKind.INSTANT,
    "opinion": FieldKind.TEXT,
    "legal_basis": FieldKind.TEXT,
    "on_behalf_of": FieldKind.TEXT,
    "delegation_id": FieldKind.TEXT,
    "recorded_at": FieldKind.INSTANT,
})

DELEGATIONS = AuthorityTable(tables.delegations, key="id", fields={
    "leader_id": FieldKind.TEXT,
    "deputy_id": FieldKind.TEXT,
    "department_code": FieldKind.TEXT,
    "valid_from": FieldKind.INSTANT,
    "valid_until": FieldKind.INSTANT,
    "reason": FieldKind.TEXT,
    "granted_at": FieldKind.INSTANT,
    "revoked_at": FieldKind.INSTANT,
    "revoked_by": FieldKind.TEXT,
    "revocation_reason": FieldKind.TEXT,
})

AUTHORITY_TABLES = (DECISIONS, DELEGATIONS)

AUDIT_TRAIL = AuditTrail(log=tables.audit_log, checkpoints=tables.audit_checkpoints,
                         officials=tables.officials, authority=AUTHORITY_TABLES)
