"""what checking a complaint's link to a tender found: found, not found or unchecked, and
for a tender found its category of trade and the tenderer's department

Revision ID: 0009_tender_links
Revises: 0008_complaint_links
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_tender_links"
down_revision: str | None = "0008_complaint_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Tenders named before trading could be asked were never checked: "unchecked".
    with op.batch_alter_table("complaint_cases") as batch:
        batch.add_column(sa.Column("tender_link_status", sa.String(length=12), nullable=False,
                                   server_default="unchecked"))
        batch.add_column(sa.Column("tender_link_category", sa.String(length=30),
                                   nullable=False, server_default=""))
        batch.add_column(sa.Column("tender_link_department_code", sa.String(length=12),
                                   nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("complaint_cases") as batch:
        batch.drop_column("tender_link_department_code")
        batch.drop_column("tender_link_category")
        batch.drop_column("tender_link_status")
