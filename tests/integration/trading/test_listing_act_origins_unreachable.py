"""A bidder's act on a listing while Temporal cannot be reached: the caller gets UNAVAILABLE
(never INTERNAL), and the note of the act's network origin stays, as listing_watch says
(the same act sent again may still be recorded, and then its note is the one it is read
from); sending it again while Temporal is still out of reach keeps one note; the note of an act
never recorded is swept when the listing is settled.

Two paths lead there, each tested on its own and told apart by its message:

- the workflow is started, the update cannot be sent: the venue's trading service (its
  Temporal reachable) publishes the listing and starts its workflow; a second trading
  service on the same database, its Temporal client pointed at a closed port, takes the
  bids (the act is signed and noted there, then cannot be sent: the gateway's message);
- the workflow is not started and cannot be: a trading service on a database of its own,
  Temporal out of reach, publishes the listing and takes the bid (no service that reaches
  Temporal shares its database, so no outbox can start the workflow meanwhile).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from services.trading.db import tables
from services.trading.domain.model import act_key
from services.trading.main import DEFINITION
from tests.integration.intake.sealing import closed_port
from tests.integration.trading.cut_off import cut_off as cut_off_service
from tests.integration.trading.listing_venue import OFFICER, Venue, stamp
from tests.support import ServiceUnderTest, fresh_database_url, service_under_test

BIDDER_SYSTEM = "bidder-system-bd0001"


@pytest.fixture
async def cut_off(venue: Venue) -> AsyncIterator[ServiceUnderTest]:
    """The trading service again, on the venue's database, with Temporal out of reach."""
    async with cut_off_service(venue.trading) as service:
        yield service


def _rows(venue: Venue, table: Any, listing_no: str) -> list[Any]:
    with venue.trading.running.engine.connect() as connection:
        return list(connection.execute(select(table).where(table.c.listing_no == listing_no)))


def _started(venue: Venue, listing_no: str) -> bool:
    (listing,) = _rows(venue, tables.listings, listing_no)
    return bool(listing.workflow_started)


async def _unavailable(stub: Any, request: pb.PlaceListingBidRequest) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.PlaceListingBid(request)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
    return refused.value.details() or ""


async def test_an_act_that_cannot_reach_temporal_is_unavailable_and_keeps_its_note(
        venue: Venue, cut_off: ServiceUnderTest) -> None:
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    number = listing.listing_no
    assert _started(venue, number)
    channel = cut_off.channel(BIDDER_SYSTEM)
    try:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        request = pb.PlaceListingBidRequest(request_id=str(uuid.uuid4()), listing_no=number,
                                            bidder_id="BD-0001", amount_fen=100_000_000)
        details = await _unavailable(stub, request)
        # The update could not be sent (the gateway's message), not the workflow unstarted.
        assert "the workflow service (Temporal) cannot be reached now" in details
        assert "not started" not in details
        # The same act again, Temporal still out of reach: the first note stays, alone.
        await _unavailable(stub, request)
        # Another act, never sent again: its note waits.
        other = pb.PlaceListingBidRequest(request_id=str(uuid.uuid4()), listing_no=number,
                                          bidder_id="BD-0001", amount_fen=101_000_000)
        await _unavailable(stub, other)
    finally:
        await channel.close(None)

    key = act_key("listing_bid", BIDDER_SYSTEM, request.request_id)
    unsent = act_key("listing_bid", BIDDER_SYSTEM, other.request_id)
    notes = _rows(venue, tables.listing_act_origins, number)
    assert sorted((n.act_key, n.origin) for n in notes) == sorted(
        [(key, "127.0.0.1"), (unsent, "127.0.0.1")])
    assert _rows(venue, tables.listing_acts, number) == []

    # Temporal within reach again (the venue's service): the act sent again is recorded
    # under the noted key, and the note stays with it.
    await venue.opened(listing)
    await venue.bidder("0001").PlaceListingBid(request)
    (act,) = _rows(venue, tables.listing_acts, number)
    assert act.act_key == key
    assert len(_rows(venue, tables.listing_act_origins, number)) == 2

    # Settled (the one bidder buys at the close), the listing takes no act any more: the
    # note of the act never recorded is swept, the recorded act's stays.
    tz = (await venue.now()).tzinfo
    await venue.skip_to(listing.closes_at.ToDatetime().replace(tzinfo=tz)
                        + timedelta(seconds=1))
    await venue.until_stage(number, pb.LISTING_STAGE_SOLD)
    assert [(n.act_key, n.origin) for n in _rows(venue, tables.listing_act_origins,
                                                 number)] == [(key, "127.0.0.1")]


