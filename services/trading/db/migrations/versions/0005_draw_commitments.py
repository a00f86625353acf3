"""draw commitments: each witness commits its own seed before a draw is published

Revision ID: 0005_draw_commitments
Revises: 0004_feed_and_draws
Create Date: 2026-12-01 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005_draw_commitments'
down_revision: str | None = '0004_feed_and_draws'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('draws') as batch:
        batch.add_column(sa.Column('commit_deadline', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('draws') as batch:
        batch.drop_column('commit_deadline')
