"""Migration 0017 on a database that already holds projects and direct awards: each one's
calling system is read from the audit log's entry of its registration or award ('' when
there is none, so its request id answers no system), and the downgrade drops the columns
again."""

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

#: An audit entry as the old code wrote it: (system, action, subject).
Entry = tuple[str, str, str]


def _at_0016(url: str, *, awarded: tuple[str, ...], entries: list[Entry]) -> None:
    """A database at 0016 holding projects PJ-1 and PJ-2, direct awards of ``awarded`` and
    the audit log's ``entries`` in order; no system recorded anywhere but in the log."""
    engine = make_engine(url)
    reflected = sa.MetaData()
    reflected.reflect(engine)
    t = reflected.tables
    with engine.begin() as connection:
        for number in ("PJ-1", "PJ-2"):
            connection.execute(t["projects"].insert(), _filled(t["projects"], {
                "project_no": number, "request_id": f"r-{number}"}))
        for number in awarded:
            connection.execute(t["direct_awards"].insert(), _filled(t["direct_awards"], {
                "project_no": number, "request_id": f"a-{number}", "amount_fen": 1}))
        for sequence, (system, action, subject) in enumerate(entries, start=1):
            connection.execute(t["audit_log"].insert(), _filled(t["audit_log"], {
                "sequence": sequence, "system": system, "action": action,
                "subject": subject, "entry_hash": f"{sequence:064d}"}))
    engine.dispose()


def _systems_after_0017(url: str) -> tuple[dict[str, str], dict[str, str]]:
    """Upgraded to 0017: each project's system, and each direct award's."""
    upgrade(migrations_dir=DEFINITION.migrations_dir, url=url)
    engine = make_engine(url)
    p, d = tables.projects, tables.direct_awards
    with engine.connect() as connection:
        systems = dict(connection.execute(sa.select(p.c.project_no, p.c.system)).all())
        awarded = dict(connection.execute(sa.select(d.c.project_no, d.c.system)).all())
    engine.dispose()
    return systems, awarded


def test_each_project_s_and_award_s_system_comes_from_its_audit_entry(
        backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, "trading", tmp_path)
    config = alembic_config(migrations_dir=DEFINITION.migrations_dir, url=url)
    command.upgrade(config, "0016_score_tallies")
    _at_0016(url, awarded=("PJ-1", "PJ-2"), entries=[
        ("operator", "expert.registered", "project/PJ-1"),
        ("trading-platform", "project.registered", "project/PJ-1"),
        ("operator", "project.registered", "project/PJ-10"),
        ("operator", "project.awarded_directly", "project/PJ-2")])

    systems, awarded = _systems_after_0017(url)
    assert systems == {"PJ-1": "trading-platform", "PJ-2": ""}
    assert awarded == {"PJ-1": "", "PJ-2": "operator"}

    command.downgrade(config, "0016_score_tallies")
    engine = make_engine(url)
    with engine.connect() as connection:
        columns = {table: {c["name"] for c in sa.inspect(connection).get_columns(table)}
                   for table in ("projects", "direct_awards")}
    engine.dispose()
    assert all("system" not in names and "project_no" in names
               for names in columns.values())


def test_a_project_s_system_is_not_read_from_a_longer_number_s_entry(
        backend: str, tmp_path: Path) -> None:
    """(s16 test read, mutation m20: the first test's decoy, project/PJ-10, came after
    PJ-1's own entry, so a prefix match passed it.) A project's system is read from the
    entry of that very project, not of another whose number begins with it; and the
    downgrade keeps the rows."""
    url = fresh_database_url(backend, "trading", tmp_path)
    config = alembic_config(migrations_dir=DEFINITION.migrations_dir, url=url)
    command.upgrade(config, "0016_score_tallies")
    # Only longer numbers' entries for PJ-1 (none of its own), and PJ-2's own entry
    # after a longer number's.
    _at_0016(url, awarded=("PJ-1",), entries=[
        ("operator", "project.registered", "project/PJ-10"),
        ("operator", "project.awarded_directly", "project/PJ-10"),
        ("operator", "project.registered", "project/PJ-21"),
        ("trading-platform", "project.registered", "project/PJ-2")])

    systems, awarded = _systems_after_0017(url)
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
