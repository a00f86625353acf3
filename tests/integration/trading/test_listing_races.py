"""Publications that race each other: one listing, never INTERNAL (PostgreSQL lets
concurrent calls all pass the checks before one of them inserts; SQLite queues them)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta

import grpc

from govhall.trading.v1 import trading_pb2 as pb
from tests.integration.trading.listing_venue import OFFICER, Venue, stamp


def _codes(results: Sequence[object]) -> list[grpc.StatusCode]:
    return [r.code() for r in results if isinstance(r, grpc.aio.AioRpcError)]


async def test_concurrent_publications_of_one_project_list_it_once(venue: Venue) -> None:
    project = await venue.project()
    results = await asyncio.gather(*(venue.land(project_no=project) for _ in range(6)),
                                   return_exceptions=True)
    published = [r for r in results if not isinstance(r, BaseException)]
    assert not [r for r in results if isinstance(r, BaseException)
                and not isinstance(r, grpc.aio.AioRpcError)]
    assert len(published) == 1
    assert _codes(results) == [grpc.StatusCode.ALREADY_EXISTS] * 5


async def test_a_publication_retried_while_it_runs_answers_the_same_listing(
        venue: Venue) -> None:
    project = await venue.project()
    now = await venue.now()
    request = pb.PublishLandListingRequest(
        request_id=str(uuid.uuid4()), project_no=project,
        opens_at=stamp(now + timedelta(days=21)), closes_at=stamp(now + timedelta(days=37)),
        start_price_fen=100_000_000, increment_fen=1_000_000, auction_interval_seconds=300)
    results = await asyncio.gather(*(venue.via().PublishLandListing(request, metadata=OFFICER)
                                     for _ in range(4)), return_exceptions=True)
    assert _codes(results) == []
    assert len({r.listing.listing_no for r in results
                if isinstance(r, pb.PublishLandListingResponse)}) == 1
