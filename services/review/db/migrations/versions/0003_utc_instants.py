"""instants as kernel.instants.UtcDateTime: fixed-width UTC ISO 8601 text

Review stored its instants as DateTime(timezone=True): timestamptz on
PostgreSQL, naive UTC text ("2026-01-05 01:02:03.000000") on SQLite. Every
other table of every service stores them as UTC ISO 8601 text, and
kernel.instants.UtcDateTime is now the one column type for all of them.
This rewrites review's instants into that text in place:

- PostgreSQL: each column becomes VARCHAR(40), converted from timestamptz
  (the same instant, to the microsecond);
- SQLite: the declared type stays (a declared type is only an affinity there
  and DATETIME keeps this text as text; redeclaring would mean rebuilding
  holiday_schedules under its foreign key), the values are rewritten.

Downgrade converts back.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 01:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Every instant column of the review database, by table.
INSTANTS = {
    "delegations": ("valid_from", "valid_until", "granted_at", "revoked_at"),
    "holiday_schedules": ("loaded_at",),
    "tasks": ("due_at", "opened_at", "claimed_at", "closed_at"),
    "decisions": ("decided_at", "recorded_at"),
    "escalations": ("due_at", "opened_at", "closed_at"),
}
#: kernel.instants.utc_text, in PostgreSQL's to_char.
PG_TEXT = "YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\""


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, columns in INSTANTS.items():
        for column in columns:
            if postgresql:
                op.alter_column(
                    table, column, type_=sa.String(length=40),
                    existing_type=sa.DateTime(timezone=True),
                    postgresql_using=f"to_char({column} AT TIME ZONE 'UTC', '{PG_TEXT}')")
            else:
                # "2026-01-05 01:02:03.000000" (naive UTC) -> "2026-01-05T01:02:03.000000+00:00"
                op.execute(f"UPDATE {table} SET {column} = substr({column}, 1, 10) || 'T' || "
                           f"substr({column}, 12) || '+00:00' "
                           f"WHERE {column} IS NOT NULL AND substr({column}, 11, 1) = ' '")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, columns in INSTANTS.items():
        for column in columns:
            if postgresql:
                op.alter_column(
                    table, column, type_=sa.DateTime(timezone=True),
                    existing_type=sa.String(length=40),
                    postgresql_using=f"{column}::timestamptz")
            else:
                op.execute(f"UPDATE {table} SET {column} = substr({column}, 1, 10) || ' ' || "
                           f"substr({column}, 12, 15) "
                           f"WHERE {column} IS NOT NULL AND substr({column}, 11, 1) = 'T'")
