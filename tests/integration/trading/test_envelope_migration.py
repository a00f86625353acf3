"""Migration 0015 on a database that already holds sealed bids: each envelope moves to
``sealed_bid_envelopes``, byte for byte, and the downgrade puts it back."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command

from kernel.db import make_engine
from kernel.migrations import alembic_config, upgrade
from services.trading.db import tables
from services.trading.main import DEFINITION
from tests.support import fresh_database_url

_ENVELOPES = {"BD-0001": b"\x00sealed one" * 700, "BD-0002": b"\x01sealed two"}


def _filled(table: sa.Table, values: dict[str, Any]) -> dict[str, Any]:
    """``values``, and a plain value of its type for every other required column."""
    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable:
            continue
        if isinstance(column.type, sa.Boolean):
            row[column.name] = False
        elif isinstance(column.type, sa.Integer):
            row[column.name] = 0
        elif isinstance(column.type, sa.LargeBinary):
            row[column.name] = b""
        else:
            row[column.name] = "2026-12-01T00:00:00+00:00"[:getattr(column.type, "length",
                                                                     None) or 40]
    return row


def _bids_at_0014(url: str) -> None:
    engine = make_engine(url)
    reflected = sa.MetaData()
    reflected.reflect(engine)
    t = reflected.tables
    with engine.begin() as connection:
        connection.execute(t["projects"].insert(), _filled(t["projects"], {
            "project_no": "PJ-1", "request_id": "r-project"}))
        connection.execute(t["tenders"].insert(), _filled(t["tenders"], {
            "tender_no": "TD-1", "project_no": "PJ-1", "request_id": "r-tender"}))
        for bidder, envelope in _ENVELOPES.items():
            connection.execute(t["bidders"].insert(), _filled(t["bidders"], {
                "bidder_id": bidder}))
            connection.execute(t["sealed_bids"].insert(), _filled(t["sealed_bids"], {
                "tender_no": "TD-1", "bidder_id": bidder, "ciphertext": envelope,
                "ciphertext_sha256": hashlib.sha256(envelope).hexdigest(),
                "validity": "valid"}))
    engine.dispose()


def test_the_envelopes_move_to_their_own_table_and_back(backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, "trading", tmp_path)
    config = alembic_config(migrations_dir=DEFINITION.migrations_dir, url=url)
    command.upgrade(config, "0014_listing_act_origins")
    _bids_at_0014(url)

    upgrade(migrations_dir=DEFINITION.migrations_dir, url=url)
    engine = make_engine(url)
    e, b = tables.sealed_bid_envelopes, tables.sealed_bids
    with engine.connect() as connection:
        moved = {r.bidder_id: bytes(r.ciphertext) for r in connection.execute(
            sa.select(e.c.bidder_id, e.c.ciphertext).where(e.c.tender_no == "TD-1"))}
        validities = dict(connection.execute(sa.select(b.c.bidder_id, b.c.validity)).all())
        columns = {c["name"] for c in sa.inspect(connection).get_columns("sealed_bids")}
    engine.dispose()
    assert moved == _ENVELOPES
    assert validities == {"BD-0001": "valid", "BD-0002": "valid"}
    assert "ciphertext" not in columns

    command.downgrade(config, "0014_listing_act_origins")
    engine = make_engine(url)
    with engine.connect() as connection:
        back: dict[str, bytes] = {r.bidder_id: bytes(r.ciphertext) for r in connection.execute(
            sa.text("SELECT bidder_id, ciphertext FROM sealed_bids"))}
        names = set(sa.inspect(connection).get_table_names())
    engine.dispose()
    assert back == _ENVELOPES
    assert "sealed_bid_envelopes" not in names
