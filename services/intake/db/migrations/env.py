"""Alembic environment of the intake database (its own history, its own URL)."""

from alembic import context

from kernel.migrations import run_migrations
from services.intake.db.tables import metadata
from services.intake.settings import IntakeSettings

run_migrations(context, metadata=metadata,
               default_url=IntakeSettings().resolved_database_url())
