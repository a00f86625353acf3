"""audit checkpoints; decisions and delegations name their audit entry

The feed of signed checkpoints of the audit log's head (kernel.checkpoints),
and decisions.audit_sequence, delegations.audit_sequence: the audit entry
that last changed the row, whose details hold the digest of its
authority-carrying fields (kernel.authority). Rows already in those tables
are adopted by one audit entry recording what they hold now.

Revision ID: 0004_audit_checkpoints
Revises: 0003
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from kernel.audit import AuditLog, audit_table
from kernel.authority import AuthorityTable, FieldKind, adopt_unreferenced_rows


revision: str = '0004_audit_checkpoints'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT, _INSTANT = FieldKind.TEXT, FieldKind.INSTANT

#: The authority-carrying fields as of this revision.
_DECISIONS = {
    'case_number': _TEXT, 'stage': _TEXT, 'outcome': _TEXT, 'official_id': _TEXT,
    'system': _TEXT, 'decided_at': _INSTANT, 'opinion': _TEXT, 'legal_basis': _TEXT,
    'on_behalf_of': _TEXT, 'delegation_id': _TEXT, 'recorded_at': _INSTANT}
_DELEGATIONS = {
    'leader_id': _TEXT, 'deputy_id': _TEXT, 'department_code': _TEXT,
    'valid_from': _INSTANT, 'valid_until': _INSTANT, 'reason': _TEXT,
    'granted_at': _INSTANT, 'revoked_at': _INSTANT, 'revoked_by': _TEXT,
    'revocation_reason': _TEXT}


def _spec(name: str, fields: dict[str, FieldKind]) -> AuthorityTable:
    columns: list[sa.ColumnClause[Any]] = [
        sa.column(column) for column in ('id', 'audit_sequence', *fields)]
    return AuthorityTable(sa.table(name, *columns), key='id', fields=fields)


def upgrade() -> None:
    op.create_table('audit_checkpoints',
    sa.Column('number', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('sequence', sa.BigInteger(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('signed_at', sa.String(length=40), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('signature', sa.String(length=100), nullable=False),
    sa.Column('published_by', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('number')
    )
    for table in ('decisions', 'delegations'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('audit_sequence', sa.BigInteger(), nullable=True))
    connection = op.get_bind()
    adopt_unreferenced_rows(connection, AuditLog(connection, audit_table(sa.MetaData())),
                            [_spec('decisions', _DECISIONS),
                             _spec('delegations', _DELEGATIONS)], at=datetime.now(UTC))


def downgrade() -> None:
    for table in ('decisions', 'delegations'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('audit_sequence')
    op.drop_table('audit_checkpoints')
