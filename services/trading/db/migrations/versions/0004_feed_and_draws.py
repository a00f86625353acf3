"""feed and draws: the public feed, verifiable draws and their revealed seeds

Revision ID: 0004_feed_and_draws
Revises: 0003_calling_systems
Create Date: 2026-12-01 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004_feed_and_draws'
down_revision: str | None = '0003_calling_systems'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('feed_entries',
    sa.Column('sequence', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=80), nullable=False),
    sa.Column('published_at', sa.String(length=40), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('sequence')
    )
    op.create_index('ix_feed_entries_subject', 'feed_entries', ['subject', 'sequence'],
                    unique=False)
    op.create_table('draws',
    sa.Column('draw_id', sa.String(length=20), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('candidates', sa.Text(), nullable=False),
    sa.Column('witnesses', sa.Text(), nullable=False),
    sa.Column('draw_count', sa.Integer(), nullable=False),
    sa.Column('reveal_deadline', sa.String(length=40), nullable=False),
    sa.Column('opened_by', sa.String(length=20), nullable=False),
    sa.Column('opened_at', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('opened_sequence', sa.BigInteger(), nullable=False),
    sa.Column('result_sequence', sa.BigInteger(), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('draw_id')
    )
    op.create_index('ix_draws_state_deadline', 'draws', ['state', 'reveal_deadline'],
                    unique=False)
    op.create_table('draw_seeds',
    sa.Column('draw_id', sa.String(length=20), nullable=False),
    sa.Column('official_id', sa.String(length=20), nullable=False),
    sa.Column('seed', sa.String(length=128), nullable=False),
    sa.Column('revealed_at', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['draw_id'], ['draws.draw_id'], ),
    sa.PrimaryKeyConstraint('draw_id', 'official_id')
    )


def downgrade() -> None:
    op.drop_table('draw_seeds')
    op.drop_index('ix_draws_state_deadline', table_name='draws')
    op.drop_table('draws')
    op.drop_index('ix_feed_entries_subject', table_name='feed_entries')
    op.drop_table('feed_entries')
