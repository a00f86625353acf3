"""Gap test (s16 test read): test_listing_act_origins' "only a retry's clash is taken as
noted already" never clashes: ``Listings.note_origin`` looks for the note first, so the
second note returns before inserting, and ``note_act_origin`` raising every IntegrityError
(its unique-violation check dropped, mutation m34) passed it. Here the race it is for
(PostgreSQL: both attempts looked before either inserted) is made to happen: the look
finds nothing, so the retry's insert meets the first note's unique key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from kernel.signing import service_signer
from services.trading.app import listing_watch
from services.trading.db.repository import Listings, TradingUnitOfWork
from tests.integration.trading.listing_venue import Venue
from tests.integration.trading.test_listing_act_origins import _notes
from workflows import listing_contract as lc
from workflows.approval_contract import as_statement


async def test_a_racing_retry_s_unique_clash_is_taken_as_noted_already(
        venue: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    signer = service_signer(tmp_path / "signer", "trading")
    statement = as_statement(signer.sign(lc.listing_statement_body(
        kind=lc.StatementKind.BID, listing_no=listing.listing_no,
        system="bidder-system-bd0001", issued_at=await venue.now(),
        request_id=str(uuid.uuid4()), bidder_id="BD-0001", amount_fen=100_000_000)))

    def looked_before_the_first_insert(self: Any, listing_no: str, act_key: str,
                                       terms_sha256: str, origin: str, *,
                                       at: datetime) -> None:
        self._connection.execute(insert(self._o).values(
            listing_no=listing_no, act_key=act_key, terms_sha256=terms_sha256,
            origin=origin, noted_at=at))

    monkeypatch.setattr(Listings, "note_origin", looked_before_the_first_insert)
    for origin in ("127.0.0.1", "10.0.0.9"):
        listing_watch.note_act_origin(
            uow=TradingUnitOfWork(venue.trading.running.engine), kind=lc.StatementKind.BID,
            listing_no=listing.listing_no, statement=statement, origin=origin,
            now=datetime.now(UTC))
    assert [n.origin for n in _notes(venue, listing.listing_no)] == ["127.0.0.1"]
