"""Land and property-rights listings over real gRPC: who may bid for whom, what a bid may
be, which projects may be listed, and what monitoring and statistics see of a listing. The
listing's workflow runs for real on a time-skipping server (listing_venue.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from govhall.trading.v1 import trading_pb2 as pb
from kernel.signing import service_signer
from tests.integration.trading.conftest import WINDOW_CLERK
from tests.integration.trading.listing_venue import OFFICER, Venue, stamp
from tests.support import as_official
from workflows import listing_contract as lc
from workflows.approval_contract import as_statement


async def _refused(call: Any, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() == code, refused.value.details()
    return refused.value.details() or ""


async def _to_close(venue: Venue, listing: pb.Listing) -> None:
    tz = (await venue.now()).tzinfo
    await venue.skip_to(listing.closes_at.ToDatetime().replace(tzinfo=tz)
                        + timedelta(seconds=1))


async def _open_with_a_bid(venue: Venue) -> tuple[pb.Listing, list[str]]:
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    await venue.opened(listing)
    await venue.bid(listing.listing_no, "0001", 101_000_000)
    return listing, [k for k, _ in await venue.feed(listing.listing_no)]


async def test_a_bidder_system_cannot_bid_for_another_bidder(venue: Venue) -> None:
    listing, feed = await _open_with_a_bid(venue)
    number = listing.listing_no
    details = await _refused(venue.bidder("0002").PlaceListingBid(pb.PlaceListingBidRequest(
        request_id=str(uuid.uuid4()), listing_no=number, bidder_id="BD-0003",
        amount_fen=102_000_000)), grpc.StatusCode.PERMISSION_DENIED)
    assert "BD-0003" in details
    # Nor can the platform itself bid for a bidder.
    await _refused(venue.via().PlaceListingBid(pb.PlaceListingBidRequest(
        request_id=str(uuid.uuid4()), listing_no=number, bidder_id="BD-0002",
        amount_fen=102_000_000)), grpc.StatusCode.PERMISSION_DENIED)
    after = await venue.listing(number)
    assert (after.bids, after.current_price_fen, after.leader_bidder_id) == (
        1, 101_000_000, "BD-0001")
    assert [k for k, _ in await venue.feed(number)] == feed


async def test_another_bidders_request_id_is_another_bid(venue: Venue) -> None:
    """A request id is its calling system's own: BD-0002 reusing the id BD-0001 bid with
    gets its own bid recorded, not BD-0001's receipt."""
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    await venue.opened(listing)
    number = listing.listing_no
    shared = str(uuid.uuid4())
    first = await venue.bidder("0001").PlaceListingBid(pb.PlaceListingBidRequest(
        request_id=shared, listing_no=number, bidder_id="BD-0001", amount_fen=101_000_000))
    second = await venue.bidder("0002").PlaceListingBid(pb.PlaceListingBidRequest(
        request_id=shared, listing_no=number, bidder_id="BD-0002", amount_fen=105_000_000))
    assert second.feed_sequence != first.feed_sequence
    after = await venue.listing(number)
    assert (after.bids, after.current_price_fen, after.leader_bidder_id) == (
        2, 105_000_000, "BD-0002")


