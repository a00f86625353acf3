"""sealed bids: each envelope in a table of its own, so the bid's row stays small

The opening updates every bid's validity and price: with the envelope in the same row,
SQLite rewrote the whole record (its overflow pages included) on every update, and reads
of the later columns walked the overflow chain.

Revision ID: 0015_sealed_bid_envelopes
Revises: 0014_listing_act_origins
Create Date: 2026-12-01 14:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0015_sealed_bid_envelopes'
down_revision: str | None = '0014_listing_act_origins'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The foreign key to sealed_bids comes last: on SQLite (foreign keys on) the batch
    # that drops the column copies sealed_bids and drops the old table, which no table
    # may reference then.
    op.create_table(
        'sealed_bid_envelopes',
        sa.Column('tender_no', sa.String(length=20), nullable=False),
        sa.Column('bidder_id', sa.String(length=10), nullable=False),
        sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('tender_no', 'bidder_id'),
    )
    op.execute('INSERT INTO sealed_bid_envelopes (tender_no, bidder_id, ciphertext) '
               'SELECT tender_no, bidder_id, ciphertext FROM sealed_bids')
    with op.batch_alter_table('sealed_bids') as batch:
        batch.drop_column('ciphertext')
    with op.batch_alter_table('sealed_bid_envelopes') as batch:
        batch.create_foreign_key('fk_sealed_bid_envelopes_bid', 'sealed_bids',
                                 ['tender_no', 'bidder_id'], ['tender_no', 'bidder_id'])


def downgrade() -> None:
    with op.batch_alter_table('sealed_bids') as batch:
        batch.add_column(sa.Column('ciphertext', sa.LargeBinary(), nullable=True))
    op.execute('UPDATE sealed_bids SET ciphertext = (SELECT e.ciphertext '
               'FROM sealed_bid_envelopes e WHERE e.tender_no = sealed_bids.tender_no '
               'AND e.bidder_id = sealed_bids.bidder_id)')
    op.drop_table('sealed_bid_envelopes')
    with op.batch_alter_table('sealed_bids') as batch:
        batch.alter_column('ciphertext', existing_type=sa.LargeBinary(), nullable=False)
