"""Twin acts under one request id on a listing (attack s17 MEDIUM 1 and LOW 2).

Since each content under a request id is its own workflow update, a bidder can send its
real bid and, under the same request id, twins the workflow refuses (below the current
price). The origin notes of the same_origin rule must survive that, and the listing's
workflow must treat the request as taken from the moment it takes the first act:

- a refused twin never deletes (nor replaces) the note of the act recorded under its
  request id: every recorded act keeps its note and raises its same_origin alert;
- a twin's note taken before the real act's does not stand for it: the alerts read the
  note of the recorded act's own content, and the settled listing's sweep keeps that note
  only;
- other contents sent while the first act under the request is being recorded are all
  ALREADY_EXISTS at once (not judged by the rules at the state before it).
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError

from govhall.trading.v1 import trading_pb2 as pb
from kernel.signing import service_signer
from services.trading.app import listing_watch
from services.trading.app.request_ids import terms_sha256
from services.trading.db import tables
from services.trading.db.repository import TradingUnitOfWork
from tests.integration.trading.listing_venue import Venue, until
from workflows import listing_contract as lc
from workflows.approval_contract import SignedStatement, as_statement
from workflows.listing_contract import ListingStatus

START, INCREMENT = 100_000_000, 1_000_000
HERE = "127.0.0.1"


def _rows(venue: Venue, table: Any, listing_no: str) -> list[Any]:
    with venue.trading.running.engine.connect() as connection:
        return list(connection.execute(select(table).where(table.c.listing_no == listing_no)))


async def _alerts(venue: Venue, number: str) -> list[dict[str, Any]]:
    alerts = (await venue.via("supervision-system").ListTradeAlerts(pb.ListTradeAlertsRequest(
        trade=f"listing/{number}", rule=pb.TRADE_ALERT_RULE_SAME_ORIGIN))).alerts
    return [json.loads(a.details_json) for a in alerts]


def _signed(venue: Venue, kind: lc.StatementKind, listing_no: str, request_id: str,
            bidder_id: str, at: datetime, amount: int = 0) -> SignedStatement:
    """An act of BD-0001's system signed with trading's own key, as the servicer signs it."""
    body = lc.listing_statement_body(kind=kind, listing_no=listing_no,
                                     system="bidder-system-bd0001", issued_at=at,
                                     request_id=request_id, bidder_id=bidder_id,
                                     amount_fen=amount)
    return as_statement(service_signer(venue.trading.pki_dir, "trading").sign(body))


async def test_refused_twins_under_a_request_id_never_cost_the_real_bid_its_note(
        venue: Venue) -> None:
    """The attacker's rounds: BD-0002 bids from this host; BD-0001's system sends six
    twins below the current price and, 0 to 15 ms later, its real bid, all under one
    request id. Each real bid is recorded with its note, and each recorded act after
    BD-0002's first is a same_origin alert (both bidders act from one host)."""
    listing = await venue.land(start=START, increment=INCREMENT)
    number = listing.listing_no
    await venue.opened(listing)
    await venue.bid(number, "0002", START)
    stub = venue.bidder("0001")

    async def send(request: pb.PlaceListingBidRequest, delay: float) -> str:
        await asyncio.sleep(delay)
        try:
            await stub.PlaceListingBid(request)
            return "OK"
        except grpc.aio.AioRpcError as error:
            return error.code().name

    outcomes: list[list[str]] = []
    for round_no in range(4):
        price = (await venue.listing(number)).current_price_fen + INCREMENT
        shared = str(uuid.uuid4())
        real = pb.PlaceListingBidRequest(request_id=shared, listing_no=number,
                                         bidder_id="BD-0001", amount_fen=price)
        twins = [pb.PlaceListingBidRequest(request_id=shared, listing_no=number,
                                           bidder_id="BD-0001",
                                           amount_fen=START - k * INCREMENT)
                 for k in range(1, 7)]
        outcomes.append(list(await asyncio.gather(send(real, 0.005 * round_no),
                                                  *(send(t, 0) for t in twins))))
        current = await venue.listing(number)
        if current.leader_bidder_id != "BD-0002":
            await venue.bid(number, "0002", current.current_price_fen + INCREMENT)

    acts = _rows(venue, tables.listing_acts, number)
    notes = _rows(venue, tables.listing_act_origins, number)
    assert [o[0] for o in outcomes] == ["OK"] * 4, outcomes
    assert all(set(o[1:]) <= {"FAILED_PRECONDITION", "ALREADY_EXISTS"} for o in outcomes)
    assert [a.bidder_id for a in acts].count("BD-0001") == 4
    # Each recorded act has the note of its own content, and no refused twin's is left.
    assert sorted((n.act_key, n.terms_sha256, n.origin) for n in notes) == \
        sorted((a.act_key, a.terms_sha256, HERE) for a in acts)
    assert len(await _alerts(venue, number)) == len(acts) - 1


