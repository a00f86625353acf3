"""the chain's progress and timeline in review; handled requests; signed decisions

Revision ID: 0006_chain_progress
Revises: 0005_calling_systems
Create Date: 2026-12-01 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_chain_progress"
down_revision: str | None = "0005_calling_systems"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("statement", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "case_progress",
        sa.Column("case_number", sa.String(length=40), nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("department_code", sa.String(length=12), nullable=False),
        sa.Column("stage", sa.String(length=10), nullable=False),
        sa.Column("sla_state", sa.String(length=10), nullable=False),
        sa.Column("warning_at", sa.String(length=40), nullable=False),
        sa.Column("promised_due_at", sa.String(length=40), nullable=False),
        sa.Column("legal_due_at", sa.String(length=40), nullable=False),
        sa.Column("unknown_year", sa.Integer(), nullable=False),
        sa.Column("stage_due_at", sa.Text(), nullable=False),
        sa.Column("paused_for", sa.String(length=30), nullable=False),
        sa.Column("extension_days", sa.Integer(), nullable=False),
        sa.Column("certificate_number", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("opened_at", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("case_number"),
    )
    op.create_table(
        "case_events",
        sa.Column("case_number", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=120), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("stage", sa.String(length=10), nullable=False),
        sa.Column("official_id", sa.String(length=20), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("sla_state", sa.String(length=10), nullable=False),
        sa.Column("recorded_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("case_number", "event_id"),
        sa.UniqueConstraint("case_number", "sequence", name="uq_case_events_sequence"),
    )
    op.create_table(
        "handled_requests",
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("request_id", sa.String(length=80), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("case_number", sa.String(length=40), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("received_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("system", "request_id"),
    )


def downgrade() -> None:
    op.drop_table("handled_requests")
    op.drop_table("case_events")
    op.drop_table("case_progress")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("statement")
