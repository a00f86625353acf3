"""Alembic environment of the complaints database (its own history, its own URL)."""

from alembic import context

from kernel.migrations import run_migrations
from services.complaints.db.tables import metadata
from services.complaints.settings import ComplaintsSettings

run_migrations(context, metadata=metadata,
               default_url=ComplaintsSettings().resolved_database_url())
