"""draw subjects: every draw names what it is for; one draw a subject that has not failed

Revision ID: 0008_draw_subjects
Revises: 0007_tenders
Create Date: 2026-12-01 07:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008_draw_subjects'
down_revision: str | None = '0007_tenders'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('draws') as batch:
        batch.add_column(sa.Column('subject', sa.String(length=80), nullable=True))
        batch.add_column(sa.Column('replaces_draw_id', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('candidate_basis', sa.Text(), nullable=True))
    # Outside the batch: SQLite keeps a partial index only when it is created on the table
    # as it stands. Draws opened before (subject NULL) are not constrained.
    op.create_index('ix_draws_subject', 'draws', ['subject', 'opened_at'])
    op.create_index('uq_draws_live_subject', 'draws', ['subject'], unique=True,
                    sqlite_where=sa.text("state != 'failed'"),
                    postgresql_where=sa.text("state != 'failed'"))


def downgrade() -> None:
    op.drop_index('uq_draws_live_subject', table_name='draws')
    op.drop_index('ix_draws_subject', table_name='draws')
    with op.batch_alter_table('draws') as batch:
        batch.drop_column('candidate_basis')
        batch.drop_column('replaces_draw_id')
        batch.drop_column('subject')
