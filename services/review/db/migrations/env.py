"""Alembic environment of the review database (its own history, its own URL)."""

from alembic import context

from kernel.migrations import run_migrations
from services.review.db.tables import metadata
from services.review.settings import ReviewSettings

run_migrations(context, metadata=metadata,
               default_url=ReviewSettings().resolved_database_url())
