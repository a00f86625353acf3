"""listings: a project whose listing failed may be listed again (at most one not failed)

Revision ID: 0013_relist_failed
Revises: 0012_bid_prices
Create Date: 2026-12-01 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013_relist_failed'
down_revision: str | None = '0012_bid_prices'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_FAILED = "stage != 'failed'"


def _listings(unique_project: bool) -> sa.Table:
    """The listings table as 0011 made it, with or without its unique project_no (SQLite
    rebuilds the table to drop a constraint that has no name)."""
    constraints: list[sa.Constraint] = [
        sa.ForeignKeyConstraint(['project_no'], ['projects.project_no']),
        sa.PrimaryKeyConstraint('listing_no'),
        sa.UniqueConstraint('request_id'),
    ]
    if unique_project:
        constraints.append(sa.UniqueConstraint('project_no'))
    return sa.Table(
        'listings', sa.MetaData(),
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
        *constraints,
        sa.Index('ix_listings_unstarted', 'workflow_started', 'listing_no'),
        sa.Index('ix_listings_concluded', 'concluded_at'),
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        # The table rebuilt from its definition without the unique project_no.
        with op.batch_alter_table('listings', copy_from=_listings(unique_project=False),
                                  recreate='always'):
            pass
    else:
        op.drop_constraint('listings_project_no_key', 'listings', type_='unique')
    op.create_index('uq_listings_project_not_failed', 'listings', ['project_no'],
                    unique=True, sqlite_where=sa.text(NOT_FAILED),
                    postgresql_where=sa.text(NOT_FAILED))


def downgrade() -> None:
    op.drop_index('uq_listings_project_not_failed', table_name='listings')
    with op.batch_alter_table('listings') as batch:
        batch.create_unique_constraint('listings_project_no_key', ['project_no'])
