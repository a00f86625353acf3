"""The electronic evaluation over real gRPC, the real TenderWorkflow on a time-skipping
server and a real verifiable draw: from the decryption window's close to the candidates
published, the committee drawn without the parties' experts, each expert scoring through
its own system, and every wrong sheet refused with nothing changed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select
from temporalio.client import WorkflowUpdateFailedError

from govhall.trading.v1 import trading_pb2 as pb
from services.trading.db import tables
from services.trading.domain.sealed_bids import seal_bid
from tests.integration.trading.test_tender_chain import OFFICER, Venue, _stamp, _until
from tests.integration.trading.test_tender_chain import venue as venue  # the fixture
from tests.support import SAMPLE_DIR
from workflows import tender_contract as t
from workflows.approval_contract import SignedStatement

SAMPLE = json.loads((SAMPLE_DIR / "trading.json").read_text("utf-8"))
EXPERT_SYSTEMS = {r["expert_id"]: r["system"] for r in SAMPLE["expert_systems"]}
BIDDER_NAMES = sorted(b["name"] for b in SAMPLE["bidders"])
#: The tenderer of Venue.announce's project: 沈阳市教育局 (JYJ).
TENDERER = "沈阳市教育局"
PRICES = {"BD-0001": 1_000_000, "BD-0002": 800_000, "BD-0003": 1_250_000}
#: Per bid, the five members' technical scores (in seat order) and one business score:
#: the figures of tests/unit/trading/test_evaluation.py (weights 30/60/10) — BD-0001
#: 24 + 51 + 8 = 83, BD-0003 19.2 + 57 + 5 = 81.2, BD-0002 30 + 36 + 10 = 76.
TECHNICAL = {"BD-0001": [90, 80, 85, 95, 75], "BD-0002": [60, 70, 65, 55, 50],
             "BD-0003": [100, 95, 90, 100, 90]}
BUSINESS = {"BD-0001": 80, "BD-0002": 100, "BD-0003": 50}


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    code: grpc.StatusCode = refused.value.code()
    return code


async def _to_evaluation(venue: Venue) -> str:
    """A comprehensive-scoring tender with 4 bids, 3 revealed, past its window."""
    project = (await venue.via().RegisterProject(pb.RegisterProjectRequest(
        request_id=str(uuid.uuid4()), category=pb.TRADING_CATEGORY_CONSTRUCTION,
        title="浑南新区道路工程", estimated_value_fen=500_000_000,
        funding_source=pb.FUNDING_SOURCE_PUBLIC, department_code="JYJ"),
        metadata=OFFICER)).project
    now = await venue.env.get_current_time()
    number: str = (await venue.via().AnnounceTender(pb.AnnounceTenderRequest(
        request_id=str(uuid.uuid4()), project_no=project.project_no,
        bid_deadline=_stamp(now + timedelta(days=20, minutes=10)),
        evaluation_method=pb.EVALUATION_METHOD_COMPREHENSIVE,
        weights=pb.EvaluationWeights(price=30, technical=60, business=10)),
        metadata=OFFICER)).tender.tender_no
    keys = {}
    for n in ("0001", "0002", "0003", "0004"):
        bidder = f"BD-{n}"
        document = json.dumps({"price_fen": PRICES.get(bidder, 500_000)}).encode()
        sealed, keys[n] = seal_bid(document, tender_number=number, bidder_id=bidder)
        await venue.via(f"bidder-system-bd{n}").SubmitSealedBid(pb.SubmitSealedBidRequest(
            tender_no=number, bidder_id=bidder, ciphertext=sealed.envelope,
            ciphertext_sha256=sealed.ciphertext_sha256, key_commitment=sealed.key_commitment))
    await venue.skip(timedelta(days=20, minutes=11))
    await venue.until_stage(number, pb.TENDER_STAGE_DECRYPTION)
    for n in ("0001", "0002", "0003"):
        await venue.reveal(number, n, keys[n])
    await venue.skip(timedelta(hours=2, minutes=1))
    await venue.until_stage(number, pb.TENDER_STAGE_EVALUATION)
    return number


def _sheet(number: str, member: str, bidder: str, technical: int, business: int,
           compliant: bool = True) -> pb.SubmitScoreSheetRequest:
    return pb.SubmitScoreSheetRequest(
        request_id=str(uuid.uuid4()), tender_no=number, member_id=member, bidder_id=bidder,
        compliant=compliant, technical_score=technical, business_score=business)


def _sheets(venue: Venue) -> int:
    with venue.trading.running.engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).select_from(tables.tender_score_sheets)).scalar_one())


async def test_the_committee_is_drawn_seated_and_scores_to_published_candidates(
        venue: Venue) -> None:
    # An expert of the specialty employed by a bidder: the draw must leave it out.
    await venue.via().RegisterExpert(pb.RegisterExpertRequest(
        id="EX-0097", name="回避专家", specialties=["园林绿化"], employer=BIDDER_NAMES[0]),
        metadata=OFFICER)
    number = await _to_evaluation(venue)
    early = pb.SubmitScoreSheetRequest(request_id=str(uuid.uuid4()), tender_no=number,
                                       member_id="EX-0002", bidder_id="BD-0001",
                                       compliant=True, technical_score=1)
    assert await _code(venue.via("expert-system-ex0002").SubmitScoreSheet(early)) == \
        grpc.StatusCode.FAILED_PRECONDITION
    # The officer can no longer name the candidates: the committee evaluates.
    assert await _code(venue.via().SubmitEvaluation(pb.SubmitEvaluationRequest(
        request_id=str(uuid.uuid4()), tender_no=number, candidate_bidder_ids=["BD-0001"]),
        metadata=OFFICER)) == grpc.StatusCode.FAILED_PRECONDITION

    members, opened = await venue.draw_committee(number)
    # The conflicted employers are the tenderer and every bidder, computed by trading.
    assert list(opened.conflicted_employers) == sorted([TENDERER, *BIDDER_NAMES])
    assert opened.experts == 5
    assert "EX-0097" not in opened.draw.candidates
    assert set(opened.draw.candidates) <= set(EXPERT_SYSTEMS)
    assert len(members) == 5

    seated = await venue.via().SeatEvaluationCommittee(pb.SeatEvaluationCommitteeRequest(
        request_id=str(uuid.uuid4()), tender_no=number), metadata=OFFICER)
    assert list(seated.member_ids) == members
    again = await _code(venue.via().SeatEvaluationCommittee(pb.SeatEvaluationCommitteeRequest(
        request_id=str(uuid.uuid4()), tender_no=number), metadata=OFFICER))
    assert again == grpc.StatusCode.ALREADY_EXISTS

    first, second = members[0], members[1]
    outsider = next(e for e in EXPERT_SYSTEMS if e not in members)
    refusals = [
        # Another expert's system, speaking for the first member.
        (EXPERT_SYSTEMS[second], _sheet(number, first, "BD-0001", 90, 80),
         grpc.StatusCode.PERMISSION_DENIED),
        # The trading platform cannot score for an expert either.
        ("trading-platform", _sheet(number, first, "BD-0001", 90, 80),
         grpc.StatusCode.PERMISSION_DENIED),
        # An expert of the pool with its own system, not on the committee.
        (EXPERT_SYSTEMS[outsider], _sheet(number, outsider, "BD-0001", 90, 80),
         grpc.StatusCode.PERMISSION_DENIED),
        # Out of range.
        (EXPERT_SYSTEMS[first], _sheet(number, first, "BD-0001", 101, 80),
         grpc.StatusCode.INVALID_ARGUMENT),
        (EXPERT_SYSTEMS[first], _sheet(number, first, "BD-0001", 90, -1),
         grpc.StatusCode.INVALID_ARGUMENT),
        # An invalid (unrevealed) bid.
        (EXPERT_SYSTEMS[first], _sheet(number, first, "BD-0004", 90, 80),
         grpc.StatusCode.FAILED_PRECONDITION),
    ]
    for system, request, code in refusals:
        assert await _code(venue.via(system).SubmitScoreSheet(request)) == code, request
    assert _sheets(venue) == 0

    last: pb.SubmitScoreSheetResponse | None = None
    for bidder in ("BD-0001", "BD-0002", "BD-0003"):
        for index, member in enumerate(members):
            last = await venue.via(EXPERT_SYSTEMS[member]).SubmitScoreSheet(_sheet(
                number, member, bidder, TECHNICAL[bidder][index], BUSINESS[bidder]))
            if (bidder, index) == ("BD-0001", 0):
                # One sheet per member and bid, never replaced.
                assert await _code(venue.via(EXPERT_SYSTEMS[member]).SubmitScoreSheet(
                    _sheet(number, member, bidder, 10, 10))) == grpc.StatusCode.ALREADY_EXISTS
                assert _sheets(venue) == 1
    assert last is not None
    assert list(last.candidate_bidder_ids) == ["BD-0001", "BD-0003", "BD-0002"]
    assert last.result.tender.stage == pb.TENDER_STAGE_CANDIDATES

    feed = dict(await venue.feed(number))
    committee = feed["tender.committee"]
    assert committee["members"] == members and committee["method"] == "comprehensive"
    published = feed["tender.candidates"]
    assert published["candidates"] == ["BD-0001", "BD-0003", "BD-0002"]
    assert [(r["bidder_id"], r["price_points"], r["technical_points"],
             r["business_points"], r["total"]) for r in published["ranking"]] == [
        ("BD-0001", "24.00", "51.00", "8.00", "83.00"),
        ("BD-0003", "19.20", "57.00", "5.00", "81.20"),
        ("BD-0002", "30.00", "36.00", "10.00", "76.00")]
    assert published["weights"] == {"price": 30, "technical": 60, "business": 10}
    # Then the existing publication period: no award before 3 days.
    assert await _code(venue.via().AwardTender(pb.AwardTenderRequest(
        request_id=str(uuid.uuid4()), tender_no=number, winner_bidder_id="BD-0001",
        amount_fen=1_000_000), metadata=OFFICER)) == grpc.StatusCode.FAILED_PRECONDITION
    await venue.skip(timedelta(days=3, minutes=1))
    awarded = await venue.via().AwardTender(pb.AwardTenderRequest(
        request_id=str(uuid.uuid4()), tender_no=number, winner_bidder_id="BD-0001",
        amount_fen=1_000_000), metadata=OFFICER)
    assert awarded.result.tender.stage == pb.TENDER_STAGE_AWARDED


async def test_a_forged_score_sheet_sent_to_temporal_is_refused_and_recorded_nowhere(
        venue: Venue) -> None:
    number = await _to_evaluation(venue)
    members, _ = await venue.draw_committee(number)
    await venue.via().SeatEvaluationCommittee(pb.SeatEvaluationCommitteeRequest(
        request_id=str(uuid.uuid4()), tender_no=number), metadata=OFFICER)
    handle = venue.env.client.get_workflow_handle(t.workflow_id(number))
    forged = t.OfficialAct(SignedStatement(
        t.tender_statement_body(kind=t.StatementKind.SCORE_SHEET, tender_no=number,
                                official_id=members[0], department_code="committee",
                                roles=[], system=EXPERT_SYSTEMS[members[0]],
                                issued_at=datetime.now(UTC), member_id=members[0],
                                bidder_id="BD-0001", compliant=True, technical=100,
                                business=100),
        "trading", "0" * 16, "AAAA"))
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(t.SCORE, forged)
    assert _sheets(venue) == 0
    with venue.trading.running.engine.connect() as connection:
        steps = connection.execute(select(tables.tender_steps.c.step).where(
            tables.tender_steps.c.tender_no == number)).scalars().all()
    assert "scored" not in steps
    await _until(lambda: venue.tender(number), lambda x: x.stage == pb.TENDER_STAGE_EVALUATION,
                 "still at evaluation")
