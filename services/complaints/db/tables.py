"""The complaints database: routing table with its history, platforms,
directory copies and the audit log."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from kernel.audit import audit_table
from kernel.checkpoints import audit_checkpoints_table
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
)

departments = departments_table(metadata)
officials = officials_table(metadata)
audit_log = audit_table(metadata)
audit_checkpoints = audit_checkpoints_table(metadata)
calling_systems = calling_systems_table(metadata)
