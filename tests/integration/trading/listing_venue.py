"""The venue for listing tests: the trading service over gRPC with its real activities, the
real ListingWorkflow, on a time-skipping server of the test's own.

The time-skipping server's clock starts at the real time, so a listing published today
closes next year: the test gives the trading service the schedule of that year as an
operator would load it in review (``SCHEDULE_2027``, in place of review's answer).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from kernel.calendar import WorkingCalendar, YearSchedule
from kernel.chinatime import china_date
from kernel.signing import Signed, TrustedKeys, public_keys_dir, trust_in_workflows
from services.trading import activities
from services.trading.main import DEFINITION
from tests.day_setups import schedules_ahead
from tests.support import ServiceUnderTest, as_official, fresh_database_url, service_under_test
from workflows.listing import ListingWorkflow

T = TypeVar("T")
OFFICER = as_official("ZWFWZX-007")
SCHEDULE_2027 = YearSchedule(2027, frozenset({date(2027, 1, 1)}), frozenset())


def calendar() -> WorkingCalendar:
    """2027 as ``SCHEDULE_2027``; any later year the run reaches, weekends only."""
    later = [s for s in schedules_ahead(china_date(datetime.now(UTC))) if s.year != 2027]
    return WorkingCalendar.with_schedules([SCHEDULE_2027, *later])


def stamp(at: datetime) -> Timestamp:
    made = Timestamp()
    made.FromDatetime(at)
    return made


async def until(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool],
                what: str) -> T:
    found: T | None = None
    for _ in range(400):
        found = await probe()
        if done(found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}; last {found!r}")


@dataclass
class Venue:
    env: WorkflowEnvironment
    trading: ServiceUnderTest
    channels: dict[str, grpc.aio.Channel]

    def via(self, system: str = "trading-platform") -> Any:
        if system not in self.channels:
            self.channels[system] = self.trading.channel(system)
        return trading_pb2_grpc.TradingServiceStub(self.channels[system])

    def bidder(self, n: str) -> Any:
        return self.via(f"bidder-system-bd{n}")

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def project(self, category: Any = pb.TRADING_CATEGORY_LAND) -> str:
        project = (await self.via().RegisterProject(pb.RegisterProjectRequest(
            request_id=str(uuid.uuid4()), category=category, title="浑南新区地块",
            estimated_value_fen=900_000_000, funding_source=pb.FUNDING_SOURCE_PUBLIC,
            department_code="JYJ"), metadata=OFFICER)).project
        return str(project.project_no)

    async def land(self, *, start: int = 100_000_000, increment: int = 1_000_000,
                   reserve: int = 0, interval: int = 300, opens_in: timedelta =
                   timedelta(days=21), lasts: timedelta = timedelta(days=16),
                   project_no: str = "") -> pb.Listing:
        now = await self.now()
        response = await self.via().PublishLandListing(pb.PublishLandListingRequest(
            request_id=str(uuid.uuid4()), project_no=project_no or await self.project(),
            opens_at=stamp(now + opens_in), closes_at=stamp(now + opens_in + lasts),
            start_price_fen=start, increment_fen=increment, reserve_price_fen=reserve,
            auction_interval_seconds=interval), metadata=OFFICER)
        listing: pb.Listing = response.listing
        return listing

    async def property(self, *, reserve: int = 50_000_000, increment: int = 500_000,
                       interval: int = 300, extensions: int = 1,
                       lasts: timedelta = timedelta(days=30),
                       agreement_days: int = 0) -> pb.Listing:
        now = await self.now()
        response = await self.via().DiscloseProperty(pb.DisclosePropertyRequest(
            request_id=str(uuid.uuid4()),
            project_no=await self.project(pb.TRADING_CATEGORY_PROPERTY_RIGHTS),
            closes_at=stamp(now + lasts), reserve_price_fen=reserve, increment_fen=increment,
            auction_interval_seconds=interval, max_extensions=extensions,
            agreement_working_days=agreement_days), metadata=OFFICER)
        listing: pb.Listing = response.listing
        return listing

    async def listing(self, listing_no: str) -> pb.Listing:
        found: pb.Listing = (await self.via().GetListing(
            pb.GetListingRequest(listing_no=listing_no))).listing
        return found

    async def until_stage(self, listing_no: str, stage: Any) -> pb.Listing:
        return await until(lambda: self.listing(listing_no), lambda x: x.stage == stage,
                           f"listing at {pb.ListingStage.Name(stage)}")

    async def skip_to(self, moment: datetime) -> None:
        now = await self.now()
        if moment > now:
            await self.env.sleep(moment - now)

    async def bid(self, listing_no: str, n: str, amount: int) -> pb.PlaceListingBidResponse:
        response: pb.PlaceListingBidResponse = await self.bidder(n).PlaceListingBid(
            pb.PlaceListingBidRequest(request_id=str(uuid.uuid4()), listing_no=listing_no,
                                      bidder_id=f"BD-{n}", amount_fen=amount))
        return response

    async def auction_bid(self, listing_no: str, n: str,
                          amount: int) -> pb.PlaceAuctionBidResponse:
        response: pb.PlaceAuctionBidResponse = await self.bidder(n).PlaceAuctionBid(
            pb.PlaceAuctionBidRequest(request_id=str(uuid.uuid4()), listing_no=listing_no,
                                      bidder_id=f"BD-{n}", amount_fen=amount))
        return response

    async def declare(self, listing_no: str, n: str,
                      by: str = "") -> pb.DeclareAuctionInterestResponse:
        """Bidder BD-<n> asks to keep bidding at the close (from BD-<by>'s system if set)."""
        response: pb.DeclareAuctionInterestResponse = await self.bidder(
            by or n).DeclareAuctionInterest(pb.DeclareAuctionInterestRequest(
                request_id=str(uuid.uuid4()), listing_no=listing_no, bidder_id=f"BD-{n}"))
        return response

    async def register(self, listing_no: str, n: str) -> pb.Listing:
        listing: pb.Listing = (await self.bidder(n).RegisterBuyer(pb.RegisterBuyerRequest(
            request_id=str(uuid.uuid4()), listing_no=listing_no,
            buyer_id=f"BD-{n}"))).listing
        return listing

    async def feed(self, listing_no: str) -> list[tuple[str, dict[str, Any]]]:
        """The listing's feed entries: kind and signed body (verified with trading's key)."""
        keys = TrustedKeys.load(public_keys_dir(self.trading.pki_dir))
        entries = (await self.via().ListFeed(pb.ListFeedRequest(cursor=0,
                                                                page_size=500))).entries
        found = []
        for entry in entries:
            if entry.subject != f"listing/{listing_no}":
                continue
            assert hashlib.sha256(entry.body.encode()).hexdigest() == entry.body_sha256
            signed = Signed.from_dict(json.loads(entry.body))
            found.append((entry.kind, keys.verify(signed, signer="trading")))
        return found

    async def opened(self, listing: pb.Listing) -> None:
        """Skip to the listing's opening and wait until it is published."""
        await self.skip_to(listing.opens_at.ToDatetime().replace(tzinfo=(await self.now())
                                                                 .tzinfo))
        await until(lambda: self.feed(listing.listing_no),
                    lambda f: any(kind == "listing.opened" for kind, _ in f),
                    "the listing opened")


@pytest.fixture
async def venue(time_skipping: WorkflowEnvironment, backend: str, tmp_path: Path,
                pki_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Venue]:
    # The schedule of the next year, as an operator loads it.
    monkeypatch.setattr(activities, "holiday_calendar", lambda settings: calendar())
    prefix = f"l{uuid.uuid4().hex[:10]}-"
    url = fresh_database_url(backend, "trading", tmp_path)
    target = str(time_skipping.client.service_client.config.target_host)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=target, task_queue_prefix=prefix,
                                  run_activity_worker=True) as trading:
        trust_in_workflows(TrustedKeys.load(public_keys_dir(pki_dir)))
        made = Venue(time_skipping, trading, {})
        async with Worker(time_skipping.client, task_queue=f"{prefix}workflows",
                          workflows=[ListingWorkflow]):
            try:
                yield made
            finally:
                for channel in made.channels.values():
                    await channel.close(None)
