"""The ListingWorkflow's clock with the real trading service: land listings (notice,
opening, bids, close, auction ending on its quiet interval) and property-rights listings
(disclosure, extension, agreement, auction), on a time-skipping server; what the public
sees is read back from the feed."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import grpc
import pytest

from govhall.trading.v1 import trading_pb2 as pb
from kernel.errors import FailedPrecondition
from kernel.signing import Signed, TrustedKeys, public_keys_dir, service_signer
from services.trading.app import listing_steps
from services.trading.db.repository import TradingUnitOfWork
from tests.integration.trading.listing_venue import OFFICER, Venue, calendar, until
from workflows import listing_contract as lc
from workflows.approval_contract import as_statement


async def _to_close(venue: Venue, listing: pb.Listing) -> None:
    tz = (await venue.now()).tzinfo
    await venue.skip_to(listing.closes_at.ToDatetime().replace(tzinfo=tz)
                        + timedelta(seconds=1))


async def _recorded(venue: Venue, number: str) -> tuple[object, ...]:
    """All trading holds of a listing: its feed entries, its record, its recorded acts
    (bids, buyers, the agreement) and steps."""
    with TradingUnitOfWork(venue.trading.running.engine, write=False) as unit:
        record = unit.listings.get(number)
        acts = unit.listings.acts(number)
        steps = [tuple(row) for row in unit.listings.steps(number)]
    return await venue.feed(number), record, acts, steps


async def _all_recorded(venue: Venue) -> tuple[object, ...]:
    """Every listing and every feed entry trading holds."""
    feed = (await venue.via().ListFeed(pb.ListFeedRequest(cursor=0, page_size=500))).entries
    with TradingUnitOfWork(venue.trading.running.engine, write=False) as unit:
        listings = unit.listings.page(limit=500)
    return [entry.body for entry in feed], listings


async def test_two_bidders_at_the_close_go_to_auction_which_ends_after_its_quiet_interval(
        venue: Venue) -> None:
    listing = await venue.land(start=100_000_000, increment=1_000_000, interval=300)
    number = listing.listing_no
    await venue.opened(listing)
    await venue.bid(number, "0001", 100_000_000)
    await venue.bid(number, "0002", 101_000_000)
    await venue.declare(number, "0001")
    declared = await venue.declare(number, "0002")
    assert declared.listing.auction_interest == 2
    await _to_close(venue, listing)
    auction = await venue.until_stage(number, pb.LISTING_STAGE_AUCTION)
    assert auction.current_price_fen == 101_000_000
    await venue.auction_bid(number, "0001", 103_000_000)
    # Each bid re-arms the interval: 4 minutes on, the auction still runs.
    await venue.env.sleep(timedelta(minutes=4))
    await venue.auction_bid(number, "0002", 104_000_000)
    await venue.env.sleep(timedelta(minutes=4))
    assert (await venue.listing(number)).stage == pb.LISTING_STAGE_AUCTION
    await venue.env.sleep(timedelta(minutes=2))
    sold = await venue.until_stage(number, pb.LISTING_STAGE_SOLD)
    assert (sold.buyer_id, sold.deal_price_fen, sold.deal_method) == (
        "BD-0002", 104_000_000, "auction")
    feed = await venue.feed(number)
    kinds = [kind for kind, _ in feed]
    assert kinds == ["listing.notice", "listing.opened", "listing.bid", "listing.bid",
                     "listing.auction_interest", "listing.auction_interest",
                     "listing.auction_started", "listing.auction_bid", "listing.auction_bid",
                     "listing.deal"]
    deal = feed[-1][1]["deal"]["body"]
    assert (deal["buyer_id"], deal["price_fen"], deal["method"]) == (
        "BD-0002", 104_000_000, "auction")
    bids = [(body["bidder_id"], body["amount_fen"]) for kind, body in feed
            if kind in ("listing.bid", "listing.auction_bid")]
    assert bids == [("BD-0001", 100_000_000), ("BD-0002", 101_000_000),
                    ("BD-0001", 103_000_000), ("BD-0002", 104_000_000)]


async def test_a_single_bidder_takes_the_deal_at_its_highest_bid(venue: Venue) -> None:
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    number = listing.listing_no
    await venue.opened(listing)
    await venue.bid(number, "0003", 102_000_000)
    await _to_close(venue, listing)
    sold = await venue.until_stage(number, pb.LISTING_STAGE_SOLD)
    assert (sold.buyer_id, sold.deal_price_fen, sold.deal_method) == (
        "BD-0003", 102_000_000, "listing")
    assert [k for k, _ in await venue.feed(number)][-1] == "listing.deal"


async def test_no_bid_fails_the_listing_publicly(venue: Venue) -> None:
    listing = await venue.land()
    number = listing.listing_no
    await venue.opened(listing)
    await _to_close(venue, listing)
    failed = await venue.until_stage(number, pb.LISTING_STAGE_FAILED)
    assert failed.failure_reason == "no_bid"
    feed = await venue.feed(number)
    assert feed[-1][0] == "listing.failed" and feed[-1][1]["failure"] == "no_bid"


async def test_a_bid_below_the_reserve_fails_the_listing(venue: Venue) -> None:
    listing = await venue.land(start=100_000_000, reserve=150_000_000)
    assert listing.reserve_price_fen == 0  # not shown before the result
    number = listing.listing_no
    await venue.opened(listing)
    await venue.bid(number, "0001", 120_000_000)
    await _to_close(venue, listing)
    failed = await venue.until_stage(number, pb.LISTING_STAGE_FAILED)
    assert failed.failure_reason == "below_reserve"


async def test_a_short_notice_or_a_short_listing_is_refused(venue: Venue) -> None:
    project_no = await venue.project()
    with pytest.raises(grpc.aio.AioRpcError) as short_notice:
        await venue.land(opens_in=timedelta(days=19), project_no=project_no)
    assert short_notice.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at least 20 days" in (short_notice.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as short_listing:
        await venue.land(lasts=timedelta(days=7), project_no=project_no)
    assert short_listing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at least 10 working days" in (short_listing.value.details() or "")
    # Nothing was written: the project is listed once, now.
    listed = await venue.land(project_no=project_no)
    assert listed.listing_no.endswith("000001")


async def test_a_disclosure_without_buyer_is_extended_then_one_buyer_agrees(
        venue: Venue) -> None:
    listing = await venue.property(reserve=50_000_000, extensions=1)
    number = listing.listing_no
    await _to_close(venue, listing)
    extended = await until(lambda: venue.listing(number), lambda x: x.extensions == 1,
                           "the disclosure extended")
    assert extended.stage == pb.LISTING_STAGE_LISTING
    assert extended.closes_at.ToDatetime() > listing.closes_at.ToDatetime()
    await venue.register(number, "0004")
    await _to_close(venue, extended)
    await venue.until_stage(number, pb.LISTING_STAGE_AGREEMENT)
    with pytest.raises(grpc.aio.AioRpcError) as low:
        await venue.via().RecordAgreement(pb.RecordAgreementRequest(
            request_id="6f1c4a3e-8a53-4a57-9c8e-0f1f3b0e5e11", listing_no=number,
            price_fen=49_000_000), metadata=OFFICER)
    assert low.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    agreed = await venue.via().RecordAgreement(pb.RecordAgreementRequest(
        request_id="6f1c4a3e-8a53-4a57-9c8e-0f1f3b0e5e12", listing_no=number,
        price_fen=52_000_000), metadata=OFFICER)
    assert agreed.listing.stage == pb.LISTING_STAGE_SOLD
    assert (agreed.listing.buyer_id, agreed.listing.deal_price_fen,
            agreed.listing.deal_method) == ("BD-0004", 52_000_000, "agreement")
    kinds = [k for k, _ in await venue.feed(number)]
    assert kinds == ["listing.disclosure", "listing.extended", "listing.closed",
                     "listing.agreement", "listing.deal"]


async def test_a_disclosure_without_buyer_and_no_extension_left_fails(venue: Venue) -> None:
    listing = await venue.property(extensions=0)
    await _to_close(venue, listing)
    failed = await venue.until_stage(listing.listing_no, pb.LISTING_STAGE_FAILED)
    assert failed.failure_reason == "no_buyer"


async def test_several_buyers_go_to_auction_from_the_reserve(venue: Venue) -> None:
    listing = await venue.property(reserve=50_000_000, increment=500_000, interval=60)
    number = listing.listing_no
    await venue.register(number, "0001")
    await venue.register(number, "0002")
    await _to_close(venue, listing)
    auction = await venue.until_stage(number, pb.LISTING_STAGE_AUCTION)
    assert auction.current_price_fen == 50_000_000
    await venue.auction_bid(number, "0002", 50_000_000)
    await venue.auction_bid(number, "0001", 50_500_000)
    await venue.env.sleep(timedelta(seconds=61))
    sold = await venue.until_stage(number, pb.LISTING_STAGE_SOLD)
    assert (sold.buyer_id, sold.deal_price_fen, sold.deal_method) == (
        "BD-0001", 50_500_000, "auction")


async def _refused(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    code: grpc.StatusCode = refused.value.code()
    return code


async def test_bidders_who_did_not_ask_to_keep_bidding_leave_the_highest_bid_to_win(
        venue: Venue) -> None:
    """Art. 19: two bid, only one asks to keep bidding at the close: no auction, the highest
    bid wins at the close (not every bidder is taken as still bidding)."""
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    number = listing.listing_no
    await venue.opened(listing)
    await venue.bid(number, "0001", 100_000_000)
    await venue.bid(number, "0002", 101_000_000)
    await venue.declare(number, "0001")
    await _to_close(venue, listing)
    sold = await venue.until_stage(number, pb.LISTING_STAGE_SOLD)
    assert (sold.buyer_id, sold.deal_price_fen, sold.deal_method) == (
        "BD-0002", 101_000_000, "listing")
    kinds = [k for k, _ in await venue.feed(number)]
    assert "listing.auction_started" not in kinds


async def test_the_auction_is_among_the_bidders_who_asked_and_only_they_bid_in_it(
        venue: Venue) -> None:
    listing = await venue.land(start=100_000_000, increment=1_000_000, interval=60)
    number = listing.listing_no
    await venue.opened(listing)
    await venue.bid(number, "0001", 100_000_000)
    await venue.bid(number, "0002", 101_000_000)
    await venue.bid(number, "0003", 102_000_000)
    await venue.declare(number, "0001")
    await venue.declare(number, "0003")
    await _to_close(venue, listing)
    await venue.until_stage(number, pb.LISTING_STAGE_AUCTION)
    feed = await venue.feed(number)
    started = next(body for kind, body in feed if kind == "listing.auction_started")
    assert len(started["participants"]) == 2
    # BD-0002 did not ask to keep bidding: it is not in the auction.
    assert await _refused(venue.auction_bid(number, "0002", 104_000_000)) == \
        grpc.StatusCode.PERMISSION_DENIED
    await venue.auction_bid(number, "0001", 103_000_000)
    await venue.env.sleep(timedelta(seconds=61))
    sold = await venue.until_stage(number, pb.LISTING_STAGE_SOLD)
    assert (sold.buyer_id, sold.deal_price_fen, sold.deal_method) == (
        "BD-0001", 103_000_000, "auction")


async def test_a_request_to_keep_bidding_is_refused_unless_by_a_bidder_once_before_the_close(
        venue: Venue) -> None:
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    number = listing.listing_no
    await venue.opened(listing)
    await venue.bid(number, "0001", 100_000_000)
    # A bidder that has not bid on the listing.
    assert await _refused(venue.declare(number, "0002")) == grpc.StatusCode.PERMISSION_DENIED
    # Another bidder's system.
    assert await _refused(venue.declare(number, "0001", by="0002")) == \
        grpc.StatusCode.PERMISSION_DENIED
    first = await venue.declare(number, "0001")
    assert first.feed_sequence > 0
    assert await _refused(venue.declare(number, "0001")) == grpc.StatusCode.ALREADY_EXISTS
    # A property-rights listing asks nobody.
    disclosure = await venue.property()
    await venue.register(disclosure.listing_no, "0001")
    assert await _refused(venue.declare(disclosure.listing_no, "0001")) == \
        grpc.StatusCode.FAILED_PRECONDITION
    await venue.bid(number, "0002", 101_000_000)
    await _to_close(venue, listing)
    sold = await venue.until_stage(number, pb.LISTING_STAGE_SOLD)
    assert sold.buyer_id == "BD-0002"
    assert await _refused(venue.declare(number, "0002")) == \
        grpc.StatusCode.FAILED_PRECONDITION
    interest = [body for kind, body in await venue.feed(number)
                if kind == "listing.auction_interest"]
    assert [b["bidder_id"] for b in interest] == ["BD-0001"]


async def test_one_buyer_without_agreement_by_its_deadline_fails_the_listing_publicly(
        venue: Venue) -> None:
    listing = await venue.property(reserve=50_000_000, extensions=0, agreement_days=3)
    assert listing.agreement_working_days == 3
    number = listing.listing_no
    await venue.register(number, "0004")
    await _to_close(venue, listing)
    awaiting = await venue.until_stage(number, pb.LISTING_STAGE_AGREEMENT)
    due = awaiting.agreement_due.ToDatetime().replace(tzinfo=(await venue.now()).tzinfo)
    closed = listing.closes_at.ToDatetime().replace(tzinfo=due.tzinfo)
    # Three working days after the close, at the end of the day in China.
    assert timedelta(days=3) <= due - closed <= timedelta(days=8)
    feed = await venue.feed(number)
    assert feed[-1][0] == "listing.closed" and feed[-1][1]["agreement_due"]
    await venue.skip_to(due + timedelta(seconds=1))
    failed = await venue.until_stage(number, pb.LISTING_STAGE_FAILED)
    assert failed.failure_reason == "no_agreement"
    feed = await venue.feed(number)
    assert feed[-1][0] == "listing.failed" and feed[-1][1]["failure"] == "no_agreement"
    # The officer is too late: refused, and nothing of the listing changed.
    before = await _recorded(venue, number)
    assert await _refused(venue.via().RecordAgreement(pb.RecordAgreementRequest(
        request_id=str(uuid.uuid4()), listing_no=number, price_fen=52_000_000),
        metadata=OFFICER)) == grpc.StatusCode.FAILED_PRECONDITION
    assert await _recorded(venue, number) == before


async def test_an_agreement_deadline_out_of_bounds_is_refused(venue: Venue) -> None:
    before = await _all_recorded(venue)
    for days in (-1, 21):
        assert await _refused(venue.property(agreement_days=days)) == \
            grpc.StatusCode.INVALID_ARGUMENT
    # Only the projects were registered: no listing, no feed entry.
    assert await _all_recorded(venue) == before
    # 0 is the default: 5 working days.
    assert (await venue.property()).agreement_working_days == 5


async def test_the_recording_activities_check_the_agreement_deadline_again(
        venue: Venue) -> None:
    """Trading does not take the workflow's word for the deadline: its activity refuses to
    fail the listing before the deadline, and an agreement after it."""
    listing = await venue.property(reserve=50_000_000, extensions=0, agreement_days=2)
    number = listing.listing_no
    await venue.register(number, "0004")
    await _to_close(venue, listing)
    awaiting = await venue.until_stage(number, pb.LISTING_STAGE_AGREEMENT)
    tz = (await venue.now()).tzinfo
    due = awaiting.agreement_due.ToDatetime().replace(tzinfo=tz)
    engine = venue.trading.running.engine
    pki = venue.trading.pki_dir
    keys = TrustedKeys.load(public_keys_dir(pki))
    signer = service_signer(pki, "trading")
    with TradingUnitOfWork(engine, write=False) as unit:
        announcement = as_statement(Signed.from_dict(unit.listings.announcement(number)))
    before = await _recorded(venue, number)
    with pytest.raises(FailedPrecondition, match="may be recorded until"):
        listing_steps.expire_agreement(
            uow=lambda: TradingUnitOfWork(engine), keys=keys, signer=signer,
            calendar=calendar(), step=lc.ListingStep(number, announcement,
                                                     due - timedelta(minutes=1)))
    agreement = as_statement(signer.sign(lc.listing_statement_body(
        kind=lc.StatementKind.AGREEMENT, listing_no=number, system="trading-platform",
        issued_at=due, request_id=str(uuid.uuid4()), official_id="ZWFWZX-007",
        bidder_id="BD-0004", amount_fen=52_000_000)))
    with pytest.raises(FailedPrecondition, match="was due"):
        listing_steps.record_step(
            uow=lambda: TradingUnitOfWork(engine), keys=keys, signer=signer,
            calendar=calendar(), step=lc.ListingStep(number, agreement, due, "agreement"))
    assert (await venue.listing(number)).stage == pb.LISTING_STAGE_AGREEMENT
    assert await _recorded(venue, number) == before


async def test_a_project_whose_listing_failed_is_listed_again_under_a_new_number(
        venue: Venue) -> None:
    project_no = await venue.project()
    first = await venue.land(project_no=project_no)
    # Running: refused.
    assert await _refused(venue.land(project_no=project_no)) == \
        grpc.StatusCode.ALREADY_EXISTS
    await venue.opened(first)
    await _to_close(venue, first)
    await venue.until_stage(first.listing_no, pb.LISTING_STAGE_FAILED)
    again = await venue.land(project_no=project_no, start=90_000_000)
    assert again.listing_no != first.listing_no and again.project_no == project_no
    assert again.stage == pb.LISTING_STAGE_LISTING
    # The new listing runs: the project is refused again while it does, and once sold.
    assert await _refused(venue.land(project_no=project_no)) == \
        grpc.StatusCode.ALREADY_EXISTS
    await venue.opened(again)
    await venue.bid(again.listing_no, "0001", 90_000_000)
    await _to_close(venue, again)
    await venue.until_stage(again.listing_no, pb.LISTING_STAGE_SOLD)
    assert await _refused(venue.land(project_no=project_no)) == \
        grpc.StatusCode.ALREADY_EXISTS
    # The failed listing keeps its record.
    assert (await venue.listing(first.listing_no)).stage == pb.LISTING_STAGE_FAILED


async def test_a_run_started_again_mid_auction_rebuilds_from_trading_and_takes_the_next_bid(
        venue: Venue) -> None:
    """M4: terminated mid-auction and started again with its own input by a bare Temporal
    client, the run rebuilds its copy from what trading recorded: the status shows the
    auction's real leader and price, and the next bid is taken."""
    listing = await venue.land(start=100_000_000, increment=1_000_000, interval=300)
    number = listing.listing_no
    await venue.opened(listing)
    await venue.bid(number, "0001", 100_000_000)
    await venue.bid(number, "0002", 101_000_000)
    await venue.declare(number, "0001")
    await venue.declare(number, "0002")
    await _to_close(venue, listing)
    await venue.until_stage(number, pb.LISTING_STAGE_AUCTION)
    await venue.auction_bid(number, "0001", 103_000_000)
    client = venue.env.client
    handle = client.get_workflow_handle(lc.workflow_id(number))
    queue = (await handle.describe()).task_queue
    await handle.terminate(reason="the test: an operator's mistake")
    with TradingUnitOfWork(venue.trading.running.engine, write=False) as unit:
        announcement = as_statement(Signed.from_dict(unit.listings.announcement(number)))
    again = await client.start_workflow(
        lc.WORKFLOW_NAME, lc.ListingInput(announcement), id=lc.workflow_id(number),
        task_queue=queue)
    status = await until(lambda: again.query(lc.STATUS, result_type=lc.ListingStatus),
                         lambda s: s.stage == "auction", "the run rebuilt at auction")
    assert (status.leader, status.current_price_fen, status.bids) == (
        "BD-0001", 103_000_000, 3)
    assert status.auction_deadline is not None
    # The next bid is checked against the real auction: below the leader's price, refused.
    assert await _refused(venue.auction_bid(number, "0002", 103_000_000)) == \
        grpc.StatusCode.FAILED_PRECONDITION
    await venue.auction_bid(number, "0002", 104_000_000)
    status = await again.query(lc.STATUS, result_type=lc.ListingStatus)
    assert (status.leader, status.current_price_fen) == ("BD-0002", 104_000_000)
    await venue.env.sleep(timedelta(seconds=301))
    sold = await venue.until_stage(number, pb.LISTING_STAGE_SOLD)
    assert (sold.buyer_id, sold.deal_price_fen, sold.deal_method) == (
        "BD-0002", 104_000_000, "auction")
    kinds = [k for k, _ in await venue.feed(number)]
    # Nothing published twice by the run started again.
    assert kinds.count("listing.notice") == 1 and kinds.count("listing.opened") == 1
    assert kinds.count("listing.auction_started") == 1
