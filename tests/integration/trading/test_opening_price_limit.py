"""Which reading of a bid's price the opening keeps for the ranking: the ranking's
(evaluation.price_in: 1 to MAX_PRICE_FEN), not monitoring's (any whole number above 0)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from services.trading.db import tables
from services.trading.domain.evaluation import MAX_PRICE_FEN
from tests.integration.trading import test_tender_evaluation
from tests.integration.trading.test_tender_chain import Venue
from tests.integration.trading.test_tender_chain import venue as venue  # the fixture


async def test_a_price_above_the_limit_is_kept_as_none_stated_for_the_ranking(
        venue: Venue, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(test_tender_evaluation.PRICES, "BD-0003", MAX_PRICE_FEN + 1)
    number = await test_tender_evaluation._to_evaluation(venue)
    bids = tables.sealed_bids
    with venue.trading.running.engine.connect() as connection:
        kept = {r.bidder_id: (r.validity, r.price_fen) for r in connection.execute(
            select(bids.c.bidder_id, bids.c.validity, bids.c.price_fen)
            .where(bids.c.tender_no == number))}
    assert kept["BD-0003"] == ("valid", 0)
    assert kept["BD-0001"] == ("valid", 1_000_000)
