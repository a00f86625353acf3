"""Monitoring alerts on the bidders' acts on listings, over real gRPC, with the listing's
workflow running for real (listing_venue.py): acts of two bidders from one network origin
raise ``same_origin`` on the watch and in ListTradeAlerts; a bidder's own acts, and acts
from another origin, raise nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from govhall.trading.v1 import trading_pb2 as pb
from services.trading.app.request_ids import terms_sha256
from services.trading.db import tables
from services.trading.db.repository import Listings, TradingUnitOfWork
from services.trading.domain.model import act_key
from tests.integration.trading.listing_venue import Venue
from workflows import listing_contract as lc

# The test's channels all come from this host: every bidder's system acts from one origin.
HERE = "127.0.0.1"


async def _alerts(venue: Venue, number: str) -> list[dict[str, Any]]:
    alerts = (await venue.via("supervision-system").ListTradeAlerts(pb.ListTradeAlertsRequest(
        trade=f"listing/{number}", rule=pb.TRADE_ALERT_RULE_SAME_ORIGIN))).alerts
    return [json.loads(a.details_json) for a in alerts]


async def _watched(venue: Venue, number: str) -> list[tuple[str, list[int]]]:
    steps = [r.step async for r in venue.via("supervision-system").WatchTrades(
        pb.WatchTradesRequest())]
    return [(s.step, [a.rule for a in s.alerts]) for s in steps
            if s.trade == f"listing/{number}"]


async def test_listing_and_auction_bids_of_two_bidders_from_one_origin_are_alerts(
        venue: Venue) -> None:
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    number = listing.listing_no
    await venue.opened(listing)
    await venue.bid(number, "0001", 100_000_000)
    await venue.bid(number, "0002", 101_000_000)
    await venue.bid(number, "0001", 102_000_000)
    # Both ask to keep bidding at the close (art. 19), so the close opens an auction.
    await venue.declare(number, "0001")
    await venue.declare(number, "0002")
    tz = (await venue.now()).tzinfo
    await venue.skip_to(listing.closes_at.ToDatetime().replace(tzinfo=tz)
                        + timedelta(seconds=1))
    await venue.until_stage(number, pb.LISTING_STAGE_AUCTION)
    await venue.auction_bid(number, "0002", 103_000_000)

    same = {"bidders": ["BD-0001", "BD-0002"], "origin": HERE}
    assert await _alerts(venue, number) == [same | {"act": "listing_bid"},
                                            same | {"act": "listing_bid"},
                                            same | {"act": "auction_bid"}]
    rule = pb.TRADE_ALERT_RULE_SAME_ORIGIN
    # The first act has nobody else's to match; each later one matches the other bidder's.
    assert await _watched(venue, number) == [
        ("announced", []), ("opened", []), ("listing_bid", []), ("listing_bid", [rule]),
        ("listing_bid", [rule]), ("auction_interest", []), ("auction_interest", []),
        ("closed", []), ("auction_bid", [rule])]


async def test_a_bidders_own_acts_raise_nothing(venue: Venue) -> None:
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    await venue.opened(listing)
    await venue.bid(listing.listing_no, "0001", 100_000_000)
    assert await _alerts(venue, listing.listing_no) == []
    assert [rules for _, rules in await _watched(venue, listing.listing_no)] == [[], [], []]


async def test_registrations_compare_the_origins_recorded_with_each_act(venue: Venue) -> None:
    listing = await venue.property()
    number = listing.listing_no
    elsewhere = str(uuid.uuid4())
    # BD-0002's registration is noted from another address first (as a first attempt from
    # there would be): the origin compared is the one recorded with the act.
    engine = venue.trading.running.engine

    def note_elsewhere() -> None:
        with TradingUnitOfWork(engine) as unit:
            # The terms of BD-0002's registration as trading signs it (its instant aside).
            terms = terms_sha256(lc.listing_statement_body(
                kind=lc.StatementKind.BUYER, listing_no=number, system="bidder-system-bd0002",
                issued_at=datetime.now(UTC), request_id=elsewhere, bidder_id="BD-0002"))
            unit.listings.note_origin(number, act_key("buyer_registered",
                                                      "bidder-system-bd0002", elsewhere),
                                      terms, "10.0.0.2", at=datetime.now(UTC))
            unit.commit()

    await asyncio.to_thread(note_elsewhere)
    await venue.register(number, "0001")
    await venue.bidder("0002").RegisterBuyer(pb.RegisterBuyerRequest(
        request_id=elsewhere, listing_no=number, buyer_id="BD-0002"))
    assert await _alerts(venue, number) == []
    await venue.register(number, "0003")
    assert await _alerts(venue, number) == [
        {"bidders": ["BD-0001", "BD-0003"], "origin": HERE, "act": "buyer_registered"}]

    def origins() -> dict[str, str]:
        a, o = tables.listing_acts, tables.listing_act_origins
        with engine.connect() as connection:
            return {r.bidder_id: r.origin for r in connection.execute(
                select(a.c.bidder_id, o.c.origin).join(o, (o.c.listing_no == a.c.listing_no)
                                                       & (o.c.act_key == a.c.act_key)
                                                       & (o.c.terms_sha256 == a.c.terms_sha256))
                .where(a.c.listing_no == number))}

    assert await asyncio.to_thread(origins) == {"BD-0001": HERE, "BD-0002": "10.0.0.2",
                                                "BD-0003": HERE}


async def test_an_act_noted_before_migration_0018_and_recorded_after_it_raises_its_alert(
        venue: Venue, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bid sent while trading was upgraded: the service before 0018 noted its origin with
    no digest (0018 gives such notes ''), the one after records it with its terms' digest.
    The note is still the act's own: the same-origin alert is raised (s17 re-check LOW A)."""
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    number = listing.listing_no
    await venue.opened(listing)
    await venue.bid(number, "0002", 100_000_000)
    noted = Listings.note_origin

    def noted_before_0018(self: Listings, listing_no: str, act_key: str, terms_sha256: str,
                          origin: str, *, at: datetime) -> None:
        noted(self, listing_no, act_key, "", origin, at=at)

    monkeypatch.setattr(Listings, "note_origin", noted_before_0018)
    await venue.bid(number, "0001", 101_000_000)

    same = {"bidders": ["BD-0001", "BD-0002"], "origin": HERE}
    assert await _alerts(venue, number) == [same | {"act": "listing_bid"}]
    with venue.trading.running.engine.connect() as connection:
        digests = {r.terms_sha256 for r in connection.execute(
            select(tables.listing_act_origins.c.terms_sha256).where(
                tables.listing_act_origins.c.listing_no == number))}
    assert "" not in digests  # the note took its act's digest
