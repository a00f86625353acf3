"""complaint cases pushed in by platforms, their events and running numbers; the
calling system each platform pushes through

Revision ID: 0004_complaint_cases
Revises: 0003_calling_systems
Create Date: 2026-12-01 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_complaint_cases"
down_revision: str | None = "0003_calling_systems"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The sample platforms registered before this revision and the calling systems the
#: sample registry (deploy/sample/systems.json) gives them; a fresh database gets them
#: from deploy/sample/complaints.json instead.
_SAMPLE_PLATFORM_SYSTEMS = {"12345": "hotline-12345", "LNZWFW": "provincial-complaint-portal"}


def upgrade() -> None:
    with op.batch_alter_table("platforms") as batch:
        batch.add_column(sa.Column("system_name", sa.String(length=100), nullable=True))
        batch.create_unique_constraint("uq_platforms_system_name", ["system_name"])
    platforms = sa.table("platforms", sa.column("id", sa.String), sa.column("system_name",
                                                                             sa.String))
    for platform_id, system_name in _SAMPLE_PLATFORM_SYSTEMS.items():
        op.execute(platforms.update().where(platforms.c.id == platform_id)
                   .values(system_name=system_name))
    op.create_table(
        "complaint_cases",
        sa.Column("case_number", sa.String(length=20), nullable=False),
        sa.Column("platform_id", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("category_code", sa.String(length=10), nullable=False),
        sa.Column("department_code", sa.String(length=12), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("deadline_class", sa.String(length=20), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("complainant", sa.Text(), nullable=False),
        sa.Column("linked_case_number", sa.String(length=20), nullable=False),
        sa.Column("linked_tender_number", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("received_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("case_number"),
        sa.UniqueConstraint("platform_id", "external_id",
                            name="uq_complaint_cases_platform_external_id"),
    )
    op.create_table(
        "complaint_events",
        sa.Column("case_number", sa.String(length=20), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("case_number", "sequence"),
    )
    op.create_table(
        "complaint_sequences",
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("complaint_sequences")
    op.drop_table("complaint_events")
    op.drop_table("complaint_cases")
    with op.batch_alter_table("platforms") as batch:
        batch.drop_constraint("uq_platforms_system_name", type_="unique")
        batch.drop_column("system_name")