@pytest.mark.parametrize(("amount", "code", "says"), [
    (101_500_000, grpc.StatusCode.FAILED_PRECONDITION, "at least 102000000"),
    (102_500_000, grpc.StatusCode.INVALID_ARGUMENT, "whole steps of 1000000"),
    (-5, grpc.StatusCode.INVALID_ARGUMENT, "must be positive"),
    (0, grpc.StatusCode.INVALID_ARGUMENT, "must be positive"),
    (10**17, grpc.StatusCode.INVALID_ARGUMENT, "at most"),
    # Above the platform's bound but a safe integer for the signed statement, so the
    # refusal is the bound's, not a failed signing.
    (9_100_000_000_000_000, grpc.StatusCode.INVALID_ARGUMENT, "at most"),
    (2**53 - 1, grpc.StatusCode.INVALID_ARGUMENT, "at most"),
])
async def test_a_bad_bid_is_refused_and_changes_nothing(
        venue: Venue, amount: int, code: grpc.StatusCode, says: str) -> None:
    listing, feed = await _open_with_a_bid(venue)
    number = listing.listing_no
    details = await _refused(venue.bidder("0002").PlaceListingBid(pb.PlaceListingBidRequest(
        request_id=str(uuid.uuid4()), listing_no=number, bidder_id="BD-0002",
        amount_fen=amount)), code)
    assert says in details
    after = await venue.listing(number)
    assert (after.bids, after.current_price_fen) == (1, 101_000_000)
    assert [k for k, _ in await venue.feed(number)] == feed


async def test_bids_before_the_opening_and_after_the_close_are_refused(venue: Venue) -> None:
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    number = listing.listing_no
    early = await _refused(venue.bid(number, "0001", 100_000_000),
                           grpc.StatusCode.FAILED_PRECONDITION)
    assert "opens" in early
    await venue.opened(listing)
    await venue.bid(number, "0001", 100_000_000)
    await _to_close(venue, listing)
    await venue.until_stage(number, pb.LISTING_STAGE_SOLD)
    feed = await venue.feed(number)
    late = await _refused(venue.bid(number, "0002", 105_000_000),
                          grpc.StatusCode.FAILED_PRECONDITION)
    assert "finished" in late
    await _refused(venue.auction_bid(number, "0002", 105_000_000),
                   grpc.StatusCode.FAILED_PRECONDITION)
    sold = await venue.listing(number)
    assert (sold.buyer_id, sold.deal_price_fen, sold.bids) == ("BD-0001", 100_000_000, 1)
    assert await venue.feed(number) == feed


async def test_an_auction_bid_after_the_quiet_interval_is_refused(venue: Venue) -> None:
    listing = await venue.land(start=100_000_000, increment=1_000_000, interval=60)
    number = listing.listing_no
    await venue.opened(listing)
    await venue.bid(number, "0001", 100_000_000)
    await venue.bid(number, "0002", 101_000_000)
    await venue.declare(number, "0001")
    await venue.declare(number, "0002")
    await _to_close(venue, listing)
    await venue.until_stage(number, pb.LISTING_STAGE_AUCTION)
    # The leader cannot outbid itself; the other bidder below the increment is refused.
    await _refused(venue.auction_bid(number, "0002", 102_000_000),
                   grpc.StatusCode.FAILED_PRECONDITION)
    await _refused(venue.auction_bid(number, "0001", 101_000_000),
                   grpc.StatusCode.FAILED_PRECONDITION)
    # Nobody outbid BD-0002 within the interval: it buys at its listing bid.
    await venue.env.sleep(timedelta(seconds=61))
    sold = await venue.until_stage(number, pb.LISTING_STAGE_SOLD)
    assert (sold.buyer_id, sold.deal_price_fen, sold.deal_method) == (
        "BD-0002", 101_000_000, "listing")
    await _refused(venue.auction_bid(number, "0001", 105_000_000),
                   grpc.StatusCode.FAILED_PRECONDITION)


async def test_a_project_of_another_category_is_refused_naming_the_rule(venue: Venue) -> None:
    project_no = await venue.project(pb.TRADING_CATEGORY_CONSTRUCTION)
    details = await _refused(venue.land(project_no=project_no),
                             grpc.StatusCode.FAILED_PRECONDITION)
    assert "construction" in details and "land category" in details and "LD-01" in details
    unknown = await _refused(venue.land(project_no="PJ-20200101-000001"),
                             grpc.StatusCode.NOT_FOUND)
    assert "PJ-20200101-000001" in unknown
    now = await venue.now()
    await _refused(venue.via().DiscloseProperty(pb.DisclosePropertyRequest(
        request_id=str(uuid.uuid4()), project_no=await venue.project(),
        closes_at=stamp(now + timedelta(days=40)), reserve_price_fen=1_000_000,
        increment_fen=10_000, auction_interval_seconds=60), metadata=OFFICER),
        grpc.StatusCode.FAILED_PRECONDITION)


