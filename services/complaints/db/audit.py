"""Complaints's audit trail: its log and its checkpoint feed (no rows carry authority yet)."""

from __future__ import annotations

from kernel.audittrail import AuditTrail
from services.complaints.db import tables

AUDIT_TRAIL = AuditTrail(log=tables.audit_log, checkpoints=tables.audit_checkpoints,
                         officials=tables.officials)
