"""listings: the network origin each bidder's act was sent from, for the same_origin rule

Revision ID: 0014_listing_act_origins
Revises: 0013_relist_failed
Create Date: 2026-12-01 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0014_listing_act_origins'
down_revision: str | None = '0013_relist_failed'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'listing_act_origins',
        sa.Column('listing_no', sa.String(length=20), nullable=False),
        sa.Column('act_key', sa.String(length=80), nullable=False),
        sa.Column('origin', sa.String(length=45), nullable=False),
        sa.Column('noted_at', sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(['listing_no'], ['listings.listing_no']),
        sa.PrimaryKeyConstraint('listing_no', 'act_key'),
    )


def downgrade() -> None:
    op.drop_table('listing_act_origins')