async def test_only_a_trading_officer_publishes_a_listing(venue: Venue) -> None:
    project_no = await venue.project()
    now = await venue.now()
    request = pb.PublishLandListingRequest(
        request_id=str(uuid.uuid4()), project_no=project_no,
        opens_at=stamp(now + timedelta(days=21)), closes_at=stamp(now + timedelta(days=40)),
        start_price_fen=1_000_000, increment_fen=10_000, auction_interval_seconds=60)
    await _refused(venue.via().PublishLandListing(request),
                   grpc.StatusCode.UNAUTHENTICATED)
    await _refused(venue.via().PublishLandListing(request, metadata=as_official(WINDOW_CLERK)),
                   grpc.StatusCode.PERMISSION_DENIED)
    await _refused(venue.bidder("0001").PublishLandListing(request, metadata=OFFICER),
                   grpc.StatusCode.PERMISSION_DENIED)


async def test_a_forged_act_sent_to_the_workflow_is_refused_at_once(
        venue: Venue, tmp_path: Any) -> None:
    listing, feed = await _open_with_a_bid(venue)
    forger = service_signer(tmp_path / "forger", "trading")
    body = lc.listing_statement_body(
        kind=lc.StatementKind.BID, listing_no=listing.listing_no, system="bidder-system-bd0002",
        issued_at=await venue.now(), request_id=str(uuid.uuid4()), bidder_id="BD-0002",
        amount_fen=150_000_000)
    handle = venue.env.client.get_workflow_handle(lc.workflow_id(listing.listing_no))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(lc.BID, lc.ListingAct(as_statement(forger.sign(body))),
                                    result_type=lc.ListingReceipt)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "PermissionDenied"
    assert "not one the trading service signed" in cause.message
    assert (await venue.listing(listing.listing_no)).bids == 1
    assert [k for k, _ in await venue.feed(listing.listing_no)] == feed


async def test_the_deal_counts_in_the_statistics_and_every_step_is_watched(
        venue: Venue) -> None:
    start = await venue.now()
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    number = listing.listing_no
    await venue.opened(listing)
    await venue.bid(number, "0001", 100_000_000)
    await venue.bid(number, "0002", 103_000_000)
    await venue.declare(number, "0002")
    await venue.declare(number, "0001")
    await _to_close(venue, listing)
    await venue.until_stage(number, pb.LISTING_STAGE_AUCTION)
    await venue.env.sleep(timedelta(seconds=301))
    await venue.until_stage(number, pb.LISTING_STAGE_SOLD)

    def period(days: int) -> tuple[Timestamp, Timestamp]:
        return stamp(start - timedelta(days=1)), stamp(start + timedelta(days=days))

    begin, end = period(400)
    stats = await venue.via("supervision-system").GetTradeStatistics(
        pb.GetTradeStatisticsRequest(period_start=begin, period_end=end,
                                     category=pb.TRADING_CATEGORY_LAND))
    assert (stats.deals, stats.total_value_fen) == (1, 103_000_000)
    assert [(r.category, r.source, r.deals, r.total_value_fen) for r in stats.rows] == [
        (pb.TRADING_CATEGORY_LAND, pb.DEAL_SOURCE_LISTING, 1, 103_000_000)]
    # Before the conclusion the deal does not count.
    begin, end = period(30)
    early = await venue.via("supervision-system").GetTradeStatistics(
        pb.GetTradeStatisticsRequest(period_start=begin, period_end=end))
    assert early.deals == 0

    steps = [r.step async for r in venue.via("supervision-system").WatchTrades(
        pb.WatchTradesRequest())]
    mine = [(s.step, s.stage) for s in steps if s.trade == f"listing/{number}"]
    assert mine == [("announced", "listing"), ("opened", "listing"),
                    ("listing_bid", "listing"), ("listing_bid", "listing"),
                    ("auction_interest", "listing"), ("auction_interest", "listing"),
                    ("closed", "auction"), ("sold", "sold")]
    # The test's bidders act from one host: the second bidder's bid is a same_origin alert
    # (tests/integration/trading/test_listing_alerts.py); nothing else is.
    assert [[a.rule for a in s.alerts] for s in steps if s.trade == f"listing/{number}"] == [
        [], [], [], [pb.TRADE_ALERT_RULE_SAME_ORIGIN], [], [], [], []]


