"""audit checkpoints; sealed decisions name their audit entry

The feed of signed checkpoints of the audit log's head (kernel.checkpoints),
and sealed_decisions.audit_sequence: the audit entry that last changed the
row, whose details hold the digest of its authority-carrying fields
(kernel.authority). Sealed decisions already in the table are adopted by
one audit entry recording what they hold now.

Revision ID: 0003_audit_checkpoints
Revises: 0002
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from kernel.audit import AuditLog, audit_table
from kernel.authority import AuthorityTable, FieldKind, adopt_unreferenced_rows


revision: str = '0003_audit_checkpoints'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The sealed decisions' authority-carrying fields as of this revision.
_SEALED = AuthorityTable(sa.table(
    'sealed_decisions', *(sa.column(name) for name in (
        'certificate_number', 'case_number', 'key_id', 'decision', 'document', 'signature',
        'document_sha256', 'issued_at', 'revoked', 'revocation_reason', 'revoked_at',
        'revoked_by', 'audit_sequence'))),
    key='certificate_number', fields={
        'certificate_number': FieldKind.TEXT, 'case_number': FieldKind.TEXT,
        'key_id': FieldKind.TEXT, 'decision': FieldKind.TEXT, 'document': FieldKind.BYTES,
        'signature': FieldKind.BYTES, 'document_sha256': FieldKind.TEXT,
        'issued_at': FieldKind.INSTANT, 'revoked': FieldKind.FLAG,
        'revocation_reason': FieldKind.TEXT, 'revoked_at': FieldKind.INSTANT,
        'revoked_by': FieldKind.TEXT})


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
    with op.batch_alter_table('sealed_decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audit_sequence', sa.BigInteger(), nullable=True))
    connection = op.get_bind()
    adopt_unreferenced_rows(connection, AuditLog(connection, audit_table(sa.MetaData())),
                            [_SEALED], at=datetime.now(UTC))


def downgrade() -> None:
    with op.batch_alter_table('sealed_decisions', schema=None) as batch_op:
        batch_op.drop_column('audit_sequence')
    op.drop_table('audit_checkpoints')
