"""The trading database: catalogue, agencies, expert pool, directory copies, audit log."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
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

catalogue_entries = Table(
    "catalogue_entries",
    metadata,
    Column("code", String(10), primary_key=True),
    Column("category", String(30), nullable=False),
    Column("name", String(100), nullable=False),
    Column("threshold_fen", BigInteger, nullable=False),
    Column("basis", Text, nullable=False),
    Index("ix_catalogue_entries_category", "category", "code"),
)

agencies = Table(
    "agencies",
    metadata,
    Column("code", String(10), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("qualification", String(200), nullable=False),
)

experts = Table(
    "experts",
    metadata,
    Column("id", String(10), primary_key=True),
    Column("name", String(50), nullable=False),
    Column("employer", String(100), nullable=False),
    Column("available", Boolean, nullable=False),
    Column("unavailable_reason", String(200), nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
)

# One row per specialty so that "experts of a specialty" is an indexed query;
# position keeps the order the expert registered them in.
expert_specialties = Table(
    "expert_specialties",
    metadata,
    Column("expert_id", String(10), ForeignKey("experts.id"), nullable=False),
    Column("specialty", String(50), nullable=False),
    Column("position", Integer, nullable=False),
    PrimaryKeyConstraint("expert_id", "specialty"),
    Index("ix_expert_specialties_specialty", "specialty", "expert_id"),
)

departments = departments_table(metadata)
officials = officials_table(metadata)
audit_log = audit_table(metadata)
audit_checkpoints = audit_checkpoints_table(metadata)
calling_systems = calling_systems_table(metadata)
