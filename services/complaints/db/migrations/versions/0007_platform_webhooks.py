"""platform webhooks (url and sealed signing secret) and the events each platform is
sent or pulls, numbered per platform

Revision ID: 0007_platform_webhooks
Revises: 0006_open311_api_keys
Create Date: 2026-12-01 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_platform_webhooks"
down_revision: str | None = "0006_open311_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "platform_webhooks",
        sa.Column("platform_id", sa.String(length=20), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("set_by_official_id", sa.String(length=20), nullable=False),
        sa.Column("set_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("platform_id"),
    )
    op.create_table(
        "platform_events",
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("platform_id", sa.String(length=20), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("case_number", sa.String(length=20), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("delivered_at", sa.String(length=40), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
        sa.UniqueConstraint("platform_id", "sequence", name="uq_platform_events_sequence"),
    )
    op.create_table(
        "platform_event_sequences",
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("platform_event_sequences")
    op.drop_table("platform_events")
    op.drop_table("platform_webhooks")
