"""A tender act retried after its answer was lost, once the tender moved on (attack s17
LOW 1): the servicer looks the request up after the caller's authority checks and before
the tender's state checks, so

- a bidder's objection sent again is answered from the record (its objection id, answer
  due and feed entry), not refused by the one-objection-per-stage rule; other grounds
  under its request id are ALREADY_EXISTS naming them;
- the award and the contract sent again after the contract (the tender finished, its
  workflow closed) are answered from the record; another contract number or amount under
  their request ids is ALREADY_EXISTS naming it, not "finished";
- a new request on the finished tender is still refused as finished.
On the real TenderWorkflow (test_tender_chain's venue).
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from govhall.trading.v1 import trading_pb2 as pb
from services.trading.db import tables
from tests.integration.trading.test_tender_chain import OFFICER, Venue, _until
from tests.integration.trading.test_tender_chain import venue as venue  # the fixture
from tests.support import SAMPLE_DIR

PRICES = {"0001": 490_000_000, "0002": 480_000_000, "0003": 470_000_000}


async def _refused(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value.code(), refused.value.details() or ""


async def test_a_bidders_objection_retried_is_answered_from_the_record(venue: Venue) -> None:
    tender = await venue.announce()
    number = tender.tender_no
    await _until(lambda: venue.feed(number), lambda f: len(f) == 1, "announcement published")
    objecting = venue.via("bidder-system-bd0004")
    request = pb.ObjectToTenderRequest(request_id=str(uuid.uuid4()), tender_no=number,
                                       target=pb.OBJECTION_TARGET_DOCUMENTS,
                                       grounds="评分标准排斥潜在投标人", bidder_id="BD-0004")
    first = await objecting.ObjectToTender(request)
    again = await objecting.ObjectToTender(request)
    other = pb.ObjectToTenderRequest()
    other.CopyFrom(request)
    other.grounds = "资格条件设置不合理"
    code, details = await _refused(objecting.ObjectToTender(other))
    # A new objection of the bidder to the same stage is still refused by the rule.
    fresh = pb.ObjectToTenderRequest()
    fresh.CopyFrom(other)
    fresh.request_id = str(uuid.uuid4())
    rule_code, rule_details = await _refused(objecting.ObjectToTender(fresh))

    assert (again.objection_id, again.answer_due, again.result.feed_sequence) == \
        (first.objection_id, first.answer_due, first.result.feed_sequence) == \
        ("OB-1", first.answer_due, first.result.feed_sequence)
    assert code == grpc.StatusCode.ALREADY_EXISTS, details
    assert "was used for a tender objection with other terms (content_sha256)" in details
    assert rule_code == grpc.StatusCode.FAILED_PRECONDITION
    assert "already (OB-1)" in rule_details
    with venue.trading.running.engine.connect() as connection:
        objected = list(connection.execute(select(tables.tender_steps).where(
            (tables.tender_steps.c.tender_no == number)
            & (tables.tender_steps.c.step == "objected"))))
    assert len(objected) == 1


async def _to_contract(venue: Venue) -> tuple[str, pb.AwardTenderRequest,
                                               pb.RecordContractRequest, int, int]:
    tender = await venue.announce()
    number = tender.tender_no
    await _until(lambda: venue.feed(number), lambda f: len(f) == 1, "announcement published")
    sealed = {n: await venue.bid(number, n, PRICES[n]) for n in PRICES}
    deadline = tender.bid_deadline.ToDatetime().replace(tzinfo=(
        await venue.env.get_current_time()).tzinfo)
    await venue.skip(deadline - await venue.env.get_current_time() + timedelta(minutes=1))
    await venue.until_stage(number, pb.TENDER_STAGE_DECRYPTION)
    for n in PRICES:
        await venue.reveal(number, n, sealed[n][1])
    await venue.skip(timedelta(hours=2, minutes=1))
    await venue.until_stage(number, pb.TENDER_STAGE_EVALUATION)
    await venue.draw_committee(number)
    members = await venue.seat(number)
    systems = {r["expert_id"]: r["system"] for r in json.loads(
        (SAMPLE_DIR / "trading.json").read_text("utf-8"))["expert_systems"]}
    for bidder in ("BD-0001", "BD-0002", "BD-0003"):
        for member in members:
            await venue.via(systems[member]).SubmitScoreSheet(pb.SubmitScoreSheetRequest(
                request_id=str(uuid.uuid4()), tender_no=number, member_id=member,
                bidder_id=bidder, compliant=True))
    await venue.until_stage(number, pb.TENDER_STAGE_CANDIDATES)
    await venue.skip(timedelta(days=3, minutes=1))
    award = pb.AwardTenderRequest(request_id=str(uuid.uuid4()), tender_no=number,
                                  winner_bidder_id="BD-0003", amount_fen=PRICES["0003"])
    awarded = (await venue.via().AwardTender(award, metadata=OFFICER)).result
    contract = pb.RecordContractRequest(request_id=str(uuid.uuid4()), tender_no=number,
                                        contract_no="HT-2026-001", amount_fen=PRICES["0003"])
    contracted = (await venue.via().RecordContract(contract, metadata=OFFICER)).result
    assert contracted.tender.stage == pb.TENDER_STAGE_CONTRACTED
    return number, award, contract, awarded.feed_sequence, contracted.feed_sequence


async def test_the_award_and_the_contract_retried_after_the_contract(venue: Venue) -> None:
    number, award, contract, award_seq, contract_seq = await _to_contract(venue)
    contract_again = await venue.via().RecordContract(contract, metadata=OFFICER)
    award_again = await venue.via().AwardTender(award, metadata=OFFICER)
    other_contract = pb.RecordContractRequest()
    other_contract.CopyFrom(contract)
    other_contract.contract_no = "HT-2026-002"
    contract_code, contract_details = await _refused(
        venue.via().RecordContract(other_contract, metadata=OFFICER))
    other_award = pb.AwardTenderRequest()
    other_award.CopyFrom(award)
    other_award.amount_fen = PRICES["0003"] + 1_000_000
    award_code, award_details = await _refused(
        venue.via().AwardTender(other_award, metadata=OFFICER))
    # A new request on the finished tender: refused as finished, as before.
    fresh = pb.RecordContractRequest()
    fresh.CopyFrom(other_contract)
    fresh.request_id = str(uuid.uuid4())
    fresh_code, fresh_details = await _refused(
        venue.via().RecordContract(fresh, metadata=OFFICER))

    assert contract_again.result.feed_sequence == contract_seq
    assert contract_again.result.tender.stage == pb.TENDER_STAGE_CONTRACTED
    assert award_again.result.feed_sequence == award_seq
    assert contract_code == grpc.StatusCode.ALREADY_EXISTS, contract_details
    assert "was used for a tender contract with other terms (contract_no)" in contract_details
    assert award_code == grpc.StatusCode.ALREADY_EXISTS, award_details
    assert "was used for a tender award with other terms (amount_fen)" in award_details
    assert fresh_code == grpc.StatusCode.FAILED_PRECONDITION
    assert "is finished (contracted)" in fresh_details
    feed = [kind for kind, _ in await venue.feed(number)]
    assert (feed.count("tender.awarded"), feed.count("tender.contracted")) == (1, 1)
