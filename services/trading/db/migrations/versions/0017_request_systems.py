"""projects and direct awards: the calling system that registered (recorded) each, so a
request id answers that system only (the audit log's entry names it for those before)

Revision ID: 0017_request_systems
Revises: 0016_score_tallies
Create Date: 2026-12-01 19:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0017_request_systems'
down_revision: str | None = '0016_score_tallies'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Each table, and the audit action that recorded its rows (subject "project/<no>").
RECORDED_BY = {'projects': 'project.registered', 'direct_awards': 'project.awarded_directly'}


#: A temporary index for the back-fill: without it each row scans the audit log from its
#: start (projects x entries; about an hour for 10,000 projects and 1,000,000 entries).
FILL_INDEX = 'ix_audit_log_fill_0017'


def upgrade() -> None:
    op.create_index(FILL_INDEX, 'audit_log', ['action', 'subject', 'sequence'])
    for table, action in RECORDED_BY.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('system', sa.String(length=100), nullable=False,
                                       server_default=''))
        op.execute(f"UPDATE {table} SET system = COALESCE((SELECT a.system FROM audit_log a "
                   f"WHERE a.action = '{action}' "
                   f"AND a.subject = 'project/' || {table}.project_no "
                   "ORDER BY a.sequence LIMIT 1), '')")
    op.drop_index(FILL_INDEX, 'audit_log')


def downgrade() -> None:
    # Dropped in place (SQLite 3.35 on, as PostgreSQL): a batch would rebuild projects,
    # which the direct awards, tenders and listings reference.
    for table in RECORDED_BY:
        op.execute(f'ALTER TABLE {table} DROP COLUMN system')
