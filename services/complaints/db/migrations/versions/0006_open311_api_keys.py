"""Open311 API keys: the SHA-256 of each platform's key

Revision ID: 0006_open311_api_keys
Revises: 0005_complaint_handling
Create Date: 2026-12-01 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_open311_api_keys"
down_revision: str | None = "0005_complaint_handling"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "open311_api_keys",
        sa.Column("platform_id", sa.String(length=20), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("platform_id"),
        sa.UniqueConstraint("key_sha256", name="uq_open311_api_keys_key_sha256"),
    )


def downgrade() -> None:
    op.drop_table("open311_api_keys")
