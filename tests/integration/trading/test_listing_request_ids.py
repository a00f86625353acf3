"""A listing publication's request id answers only that request again: the same system
asking for the same project gets its listing back; another system, or another project,
reusing the id (it is public: it is in the signed announcement) is refused ALREADY_EXISTS
and lists nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import pytest
from sqlalchemy import func, select

from govhall.trading.v1 import trading_pb2 as pb
from services.trading.db import tables
from tests.integration.trading.listing_venue import OFFICER, Venue, stamp


async def _publish(venue: Venue, system: str, request_id: str, project_no: str,
                   start: int) -> pb.Listing:
    opens = await venue.now() + timedelta(days=21)
    response = await venue.via(system).PublishLandListing(pb.PublishLandListingRequest(
        request_id=request_id, project_no=project_no, opens_at=stamp(opens),
        closes_at=stamp(opens + timedelta(days=16)), start_price_fen=start,
        increment_fen=1_000_000, auction_interval_seconds=300), metadata=OFFICER)
    listing: pb.Listing = response.listing
    return listing


async def _refused(venue: Venue, system: str, request_id: str,
                   project_no: str) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _publish(venue, system, request_id, project_no, 300_000_000)
    return refused.value.code(), refused.value.details() or ""


def _listings(venue: Venue) -> int:
    with venue.trading.running.engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).select_from(tables.listings)).scalar_one())


async def test_a_request_id_answers_only_its_own_request_again(venue: Venue) -> None:
    shared = str(uuid.uuid4())
    first_project, other_project = await venue.project(), await venue.project()
    first = await _publish(venue, "trading-platform", shared, first_project, 100_000_000)
    again = await _publish(venue, "trading-platform", shared, first_project, 100_000_000)
    before = _listings(venue)
    other_system = await _refused(venue, "operator", shared, first_project)
    other_project_code = await _refused(venue, "trading-platform", shared, other_project)

    assert again.listing_no == first.listing_no
    assert other_system[0] == grpc.StatusCode.ALREADY_EXISTS
    assert f"request id {shared} was used for another listing" in other_system[1]
    assert other_project_code[0] == grpc.StatusCode.ALREADY_EXISTS
    assert _listings(venue) == before
