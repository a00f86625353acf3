"""Gap test (s16 test read): the opening's identical-documents alert when a bid that does
not open (its key never revealed) comes before the identical ones in the envelopes'
order. The opening lets each document go and opens the first of two alike ones again by
its envelope; in test_monitoring_api every bid opens, so the envelope's position and the
valid bids' position were the same, and opening again the wrong envelope passed (mutation
o09 of the s16 test read)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from govhall.trading.v1 import trading_pb2 as pb
from kernel.signing import service_signer
from services.trading.app import tender_steps
from services.trading.db.repository import TradingUnitOfWork
from tests.integration.trading.test_monitoring_api import Calls, _sealed, _tender
from tests.integration.trading.test_monitoring_api import calls as calls  # the fixture
from tests.integration.trading.test_monitoring_api import trading as trading  # the fixture
from tests.support import ServiceUnderTest
from workflows.approval_contract import SignedStatement
from workflows.tender_contract import TenderStep


async def test_identical_documents_after_a_bid_that_does_not_open_are_found(
        calls: Calls, trading: ServiceUnderTest) -> None:
    tender = await _tender(calls, value=500_000_000)
    # BD-0001 never reveals its key (its bid does not open); BD-0002 and BD-0003 send the
    # very same document, BD-0004 another of the same length and ends.
    documents = {"BD-0001": b'{"price_fen": 400000000, "spec": "Z"}',
                 "BD-0002": b'{"price_fen": 400000000, "spec": "A"}',
                 "BD-0003": b'{"price_fen": 400000000, "spec": "A"}',
                 "BD-0004": b'{"price_fen": 400000000, "spec": "B"}'}
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
    bid_keys = {}
    for bidder_id, document in documents.items():
        request, bid_keys[bidder_id] = _sealed(tender.tender_no, bidder_id, document)
        await calls.bidder(bidder_id).SubmitSealedBid(request)
    deadline = tender.bid_deadline.ToDatetime(tzinfo=UTC) + timedelta(seconds=1)
    await asyncio.to_thread(tender_steps.close_bidding, uow=units, keys=keys, signer=signer,
                            step=step("deadline", deadline))
    for bidder_id, key in bid_keys.items():
        if bidder_id != "BD-0001":
            await calls.bidder(bidder_id).RevealBidKey(pb.RevealBidKeyRequest(
                tender_no=tender.tender_no, bidder_id=bidder_id, key=key.hex()))
    await asyncio.to_thread(
        tender_steps.close_decryption, uow=units, keys=keys, signer=signer,
        step=step("decryption_closed",
                  deadline + timedelta(minutes=tender.decryption_window_minutes, seconds=1)))
    seen = [r.step async for r in calls.supervision.WatchTrades(pb.WatchTradesRequest())]

    opening = seen[-1]
    assert (opening.step, opening.stage) == ("decryption_closed", "evaluation")
    assert [a.rule for a in opening.alerts] == [pb.TRADE_ALERT_RULE_IDENTICAL_DOCUMENTS]
    assert json.loads(opening.alerts[0].details_json)["bidders"] == ["BD-0002", "BD-0003"]
