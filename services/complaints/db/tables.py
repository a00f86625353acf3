"""The complaints database: routing table with its history, platforms, the
cases they push in with their events, directory copies and the audit log."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from kernel.audit import audit_table
from kernel.checkpoints import audit_checkpoints_table
from kernel.db import sequences_table
from kernel.directory import departments_table, officials_table
from kernel.handled_requests import handled_requests_table
from kernel.instants import UtcDateTime
from kernel.systems import calling_systems_table

metadata = MetaData()

#: Each category as routed now; the rule in force is routing_rules at rule_version.
categories = Table(
    "categories",
    metadata,
    Column("code", String(10), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("department_code", String(12), nullable=False),
    Column("rule_version", Integer, nullable=False),
    Index("ix_categories_department", "department_code", "code"),
)

#: Every rule a category has been routed under; valid_until is NULL while in force.
routing_rules = Table(
    "routing_rules",
    metadata,
    Column("category_code", String(10), nullable=False),
    Column("version", Integer, nullable=False),
    Column("department_code", String(12), nullable=False),
    Column("basis", Text, nullable=False),
    Column("set_by_official_id", String(20), nullable=False),
    Column("valid_from", UtcDateTime, nullable=False),
    Column("valid_until", UtcDateTime, nullable=True),
    PrimaryKeyConstraint("category_code", "version"),
)

platforms = Table(
    "platforms",
    metadata,
    Column("id", String(20), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("kind", String(20), nullable=False),
    # The calling system (registry entry) the platform pushes through; NULL for none.
    Column("system_name", String(100), nullable=True),
    UniqueConstraint("system_name", name="uq_platforms_system_name"),
)

#: The cases platforms push in. (platform_id, external_id) is unique: a re-push, even two
#: at once, finds the case the first made. ``complainant`` is the complainant's name and
#: phone sealed by kernel.fieldcipher (bound to the case number); ``fingerprint`` is a
#: keyed digest of everything the push said, to tell a re-push from other content.
complaint_cases = Table(
    "complaint_cases",
    metadata,
    Column("case_number", String(20), primary_key=True),
    Column("platform_id", String(20), nullable=False),
    Column("external_id", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("urgent", Boolean, nullable=False),
    Column("category_code", String(10), nullable=False),
    Column("department_code", String(12), nullable=False),
    Column("rule_version", Integer, nullable=False),
    Column("deadline_class", String(20), nullable=False),
    Column("content", Text, nullable=False),
    Column("latitude", Float, nullable=True),
    Column("longitude", Float, nullable=True),
    Column("address", String(200), nullable=True),
    Column("complainant", Text, nullable=False),
    Column("linked_case_number", String(20), nullable=False),
    Column("linked_tender_number", String(40), nullable=False),
    # What checking linked_case_number against intake found (migration 0008): found, not_found
    # or unchecked (not yet, or no intake to ask); for a case found, its
    # approval item and deciding department, which the metrics count linked complaints by.
    Column("link_status", String(12), nullable=False, server_default="unchecked"),
    Column("link_item_code", String(15), nullable=False, server_default=""),
    Column("link_department_code", String(12), nullable=False, server_default=""),
    Column("link_checked_at", UtcDateTime, nullable=True),
    # What checking linked_tender_number against trading found (migration 0009), and for a
    # tender found its category of trade and the tenderer's department.
    Column("tender_link_status", String(12), nullable=False, server_default="unchecked"),
    Column("tender_link_category", String(30), nullable=False, server_default=""),
    Column("tender_link_department_code", String(12), nullable=False, server_default=""),
    Column("status", String(20), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    # ---- handling (0005): the clock, the outcome and the outbox flag ----
    Column("sign_for_due", UtcDateTime, nullable=True),
    Column("signed_for_at", UtcDateTime, nullable=True),
    Column("reply_due", UtcDateTime, nullable=True),
    Column("first_replied_at", UtcDateTime, nullable=True),
    Column("replied_at", UtcDateTime, nullable=True),
    Column("closed_at", UtcDateTime, nullable=True),
    Column("rating", Integer, nullable=True),
    Column("rated_at", UtcDateTime, nullable=True),
    Column("reopened", Boolean, nullable=False, default=False, server_default=false()),
    Column("merged_into", String(20), nullable=False, default="", server_default=""),
    #: The deadline policy version the case's deadlines follow (set when it is opened).
    Column("policy_version", Integer, nullable=True),
    Column("escalations", Integer, nullable=False, default=0, server_default="0"),
    #: The outbox flag: the case's workflow was started (or found to be its own).
    Column("workflow_started", Boolean, nullable=False, default=False,
           server_default=false()),
    #: When the rating window closes while the case is replied.
    Column("rating_closes", UtcDateTime, nullable=True),
    #: "on_time" or "overdue" (a deadline was missed and escalated).
    Column("sla_state", String(12), nullable=False, default="on_time",
           server_default="on_time"),
    #: The department that returned the case while the dispatcher decides.
    Column("returned_by", String(12), nullable=False, default="", server_default=""),
    #: Working days of extensions granted so far.
    Column("extended_days", Integer, nullable=False, default=0, server_default="0"),
    #: The first year a deadline had to take as Monday to Friday (0: none).
    Column("unknown_year", Integer, nullable=False, default=0, server_default="0"),
    UniqueConstraint("platform_id", "external_id",
                     name="uq_complaint_cases_platform_external_id"),
    Index("ix_complaint_cases_department_status", "department_code", "status"),
    Index("ix_complaint_cases_outbox", "workflow_started", "case_number"),
    # The metrics read a period's cases by when they were received (migration 0008).
    Index("ix_complaint_cases_received_at", "received_at"),
)

#: What happened to each case, numbered from 1 within it: codes only, no personal data.
complaint_events = Table(
    "complaint_events",
    metadata,
    Column("case_number", String(20), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("code", String(40), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("details", Text, nullable=False),
    PrimaryKeyConstraint("case_number", "sequence"),
)

#: Replies, numbered from 1 within a case: the text as written (the origin platform gets
#: it) and the published text, anonymised. A duplicate gets a row for its primary's reply.
complaint_replies = Table(
    "complaint_replies",
    metadata,
    Column("case_number", String(20), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("department_code", String(12), nullable=False),
    Column("official_id", String(20), nullable=False),
    Column("text", Text, nullable=False),
    Column("published_text", Text, nullable=False),
    Column("replied_at", UtcDateTime, nullable=False),
    #: The case whose reply this is ('' for the case's own; the primary's for a duplicate).
    Column("answered_by", String(20), nullable=False, default="", server_default=""),
    PrimaryKeyConstraint("case_number", "sequence"),
)

#: Co-handling departments of a case and their contributions (joined into the reply).
complaint_co_handlers = Table(
    "complaint_co_handlers",
    metadata,
    Column("case_number", String(20), nullable=False),
    Column("department_code", String(12), nullable=False),
    Column("contribution", Text, nullable=True),
    Column("contributed_at", UtcDateTime, nullable=True),
    Column("official_id", String(20), nullable=False, default="", server_default=""),
    PrimaryKeyConstraint("case_number", "department_code"),
    Index("ix_complaint_co_handlers_department", "department_code", "case_number"),
)

#: Extensions asked for, numbered within a case; outcome '' while the dispatcher decides.
complaint_extensions = Table(
    "complaint_extensions",
    metadata,
    Column("case_number", String(20), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("department_code", String(12), nullable=False),
    Column("requested_days", Integer, nullable=False),
    Column("basis", Text, nullable=False),
    Column("requested_by", String(20), nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("outcome", String(12), nullable=False, default="", server_default=""),
    Column("granted_days", Integer, nullable=False, default=0, server_default="0"),
    Column("decided_by", String(20), nullable=False, default="", server_default=""),
    Column("decided_at", UtcDateTime, nullable=True),
    PrimaryKeyConstraint("case_number", "sequence"),
    Index("ix_complaint_extensions_outcome", "outcome", "case_number"),
)

#: Returns (退单) with their basis and the dispatcher's decision ('' while pending).
complaint_returns = Table(
    "complaint_returns",
    metadata,
    Column("case_number", String(20), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("department_code", String(12), nullable=False),
    Column("official_id", String(20), nullable=False),
    Column("basis", Text, nullable=False),
    Column("returned_at", UtcDateTime, nullable=False),
    Column("outcome", String(12), nullable=False, default="", server_default=""),
    Column("target_department", String(12), nullable=False, default="", server_default=""),
    Column("dispatch_basis", Text, nullable=False, default="", server_default=""),
    Column("decided_by", String(20), nullable=False, default="", server_default=""),
    Column("decided_at", UtcDateTime, nullable=True),
    PrimaryKeyConstraint("case_number", "sequence"),
)

#: Every signed act recorded, once (act_id = SHA-256 of its signature): a retried activity
#: finds its act here and gets the same answer, and nothing is recorded twice.
complaint_acts = Table(
    "complaint_acts",
    metadata,
    Column("act_id", String(64), primary_key=True),
    Column("case_number", String(20), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("official_id", String(20), nullable=False),
    Column("system", String(100), nullable=False),
    #: The signed statement (kernel.signing's document form): no personal data.
    Column("statement", Text, nullable=False),
    #: JSON of the answer the recording gave.
    Column("result", Text, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("ix_complaint_acts_case", "case_number"),
)

#: Versions of the deadline policy; valid_until is NULL for the one in force.
deadline_policies = Table(
    "deadline_policies",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("consultation_days", Integer, nullable=False),
    Column("request_days", Integer, nullable=False),
    Column("complaint_days", Integer, nullable=False),
    Column("urgent_reply_hours", Integer, nullable=False),
    Column("sign_for_working_hours", Integer, nullable=False),
    Column("urgent_sign_for_minutes", Integer, nullable=False),
    Column("rating_window_days", Integer, nullable=False),
    Column("reopen_reply_days", Integer, nullable=False),
    Column("max_extension_days", Integer, nullable=False),
    Column("basis", Text, nullable=False),
    Column("set_by_official_id", String(20), nullable=False),
    Column("valid_from", UtcDateTime, nullable=False),
    Column("valid_until", UtcDateTime, nullable=True),
)

#: Officials' requests answered, by the calling system's request id: a repeat gets the
#: first answer, the same id for another request is refused.
handled_requests = handled_requests_table(metadata)

#: Running numbers of cases per China day ("CP-20260105").
complaint_sequences = sequences_table(metadata, "complaint_sequences")

#: Where each platform's events are POSTed (Standard Webhooks), one URL per platform.
#: ``secret`` is the signing secret sealed by kernel.fieldcipher (bound to the platform
#: id): the secret is shown once when set and never kept in the clear.
platform_webhooks = Table(
    "platform_webhooks",
    metadata,
    Column("platform_id", String(20), primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("secret", Text, nullable=False),
    Column("set_by_official_id", String(20), nullable=False),
    Column("set_at", UtcDateTime, nullable=False),
)

#: What each platform is told about its cases (replies, status changes): sent by webhook
#: and pullable with a cursor. ``event_id`` is the webhook-id of every delivery attempt;
#: ``sequence`` numbers a platform's events from 1 in the order their transactions
#: committed (platform_event_sequences). ``payload`` is the JSON body sent, which
#: holds no complainant's name or phone.
platform_events = Table(
    "platform_events",
    metadata,
    Column("event_id", String(40), primary_key=True),
    Column("platform_id", String(20), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("case_number", String(20), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
    Column("attempts", Integer, nullable=False),
    # The HTTP status of the last attempt; 0 before any, or when none came back.
    Column("last_status", Integer, nullable=False),
    UniqueConstraint("platform_id", "sequence", name="uq_platform_events_sequence"),
)

#: The running number of each platform's events (counter name = platform id).
platform_event_sequences = sequences_table(metadata, "platform_event_sequences")

departments = departments_table(metadata)
officials = officials_table(metadata)
audit_log = audit_table(metadata)
audit_checkpoints = audit_checkpoints_table(metadata)
calling_systems = calling_systems_table(metadata)

#: Open311 API keys, one per platform: only the SHA-256 of the key (a random 256-bit
#: secret, so an unsalted hash is enough), never the key itself.
open311_api_keys = Table(
    "open311_api_keys",
    metadata,
    Column("platform_id", String(20), primary_key=True),
    Column("key_sha256", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("key_sha256", name="uq_open311_api_keys_key_sha256"),
)
