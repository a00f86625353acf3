"""The intake database: catalogue, directory copies, cases, sealed decisions, audit log."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from kernel.audit import audit_table
from kernel.checkpoints import audit_checkpoints_table
from kernel.db import sequences_table
from kernel.directory import departments_table, officials_table
from kernel.instants import UtcDateTime
from kernel.systems import calling_systems_table

metadata = MetaData()

approval_items = Table(
    "approval_items",
    metadata,
    Column("code", String(15), nullable=False),
    Column("version", Integer, nullable=False),
    Column("current", Boolean, nullable=False),
    Column("name", String(100), nullable=False),
    Column("department_code", String(12), nullable=False),
    Column("legal_limit_days", Integer, nullable=False),
    Column("promised_limit_days", Integer, nullable=False),
    Column("materials", Text, nullable=False),
    Column("special_procedures", Text, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("basis", Text, nullable=False),
    Column("published_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("code", "version"),
    Index("ix_approval_items_current_department", "current", "department_code", "code"),
)

departments = departments_table(metadata)
officials = officials_table(metadata)
audit_log = audit_table(metadata)
audit_checkpoints = audit_checkpoints_table(metadata)
calling_systems = calling_systems_table(metadata)

# ---- cases (art. 32 acceptance) and their timeline -------------------------------------

cases = Table(
    "cases",
    metadata,
    Column("case_number", String(20), primary_key=True),
    Column("system", String(100), nullable=False),
    Column("status", String(30), nullable=False),
    Column("outcome", String(30), nullable=False),
    Column("finding", String(30), nullable=False),
    Column("item_code", String(15), nullable=False),
    Column("item_version", Integer, nullable=False),
    Column("item_name", String(100), nullable=False),
    Column("department_code", String(12), nullable=False),
    #: The applicant's personal data, Fernet-encrypted (services/intake/keystore.py).
    Column("applicant", Text, nullable=False),
    #: The materials as last found at the window, JSON.
    Column("materials", Text, nullable=False),
    Column("clerk_id", String(20), nullable=False),
    Column("submitted_at", UtcDateTime, nullable=False),
    Column("accepted_by", String(20), nullable=True),
    Column("accepted_at", UtcDateTime, nullable=True),
    Column("accepted_on", String(10), nullable=True),
    Column("closed_at", UtcDateTime, nullable=True),
    Column("withdrawal_reason", Text, nullable=True),
    Column("workflow_started", Boolean, nullable=False),
    Column("sla_state", String(20), nullable=False),
    Column("warning_at", UtcDateTime, nullable=True),
    Column("promised_due_at", UtcDateTime, nullable=True),
    Column("legal_due_at", UtcDateTime, nullable=True),
    Column("calendar_gap_year", Integer, nullable=False),
    Column("certificate_number", String(20), nullable=True),
    Index("ix_cases_status_workflow_started", "status", "workflow_started"),
)

#: One row per (calling system, idempotency key): the request it stood for and its answer.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("system", String(100), nullable=False),
    Column("idempotency_key", String(64), nullable=False),
    Column("operation", String(20), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("case_number", String(20), nullable=False),
    Column("outcome", String(30), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("system", "idempotency_key"),
)

notices = Table(
    "notices",
    metadata,
    Column("notice_number", String(30), primary_key=True),
    Column("case_number", String(20), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("issued_on", String(10), nullable=False),
    Column("text", Text, nullable=False),
    Column("items", Text, nullable=False),
    Column("competent_authority", String(100), nullable=False),
    Column("reasons", Text, nullable=False),
    # A case gets one notice of each kind: a second correction notice is a defect.
    UniqueConstraint("case_number", "kind", name="uq_notices_case_kind"),
)

case_events = Table(
    "case_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_number", String(20), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("kind", String(60), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("stage", String(20), nullable=False),
    Column("official_id", String(20), nullable=False),
    Column("details", Text, nullable=False),
    Column("deadlines", Text, nullable=True),
    Column("status", String(30), nullable=False),
    Column("sla_state", String(20), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    UniqueConstraint("case_number", "event_id", name="uq_case_events_case_event"),
    Index("ix_case_events_case_at", "case_number", "at"),
)

#: Running numbers: cases per China day ("AP-20260105"), certificates per year ("SY-2026").
sequences = sequences_table(metadata)

# ---- the seal, sealed decisions and the public register ---------------------------------

seal_keys = Table(
    "seal_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("public_key", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("active", Boolean, nullable=False),
)

sealed_decisions = Table(
    "sealed_decisions",
    metadata,
    Column("certificate_number", String(20), primary_key=True),
    Column("case_number", String(20), nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("decision", String(10), nullable=False),
    Column("document", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("document_sha256", String(64), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("revoked", Boolean, nullable=False),
    Column("revocation_reason", Text, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("revoked_by", String(20), nullable=True),
    #: The audit entry that last changed the row (kernel.authority).
    Column("audit_sequence", BigInteger, nullable=True),
    # One decision per case: a retried sealing finds it instead of issuing a second number.
    UniqueConstraint("case_number", name="uq_sealed_decisions_case_number"),
)

#: The public register: anonymised, read with a cursor (the sequence of the last entry read).
register_entries = Table(
    "register_entries",
    metadata,
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(10), nullable=False),
    Column("certificate_number", String(20), nullable=False),
    Column("case_number", String(20), nullable=False),
    Column("item_code", String(15), nullable=False),
    Column("item_name", String(100), nullable=False),
    Column("department_code", String(12), nullable=False),
    Column("decision", String(10), nullable=False),
    Column("holder", String(20), nullable=False),
    #: The sealed document's own texts of its decision and issue times, copied verbatim.
    Column("decided_at", String(40), nullable=False),
    Column("issued_at", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)
