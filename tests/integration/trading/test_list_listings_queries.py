"""ListListings reads a page in a bounded number of statements, whatever its size.

Twenty listings are published (two with bids, all opened) through the venue; the page is
then read as the servicer reads it, on an engine of the test's own whose statements are
counted (a SQLAlchemy ``before_cursor_execute`` listener): a page of twenty costs what a
page of two does, and shows each listing as GetListing does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event

from kernel.db import make_engine
from services.trading.api.servicer import listing_to_proto
from services.trading.app import listings
from services.trading.db.repository import TradingUnitOfWork
from tests.integration.trading.listing_venue import Venue, calendar


async def test_a_page_of_twenty_listings_takes_as_many_statements_as_a_page_of_two(
        venue: Venue) -> None:
    land = [await venue.land() for _ in range(20)]
    # The last one published opens last: all are open then.
    await venue.opened(land[-1])
    await venue.bid(land[0].listing_no, "0001", 100_000_000)
    await venue.bid(land[1].listing_no, "0002", 101_000_000)
    await venue.bid(land[0].listing_no, "0002", 102_000_000)
    engine = make_engine(venue.trading.settings.resolved_database_url())
    statements: list[str] = []

    def counted(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", counted)
    try:
        def page(size: int) -> tuple[int, listings.ListingPage]:
            statements.clear()
            read = listings.list_listings(
                uow=TradingUnitOfWork(engine, write=False), calendar=calendar(),
                category="", stage="", requested_size=size, page_token="")
            return len(statements), read

        small, two = await asyncio.to_thread(page, 2)
        large, twenty = await asyncio.to_thread(page, 20)
    finally:
        event.remove(engine, "before_cursor_execute", counted)
        engine.dispose()
    assert [v.record.listing_no for v in twenty.listings] == [x.listing_no for x in land]
    assert twenty.listings[:2] == two.listings
    # The page query and one for each of announcements, acts and steps (and what a unit
    # of work itself asks), never one set per listing.
    assert large == small <= 6, statements
    # Each as GetListing shows it: prices, leaders, bids counted.
    for view in twenty.listings:
        assert listing_to_proto(view) == await venue.listing(view.record.listing_no)
    shown = {v.record.listing_no: v for v in twenty.listings}
    assert listing_to_proto(shown[land[0].listing_no]).bids == 2
    assert listing_to_proto(shown[land[0].listing_no]).current_price_fen == 102_000_000
    assert listing_to_proto(shown[land[1].listing_no]).leader_bidder_id == "BD-0002"
