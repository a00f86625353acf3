"""ListListings' page read (``Listings.page_of``) reads each listing's steps: a property
disclosure that closed to its agreement stage shows its agreement deadline, which comes
from its ``closed`` step; listed, it must be shown as GetListing shows it."""

from __future__ import annotations

from datetime import timedelta

from govhall.trading.v1 import trading_pb2 as pb
from tests.integration.trading.listing_venue import Venue
from tests.integration.trading.listing_venue import venue as venue


async def test_a_disclosure_awaiting_its_agreement_is_listed_as_get_listing_shows_it(
        venue: Venue) -> None:
    listing = await venue.property(reserve=50_000_000, extensions=0, agreement_days=5)
    number = listing.listing_no
    await venue.register(number, "0004")
    tz = (await venue.now()).tzinfo
    await venue.skip_to(listing.closes_at.ToDatetime().replace(tzinfo=tz)
                        + timedelta(seconds=1))
    awaiting = await venue.until_stage(number, pb.LISTING_STAGE_AGREEMENT)
    assert awaiting.HasField("agreement_due")
    page = await venue.via().ListListings(pb.ListListingsRequest(page_size=10))
    [listed] = [x for x in page.listings if x.listing_no == number]
    assert listed == await venue.listing(number)
