"""what checking a complaint's link to an approval case found: found, not found or
unchecked, and for a case found its approval item and deciding department; cases indexed
by when they were received, for the metrics

Revision ID: 0008_complaint_links
Revises: 0007_platform_webhooks
Create Date: 2026-12-01 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_complaint_links"
down_revision: str | None = "0007_platform_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Cases already taken in have not been checked: "unchecked" until the check runs.
    with op.batch_alter_table("complaint_cases") as batch:
        batch.add_column(sa.Column("link_status", sa.String(length=12), nullable=False,
                                   server_default="unchecked"))
        batch.add_column(sa.Column("link_item_code", sa.String(length=15), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("link_department_code", sa.String(length=12),
                                   nullable=False, server_default=""))
        batch.add_column(sa.Column("link_checked_at", sa.String(length=40), nullable=True))
    # The metrics read a period's cases by when they were received.
    op.create_index("ix_complaint_cases_received_at", "complaint_cases", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_complaint_cases_received_at", table_name="complaint_cases")
    with op.batch_alter_table("complaint_cases") as batch:
        batch.drop_column("link_checked_at")
        batch.drop_column("link_department_code")
        batch.drop_column("link_item_code")
        batch.drop_column("link_status")
