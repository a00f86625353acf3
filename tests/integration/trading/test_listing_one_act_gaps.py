"""Gap test (s17 test reading): a bid retried after its listing is settled is answered from
the record (``listings.prepare_bidder_act`` looks the request up before it refuses a finished
listing, as its docstring says). test_one_act_per_request retries an agreement after the
deal, never a bidder's act: checking "finished" first (FAILED_PRECONDITION for the retry of a
bid that won) left every test green.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import pytest

from govhall.trading.v1 import trading_pb2 as pb
from tests.integration.trading.listing_venue import Venue

START, INCREMENT = 100_000_000, 1_000_000


async def test_a_bid_retried_after_the_listing_is_sold_is_answered_from_the_record(
        venue: Venue) -> None:
    listing = await venue.land(start=START, increment=INCREMENT)
    number = listing.listing_no
    await venue.opened(listing)
    shared = str(uuid.uuid4())

    def bid(amount: int) -> pb.PlaceListingBidRequest:
        return pb.PlaceListingBidRequest(request_id=shared, listing_no=number,
                                         bidder_id="BD-0001", amount_fen=amount)

    first = await venue.bidder("0001").PlaceListingBid(bid(START))
    tz = (await venue.now()).tzinfo
    await venue.skip_to(listing.closes_at.ToDatetime().replace(tzinfo=tz)
                        + timedelta(seconds=1))
    await venue.until_stage(number, pb.LISTING_STAGE_SOLD)

    again = await venue.bidder("0001").PlaceListingBid(bid(START))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await venue.bidder("0001").PlaceListingBid(bid(START + INCREMENT))

    assert again.feed_sequence == first.feed_sequence
    assert again.listing.stage == pb.LISTING_STAGE_SOLD
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS, refused.value.details()
    assert "other terms (amount_fen)" in (refused.value.details() or "")
    sold = await venue.listing(number)
    assert (sold.buyer_id, sold.deal_price_fen, sold.bids) == ("BD-0001", START, 1)
