"""complaint handling: the case's clock and outcome, the outbox flag, replies, co-handlers,
extensions, returns, recorded acts, the versioned deadline policy and handled requests

Revision ID: 0005_complaint_handling
Revises: 0004_complaint_cases
Create Date: 2026-12-01 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_complaint_handling"
down_revision: str | None = "0004_complaint_cases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INSTANT = sa.String(length=40)
#: Version 1 of the deadline policy: the defaults (Guangdong 12345 rules), in force from the
#: start of time, so that every case ever received has a version to follow.
_DEFAULT_POLICY = {
    "version": 1, "consultation_days": 2, "request_days": 10, "complaint_days": 15,
    "urgent_reply_hours": 2, "sign_for_working_hours": 4, "urgent_sign_for_minutes": 30,
    "rating_window_days": 5, "reopen_reply_days": 15, "max_extension_days": 10,
    "basis": "default policy (Guangdong 12345 rules)", "set_by_official_id": "",
    "valid_from": "2000-01-01T00:00:00.000000+00:00", "valid_until": None}


def upgrade() -> None:
    with op.batch_alter_table("complaint_cases") as batch:
        for name in ("sign_for_due", "signed_for_at", "reply_due", "first_replied_at",
                     "replied_at", "closed_at"):
            batch.add_column(sa.Column(name, _INSTANT, nullable=True))
        batch.add_column(sa.Column("rating", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rated_at", _INSTANT, nullable=True))
        batch.add_column(sa.Column("reopened", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("merged_into", sa.String(length=20), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("policy_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("escalations", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("workflow_started", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("rating_closes", _INSTANT, nullable=True))
        batch.add_column(sa.Column("sla_state", sa.String(length=12), nullable=False,
                                   server_default="on_time"))
        batch.add_column(sa.Column("returned_by", sa.String(length=12), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("extended_days", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("unknown_year", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.create_index("ix_complaint_cases_department_status",
                           ["department_code", "status"])
        batch.create_index("ix_complaint_cases_outbox", ["workflow_started", "case_number"])
    op.create_table(
        "complaint_replies",
        sa.Column("case_number", sa.String(length=20), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("department_code", sa.String(length=12), nullable=False),
        sa.Column("official_id", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("published_text", sa.Text(), nullable=False),
        sa.Column("replied_at", _INSTANT, nullable=False),
        sa.Column("answered_by", sa.String(length=20), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("case_number", "sequence"),
    )
    op.create_table(
        "complaint_co_handlers",
        sa.Column("case_number", sa.String(length=20), nullable=False),
        sa.Column("department_code", sa.String(length=12), nullable=False),
        sa.Column("contribution", sa.Text(), nullable=True),
        sa.Column("contributed_at", _INSTANT, nullable=True),
        sa.Column("official_id", sa.String(length=20), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("case_number", "department_code"),
    )
    op.create_index("ix_complaint_co_handlers_department", "complaint_co_handlers",
                    ["department_code", "case_number"])
    op.create_table(
        "complaint_extensions",
        sa.Column("case_number", sa.String(length=20), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("department_code", sa.String(length=12), nullable=False),
        sa.Column("requested_days", sa.Integer(), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=20), nullable=False),
        sa.Column("requested_at", _INSTANT, nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False, server_default=""),
        sa.Column("granted_days", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("decided_by", sa.String(length=20), nullable=False, server_default=""),
        sa.Column("decided_at", _INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("case_number", "sequence"),
    )
    op.create_index("ix_complaint_extensions_outcome", "complaint_extensions",
                    ["outcome", "case_number"])
    op.create_table(
        "complaint_returns",
        sa.Column("case_number", sa.String(length=20), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("department_code", sa.String(length=12), nullable=False),
        sa.Column("official_id", sa.String(length=20), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("returned_at", _INSTANT, nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False, server_default=""),
        sa.Column("target_department", sa.String(length=12), nullable=False,
                  server_default=""),
        sa.Column("dispatch_basis", sa.Text(), nullable=False, server_default=""),
        sa.Column("decided_by", sa.String(length=20), nullable=False, server_default=""),
        sa.Column("decided_at", _INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("case_number", "sequence"),
    )
    op.create_table(
        "complaint_acts",
        sa.Column("act_id", sa.String(length=64), nullable=False),
        sa.Column("case_number", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("official_id", sa.String(length=20), nullable=False),
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("recorded_at", _INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("act_id"),
    )
    op.create_index("ix_complaint_acts_case", "complaint_acts", ["case_number"])
    policies = op.create_table(
        "deadline_policies",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("consultation_days", sa.Integer(), nullable=False),
        sa.Column("request_days", sa.Integer(), nullable=False),
        sa.Column("complaint_days", sa.Integer(), nullable=False),
        sa.Column("urgent_reply_hours", sa.Integer(), nullable=False),
        sa.Column("sign_for_working_hours", sa.Integer(), nullable=False),
        sa.Column("urgent_sign_for_minutes", sa.Integer(), nullable=False),
        sa.Column("rating_window_days", sa.Integer(), nullable=False),
        sa.Column("reopen_reply_days", sa.Integer(), nullable=False),
        sa.Column("max_extension_days", sa.Integer(), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("set_by_official_id", sa.String(length=20), nullable=False),
        sa.Column("valid_from", _INSTANT, nullable=False),
        sa.Column("valid_until", _INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("version"),
    )
    op.bulk_insert(policies, [_DEFAULT_POLICY])
    op.create_table(
        "handled_requests",
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("request_id", sa.String(length=80), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("case_number", sa.String(length=40), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("received_at", _INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("system", "request_id"),
    )


def downgrade() -> None:
    op.drop_table("handled_requests")
    op.drop_table("deadline_policies")
    op.drop_index("ix_complaint_acts_case", table_name="complaint_acts")
    op.drop_table("complaint_acts")
    op.drop_table("complaint_returns")
    op.drop_index("ix_complaint_extensions_outcome", table_name="complaint_extensions")
    op.drop_table("complaint_extensions")
    op.drop_index("ix_complaint_co_handlers_department", table_name="complaint_co_handlers")
    op.drop_table("complaint_co_handlers")
    op.drop_table("complaint_replies")
    with op.batch_alter_table("complaint_cases") as batch:
        batch.drop_index("ix_complaint_cases_outbox")
        batch.drop_index("ix_complaint_cases_department_status")
        for name in ("unknown_year", "extended_days", "returned_by", "sla_state",
                     "rating_closes", "workflow_started", "escalations", "policy_version",
                     "merged_into", "reopened", "rated_at", "rating", "closed_at",
                     "replied_at", "first_replied_at", "reply_due", "signed_for_at",
                     "sign_for_due"):
            batch.drop_column(name)
