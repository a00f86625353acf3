"""audit checkpoints

The feed of signed checkpoints of the audit log's head (kernel.checkpoints).

Revision ID: 0002_audit_checkpoints
Revises: 0001
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002_audit_checkpoints'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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


def downgrade() -> None:
    op.drop_table('audit_checkpoints')
