"""The committee's seating and the score sheets, retried after a lost answer: the same
system's same request (the same content) is answered as the first call was, from the
record, even once the evaluation closed; the same request id from another system, or with
other content, is refused as any second act is, and nothing changes.

Over real gRPC, the real TenderWorkflow on a time-skipping server and a real draw.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select

from govhall.trading.v1 import trading_pb2 as pb
from services.trading.db import tables
from tests.integration.trading.test_tender_chain import OFFICER, Venue
from tests.integration.trading.test_tender_chain import venue as venue  # the fixture
from tests.integration.trading.test_tender_evaluation import (
    BUSINESS,
    EXPERT_SYSTEMS,
    TECHNICAL,
    _sheet,
    _to_evaluation,
)


async def _refused(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value.code(), refused.value.details() or ""


def _recorded(venue: Venue, tender_no: str) -> tuple[int, ...]:
    """What a retry or a refused act must leave as it was: the tender's steps, its
    sheets, the feed and the audit log."""
    with venue.trading.running.engine.connect() as connection:
        def count(table: Any, *where: Any) -> int:
            return int(connection.execute(
                select(func.count()).select_from(table).where(*where)).scalar_one())
        return (count(tables.tender_steps, tables.tender_steps.c.tender_no == tender_no),
                count(tables.tender_score_sheets), count(tables.feed_entries),
                count(tables.audit_log))


async def test_a_seating_and_a_sheet_retried_are_answered_as_the_first_call(
        venue: Venue) -> None:
    number = await _to_evaluation(venue)
    members, _ = await venue.draw_committee(number)
    seat = pb.SeatEvaluationCommitteeRequest(request_id=str(uuid.uuid4()), tender_no=number)
    seated = await venue.via().SeatEvaluationCommittee(seat, metadata=OFFICER)
    before = _recorded(venue, number)
    again = await venue.via().SeatEvaluationCommittee(seat, metadata=OFFICER)
    assert list(again.member_ids) == list(seated.member_ids) == members
    assert again.result.feed_sequence == seated.result.feed_sequence != 0
    # Another system's same request id is another request: the committee is seated.
    assert (await _refused(venue.via("operator").SeatEvaluationCommittee(
        seat, metadata=OFFICER)))[0] == grpc.StatusCode.ALREADY_EXISTS
    assert _recorded(venue, number) == before

    first, last = members[0], members[-1]
    sheets = {(bidder, member): _sheet(number, member, bidder, TECHNICAL[bidder][index],
                                       BUSINESS[bidder])
              for bidder in ("BD-0001", "BD-0002", "BD-0003")
              for index, member in enumerate(members)}
    answers = {key: await venue.via(EXPERT_SYSTEMS[key[1]]).SubmitScoreSheet(request)
               for key, request in sheets.items()}
    before = _recorded(venue, number)

    # The first sheet again, after the evaluation closed: answered as it was (no feed
    # entry, no candidates), nothing recorded twice.
    early = sheets[("BD-0001", first)]
    retried = await venue.via(EXPERT_SYSTEMS[first]).SubmitScoreSheet(early)
    assert retried.result.feed_sequence == answers[("BD-0001", first)].result.feed_sequence == 0
    assert list(retried.candidate_bidder_ids) == []
    # The last sheet again: its candidates again, and the entry that published them.
    closing = answers[("BD-0003", last)]
    assert list(closing.candidate_bidder_ids) == ["BD-0001", "BD-0003", "BD-0002"]
    retried = await venue.via(EXPERT_SYSTEMS[last]).SubmitScoreSheet(sheets[("BD-0003", last)])
    assert retried.result.feed_sequence == closing.result.feed_sequence != 0
    assert list(retried.candidate_bidder_ids) == list(closing.candidate_bidder_ids)
    assert retried.result.tender.stage == pb.TENDER_STAGE_CANDIDATES

    # The same request id with other scores: refused, naming what differs.
    changed = pb.SubmitScoreSheetRequest()
    changed.CopyFrom(early)
    changed.technical_score = early.technical_score - 10
    code, details = await _refused(venue.via(EXPERT_SYSTEMS[first]).SubmitScoreSheet(changed))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert f"request id {early.request_id} was used for a score sheet with other terms " \
        "(technical)" in details
    # The same request id about another bid: another sheet's request.
    other_bid = pb.SubmitScoreSheetRequest()
    other_bid.CopyFrom(early)
    other_bid.bidder_id = "BD-0002"
    code, details = await _refused(venue.via(EXPERT_SYSTEMS[first]).SubmitScoreSheet(
        other_bid))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert "was used for another score sheet" in details
    # Another system's same request: not the member's voice.
    assert (await _refused(venue.via(EXPERT_SYSTEMS[last]).SubmitScoreSheet(early)))[0] == \
        grpc.StatusCode.PERMISSION_DENIED
    assert _recorded(venue, number) == before
