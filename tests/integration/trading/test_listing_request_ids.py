"""A listing publication's request id answers only that request again: the same system
asking the same terms for the same project gets its listing back; another system, another
project or other terms under the id (it is public: it is in the signed announcement) are
refused ALREADY_EXISTS and list nothing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import grpc
import pytest
from sqlalchemy import func, select

from govhall.trading.v1 import trading_pb2 as pb
from services.trading.db import tables
from tests.integration.trading.listing_venue import OFFICER, Venue, stamp


async def _publish(venue: Venue, system: str, request_id: str, project_no: str,
                   start: int, *, opens: datetime | None = None) -> pb.Listing:
    opens = opens or await venue.now() + timedelta(days=21)
    response = await venue.via(system).PublishLandListing(pb.PublishLandListingRequest(
        request_id=request_id, project_no=project_no, opens_at=stamp(opens),
        closes_at=stamp(opens + timedelta(days=16)), start_price_fen=start,
        increment_fen=1_000_000, auction_interval_seconds=300), metadata=OFFICER)
    listing: pb.Listing = response.listing
    return listing


async def _refused(venue: Venue, system: str, request_id: str, project_no: str, *,
                   start: int = 300_000_000, opens: datetime | None = None
                   ) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _publish(venue, system, request_id, project_no, start, opens=opens)
    return refused.value.code(), refused.value.details() or ""


def _listings(venue: Venue) -> int:
    with venue.trading.running.engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).select_from(tables.listings)).scalar_one())


async def test_a_request_id_answers_only_its_own_request_again(venue: Venue) -> None:
    shared = str(uuid.uuid4())
    first_project, other_project = await venue.project(), await venue.project()
    opens = await venue.now() + timedelta(days=21)
    first = await _publish(venue, "trading-platform", shared, first_project, 100_000_000,
                           opens=opens)
    again = await _publish(venue, "trading-platform", shared, first_project, 100_000_000,
                           opens=opens)
    before = _listings(venue)
    other_system = await _refused(venue, "operator", shared, first_project,
                                  start=100_000_000, opens=opens)
    other_project_code = await _refused(venue, "trading-platform", shared, other_project,
                                        start=100_000_000, opens=opens)

    assert again.listing_no == first.listing_no
    assert other_system[0] == grpc.StatusCode.ALREADY_EXISTS
    assert f"request id {shared} was used for another listing" in other_system[1]
    assert other_project_code[0] == grpc.StatusCode.ALREADY_EXISTS
    assert _listings(venue) == before


async def test_a_retry_with_other_terms_is_refused(venue: Venue) -> None:
    """The same system, the same project, the same id: a retry must ask the same listing.
    Other terms (a start price, an opening) are another request, refused and naming the
    terms that differ, never their values."""
    shared, project_no = str(uuid.uuid4()), await venue.project()
    opens = await venue.now() + timedelta(days=21)
    first = await _publish(venue, "trading-platform", shared, project_no, 100_000_000,
                           opens=opens)
    again = await _publish(venue, "trading-platform", shared, project_no, 100_000_000,
                           opens=opens)
    before = _listings(venue)
    other_price = await _refused(venue, "trading-platform", shared, project_no,
                                 start=100_000_001, opens=opens)
    other_opening = await _refused(venue, "trading-platform", shared, project_no,
                                   start=100_000_000, opens=opens + timedelta(days=1))

    assert again.listing_no == first.listing_no
    assert other_price[0] == grpc.StatusCode.ALREADY_EXISTS
    assert "with other terms (start_price_fen)" in other_price[1]
    assert "100000001" not in other_price[1]
    assert other_opening[0] == grpc.StatusCode.ALREADY_EXISTS
    assert "with other terms (closes_at, opens_at)" in other_opening[1]
    assert _listings(venue) == before
    shown = await venue.listing(first.listing_no)
    assert shown.start_price_fen == 100_000_000


async def test_a_disclosure_retried_later_is_the_same_request(venue: Venue) -> None:
    """A disclosure opens when it is made: a retry made later is still the same request
    (its terms, not its moment, are compared); other terms are refused."""
    shared = str(uuid.uuid4())
    project_no = await venue.project(pb.TRADING_CATEGORY_PROPERTY_RIGHTS)
    closes = await venue.now() + timedelta(days=40)

    async def disclose(reserve: int) -> pb.Listing:
        response = await venue.via().DiscloseProperty(pb.DisclosePropertyRequest(
            request_id=shared, project_no=project_no, closes_at=stamp(closes),
            reserve_price_fen=reserve, increment_fen=500_000, auction_interval_seconds=300,
            max_extensions=1), metadata=OFFICER)
        listing: pb.Listing = response.listing
        return listing

    first = await disclose(50_000_000)
    await venue.skip_to(await venue.now() + timedelta(hours=1))
    again = await disclose(50_000_000)
    before = _listings(venue)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await disclose(60_000_000)

    assert again.listing_no == first.listing_no
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "with other terms (reserve_price_fen)" in (refused.value.details() or "")
    assert _listings(venue) == before
