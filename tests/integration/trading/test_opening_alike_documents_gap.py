"""Gap test (s16 test read): the opening's identical-documents alert when a bid that does
not open (its key never revealed) comes before the identical ones in the envelopes'
order. The opening lets each document go and opens the first of two alike ones again by
its envelope; in test_monitoring_api every bid opens, so the envelope's position and the
valid bids' position were the same, and opening again the wrong envelope passed (mutation
o09 of the s16 test read)."""

from __future__ import annotations

import json

from govhall.trading.v1 import trading_pb2 as pb
from tests.integration.trading.test_monitoring_api import Calls, _tender, opened
from tests.integration.trading.test_monitoring_api import calls as calls  # the fixture
from tests.integration.trading.test_monitoring_api import trading as trading  # the fixture
from tests.support import ServiceUnderTest


async def test_identical_documents_after_a_bid_that_does_not_open_are_found(
        calls: Calls, trading: ServiceUnderTest) -> None:
    tender = await _tender(calls, value=500_000_000)
    # BD-0001 never reveals its key (its bid does not open); BD-0002 and BD-0003 send the
    # very same document, BD-0004 another of the same length and ends.
    documents = {"BD-0001": b'{"price_fen": 400000000, "spec": "Z"}',
                 "BD-0002": b'{"price_fen": 400000000, "spec": "A"}',
                 "BD-0003": b'{"price_fen": 400000000, "spec": "A"}',
                 "BD-0004": b'{"price_fen": 400000000, "spec": "B"}'}
    seen = await opened(calls, trading, tender, documents, unrevealed=frozenset({"BD-0001"}))

    opening = seen[-1]
    assert (opening.step, opening.stage) == ("decryption_closed", "evaluation")
    assert [a.rule for a in opening.alerts] == [pb.TRADE_ALERT_RULE_IDENTICAL_DOCUMENTS]
    assert json.loads(opening.alerts[0].details_json)["bidders"] == ["BD-0002", "BD-0003"]
