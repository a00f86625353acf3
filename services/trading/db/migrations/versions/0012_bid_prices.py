"""sealed bids: the price a valid bid's document states, read once at the opening

Revision ID: 0012_bid_prices
Revises: 0011_listings
Create Date: 2026-12-01 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0012_bid_prices'
down_revision: str | None = '0011_listings'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('sealed_bids') as batch:
        batch.add_column(sa.Column('price_fen', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sealed_bids') as batch:
        batch.drop_column('price_fen')
