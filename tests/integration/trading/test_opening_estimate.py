"""The opening's low-price rule reads the project's estimate (``Projects.estimate``, passed
by ``tender_steps.close_decryption``) when no other valid bid states a price. Here only
BD-0003's document states a price, below 70% of the project's 500,000,000 fen estimate:
the opening raises a low-price alert on the estimate (0, or another project's estimate,
would not)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from govhall.trading.v1 import trading_pb2 as pb
from kernel.signing import service_signer
from services.trading.app import tender_steps
from services.trading.db.repository import TradingUnitOfWork
from tests.integration.trading.test_monitoring_api import Calls, _sealed, _tender
from tests.integration.trading.test_monitoring_api import calls as calls
from tests.integration.trading.test_monitoring_api import trading as trading
from tests.support import ServiceUnderTest
from workflows.approval_contract import SignedStatement
from workflows.tender_contract import TenderStep


async def test_a_lone_stated_price_below_the_estimate_is_a_low_price_alert(
        calls: Calls, trading: ServiceUnderTest) -> None:
    tender = await _tender(calls, value=500_000_000)
    engine, settings = trading.running.engine, trading.settings
    keys, signer = settings.trusted_keys(), service_signer(settings.pki_dir, "trading")
    with TradingUnitOfWork(engine, write=False) as unit:
        announcement = SignedStatement(**unit.tenders.announcement(tender.tender_no))

    def step(name: str, at: datetime) -> TenderStep:
        return TenderStep(tender.tender_no, announcement, at, step=name)

    def units() -> TradingUnitOfWork:
        return TradingUnitOfWork(engine)

    await asyncio.to_thread(tender_steps.open_tender, uow=units, keys=keys, signer=signer,
                            step=step("announced", datetime.now(UTC)))
    documents = {"BD-0001": b'{"spec": "A"}', "BD-0002": b'{"spec": "B"}',
                 "BD-0003": b'{"price_fen": 349999999, "spec": "C"}'}
    bid_keys = {}
    for bidder_id, document in documents.items():
        request, bid_keys[bidder_id] = _sealed(tender.tender_no, bidder_id, document)
        await calls.bidder(bidder_id).SubmitSealedBid(request)
    deadline = tender.bid_deadline.ToDatetime(tzinfo=UTC) + timedelta(seconds=1)
    await asyncio.to_thread(tender_steps.close_bidding, uow=units, keys=keys, signer=signer,
                            step=step("deadline", deadline))
    for bidder_id, key in bid_keys.items():
        await calls.bidder(bidder_id).RevealBidKey(pb.RevealBidKeyRequest(
            tender_no=tender.tender_no, bidder_id=bidder_id, key=key.hex()))
    await asyncio.to_thread(
        tender_steps.close_decryption, uow=units, keys=keys, signer=signer,
        step=step("decryption_closed",
                  deadline + timedelta(minutes=tender.decryption_window_minutes, seconds=1)))

    seen = [r.step async for r in calls.supervision.WatchTrades(pb.WatchTradesRequest())]
    opening = seen[-1]
    assert (opening.step, opening.stage) == ("decryption_closed", "evaluation")
    assert [a.rule for a in opening.alerts] == [pb.TRADE_ALERT_RULE_LOW_PRICE]
    low = json.loads(opening.alerts[0].details_json)
    assert (low["bidder_id"], low["price_fen"], low["basis"], low["reference_sum_fen"]) == (
        "BD-0003", 349_999_999, "estimate", 500_000_000)
