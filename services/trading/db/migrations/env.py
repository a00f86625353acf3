"""Alembic environment of the trading database (its own history, its own URL)."""

from alembic import context

from kernel.migrations import run_migrations
from services.trading.db.tables import metadata
from services.trading.settings import TradingSettings

run_migrations(context, metadata=metadata,
               default_url=TradingSettings().resolved_database_url())
