"""``Projects.estimate``, the one column the opening's low-price rule reads of the project:
what ``Projects.get`` gives as ``estimated_value_fen``, and 0 for a project not known."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from kernel.db import make_engine
from kernel.migrations import upgrade
from services.trading.db.repository import TradingUnitOfWork
from services.trading.main import DEFINITION
from tests.integration.trading.test_envelope_migration import _filled
from tests.support import fresh_database_url


def test_the_estimate_is_the_projects_estimated_value(backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, "trading", tmp_path)
    upgrade(migrations_dir=DEFINITION.migrations_dir, url=url)
    engine = make_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    projects = metadata.tables["projects"]
    with engine.begin() as connection:
        for number, value in (("PJ-1", 987_654_321), ("PJ-2", 0)):
            connection.execute(projects.insert(), _filled(projects, {
                "project_no": number, "request_id": f"r-{number}", "entry_code": "",
                "estimated_value_fen": value}))
    with TradingUnitOfWork(engine, write=False) as unit:
        first = unit.projects.get("PJ-1")
        assert first is not None
        assert unit.projects.estimate("PJ-1") == first.estimated_value_fen == 987_654_321
        assert unit.projects.estimate("PJ-2") == 0
        assert unit.projects.estimate("PJ-404") == 0
    engine.dispose()
