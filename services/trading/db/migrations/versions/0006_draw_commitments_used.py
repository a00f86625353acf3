"""draw commitments used: a commitment serves one draw only

Revision ID: 0006_draw_commitments_used
Revises: 0005_draw_commitments
Create Date: 2026-12-01 05:40:00.000000
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006_draw_commitments_used'
down_revision: str | None = '0005_draw_commitments'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    used = op.create_table(
        'draw_commitments',
        sa.Column('commitment', sa.String(length=64), nullable=False),
        sa.Column('draw_id', sa.String(length=20), nullable=False),
        sa.Column('official_id', sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(['draw_id'], ['draws.draw_id']),
        sa.PrimaryKeyConstraint('commitment'),
    )
    # The commitments of the draws opened so far (one per seed, first draw wins).
    rows = op.get_bind().execute(sa.text('SELECT draw_id, witnesses FROM draws '
                                         'ORDER BY opened_at, draw_id'))
    seen: dict[str, dict[str, str]] = {}
    for draw_id, witnesses in rows:
        for witness in json.loads(witnesses):
            official_id, commitment = witness[0], witness[1]
            if commitment and commitment not in seen:
                seen[commitment] = {'commitment': commitment, 'draw_id': draw_id,
                                    'official_id': official_id}
    if seen:
        op.bulk_insert(used, list(seen.values()))


def downgrade() -> None:
    op.drop_table('draw_commitments')
