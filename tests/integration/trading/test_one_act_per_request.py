"""One request id, one act (attack s17 LOW 5): a bidder's acts on a listing are sent to its
workflow as Temporal updates, and Temporal answers a second update carrying the same update
id from the first one's outcome, whatever it carries. So the update id binds the act's
terms, the listing's workflow and trading's recording step take one act per request, and
the servicer answers a request recorded already only when it asks the same:

- the same request id with several contents sent at once: one is recorded, the others are
  told ALREADY_EXISTS (never the recorded act's receipt), and the workflow's copy of the
  listing is the recorded act's;
- sent one after the other: ALREADY_EXISTS naming the term that differs, nothing changed;
- a genuine retry (the same content) answers OK with the same receipt, at once or later.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest
import temporalio.api.common.v1 as temporal_common
import temporalio.api.enums.v1 as enums
import temporalio.api.update.v1 as temporal_update
import temporalio.api.workflowservice.v1 as workflowservice
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from kernel.errors import AlreadyExists
from kernel.signing import TrustedKeys, public_keys_dir, service_signer
from services.trading.app import listing_steps
from services.trading.db import tables
from services.trading.db.repository import TradingUnitOfWork
from tests.integration.trading.cut_off import cut_off as cut_off_service
from tests.integration.trading.listing_venue import OFFICER, Venue, calendar
from tests.support import ServiceUnderTest
from workflows import listing_contract as lc
from workflows.approval_contract import as_statement
from workflows.listing_contract import ListingStatus

START, INCREMENT = 100_000_000, 1_000_000


def _acts(venue: Venue, listing_no: str) -> list[Any]:
    with venue.trading.running.engine.connect() as connection:
        return list(connection.execute(select(tables.listing_acts).where(
            tables.listing_acts.c.listing_no == listing_no)))


async def _status(venue: Venue, listing_no: str) -> ListingStatus:
    handle = venue.env.client.get_workflow_handle(lc.workflow_id(listing_no))
    status: ListingStatus = await handle.query(lc.STATUS, result_type=ListingStatus)
    return status


def _bid(request_id: str, listing_no: str, amount: int) -> pb.PlaceListingBidRequest:
    return pb.PlaceListingBidRequest(request_id=request_id, listing_no=listing_no,
                                     bidder_id="BD-0001", amount_fen=amount)


def _split(results: Sequence[object]) -> tuple[list[Any], list[grpc.aio.AioRpcError]]:
    unexpected = [r for r in results if isinstance(r, BaseException)
                  and not isinstance(r, grpc.aio.AioRpcError)]
    assert not unexpected, unexpected
    return ([r for r in results if not isinstance(r, BaseException)],
            [r for r in results if isinstance(r, grpc.aio.AioRpcError)])


async def _open_listing(venue: Venue) -> str:
    listing = await venue.land(start=START, increment=INCREMENT)
    await venue.opened(listing)
    return str(listing.listing_no)


async def test_one_request_id_with_eight_bids_sent_at_once_records_one(venue: Venue) -> None:
    number = await _open_listing(venue)
    shared = str(uuid.uuid4())
    amounts = [START + i * INCREMENT for i in range(8)]
    results = await asyncio.gather(
        *(venue.bidder("0001").PlaceListingBid(_bid(shared, number, amount))
          for amount in amounts), return_exceptions=True)
    told_ok, refused = _split(results)

    assert len(told_ok) == 1
    assert [e.code() for e in refused] == [grpc.StatusCode.ALREADY_EXISTS] * 7, \
        [(e.code(), e.details()) for e in refused]
    assert all("amount_fen" in (e.details() or "") for e in refused)
    (act,) = _acts(venue, number)
    (answer,) = told_ok
    assert answer.listing.current_price_fen == act.amount_fen
    # The workflow's copy of the listing is the recorded act, nothing more.
    status = await _status(venue, number)
    assert (status.bids, status.current_price_fen, status.leader) == \
        (1, act.amount_fen, "BD-0001")
    # A retry of the recorded content answers its receipt; any other content stays refused.
    again = await venue.bidder("0001").PlaceListingBid(_bid(shared, number, act.amount_fen))
    assert again.feed_sequence == answer.feed_sequence
    assert len(_acts(venue, number)) == 1


async def test_a_later_bid_under_a_used_request_id_with_another_amount_is_refused(
        venue: Venue) -> None:
    number = await _open_listing(venue)
    shared = str(uuid.uuid4())
    first = await venue.bidder("0001").PlaceListingBid(_bid(shared, number, START))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await venue.bidder("0001").PlaceListingBid(_bid(shared, number, START + INCREMENT))

    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert f"request id {shared} was used for a listing bid with other terms (amount_fen)" \
        in (refused.value.details() or "")
    assert [(a.bidder_id, a.amount_fen) for a in _acts(venue, number)] == [("BD-0001", START)]
    listing = await venue.listing(number)
    assert (listing.current_price_fen, listing.bids) == (START, 1)
    status = await _status(venue, number)
    assert (status.bids, status.current_price_fen) == (1, START)
    assert first.feed_sequence


async def test_a_genuine_retry_answers_the_same_receipt_at_once_and_later(
        venue: Venue) -> None:
    number = await _open_listing(venue)
    shared = str(uuid.uuid4())
    results = await asyncio.gather(
        *(venue.bidder("0001").PlaceListingBid(_bid(shared, number, START))
          for _ in range(8)), return_exceptions=True)
    told_ok, refused = _split(results)
    assert refused == []
    assert len({r.feed_sequence for r in told_ok}) == 1
    later = await venue.bidder("0001").PlaceListingBid(_bid(shared, number, START))

    assert later.feed_sequence == told_ok[0].feed_sequence
    assert len(_acts(venue, number)) == 1
    status = await _status(venue, number)
    assert (status.bids, status.current_price_fen) == (1, START)


def _signed_bid(venue: Venue, listing_no: str, request_id: str, amount: int,
                at: datetime) -> lc.ListingAct:
    """A bid of BD-0001's system signed with trading's own key, as the servicer signs one."""
    body = lc.listing_statement_body(kind=lc.StatementKind.BID, listing_no=listing_no,
                                     system="bidder-system-bd0001", issued_at=at,
                                     request_id=request_id, bidder_id="BD-0001",
                                     amount_fen=amount)
    return lc.ListingAct(as_statement(service_signer(venue.trading.pki_dir, "trading")
                                      .sign(body)))


async def test_the_workflow_refuses_another_content_under_a_request_it_recorded(
        venue: Venue) -> None:
    """Sent to the workflow past the servicer (as a second update racing the first does):
    a lower bid under a recorded bid's request id is ALREADY_EXISTS, before the rules would
    refuse it as too low (FAILED_PRECONDITION); the same bid signed again answers the
    recorded act's receipt, and nothing more is recorded."""
    number = await _open_listing(venue)
    shared = str(uuid.uuid4())
    first = await venue.bidder("0001").PlaceListingBid(_bid(shared, number, START + INCREMENT))
    handle = venue.env.client.get_workflow_handle(lc.workflow_id(number))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(lc.BID, _signed_bid(venue, number, shared, START,
                                                        await venue.now()),
                                    result_type=lc.ListingReceipt)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "AlreadyExists", (cause.type, cause.message)
    assert "other terms (amount_fen)" in cause.message
    again = await handle.execute_update(
        lc.BID, _signed_bid(venue, number, shared, START + INCREMENT, await venue.now()),
        result_type=lc.ListingReceipt)

    assert again.feed_sequence == first.feed_sequence
    assert [a.amount_fen for a in _acts(venue, number)] == [START + INCREMENT]
    status = await _status(venue, number)
    assert (status.bids, status.current_price_fen) == (1, START + INCREMENT)


