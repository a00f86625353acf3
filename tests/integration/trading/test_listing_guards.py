"""Listing guards a status check alone cannot show:

- the listing workflow's own copy of the auction (its validator refuses at once a bid
  by a bidder who did not ask to keep bidding: nothing reaches the history); with the
  copy wrong, trading's activity still refuses with the same status, so a status check
  alone cannot tell;
- the database itself keeps a project to one listing that did not fail (migration 0013's
  partial unique index), not only the service's check before its insert.
"""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType

from govhall.trading.v1 import trading_pb2 as pb
from services.trading.db import tables
from tests.integration.trading.listing_venue import Venue
from tests.integration.trading.listing_venue import venue as venue  # the fixture
from workflows import listing_contract as lc


async def _to_close(venue: Venue, listing: pb.Listing) -> None:
    tz = (await venue.now()).tzinfo
    await venue.skip_to(listing.closes_at.ToDatetime().replace(tzinfo=tz)
                        + timedelta(seconds=1))


async def _updates_accepted(venue: Venue, number: str) -> int:
    history = await venue.env.client.get_workflow_handle(lc.workflow_id(number)).fetch_history()
    return sum(1 for e in history.events
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)


async def test_a_bidder_who_did_not_ask_is_refused_by_the_workflows_validator(
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
    before = await _updates_accepted(venue, number)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await venue.auction_bid(number, "0002", 104_000_000)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Refused by the validator: the update was never accepted into the history.
    assert await _updates_accepted(venue, number) == before


async def test_the_database_keeps_a_project_to_one_listing_that_did_not_fail(
        venue: Venue) -> None:
    first = await venue.land()
    listings = tables.listings
    engine = venue.trading.running.engine
    with engine.connect() as connection:
        row = dict(connection.execute(sa.select(listings).where(
            listings.c.listing_no == first.listing_no)).mappings().one())
    twin = row | {"listing_no": "LS-29991231-000001",
                  "request_id": "00000000-0000-4000-8000-0000000000aa"}
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(sa.insert(listings).values(**twin))
    with engine.begin() as connection:
        connection.execute(sa.update(listings).where(
            listings.c.listing_no == first.listing_no).values(stage="failed"))
        connection.execute(sa.insert(listings).values(**twin))
