"""The intake database: catalogue, directory copies and the audit log."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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
from kernel.directory import departments_table, officials_table

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
    Column("published_at", String(40), nullable=False),
    PrimaryKeyConstraint("code", "version"),
    Index("ix_approval_items_current_department", "current", "department_code", "code"),
)

departments = departments_table(metadata)
officials = officials_table(metadata)
audit_log = audit_table(metadata)
