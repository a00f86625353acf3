"""evaluation: the experts' own systems, the tender's committee, the score sheets

Revision ID: 0009_evaluation
Revises: 0008_draw_subjects
Create Date: 2026-12-01 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009_evaluation'
down_revision: str | None = '0008_draw_subjects'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'expert_systems',
        sa.Column('expert_id', sa.String(length=10), sa.ForeignKey('experts.id'),
                  primary_key=True),
        sa.Column('system', sa.String(length=100), nullable=False, unique=True),
    )
    op.create_table(
        'tender_committees',
        sa.Column('tender_no', sa.String(length=20), sa.ForeignKey('tenders.tender_no'),
                  primary_key=True),
        sa.Column('draw_id', sa.String(length=20), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('representatives', sa.Text(), nullable=False),
        sa.Column('members', sa.Text(), nullable=True),
        sa.Column('seated_at', sa.String(length=40), nullable=True),
    )
    op.create_table(
        'tender_score_sheets',
        sa.Column('tender_no', sa.String(length=20), sa.ForeignKey('tenders.tender_no'),
                  nullable=False),
        sa.Column('member_id', sa.String(length=20), nullable=False),
        sa.Column('bidder_id', sa.String(length=10), nullable=False),
        sa.Column('compliant', sa.Boolean(), nullable=False),
        sa.Column('technical', sa.Integer(), nullable=False),
        sa.Column('business', sa.Integer(), nullable=False),
        sa.Column('system', sa.String(length=100), nullable=False),
        sa.Column('submitted_at', sa.String(length=40), nullable=False),
        sa.Column('statement', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('tender_no', 'member_id', 'bidder_id'),
    )


def downgrade() -> None:
    op.drop_table('tender_score_sheets')
    op.drop_table('tender_committees')
    op.drop_table('expert_systems')
