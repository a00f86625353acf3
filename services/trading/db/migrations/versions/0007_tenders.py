"""tenders: bidders directory, projects, direct awards, tenders, their steps, sealed bids

Revision ID: 0007_tenders
Revises: 0006_draw_commitments_used
Create Date: 2026-12-01 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007_tenders'
down_revision: str | None = '0006_draw_commitments_used'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'bidders',
        sa.Column('bidder_id', sa.String(length=10), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('system', sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint('bidder_id'),
    )
    op.create_table(
        'projects',
        sa.Column('project_no', sa.String(length=20), nullable=False),
        sa.Column('request_id', sa.String(length=36), nullable=False),
        sa.Column('category', sa.String(length=30), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('estimated_value_fen', sa.BigInteger(), nullable=False),
        sa.Column('funding_source', sa.String(length=20), nullable=False),
        sa.Column('department_code', sa.String(length=10), nullable=False),
        sa.Column('entry_code', sa.String(length=10), nullable=False),
        sa.Column('registered_by', sa.String(length=20), nullable=False),
        sa.Column('registered_at', sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint('project_no'),
        sa.UniqueConstraint('request_id'),
    )
    op.create_table(
        'direct_awards',
        sa.Column('project_no', sa.String(length=20), nullable=False),
        sa.Column('request_id', sa.String(length=36), nullable=False),
        sa.Column('supplier_code', sa.String(length=18), nullable=False),
        sa.Column('amount_fen', sa.BigInteger(), nullable=False),
        sa.Column('recorded_by', sa.String(length=20), nullable=False),
        sa.Column('recorded_at', sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(['project_no'], ['projects.project_no']),
        sa.PrimaryKeyConstraint('project_no'),
        sa.UniqueConstraint('request_id'),
    )
    op.create_table(
        'tenders',
        sa.Column('tender_no', sa.String(length=20), nullable=False),
        sa.Column('request_id', sa.String(length=36), nullable=False),
        sa.Column('project_no', sa.String(length=20), nullable=False),
        sa.Column('category', sa.String(length=30), nullable=False),
        sa.Column('stage', sa.String(length=20), nullable=False),
        sa.Column('announced_at', sa.String(length=40), nullable=False),
        sa.Column('bid_deadline', sa.String(length=40), nullable=False),
        sa.Column('documents_until', sa.String(length=40), nullable=True),
        sa.Column('objections_until', sa.String(length=40), nullable=True),
        sa.Column('decryption_window_seconds', sa.Integer(), nullable=False),
        sa.Column('announcement', sa.Text(), nullable=False),
        sa.Column('workflow_started', sa.Boolean(), nullable=False),
        sa.Column('paused', sa.Boolean(), nullable=False),
        sa.Column('winner', sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(['project_no'], ['projects.project_no']),
        sa.PrimaryKeyConstraint('tender_no'),
        sa.UniqueConstraint('request_id'),
        sa.UniqueConstraint('project_no'),
    )
    op.create_index('ix_tenders_unstarted', 'tenders', ['workflow_started', 'tender_no'])
    op.create_table(
        'tender_steps',
        sa.Column('tender_no', sa.String(length=20), nullable=False),
        sa.Column('step_key', sa.String(length=80), nullable=False),
        sa.Column('step', sa.String(length=30), nullable=False),
        sa.Column('at', sa.String(length=40), nullable=False),
        sa.Column('feed_sequence', sa.BigInteger(), nullable=False),
        sa.Column('statement', sa.Text(), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['tender_no'], ['tenders.tender_no']),
        sa.PrimaryKeyConstraint('tender_no', 'step_key'),
    )
    op.create_table(
        'sealed_bids',
        sa.Column('tender_no', sa.String(length=20), nullable=False),
        sa.Column('bidder_id', sa.String(length=10), nullable=False),
        sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
        sa.Column('ciphertext_sha256', sa.String(length=64), nullable=False),
        sa.Column('key_commitment', sa.String(length=64), nullable=False),
        sa.Column('system', sa.String(length=100), nullable=False),
        sa.Column('submitted_at', sa.String(length=40), nullable=False),
        sa.Column('revealed_key', sa.String(length=64), nullable=True),
        sa.Column('revealed_at', sa.String(length=40), nullable=True),
        sa.Column('validity', sa.String(length=30), nullable=False),
        sa.ForeignKeyConstraint(['bidder_id'], ['bidders.bidder_id']),
        sa.ForeignKeyConstraint(['tender_no'], ['tenders.tender_no']),
        sa.PrimaryKeyConstraint('tender_no', 'bidder_id'),
    )
    op.create_table(
        'sequences',
        sa.Column('name', sa.String(length=20), nullable=False),
        sa.Column('last', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('sequences')
    op.drop_table('sealed_bids')
    op.drop_table('tender_steps')
    op.drop_index('ix_tenders_unstarted', table_name='tenders')
    op.drop_table('tenders')
    op.drop_table('direct_awards')
    op.drop_table('projects')
    op.drop_table('bidders')
