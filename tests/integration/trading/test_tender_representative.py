"""A committee with the tenderer's representative, over real gRPC and the real
TenderWorkflow: the representative (JYJ-003, a reviewer of the tenderer 沈阳市教育局) is
seated after the drawn experts, and its score sheets are taken from the tenderer's system
(``tenderer-system-jyj`` in deploy/sample/systems.json, which speaks for JYJ's reviewers)
naming it, and from no expert's system."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta

import grpc
from sqlalchemy import select

from govhall.trading.v1 import trading_pb2 as pb
from kernel.signing import Signed, TrustedKeys, public_keys_dir
from services.trading.db import tables
from tests.integration.trading.test_tender_chain import OFFICER, Venue, _stamp
from tests.integration.trading.test_tender_chain import venue as venue  # the fixture
from tests.integration.trading.test_tender_evaluation import (
    BUSINESS,
    EXPERT_SYSTEMS,
    _code,
    _sheet,
    _sheets,
    _to_evaluation,
)
from tests.support import as_official

REPRESENTATIVE = "JYJ-003"
TENDERER_SYSTEM = "tenderer-system-jyj"


async def _draw_with_a_representative(venue: Venue, number: str) -> list[str]:
    """A committee of 5: 4 experts drawn (opened, committed and revealed by its witnesses)
    and the tenderer's representative; the experts drawn."""
    draw_id = "DR-2026-0001"
    now = datetime.now(UTC)
    opened = await venue.via().DrawEvaluationCommittee(pb.DrawEvaluationCommitteeRequest(
        tender_no=number, draw_id=draw_id, specialties=["园林绿化"], committee_size=5,
        representative_ids=[REPRESENTATIVE], witness_ids=["ZWFWZX-008", "JJZ-001"],
        commit_deadline=_stamp(now + timedelta(hours=1)),
        reveal_deadline=_stamp(now + timedelta(hours=2))), metadata=OFFICER)
    assert opened.experts == 4
    seeds = {"ZWFWZX-008": os.urandom(32), "JJZ-001": os.urandom(32)}
    system = {"ZWFWZX-008": "trading-platform", "JJZ-001": "supervision-system"}
    for witness, seed in seeds.items():
        await venue.via(system[witness]).CommitSeed(pb.CommitSeedRequest(
            draw_id=draw_id, commitment=hashlib.sha256(seed).hexdigest()),
            metadata=as_official(witness))
    drawn = None
    for witness, seed in seeds.items():
        drawn = (await venue.via(system[witness]).RevealSeed(pb.RevealSeedRequest(
            draw_id=draw_id, seed=seed.hex()), metadata=as_official(witness))).draw
    assert drawn is not None and drawn.state == pb.DRAW_STATE_DRAWN
    return list(drawn.drawn)


async def test_a_representative_is_seated_and_scores_from_the_tenderers_system_only(
        venue: Venue) -> None:
    number = await _to_evaluation(venue)
    experts = await _draw_with_a_representative(venue, number)
    seated = await venue.via().SeatEvaluationCommittee(pb.SeatEvaluationCommitteeRequest(
        request_id=str(uuid.uuid4()), tender_no=number), metadata=OFFICER)
    assert list(seated.member_ids) == [*experts, REPRESENTATIVE]

    first = experts[0]
    mine = _sheet(number, REPRESENTATIVE, "BD-0001", 70, 80)
    refusals = [
        # An expert's system, naming the representative or not.
        (EXPERT_SYSTEMS[first], as_official(REPRESENTATIVE), mine),
        (EXPERT_SYSTEMS[first], (), mine),
        # The tenderer's system without naming the representative, or naming another of
        # the tenderer's reviewers (not on the committee).
        (TENDERER_SYSTEM, (), mine),
        (TENDERER_SYSTEM, as_official("JYJ-004"), mine),
        # The tenderer's system for an expert of the committee.
        (TENDERER_SYSTEM, as_official(REPRESENTATIVE),
         _sheet(number, first, "BD-0001", 70, 80)),
        # The trading platform for the representative.
        ("trading-platform", as_official(REPRESENTATIVE), mine),
    ]
    for system, metadata, request in refusals:
        assert await _code(venue.via(system).SubmitScoreSheet(
            request, metadata=metadata)) == grpc.StatusCode.PERMISSION_DENIED, system
    assert _sheets(venue) == 0

    taken = await venue.via(TENDERER_SYSTEM).SubmitScoreSheet(
        mine, metadata=as_official(REPRESENTATIVE))
    assert taken.result.tender.stage == pb.TENDER_STAGE_EVALUATION
    with venue.trading.running.engine.connect() as connection:
        sheet = connection.execute(select(tables.tender_score_sheets).where(
            tables.tender_score_sheets.c.member_id == REPRESENTATIVE)).one()
    assert (sheet.bidder_id, sheet.system, sheet.technical) == ("BD-0001", TENDERER_SYSTEM, 70)
    # The statement the sheet was recorded from is trading's, naming the tenderer's system.
    body = TrustedKeys.load(public_keys_dir(venue.trading.pki_dir)).verify(
        Signed.from_dict(json.loads(sheet.statement)), signer="trading")
    assert (body["member_id"], body["system"]) == (REPRESENTATIVE, TENDERER_SYSTEM)

    # The rest of the committee's sheets: the representative's count as a member's.
    last: pb.SubmitScoreSheetResponse | None = None
    for bidder in ("BD-0001", "BD-0002", "BD-0003"):
        for member in [*experts, REPRESENTATIVE]:
            if (member, bidder) == (REPRESENTATIVE, "BD-0001"):
                continue
            if member == REPRESENTATIVE:
                last = await venue.via(TENDERER_SYSTEM).SubmitScoreSheet(
                    _sheet(number, member, bidder, 70, BUSINESS[bidder]),
                    metadata=as_official(REPRESENTATIVE))
            else:
                last = await venue.via(EXPERT_SYSTEMS[member]).SubmitScoreSheet(
                    _sheet(number, member, bidder, 80, BUSINESS[bidder]))
    assert last is not None
    assert last.result.tender.stage == pb.TENDER_STAGE_CANDIDATES
    feed = dict(await venue.feed(number))
    assert feed["tender.committee"]["members"] == [*experts, REPRESENTATIVE]
