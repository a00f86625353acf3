"""The complaints database: routing table with its history, platforms, the
cases they push in with their events, directory copies and the audit log."""

from __future__ import annotations

from sqlalchemy import (
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
