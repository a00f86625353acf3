"""monitoring: every trade step numbered for the live watch, the alerts raised on them, and
the network origin of each sealed bid

Revision ID: 0010_monitoring
Revises: 0009_evaluation
Create Date: 2026-12-01 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010_monitoring'
down_revision: str | None = '0009_evaluation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'trade_steps',
        sa.Column('sequence', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('trade', sa.String(length=80), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('step', sa.String(length=40), nullable=False),
        sa.Column('stage', sa.String(length=20), nullable=False),
        sa.Column('at', sa.String(length=40), nullable=False),
        sa.Column('feed_sequence', sa.BigInteger(), nullable=False),
        sa.Column('details', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('sequence'),
    )
    op.create_index('ix_trade_steps_trade', 'trade_steps', ['trade', 'sequence'])
    op.create_table(
        'trade_alerts',
        sa.Column('alert_no', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('step_sequence', sa.BigInteger(), nullable=False),
        sa.Column('trade', sa.String(length=80), nullable=False),
        sa.Column('rule', sa.String(length=30), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('details', sa.Text(), nullable=False),
        sa.Column('raised_at', sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(['step_sequence'], ['trade_steps.sequence']),
        sa.PrimaryKeyConstraint('alert_no'),
    )
    op.create_index('ix_trade_alerts_step', 'trade_alerts', ['step_sequence', 'alert_no'])
    op.create_index('ix_trade_alerts_trade', 'trade_alerts', ['trade', 'alert_no'])
    op.create_index('ix_trade_alerts_rule', 'trade_alerts', ['rule', 'alert_no'])
    with op.batch_alter_table('sealed_bids') as batch:
        batch.add_column(sa.Column('origin', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sealed_bids') as batch:
        batch.drop_column('origin')
    op.drop_index('ix_trade_alerts_rule', table_name='trade_alerts')
    op.drop_index('ix_trade_alerts_trade', table_name='trade_alerts')
    op.drop_index('ix_trade_alerts_step', table_name='trade_alerts')
    op.drop_table('trade_alerts')
    op.drop_index('ix_trade_steps_trade', table_name='trade_steps')
    op.drop_table('trade_steps')