async def test_the_recording_step_records_one_act_per_request(venue: Venue) -> None:
    """Trading's recording step (the activity) itself, as a run that does not know the
    first act would call it: another amount under a recorded bid's request id is
    ALREADY_EXISTS naming it, never the recorded act's receipt; the same bid signed again
    answers that receipt; one act stays recorded."""
    number = await _open_listing(venue)
    shared = str(uuid.uuid4())
    first = await venue.bidder("0001").PlaceListingBid(_bid(shared, number, START))
    engine = venue.trading.running.engine
    keys = TrustedKeys.load(public_keys_dir(venue.trading.pki_dir))
    signer = service_signer(venue.trading.pki_dir, "trading")

    def record(amount: int, at: datetime) -> lc.StepReceipt:
        act = _signed_bid(venue, number, shared, amount, at)
        return listing_steps.record_step(
            uow=lambda: TradingUnitOfWork(engine, write=True), keys=keys, signer=signer,
            calendar=calendar(), step=lc.ListingStep(number, act.statement, at, "listing_bid"))

    now = await venue.now()
    with pytest.raises(AlreadyExists) as refused:
        await asyncio.to_thread(record, START + 5 * INCREMENT, now)
    again = await asyncio.to_thread(record, START, now)

    assert "other terms (amount_fen)" in refused.value.message
    assert again.feed_sequences == [first.feed_sequence]
    assert [a.amount_fen for a in _acts(venue, number)] == [START]


@pytest.fixture
async def cut_off(venue: Venue) -> AsyncIterator[ServiceUnderTest]:
    """The trading service again, on the venue's database, with Temporal out of reach."""
    async with cut_off_service(venue.trading) as service:
        yield service