@pytest.fixture
async def isolated(backend: str, tmp_path: Path, pki_dir: Path
                   ) -> AsyncIterator[ServiceUnderTest]:
    """A trading service on a database of its own, with Temporal out of reach (and no venue:
    nothing that reaches Temporal reads this database)."""
    async with service_under_test(DEFINITION,
                                  database_url=fresh_database_url(backend, "trading", tmp_path),
                                  pki_dir=pki_dir, temporal_address=closed_port(),
                                  tender_start_wait_seconds=0.5,
                                  workflow_call_timeout_seconds=5) as service:
        yield service


async def test_an_act_on_a_listing_whose_workflow_is_not_started_keeps_its_note(
        isolated: ServiceUnderTest) -> None:
    """Published while Temporal is out of reach, the listing's workflow is not started (its
    outbox entry waits): an act on it is not sent either (UNAVAILABLE, saying the workflow
    is not started), and its note stays."""
    channels = {system: isolated.channel(system)
                for system in ("trading-platform", BIDDER_SYSTEM)}
    try:
        def via(system: str) -> Any:
            return trading_pb2_grpc.TradingServiceStub(channels[system])

        now = datetime.now(UTC)
        project = await via("trading-platform").RegisterProject(pb.RegisterProjectRequest(
            request_id=str(uuid.uuid4()), category=pb.TRADING_CATEGORY_LAND,
            title="浑南新区地块", estimated_value_fen=900_000_000,
            funding_source=pb.FUNDING_SOURCE_PUBLIC, department_code="JYJ"), metadata=OFFICER)
        published = await via("trading-platform").PublishLandListing(
            pb.PublishLandListingRequest(
                request_id=str(uuid.uuid4()), project_no=project.project.project_no,
                opens_at=stamp(now + timedelta(days=21)),
                closes_at=stamp(now + timedelta(days=37)), start_price_fen=100_000_000,
                increment_fen=1_000_000, auction_interval_seconds=300), metadata=OFFICER)
        number = published.listing.listing_no
        request = pb.PlaceListingBidRequest(request_id=str(uuid.uuid4()), listing_no=number,
                                            bidder_id="BD-0001", amount_fen=100_000_000)
        details = await _unavailable(via(BIDDER_SYSTEM), request)
    finally:
        for channel in channels.values():
            await channel.close(None)
    # The workflow not started and not startable (this path's message), not an update
    # that could not be sent.
    assert f"the workflow of listing {number} is not started yet and cannot be started " \
        "now" in details
    assert "Temporal" not in details
    with isolated.running.engine.connect() as connection:
        (listing,) = connection.execute(select(tables.listings).where(
            tables.listings.c.listing_no == number))
        notes = list(connection.execute(select(tables.listing_act_origins).where(
            tables.listing_act_origins.c.listing_no == number)))
        acts = list(connection.execute(select(tables.listing_acts).where(
            tables.listing_acts.c.listing_no == number)))
    assert not listing.workflow_started
    key = act_key("listing_bid", BIDDER_SYSTEM, request.request_id)
    assert [(n.act_key, n.origin) for n in notes] == [(key, "127.0.0.1")]
    assert acts == []
