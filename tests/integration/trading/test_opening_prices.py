"""The opening reads each valid bid's price once and keeps it for the ranking: the
ranking opens no bid again (a bid opened before prices were recorded excepted), over
real gRPC, the real TenderWorkflow and a real verifiable draw."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update

from govhall.trading.v1 import trading_pb2 as pb
from services.trading.db import tables
from services.trading.db.repository import TradingUnitOfWork
from services.trading.domain.evaluation import Tally
from tests.integration.trading.test_tender_chain import OFFICER, Venue
from tests.integration.trading.test_tender_chain import venue as venue  # the fixture
from tests.integration.trading.test_tender_evaluation import (
    BUSINESS,
    EXPERT_SYSTEMS,
    PRICES,
    TECHNICAL,
    _sheet,
    _to_evaluation,
)


def _prices(venue: Venue, number: str) -> dict[str, int | None]:
    bids = tables.sealed_bids
    with venue.trading.running.engine.connect() as connection:
        return {r.bidder_id: r.price_fen for r in connection.execute(
            select(bids.c.bidder_id, bids.c.price_fen).where(bids.c.tender_no == number))}


async def test_the_ranking_uses_the_prices_read_at_the_opening(venue: Venue) -> None:
    number = await _to_evaluation(venue)
    # Each valid bid's stated price is kept at the opening; the unrevealed bid has none.
    assert _prices(venue, number) == {**PRICES, "BD-0004": None}
    bids = tables.sealed_bids
    with venue.trading.running.engine.begin() as connection:
        # BD-0001's envelope is spoilt after the opening: opened again, it would state no
        # price and go unranked; the ranking must not need it.
        envelopes = tables.sealed_bid_envelopes
        connection.execute(update(envelopes).where(
            (envelopes.c.tender_no == number) & (envelopes.c.bidder_id == "BD-0001"))
            .values(ciphertext=b"spoilt after the opening"))
        # BD-0002 as if opened before prices were recorded: the ranking opens it again.
        connection.execute(update(bids).where(
            (bids.c.tender_no == number) & (bids.c.bidder_id == "BD-0002"))
            .values(price_fen=None))

    members, _ = await venue.draw_committee(number)
    await venue.via().SeatEvaluationCommittee(pb.SeatEvaluationCommitteeRequest(
        request_id=str(uuid.uuid4()), tender_no=number), metadata=OFFICER)
    last: pb.SubmitScoreSheetResponse | None = None
    for bidder in ("BD-0001", "BD-0002", "BD-0003"):
        for index, member in enumerate(members):
            last = await venue.via(EXPERT_SYSTEMS[member]).SubmitScoreSheet(_sheet(
                number, member, bidder, TECHNICAL[bidder][index], BUSINESS[bidder]))
    assert last is not None
    assert list(last.candidate_bidder_ids) == ["BD-0001", "BD-0003", "BD-0002"]
    published = dict(await venue.feed(number))["tender.candidates"]
    assert [(r["bidder_id"], r["price_fen"], r["total"]) for r in published["ranking"]] == [
        ("BD-0001", 1_000_000, "83.00"), ("BD-0003", 1_250_000, "81.20"),
        ("BD-0002", 800_000, "76.00")]
    assert published["unpriced"] == []


async def test_the_committee_tallies_sum_the_members_sheets_and_count_the_others(
        venue: Venue) -> None:
    number = await _to_evaluation(venue)
    members = ("EX-0002", "EX-0003", "EX-0019")
    at = datetime.now(UTC)
    with TradingUnitOfWork(venue.trading.running.engine) as unit:
        for index, member in enumerate(members):
            for bidder in ("BD-0001", "BD-0002"):
                unit.evaluations.add_sheet(
                    number, member_id=member, bidder_id=bidder, compliant=index != 2,
                    technical=10 * index + (bidder == "BD-0002"), business=index, system="t",
                    at=at, statement={})
        assert unit.evaluations.committee_tallies(number, members) == ({
            "BD-0001": Tally(3, 2, 30, 3), "BD-0002": Tally(3, 2, 33, 3)}, 0)
        # Two sheets by someone off the committee: counted, whichever bid they score.
        for bidder in ("BD-0002", "BD-0003"):
            unit.evaluations.add_sheet(
                number, member_id="EX-0045", bidder_id=bidder, compliant=True, technical=0,
                business=0, system="t", at=at, statement={})
        tallies, others = unit.evaluations.committee_tallies(number, members)
        assert others == 2 == unit.evaluations.sheets_by_others(number, members)
        assert tallies == unit.evaluations.tallies(number)
        assert unit.evaluations.committee_tallies(number, (*members, "EX-0045"))[1] == 0
