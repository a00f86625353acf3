"""listings: land and property-rights listings, their bids and buyers, and their steps

Revision ID: 0011_listings
Revises: 0010_monitoring
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0011_listings'
down_revision: str | None = '0010_monitoring'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'listings',
        sa.Column('listing_no', sa.String(length=20), nullable=False),
        sa.Column('request_id', sa.String(length=36), nullable=False),
        sa.Column('project_no', sa.String(length=20), nullable=False),
        sa.Column('category', sa.String(length=30), nullable=False),
        sa.Column('stage', sa.String(length=20), nullable=False),
        sa.Column('published_at', sa.String(length=40), nullable=False),
        sa.Column('opens_at', sa.String(length=40), nullable=False),
        sa.Column('closes_at', sa.String(length=40), nullable=False),
        sa.Column('announcement', sa.Text(), nullable=False),
        sa.Column('workflow_started', sa.Boolean(), nullable=False),
        sa.Column('buyer_id', sa.String(length=10), nullable=False),
        sa.Column('deal_price_fen', sa.BigInteger(), nullable=False),
        sa.Column('deal_method', sa.String(length=20), nullable=False),
        sa.Column('failure', sa.String(length=20), nullable=False),
        sa.Column('concluded_at', sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(['project_no'], ['projects.project_no']),
        sa.PrimaryKeyConstraint('listing_no'),
        sa.UniqueConstraint('request_id'),
        sa.UniqueConstraint('project_no'),
    )
    op.create_index('ix_listings_unstarted', 'listings', ['workflow_started', 'listing_no'])
    op.create_index('ix_listings_concluded', 'listings', ['concluded_at'])
    op.create_table(
        'listing_acts',
        sa.Column('listing_no', sa.String(length=20), nullable=False),
        sa.Column('act_key', sa.String(length=80), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('bidder_id', sa.String(length=10), nullable=False),
        sa.Column('amount_fen', sa.BigInteger(), nullable=False),
        sa.Column('at', sa.String(length=40), nullable=False),
        sa.Column('statement', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['listing_no'], ['listings.listing_no']),
        sa.ForeignKeyConstraint(['bidder_id'], ['bidders.bidder_id']),
        sa.PrimaryKeyConstraint('listing_no', 'act_key'),
    )
    op.create_index('ix_listing_acts_order', 'listing_acts', ['listing_no', 'position'])
    op.create_table(
        'listing_steps',
        sa.Column('listing_no', sa.String(length=20), nullable=False),
        sa.Column('step_key', sa.String(length=80), nullable=False),
        sa.Column('step', sa.String(length=30), nullable=False),
        sa.Column('at', sa.String(length=40), nullable=False),
        sa.Column('feed_sequence', sa.BigInteger(), nullable=False),
        sa.Column('statement', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['listing_no'], ['listings.listing_no']),
        sa.PrimaryKeyConstraint('listing_no', 'step_key'),
    )


def downgrade() -> None:
    op.drop_table('listing_steps')
    op.drop_index('ix_listing_acts_order', table_name='listing_acts')
    op.drop_table('listing_acts')
    op.drop_index('ix_listings_concluded', table_name='listings')
    op.drop_index('ix_listings_unstarted', table_name='listings')
    op.drop_table('listings')
