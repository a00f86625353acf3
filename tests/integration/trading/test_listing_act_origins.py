"""The network-origin notes of the bidders' acts (listing_act_origins) stay bounded by the
acts trading takes: an act refused by the servicer's own checks is never noted, and the
note of an act the listing's workflow refuses is deleted; a recorded act keeps its note."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from govhall.trading.v1 import trading_pb2 as pb
from kernel.signing import service_signer
from services.trading.app import listing_watch
from services.trading.db import tables
from services.trading.db.repository import TradingUnitOfWork
from tests.integration.trading.listing_venue import Venue, until
from workflows import listing_contract as lc
from workflows.approval_contract import as_statement


def _notes(venue: Venue, listing_no: str) -> list[Any]:
    with venue.trading.running.engine.connect() as connection:
        return list(connection.execute(select(tables.listing_act_origins).where(
            tables.listing_act_origins.c.listing_no == listing_no)))


async def _refused(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    code: grpc.StatusCode = refused.value.code()
    return code


async def test_refused_acts_leave_no_note_of_their_origin(venue: Venue) -> None:
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    number = listing.listing_no
    # Refused by the workflow: the listing is not open yet (its clock, not the servicer's).
    early = [await _refused(venue.bid(number, "0001", 100_000_000)) for _ in range(3)]
    after_early = _notes(venue, number)
    # Refused by the servicer itself: a bidder's system speaking for another bidder.
    foreign = await _refused(venue.bidder("0001").PlaceListingBid(pb.PlaceListingBidRequest(
        request_id=str(uuid.uuid4()), listing_no=number, bidder_id="BD-0002",
        amount_fen=100_000_000)))
    await venue.opened(listing)
    await venue.bid(number, "0001", 100_000_000)
    # Below the increment: refused by the workflow at the listing's price.
    low = await _refused(venue.bid(number, "0002", 100_000_001))
    notes = _notes(venue, number)
    with venue.trading.running.engine.connect() as connection:
        acts = list(connection.execute(select(tables.listing_acts).where(
            tables.listing_acts.c.listing_no == number)))
    # A refusal of an act recorded already under the same key (an earlier attempt's)
    # leaves its note: the recorded act's alerts are read from it.
    with TradingUnitOfWork(venue.trading.running.engine) as uow:
        uow.listings.forget_origin(number, acts[0].act_key, acts[0].terms_sha256)
        uow.commit()

    assert early == [grpc.StatusCode.FAILED_PRECONDITION] * 3
    assert after_early == []
    assert foreign == grpc.StatusCode.PERMISSION_DENIED
    assert low == grpc.StatusCode.FAILED_PRECONDITION
    # Only the recorded bid's note is left, under the key it was recorded with.
    assert [a.bidder_id for a in acts] == ["BD-0001"]
    assert [(n.act_key, n.origin) for n in notes] == [(acts[0].act_key, "127.0.0.1")]
    assert _notes(venue, number) == notes


async def test_callers_hanging_up_leave_no_note_of_refused_acts(venue: Venue) -> None:
    """A caller cancelling its call (its deadline) while the act is noted or with the
    workflow still leaves nothing once the workflow refuses it: the act is settled anyway."""
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    number = listing.listing_no
    stub = venue.bidder("0001")
    codes: list[grpc.StatusCode] = []
    # Deadlines from 10 ms growing by 15% a call up to ~2.7 s: some calls end while their
    # act is noted and with the workflow (the listing is not open yet: refused there).
    timeout = 0.01
    for _ in range(40):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.PlaceListingBid(pb.PlaceListingBidRequest(
                request_id=str(uuid.uuid4()), listing_no=number, bidder_id="BD-0001",
                amount_fen=100_000_000), timeout=timeout)
        codes.append(refused.value.code())
        timeout *= 1.15

    async def notes() -> list[Any]:
        return _notes(venue, number)

    left = await until(notes, lambda found: found == [], "the refused acts' notes gone")
    with venue.trading.running.engine.connect() as connection:
        acts = list(connection.execute(select(tables.listing_acts).where(
            tables.listing_acts.c.listing_no == number)))

    assert grpc.StatusCode.DEADLINE_EXCEEDED in codes
    assert grpc.StatusCode.FAILED_PRECONDITION in codes
    assert set(codes) == {grpc.StatusCode.DEADLINE_EXCEEDED,
                          grpc.StatusCode.FAILED_PRECONDITION}
    assert acts == [] and left == []


async def test_only_a_retry_clash_is_taken_as_noted_already(venue: Venue,
                                                            tmp_path: Path) -> None:
    """Noting an act twice under one key (a retry) keeps the first note; any other
    integrity error (here a listing trading does not hold) is raised, not swallowed."""
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    signer = service_signer(tmp_path / "signer", "trading")
    statement = as_statement(signer.sign(lc.listing_statement_body(
        kind=lc.StatementKind.BID, listing_no=listing.listing_no,
        system="bidder-system-bd0001", issued_at=await venue.now(),
        request_id=str(uuid.uuid4()), bidder_id="BD-0001", amount_fen=100_000_000)))
    engine = venue.trading.running.engine

    def note(listing_no: str, origin: str) -> None:
        listing_watch.note_act_origin(
            uow=TradingUnitOfWork(engine), kind=lc.StatementKind.BID, listing_no=listing_no,
            statement=statement, origin=origin, now=datetime.now(UTC))

    note(listing.listing_no, "127.0.0.1")
    note(listing.listing_no, "10.0.0.9")  # the retry's clash: the first note stays
    with pytest.raises(IntegrityError):
        note("LS-20000101-000001", "127.0.0.1")

    assert [n.origin for n in _notes(venue, listing.listing_no)] == ["127.0.0.1"]
    assert _notes(venue, "LS-20000101-000001") == []
