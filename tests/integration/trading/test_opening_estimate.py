"""The opening's low-price rule reads the project's estimate (``Projects.estimate``, passed
by ``tender_steps.close_decryption``) when no other valid bid states a price. Here only
BD-0003's document states a price, below 70% of the project's 500,000,000 fen estimate:
the opening raises a low-price alert on the estimate (0, or another project's estimate,
would not)."""

from __future__ import annotations

import json

from govhall.trading.v1 import trading_pb2 as pb
from tests.integration.trading.test_monitoring_api import Calls, _tender, opened
from tests.integration.trading.test_monitoring_api import calls as calls
from tests.integration.trading.test_monitoring_api import trading as trading
from tests.support import ServiceUnderTest


async def test_a_lone_stated_price_below_the_estimate_is_a_low_price_alert(
        calls: Calls, trading: ServiceUnderTest) -> None:
    tender = await _tender(calls, value=500_000_000)
    documents = {"BD-0001": b'{"spec": "A"}', "BD-0002": b'{"spec": "B"}',
                 "BD-0003": b'{"price_fen": 349999999, "spec": "C"}'}
    seen = await opened(calls, trading, tender, documents)
    opening = seen[-1]
    assert (opening.step, opening.stage) == ("decryption_closed", "evaluation")
    assert [a.rule for a in opening.alerts] == [pb.TRADE_ALERT_RULE_LOW_PRICE]
    low = json.loads(opening.alerts[0].details_json)
    assert (low["bidder_id"], low["price_fen"], low["basis"], low["reference_sum_fen"]) == (
        "BD-0003", 349_999_999, "estimate", 500_000_000)
