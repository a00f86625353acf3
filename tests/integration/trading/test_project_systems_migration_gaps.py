"""Gap test (s16 test read): migration 0017 reads a project's system from the audit entry
of that very project, not of another whose number begins with it (test_project_systems_
migration's decoy, project/PJ-10, came after PJ-1's own entry, so a prefix match passed
it: mutation m20), and its downgrade keeps the rows."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from kernel.db import make_engine
from kernel.migrations import alembic_config, upgrade
from services.trading.db import tables
from services.trading.main import DEFINITION
from tests.integration.trading.test_envelope_migration import _filled
from tests.support import fresh_database_url


def test_a_project_s_system_is_not_read_from_a_longer_number_s_entry(
        backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, "trading", tmp_path)
    config = alembic_config(migrations_dir=DEFINITION.migrations_dir, url=url)
    command.upgrade(config, "0016_score_tallies")
    engine = make_engine(url)
    reflected = sa.MetaData()
    reflected.reflect(engine)
    t = reflected.tables
    with engine.begin() as connection:
        for number in ("PJ-1", "PJ-2"):
            connection.execute(t["projects"].insert(), _filled(t["projects"], {
                "project_no": number, "request_id": f"r-{number}"}))
        connection.execute(t["direct_awards"].insert(), _filled(t["direct_awards"], {
            "project_no": "PJ-1", "request_id": "a-PJ-1", "amount_fen": 1}))
        # Only longer numbers' entries for PJ-1 (none of its own), and PJ-2's own entry
        # after a longer number's.
        for sequence, (system, action, subject) in enumerate([
                ("operator", "project.registered", "project/PJ-10"),
                ("operator", "project.awarded_directly", "project/PJ-10"),
                ("operator", "project.registered", "project/PJ-21"),
                ("trading-platform", "project.registered", "project/PJ-2")], start=1):
            connection.execute(t["audit_log"].insert(), _filled(t["audit_log"], {
                "sequence": sequence, "system": system, "action": action,
                "subject": subject, "entry_hash": f"{sequence:064d}"}))
    engine.dispose()

    upgrade(migrations_dir=DEFINITION.migrations_dir, url=url)
    engine = make_engine(url)
    p, d = tables.projects, tables.direct_awards
    with engine.connect() as connection:
        systems = dict(connection.execute(sa.select(p.c.project_no, p.c.system)).all())
        awarded = dict(connection.execute(sa.select(d.c.project_no, d.c.system)).all())
    engine.dispose()
    assert systems == {"PJ-1": "", "PJ-2": "trading-platform"}
    assert awarded == {"PJ-1": ""}

    command.downgrade(config, "0016_score_tallies")
    engine = make_engine(url)
    with engine.connect() as connection:
        kept = {table: sorted(connection.execute(sa.text(
            f"SELECT project_no FROM {table}")).scalars())  # noqa: S608 (a fixed name)
            for table in ("projects", "direct_awards")}
    engine.dispose()
    assert kept == {"projects": ["PJ-1", "PJ-2"], "direct_awards": ["PJ-1"]}