async def test_a_twins_note_taken_first_neither_stands_for_the_real_act_nor_outlives_the_deal(
        venue: Venue) -> None:
    """A twin registration under BD-0001's request id is noted first, from elsewhere (as
    one in flight would be). The real registration, recorded, is compared from its own
    origin (an alert with BD-0002, both from here); the twin's refusal leaves the real
    note; the sweep at the deal keeps the recorded acts' notes only."""
    listing = await venue.property(reserve=50_000_000, extensions=0)
    number = listing.listing_no
    shared = str(uuid.uuid4())
    engine = venue.trading.running.engine
    twin = _signed(venue, lc.StatementKind.BUYER, number, shared, "BD-0009", await venue.now())

    def note_twin() -> None:
        listing_watch.note_act_origin(uow=TradingUnitOfWork(engine),
                                      kind=lc.StatementKind.BUYER, listing_no=number,
                                      statement=twin, origin="10.0.0.9", now=datetime.now(UTC))

    await asyncio.to_thread(note_twin)
    await venue.register(number, "0002")
    await venue.bidder("0001").RegisterBuyer(pb.RegisterBuyerRequest(
        request_id=shared, listing_no=number, buyer_id="BD-0001"))
    alerts = await _alerts(venue, number)
    await asyncio.to_thread(
        listing_watch.forget_act_origin, uow=TradingUnitOfWork(engine),
        kind=lc.StatementKind.BUYER, listing_no=number, statement=twin)
    after_refusal = {(n.terms_sha256, n.origin)
                     for n in _rows(venue, tables.listing_act_origins, number)}
    await asyncio.to_thread(note_twin)  # the twin noted again, and never refused
    tz = (await venue.now()).tzinfo
    await venue.skip_to(listing.closes_at.ToDatetime().replace(tzinfo=tz)
                        + timedelta(seconds=1))
    await venue.until_stage(number, pb.LISTING_STAGE_AUCTION)
    await venue.auction_bid(number, "0001", 50_000_000)
    await venue.auction_bid(number, "0002", 50_500_000)
    acts = _rows(venue, tables.listing_acts, number)
    await venue.env.sleep(timedelta(seconds=301))  # the auction's quiet time: it ends
    sold = await venue.until_stage(number, pb.LISTING_STAGE_SOLD)

    assert alerts == [{"bidders": ["BD-0001", "BD-0002"], "origin": HERE,
                       "act": "buyer_registered"}]
    real = next(a for a in acts if a.bidder_id == "BD-0001" and a.kind == "buyer_registered")
    assert (real.terms_sha256, HERE) in after_refusal
    assert (terms_sha256(twin.body), "10.0.0.9") not in after_refusal
    assert sold.buyer_id == "BD-0002"
    # Settled: the never-recorded twin's note is swept, every recorded act keeps its own.
    assert sorted((n.act_key, n.terms_sha256, n.origin)
                  for n in _rows(venue, tables.listing_act_origins, number)) == \
        sorted((a.act_key, a.terms_sha256, HERE) for a in acts)