async def test_list_listings_pages_by_number_filters_and_hides_the_reserve_until_the_result(
        venue: Venue) -> None:
    land = [await venue.land(reserve=150_000_000) for _ in range(3)]
    disclosure = await venue.property()
    hotline = venue.via("hotline-12345")

    async def everything(**filters: Any) -> list[pb.Listing]:
        found: list[pb.Listing] = []
        token = ""
        while True:
            page = await hotline.ListListings(pb.ListListingsRequest(
                page_size=2, page_token=token, **filters))
            assert len(page.listings) <= 2
            found.extend(page.listings)
            token = page.next_page_token
            if not token:
                return found

    listed = await everything()
    numbers = [x.listing_no for x in listed]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert {x.listing_no for x in land} | {disclosure.listing_no} <= set(numbers)
    mine = {x.listing_no: x for x in listed}
    # As GetListing shows them: the land reserve price is not shown before the result.
    for listing in land:
        assert mine[listing.listing_no] == await venue.listing(listing.listing_no)
        assert mine[listing.listing_no].reserve_price_fen == 0
    assert mine[disclosure.listing_no].reserve_price_fen == disclosure.reserve_price_fen
    lands = await everything(category=pb.TRADING_CATEGORY_LAND)
    assert all(x.category == pb.TRADING_CATEGORY_LAND for x in lands)
    assert {x.listing_no for x in land} <= {x.listing_no for x in lands}
    assert disclosure.listing_no not in {x.listing_no for x in lands}
    # A failed land listing shows its reserve price after the result.
    await venue.opened(land[0])
    await venue.bid(land[0].listing_no, "0001", 100_000_000)
    await _to_close(venue, land[0])
    await venue.until_stage(land[0].listing_no, pb.LISTING_STAGE_FAILED)
    failed = await everything(stage=pb.LISTING_STAGE_FAILED)
    assert land[0].listing_no in {x.listing_no for x in failed}
    assert all(x.stage == pb.LISTING_STAGE_FAILED for x in failed)
    assert next(x for x in failed
                if x.listing_no == land[0].listing_no).reserve_price_fen == 150_000_000
    await _refused(hotline.ListListings(pb.ListListingsRequest(
        category=pb.TRADING_CATEGORY_CONSTRUCTION)), grpc.StatusCode.INVALID_ARGUMENT)
    await _refused(hotline.ListListings(pb.ListListingsRequest(
        stage=cast(pb.ListingStage.ValueType, 99))),
                   grpc.StatusCode.INVALID_ARGUMENT)
    await _refused(hotline.ListListings(pb.ListListingsRequest(page_token="nonsense")),
                   grpc.StatusCode.INVALID_ARGUMENT)


async def test_the_agreement_days_refusal_names_what_is_accepted(venue: Venue) -> None:
    # 0 is taken (the default, five working days), so the message says so, not "1 to 20".
    for days in (-1, 21):
        details = await _refused(venue.property(agreement_days=days),
                                 grpc.StatusCode.INVALID_ARGUMENT)
        assert ("agreement_working_days must be 0 (the default, 5 working days) or 1 to 20"
                in details), details
    assert (await venue.property(agreement_days=0)).agreement_working_days == 5
