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
)

from kernel.audit import audit_table
from kernel.checkpoints import audit_checkpoints_table
from kernel.db import sequences_table
from kernel.directory import departments_table, officials_table
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
    Column("status", String(20), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    UniqueConstraint("platform_id", "external_id",
                     name="uq_complaint_cases_platform_external_id"),
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