async def test_other_contents_sent_while_the_first_is_recorded_are_all_already_exists(
        venue: Venue) -> None:
    """The real bid's recording step is held (the listing's row taken by another writer);
    meanwhile seven lower bids under its request id reach the workflow at once: each is
    ALREADY_EXISTS naming the amount (the rules at the listing before the real bid would
    call them too low). A bid under another request id, as high as the real one, is
    taken meanwhile (the rules before the real bid allow it) and refused once the real bid
    is recorded: its request id is free again for another content. Released, the real bid
    is recorded, alone under its request id."""
    listing = await venue.land(start=START, increment=INCREMENT)
    number = listing.listing_no
    await venue.opened(listing)
    await venue.bid(number, "0002", START)
    shared = str(uuid.uuid4())
    handle = venue.env.client.get_workflow_handle(lc.workflow_id(number))
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with TradingUnitOfWork(venue.trading.running.engine, write=True) as unit:
            unit.listings.get(number, for_update=True)
            held.set()
            release.wait(60)

    holding = asyncio.ensure_future(asyncio.to_thread(hold))
    try:
        assert await asyncio.to_thread(held.wait, 30)
        at = await venue.now()
        real = asyncio.ensure_future(handle.execute_update(
            lc.BID, lc.ListingAct(_signed(venue, lc.StatementKind.BID, number, shared,
                                          "BD-0001", at, START + INCREMENT)),
            result_type=lc.ListingReceipt))

        async def recording() -> list[str]:
            described = await handle.describe()
            return [a.activity_type.name
                    for a in described.raw_description.pending_activities]

        await until(recording, lambda names: lc.RECORD_LISTING_STEP in names,
                    "the real bid's recording step running")

        async def twin(k: int) -> BaseException | None:
            try:
                await handle.execute_update(
                    lc.BID, lc.ListingAct(_signed(venue, lc.StatementKind.BID, number, shared,
                                                  "BD-0001", at, START - k * INCREMENT)),
                    result_type=lc.ListingReceipt)
            except WorkflowUpdateFailedError as refused:
                return refused.cause
            return None

        causes = await asyncio.gather(*(twin(k) for k in range(1, 8)))
        other = str(uuid.uuid4())
        level = await handle.start_update(
            lc.BID, lc.ListingAct(_signed(venue, lc.StatementKind.BID, number, other,
                                          "BD-0001", at, START + INCREMENT)),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED, result_type=lc.ListingReceipt)
    finally:
        release.set()
        await holding
    receipt = await real
    with pytest.raises(WorkflowUpdateFailedError) as too_low:
        await level.result()
    await venue.bid(number, "0002", START + 2 * INCREMENT)
    raised = await handle.execute_update(
        lc.BID, lc.ListingAct(_signed(venue, lc.StatementKind.BID, number, other, "BD-0001",
                                      await venue.now(), START + 3 * INCREMENT)),
        result_type=lc.ListingReceipt)

    assert all(isinstance(c, ApplicationError) for c in causes), causes
    assert [(c.type, "other terms (amount_fen)" in c.message) for c in causes
            if isinstance(c, ApplicationError)] == [("AlreadyExists", True)] * 7
    assert isinstance(too_low.value.cause, ApplicationError)
    assert too_low.value.cause.type == "FailedPrecondition", too_low.value.cause.message
    acts = _rows(venue, tables.listing_acts, number)
    assert [(a.bidder_id, a.amount_fen) for a in acts] == \
        [("BD-0002", START), ("BD-0001", START + INCREMENT),
         ("BD-0002", START + 2 * INCREMENT), ("BD-0001", START + 3 * INCREMENT)]
    status: ListingStatus = await handle.query(lc.STATUS, result_type=ListingStatus)
    assert (status.bids, status.current_price_fen) == (4, START + 3 * INCREMENT)
    assert 0 < receipt.feed_sequence < raised.feed_sequence
