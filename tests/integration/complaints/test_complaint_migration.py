"""Migration 0004 on a database that already holds the sample platforms."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from kernel.db import make_engine
from kernel.migrations import alembic_config, upgrade
from services.complaints.db import tables
from services.complaints.main import DEFINITION
from tests.support import fresh_database_url


def test_the_sample_platforms_get_their_calling_systems(backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, "complaints", tmp_path)
    command.upgrade(alembic_config(migrations_dir=DEFINITION.migrations_dir, url=url), "0003")
    engine = make_engine(url)
    before = sa.table("platforms", sa.column("id"), sa.column("name"), sa.column("kind"))
    with engine.begin() as connection:
        connection.execute(before.insert(), [
            {"id": "12345", "name": "热线", "kind": "hotline"},
            {"id": "LNZWFW", "name": "省平台", "kind": "portal"},
            {"id": "GJZWFW", "name": "国家平台", "kind": "portal"}])
    engine.dispose()
    upgrade(migrations_dir=DEFINITION.migrations_dir, url=url)
    engine = make_engine(url)
    with engine.connect() as connection:
        systems = dict(connection.execute(sa.select(
            tables.platforms.c.id, tables.platforms.c.system_name)).all())
        cases = connection.execute(sa.select(sa.func.count()).select_from(
            tables.complaint_cases)).scalar_one()
    engine.dispose()
    assert systems == {"12345": "hotline-12345", "LNZWFW": "provincial-complaint-portal",
                       "GJZWFW": None}
    assert cases == 0
