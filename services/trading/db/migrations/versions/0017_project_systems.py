"""projects: the calling system that registered each, so a project's request id answers
that system only (the audit log's entry of the registration names it for those before)

Revision ID: 0017_project_systems
Revises: 0016_score_tallies
Create Date: 2026-12-01 19:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0017_project_systems'
down_revision: str | None = '0016_score_tallies'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('projects') as batch:
        batch.add_column(sa.Column('system', sa.String(length=100), nullable=False,
                                   server_default=''))
    op.execute("UPDATE projects SET system = COALESCE((SELECT a.system FROM audit_log a "
               "WHERE a.action = 'project.registered' "
               "AND a.subject = 'project/' || projects.project_no "
               "ORDER BY a.sequence LIMIT 1), '')")


def downgrade() -> None:
    with op.batch_alter_table('projects') as batch:
        batch.drop_column('system')
