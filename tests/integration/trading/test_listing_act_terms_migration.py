"""Migration 0018 on a database that holds listing acts and origin notes: both keep their
rows with '' as the terms digest (an act recorded before finds the note made before), a
key takes a note per content afterwards, and the downgrade keeps one note per key (the
first noted)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from kernel.db import make_engine
from kernel.instants import utc_text
from kernel.migrations import alembic_config, upgrade
from services.trading.db import tables
from services.trading.main import DEFINITION
from tests.integration.trading.test_envelope_migration import _filled
from tests.support import fresh_database_url

LATE = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)
EARLY = utc_text(LATE.replace(second=0))


def _acts_at_0017(url: str) -> None:
    engine = make_engine(url)
    reflected = sa.MetaData()
    reflected.reflect(engine)
    t = reflected.tables
    with engine.begin() as connection:
        connection.execute(t["projects"].insert(), _filled(t["projects"], {
            "project_no": "PJ-1", "request_id": "r-project"}))
        connection.execute(t["listings"].insert(), _filled(t["listings"], {
            "listing_no": "LS-1", "project_no": "PJ-1", "request_id": "r-listing",
            "workflow_started": True}))
        connection.execute(t["bidders"].insert(), _filled(t["bidders"], {
            "bidder_id": "BD-0001"}))
        connection.execute(t["listing_acts"].insert(), _filled(t["listing_acts"], {
            "listing_no": "LS-1", "act_key": "listing_bid/s/r1", "position": 1,
            "bidder_id": "BD-0001", "amount_fen": 100}))
        for key in ("listing_bid/s/r1", "listing_bid/s/r2"):
            connection.execute(t["listing_act_origins"].insert(), {
                "listing_no": "LS-1", "act_key": key, "origin": "10.0.0.1",
                "noted_at": EARLY})
    engine.dispose()


def _notes(url: str) -> list[tuple[str, str, str]]:
    engine = make_engine(url)
    o = sa.Table("listing_act_origins", sa.MetaData(), autoload_with=engine)
    with engine.connect() as connection:
        found = sorted((r.act_key, getattr(r, "terms_sha256", None) or "", r.origin)
                       for r in connection.execute(sa.select(o)))
    engine.dispose()
    return found


def test_acts_and_notes_take_a_terms_digest_and_give_it_back(backend: str,
                                                              tmp_path: Path) -> None:
    url = fresh_database_url(backend, "trading", tmp_path)
    config = alembic_config(migrations_dir=DEFINITION.migrations_dir, url=url)
    command.upgrade(config, "0017_request_systems")
    _acts_at_0017(url)

    upgrade(migrations_dir=DEFINITION.migrations_dir, url=url)
    engine = make_engine(url)
    a, o = tables.listing_acts, tables.listing_act_origins
    with engine.begin() as connection:
        acts = list(connection.execute(sa.select(a.c.act_key, a.c.terms_sha256)))
        # Another content under r1, noted later: its own note beside the first.
        connection.execute(o.insert(), {"listing_no": "LS-1", "act_key": "listing_bid/s/r1",
                                        "terms_sha256": "f" * 64, "origin": "10.0.0.2",
                                        "noted_at": LATE})
    engine.dispose()
    upgraded = _notes(url)

    command.downgrade(config, "0017_request_systems")
    downgraded = _notes(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns("listing_acts")}
    engine.dispose()
    upgrade(migrations_dir=DEFINITION.migrations_dir, url=url)

    assert acts == [("listing_bid/s/r1", "")]
    assert upgraded == [("listing_bid/s/r1", "", "10.0.0.1"),
                        ("listing_bid/s/r1", "f" * 64, "10.0.0.2"),
                        ("listing_bid/s/r2", "", "10.0.0.1")]
    assert downgraded == [("listing_bid/s/r1", "", "10.0.0.1"),
                          ("listing_bid/s/r2", "", "10.0.0.1")]
    assert "terms_sha256" not in columns
    assert _notes(url) == downgraded
