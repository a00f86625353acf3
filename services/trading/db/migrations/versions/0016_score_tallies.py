"""score sheets: each bid's and each member's sheets summed, kept as each sheet is recorded

The last sheet's recording ranks the bids: it read every sheet of the tender (members x
bids rows); it now reads a row per bid. The tallies of the sheets already recorded are
computed here from them.

Revision ID: 0016_score_tallies
Revises: 0015_sealed_bid_envelopes
Create Date: 2026-12-01 16:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0016_score_tallies'
down_revision: str | None = '0015_sealed_bid_envelopes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'tender_bid_tallies',
        sa.Column('tender_no', sa.String(length=20), nullable=False),
        sa.Column('bidder_id', sa.String(length=10), nullable=False),
        sa.Column('sheets', sa.Integer(), nullable=False),
        sa.Column('compliant', sa.Integer(), nullable=False),
        sa.Column('technical', sa.Integer(), nullable=False),
        sa.Column('business', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['tender_no'], ['tenders.tender_no']),
        sa.PrimaryKeyConstraint('tender_no', 'bidder_id'),
    )
    op.create_table(
        'tender_member_tallies',
        sa.Column('tender_no', sa.String(length=20), nullable=False),
        sa.Column('member_id', sa.String(length=20), nullable=False),
        sa.Column('sheets', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['tender_no'], ['tenders.tender_no']),
        sa.PrimaryKeyConstraint('tender_no', 'member_id'),
    )
    op.execute('INSERT INTO tender_bid_tallies '
               '(tender_no, bidder_id, sheets, compliant, technical, business) '
               'SELECT tender_no, bidder_id, COUNT(*), '
               'SUM(CASE WHEN compliant THEN 1 ELSE 0 END), SUM(technical), SUM(business) '
               'FROM tender_score_sheets GROUP BY tender_no, bidder_id')
    op.execute('INSERT INTO tender_member_tallies (tender_no, member_id, sheets) '
               'SELECT tender_no, member_id, COUNT(*) '
               'FROM tender_score_sheets GROUP BY tender_no, member_id')


def downgrade() -> None:
    op.drop_table('tender_member_tallies')
    op.drop_table('tender_bid_tallies')