async def test_a_recorded_act_is_answered_from_the_record_before_anything_is_sent(
        venue: Venue, cut_off: ServiceUnderTest) -> None:
    """The servicer looks the request up before sending: a service whose Temporal is out of
    reach answers the same bid again from the record, and refuses another amount under its
    request id (ALREADY_EXISTS naming it), where a send would be UNAVAILABLE."""
    number = await _open_listing(venue)
    shared = str(uuid.uuid4())
    first = await venue.bidder("0001").PlaceListingBid(_bid(shared, number, START))
    channel = cut_off.channel("bidder-system-bd0001")
    try:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        again = await stub.PlaceListingBid(_bid(shared, number, START))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.PlaceListingBid(_bid(shared, number, START + INCREMENT))
    finally:
        await channel.close(None)

    assert again.feed_sequence == first.feed_sequence
    assert again.listing.current_price_fen == START
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS, refused.value.details()
    assert "other terms (amount_fen)" in (refused.value.details() or "")
    assert [a.amount_fen for a in _acts(venue, number)] == [START]


async def test_an_agreement_retried_after_the_deal_is_answered_from_the_record(
        venue: Venue) -> None:
    """The agreement settles the listing (its workflow then ends): the same agreement
    again is answered from the record with its receipt, another price under its request
    id is ALREADY_EXISTS naming it, and the deal stands."""
    listing = await venue.property(reserve=50_000_000, extensions=0)
    number = listing.listing_no
    await venue.register(number, "0004")
    tz = (await venue.now()).tzinfo
    await venue.skip_to(listing.closes_at.ToDatetime().replace(tzinfo=tz)
                        + timedelta(seconds=1))
    await venue.until_stage(number, pb.LISTING_STAGE_AGREEMENT)
    shared = str(uuid.uuid4())

    def agreement(price: int) -> pb.RecordAgreementRequest:
        return pb.RecordAgreementRequest(request_id=shared, listing_no=number, price_fen=price)

    agreed = await venue.via().RecordAgreement(agreement(52_000_000), metadata=OFFICER)
    again = await venue.via().RecordAgreement(agreement(52_000_000), metadata=OFFICER)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await venue.via().RecordAgreement(agreement(53_000_000), metadata=OFFICER)

    assert agreed.listing.stage == pb.LISTING_STAGE_SOLD
    assert again.feed_sequence == agreed.feed_sequence
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS, refused.value.details()
    assert "other terms (amount_fen)" in (refused.value.details() or "")
    sold = await venue.listing(number)
    assert (sold.buyer_id, sold.deal_price_fen) == ("BD-0004", 52_000_000)


async def _update_as_given(venue: Venue, listing_no: str, payloads: Any) -> str:
    """One bid update under a fresh update id, its payloads encoded beforehand (so nothing
    reorders the calls); its outcome: OK or the refusal's type."""
    client = venue.env.client
    answer = await client.workflow_service.update_workflow_execution(
        workflowservice.UpdateWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=temporal_common.WorkflowExecution(
                workflow_id=lc.workflow_id(listing_no)),
            wait_policy=temporal_update.WaitPolicy(
                lifecycle_stage=enums.UpdateWorkflowExecutionLifecycleStage
                .UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED),
            request=temporal_update.Request(
                meta=temporal_update.Meta(update_id=str(uuid.uuid4()), identity="test"),
                input=temporal_update.Input(name=lc.BID,
                                            args=temporal_common.Payloads(payloads=payloads)))),
        timeout=timedelta(seconds=30))
    if answer.outcome.HasField("success"):
        return "OK"
    return answer.outcome.failure.application_failure_info.type or "?"


async def test_one_content_under_two_update_ids_at_once_is_one_act_answered_twice(
        venue: Venue) -> None:
    """The same signed bid reaching the workflow twice at once under two update ids (after
    trading's key changed between a call and its retry, or from a bare Temporal client):
    the first takes the request at once, the second waits for its outcome and is answered
    the same; before (s17 re-check LOW B) both took it, the second was judged by the rules
    after the first (FAILED_PRECONDITION for a genuine retry) and its refusal erased the
    first act from the workflow's table. Several rounds: the two must meet in one task."""
    number = await _open_listing(venue)
    await venue.bid(number, "0002", START)
    answers: list[str] = []
    for _ in range(8):
        price = (await venue.listing(number)).current_price_fen + INCREMENT
        payloads = await venue.env.client.data_converter.encode(
            [_signed_bid(venue, number, str(uuid.uuid4()), price, await venue.now())])
        answers += await asyncio.gather(_update_as_given(venue, number, payloads),
                                        _update_as_given(venue, number, payloads))
        current = await venue.listing(number)
        if current.leader_bidder_id != "BD-0002":
            await venue.bid(number, "0002", current.current_price_fen + INCREMENT)

    assert answers == ["OK"] * 16
    status = await _status(venue, number)
    assert status.bids == len(_acts(venue, number))
