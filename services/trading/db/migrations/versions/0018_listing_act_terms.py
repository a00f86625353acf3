"""listing acts and their origin notes: the digest of the terms each act asks, so a note is
the note of one content under a request id (a refused twin's never deletes the recorded
act's note: s17 attack MEDIUM 1)

Rows before this revision keep '' for it on both sides: an act recorded before still finds
the note made before.

Revision ID: 0018_listing_act_terms
Revises: 0017_request_systems
Create Date: 2026-12-01 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0018_listing_act_terms'
down_revision: str | None = '0017_request_systems'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ['listing_no', 'act_key']


def _terms() -> sa.Column[str]:
    return sa.Column('terms_sha256', sa.String(length=64), nullable=False, server_default='')


def _origins(name: str, key: list[str], *, terms: bool) -> None:
    op.create_table(
        name,
        sa.Column('listing_no', sa.String(length=20), nullable=False),
        sa.Column('act_key', sa.String(length=80), nullable=False),
        *([_terms()] if terms else []),
        sa.Column('origin', sa.String(length=45), nullable=False),
        sa.Column('noted_at', sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(['listing_no'], ['listings.listing_no']),
        sa.PrimaryKeyConstraint(*key),
    )


def upgrade() -> None:
    op.add_column('listing_acts', _terms())
    if op.get_bind().dialect.name == 'postgresql':
        op.add_column('listing_act_origins', _terms())
        op.execute('ALTER TABLE listing_act_origins DROP CONSTRAINT listing_act_origins_pkey')
        op.create_primary_key('listing_act_origins_pkey', 'listing_act_origins',
                              [*KEY, 'terms_sha256'])
        return
    # SQLite cannot change a primary key in place: the table is copied (nothing refers to it).
    _origins('listing_act_origins_next', [*KEY, 'terms_sha256'], terms=True)
    op.execute("INSERT INTO listing_act_origins_next (listing_no, act_key, terms_sha256, "
               "origin, noted_at) SELECT listing_no, act_key, '', origin, noted_at "
               "FROM listing_act_origins")
    op.drop_table('listing_act_origins')
    op.rename_table('listing_act_origins_next', 'listing_act_origins')


def downgrade() -> None:
    # One note per act key again: the first content's (by the time it was noted) stays.
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DELETE FROM listing_act_origins o USING listing_act_origins p '
                   'WHERE o.listing_no = p.listing_no AND o.act_key = p.act_key '
                   'AND (p.noted_at, p.terms_sha256) < (o.noted_at, o.terms_sha256)')
        op.execute('ALTER TABLE listing_act_origins DROP CONSTRAINT listing_act_origins_pkey')
        op.drop_column('listing_act_origins', 'terms_sha256')
        op.create_primary_key('listing_act_origins_pkey', 'listing_act_origins', KEY)
    else:
        _origins('listing_act_origins_next', KEY, terms=False)
        op.execute('INSERT INTO listing_act_origins_next (listing_no, act_key, origin, '
                   'noted_at) SELECT listing_no, act_key, origin, MIN(noted_at) '
                   'FROM listing_act_origins GROUP BY listing_no, act_key')
        op.drop_table('listing_act_origins')
        op.rename_table('listing_act_origins_next', 'listing_act_origins')
    op.execute('ALTER TABLE listing_acts DROP COLUMN terms_sha256')
