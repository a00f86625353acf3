"""The review database: directory, delegations, holidays, approval inbox and audit log."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from kernel.audit import audit_table
from kernel.checkpoints import audit_checkpoints_table
from kernel.directory import departments_table, officials_table
from kernel.handled_requests import handled_requests_table
from kernel.instants import UtcDateTime
from kernel.systems import calling_systems_table

metadata = MetaData()

departments = departments_table(metadata)
officials = officials_table(metadata)
audit_log = audit_table(metadata)
audit_checkpoints = audit_checkpoints_table(metadata)
calling_systems = calling_systems_table(metadata)

delegations = Table(
    "delegations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("leader_id", String(20), nullable=False),
    Column("deputy_id", String(20), nullable=False),
    Column("department_code", String(12), nullable=False),
    Column("valid_from", UtcDateTime, nullable=False),
    Column("valid_until", UtcDateTime, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("granted_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("revoked_by", String(20), nullable=False),
    Column("revocation_reason", String(200), nullable=False),
    #: The audit entry that last changed the row (kernel.authority).
    Column("audit_sequence", BigInteger, nullable=True),
    Index("ix_delegations_leader", "leader_id", "valid_until"),
    Index("ix_delegations_deputy", "deputy_id", "valid_until"),
    Index("ix_delegations_department", "department_code", "id"),
)

holiday_schedules = Table(
    "holiday_schedules",
    metadata,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("loaded_at", UtcDateTime, nullable=False),
    Column("loaded_by", String(20), nullable=False),
)

holiday_dates = Table(
    "holiday_dates",
    metadata,
    Column("year", Integer, ForeignKey("holiday_schedules.year"), nullable=False),
    Column("day", Date, nullable=False),
    #: "holiday" or "makeup_workday".
    Column("kind", String(20), nullable=False),
    PrimaryKeyConstraint("year", "day"),
)

#: One row per stage of a case waiting for (or given) a decision.
tasks = Table(
    "tasks",
    metadata,
    Column("case_number", String(40), nullable=False),
    Column("stage", String(10), nullable=False),
    Column("department_code", String(12), nullable=False),
    Column("role", String(20), nullable=False),
    Column("item_code", String(40), nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("claimed_by", String(20), nullable=False),
    Column("claimed_at", UtcDateTime, nullable=True),
    Column("closed_at", UtcDateTime, nullable=True),
    Column("closed_by", String(20), nullable=False),
    Column("outcome", String(20), nullable=False),
    PrimaryKeyConstraint("case_number", "stage"),
    # The inbox: a department's open tasks by due time.
    Index("ix_tasks_inbox", "department_code", "stage", "closed_at", "due_at", "case_number"),
)

#: The decisions made on cases, one per stage (and one extension), as recorded.
decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_number", String(40), nullable=False),
    #: "review", "sign", "seal" or "extension".
    Column("stage", String(10), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("official_id", String(20), nullable=False),
    Column("system", String(100), nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("opinion", Text, nullable=False),
    Column("legal_basis", Text, nullable=False),
    Column("on_behalf_of", String(20), nullable=False),
    Column("delegation_id", String(20), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    #: The audit entry that recorded the decision (kernel.authority).
    Column("audit_sequence", BigInteger, nullable=True),
    #: The decision as review signed it (JSON of the signed statement); empty before v2.
    Column("statement", Text, nullable=False, server_default=""),
    UniqueConstraint("case_number", "stage", name="uq_decisions_case_stage"),
)

#: Breached deadlines reported to the supervision desk, one per case and kind.
escalations = Table(
    "escalations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_number", String(40), nullable=False),
    Column("department_code", String(12), nullable=False),
    Column("stage", String(10), nullable=False),
    #: "promised_breach" or "legal_breach".
    Column("kind", String(20), nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime, nullable=True),
    UniqueConstraint("case_number", "kind", name="uq_escalations_case_kind"),
    Index("ix_escalations_department", "department_code", "id"),
)

#: Where each case of the approval chain stands, as review recorded it (GetCaseProgress).
case_progress = Table(
    "case_progress",
    metadata,
    Column("case_number", String(40), primary_key=True),
    Column("item_code", String(40), nullable=False),
    Column("department_code", String(12), nullable=False),
    Column("stage", String(10), nullable=False),
    Column("sla_state", String(10), nullable=False),
    Column("warning_at", UtcDateTime, nullable=False),
    Column("promised_due_at", UtcDateTime, nullable=False),
    Column("legal_due_at", UtcDateTime, nullable=False),
    Column("unknown_year", Integer, nullable=False),
    #: JSON: each stage's own due instant (ISO 8601).
    Column("stage_due_at", Text, nullable=False),
    Column("paused_for", String(30), nullable=False),
    Column("extension_days", Integer, nullable=False),
    Column("certificate_number", String(20), nullable=False),
    #: "approved", "refused" or "withdrawn"; empty while the case runs.
    Column("outcome", String(10), nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

#: The chain's timeline of each case: what happened, when, by whom (identifiers only).
case_events = Table(
    "case_events",
    metadata,
    Column("case_number", String(40), nullable=False),
    #: Unique within the case, so a retried activity records an event once.
    Column("event_id", String(120), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("stage", String(10), nullable=False),
    Column("official_id", String(20), nullable=False),
    #: JSON object of identifiers and codes.
    Column("details", Text, nullable=False),
    Column("sla_state", String(10), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("case_number", "event_id"),
    UniqueConstraint("case_number", "sequence", name="uq_case_events_sequence"),
)

#: Requests taken, by the calling system's request id: a repeat gets the first answer,
#: another request under the same id is refused.
handled_requests = handled_requests_table(metadata)
