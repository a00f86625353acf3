"""Alembic per service: each service has its own history and its own URL.

A service's ``db/migrations/env.py`` calls ``run_migrations``; start-up and
tests call ``upgrade``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

from kernel.db import make_engine


def alembic_config(*, migrations_dir: Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["database_url"] = url
    return config


def upgrade(*, migrations_dir: Path, url: str) -> None:
    """Bring the database at ``url`` to the newest revision."""
    command.upgrade(alembic_config(migrations_dir=migrations_dir, url=url), "head")


def run_migrations(context: Any, *, metadata: MetaData, default_url: str) -> None:
    """The body of every service's env.py, online mode."""
    url = context.config.attributes.get("database_url") or default_url
    engine = make_engine(url)
    engine = engine.execution_options(govhall_write=True)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
