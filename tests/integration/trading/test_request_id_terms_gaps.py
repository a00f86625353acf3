"""Gap tests (s16 test read): the request-id terms test_project_and_tender_request_ids and
test_evaluation_retries never vary, so that ignoring them passed every test (mutations
m08, m10-m12, m17-m18 of the s16 test read).

A tender announced with every term set (documents until, comprehensive scoring, weights)
is answered again to the same request (so each term compares equal to the one its
statement holds), and a reuse of its request id changing one of those terms is
ALREADY_EXISTS naming that term; a direct award's request id with another supplier is too;
a score sheet's with another business score or another compliance, too.

Over real gRPC (tenders with Temporal out of reach, as test_tenders_api; score sheets on
the real TenderWorkflow, as test_tender_chain).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from sqlalchemy import func, select

from govhall.trading.v1 import trading_pb2 as pb
from services.trading.db import tables
from tests.integration.trading.test_project_and_tender_request_ids import (
    OPERATOR,
    PLATFORM,
    _refused,
    _register,
    _registration,
    _state,
)
from tests.integration.trading.test_tender_chain import OFFICER as VENUE_OFFICER
from tests.integration.trading.test_tender_chain import Venue
from tests.integration.trading.test_tender_chain import venue as venue  # the fixture
from tests.integration.trading.test_tender_evaluation import (
    BUSINESS,
    EXPERT_SYSTEMS,
    TECHNICAL,
    _sheet,
    _to_evaluation,
)
from tests.integration.trading.test_tenders_api import (
    OFFICER,
    PROCUREMENT,
    SUPPLIER,
    Calls,
    _project,
)
from tests.integration.trading.test_tenders_api import calls as calls  # the fixture
from tests.integration.trading.test_tenders_api import trading as trading  # the fixture
from tests.support import ServiceUnderTest


def _announcement(request_id: str, project_no: str, deadline: datetime, *,
                  documents_until: datetime | None = None,
                  method: pb.EvaluationMethod.ValueType = pb.EVALUATION_METHOD_COMPREHENSIVE,
                  weights: tuple[int, int, int] | None = (30, 60, 10),
                  ) -> pb.AnnounceTenderRequest:
    request = pb.AnnounceTenderRequest(request_id=request_id, project_no=project_no,
                                       evaluation_method=method)
    request.bid_deadline.FromDatetime(deadline)
    if documents_until is not None:
        request.documents_until.FromDatetime(documents_until)
    if weights is not None:
        price, technical, business = weights
        request.weights.CopyFrom(pb.EvaluationWeights(price=price, technical=technical,
                                                      business=business))
    return request


async def _each_other_term_refused(calls: Calls, trading: ServiceUnderTest, project_no: str,
                                   variants: list[tuple[dict[str, Any], str]],
                                   **terms: Any) -> None:
    """Announced with ``terms``, answered again to the same request; each variant (terms
    changed) refused ALREADY_EXISTS naming the terms it changed, nothing written."""
    shared = str(uuid.uuid4())
    deadline = datetime.now(UTC) + timedelta(days=21)

    def announce(**changes: Any) -> Any:
        return calls.via(PLATFORM).AnnounceTender(_announcement(
            shared, project_no, deadline, **(terms | changes)), metadata=OFFICER)

    first = (await announce()).tender
    again = (await announce()).tender
    assert again.tender_no == first.tender_no
    before = _state(trading)
    for changes, named in variants:
        code, details = await _refused(announce(**changes))
        assert code == grpc.StatusCode.ALREADY_EXISTS, (changes, details)
        assert f"with other terms ({named})" in details, (changes, details)
    assert _state(trading) == before


async def test_a_tender_s_request_id_compares_its_method_and_weights(
        calls: Calls, trading: ServiceUnderTest) -> None:
    project = await _register(calls.via, PLATFORM, _registration(str(uuid.uuid4())))
    await _each_other_term_refused(calls, trading, project.project_no, [
        ({"weights": (40, 50, 10)}, "weights"),
        ({"method": pb.EVALUATION_METHOD_LOWEST_PRICE, "weights": None},
         "evaluation_method, weights")])


async def test_a_procurement_tender_s_request_id_compares_its_documents_until(
        calls: Calls, trading: ServiceUnderTest) -> None:
    """(Procurement, the only tenders with a documents-until instant: its announcement
    counts working days from today, as test_tenders_api's procurement test does, so both
    need the calendar of the year 7 working days after today + 15 days.)"""
    project = await _project(calls, PROCUREMENT, 500_000_000)
    until = datetime.now(UTC) + timedelta(days=15)
    await _each_other_term_refused(calls, trading, project.project_no, [
        ({"documents_until": until + timedelta(days=1)}, "documents_until")],
        documents_until=until)


async def test_a_direct_award_s_request_id_compares_its_supplier(
        calls: Calls, trading: ServiceUnderTest) -> None:
    project = await _register(calls.via, PLATFORM, _registration(str(uuid.uuid4()),
                                                                 value=50_000_000))
    shared = str(uuid.uuid4())

    def award(supplier: str) -> Any:
        return calls.via(PLATFORM).RecordDirectAward(pb.RecordDirectAwardRequest(
            request_id=shared, project_no=project.project_no, supplier_code=supplier,
            amount_fen=40_000_000), metadata=OFFICER)

    await award(SUPPLIER)
    code, details = await _refused(award("91210100MA0YYYYY2B"))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert "with other terms (supplier_code)" in details


async def test_a_score_sheet_s_request_id_compares_its_business_score_and_compliance(
        venue: Venue) -> None:
    number = await _to_evaluation(venue)
    members, _ = await venue.draw_committee(number)
    await venue.via().SeatEvaluationCommittee(pb.SeatEvaluationCommitteeRequest(
        request_id=str(uuid.uuid4()), tender_no=number), metadata=VENUE_OFFICER)
    member = members[0]
    sheet = _sheet(number, member, "BD-0001", TECHNICAL["BD-0001"][0], BUSINESS["BD-0001"])
    expert = venue.via(EXPERT_SYSTEMS[member])
    await expert.SubmitScoreSheet(sheet)
    for field, value, named in [("business_score", sheet.business_score - 1, "business"),
                                ("compliant", False, "compliant")]:
        changed = pb.SubmitScoreSheetRequest()
        changed.CopyFrom(sheet)
        setattr(changed, field, value)
        code, details = await _refused(expert.SubmitScoreSheet(changed))
        assert code == grpc.StatusCode.ALREADY_EXISTS, (field, details)
        assert f"with other terms ({named})" in details, (field, details)



async def test_concurrent_retries_of_a_direct_award_make_one_award(
        calls: Calls, trading: ServiceUnderTest) -> None:
    """(No test raced a direct award: its IntegrityError path, PostgreSQL's, could be
    dropped with every test passing, mutation m30.) Three projects, each award raced.

    On PostgreSQL a retry may find the project awarded by its own first call, committed
    meanwhile: the re-check by request id answers it (as announce_tender does), where it
    was ALREADY_EXISTS "has a direct award already" before.
    """
    for _ in range(3):
        project = await _register(calls.via, PLATFORM, _registration(str(uuid.uuid4()),
                                                                     value=50_000_000))
        award = pb.RecordDirectAwardRequest(
            request_id=str(uuid.uuid4()), project_no=project.project_no,
            supplier_code=SUPPLIER, amount_fen=40_000_000)
        answers = await asyncio.gather(*(calls.via(PLATFORM).RecordDirectAward(
            award, metadata=OFFICER) for _ in range(8)))
        assert len({a.recorded_at.ToDatetime() for a in answers}) == 1
        with trading.running.engine.connect() as connection:
            awards = tables.direct_awards
            assert connection.execute(select(func.count()).select_from(awards).where(
                awards.c.project_no == project.project_no)).scalar_one() == 1


async def test_a_retry_answered_from_the_record_writes_nothing(
        calls: Calls, trading: ServiceUnderTest) -> None:
    """(test_project_and_tender_request_ids takes its "before" after the retry, so a retry
    that wrote again, a second audit entry, passed it: mutations m31, m32.) A registration,
    an announcement and a direct award, each sent again: not an audit entry, not a row."""

    def written() -> tuple[int, ...]:
        with trading.running.engine.connect() as connection:
            awards = connection.execute(select(func.count()).select_from(
                tables.direct_awards)).scalar_one()
        return (*_state(trading), int(awards))

    registration = _registration(str(uuid.uuid4()))
    project = await _register(calls.via, PLATFORM, registration)
    before = written()
    await _register(calls.via, PLATFORM, registration)
    assert written() == before

    announcement = _announcement(str(uuid.uuid4()), project.project_no,
                                 datetime.now(UTC) + timedelta(days=21))
    await calls.via(PLATFORM).AnnounceTender(announcement, metadata=OFFICER)
    before = written()
    await calls.via(PLATFORM).AnnounceTender(announcement, metadata=OFFICER)
    assert written() == before

    small = await _register(calls.via, PLATFORM, _registration(str(uuid.uuid4()),
                                                               value=50_000_000))
    award = pb.RecordDirectAwardRequest(request_id=str(uuid.uuid4()),
                                        project_no=small.project_no,
                                        supplier_code=SUPPLIER,
                                        amount_fen=40_000_000)
    await calls.via(PLATFORM).RecordDirectAward(award, metadata=OFFICER)
    before = written()
    await calls.via(PLATFORM).RecordDirectAward(award, metadata=OFFICER)
    assert written() == before


async def test_another_system_racing_a_registration_s_request_id_is_refused(
        calls: Calls, trading: ServiceUnderTest) -> None:
    """(Only one system's retries were raced: the race path answering the first one's
    project to anyone, unchecked, passed every test, mutation m06.) Two systems send one
    request id at once, five times over: one registers, the other is ALREADY_EXISTS."""
    for _ in range(5):
        registration = _registration(str(uuid.uuid4()))
        answers = await asyncio.gather(
            *(calls.via(system).RegisterProject(registration, metadata=OFFICER)
              for system in (PLATFORM, OPERATOR) for _ in range(3)),
            return_exceptions=True)
        refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
        registered = {a.project.project_no for a in answers
                      if not isinstance(a, BaseException)}
        assert len(registered) == 1, answers
        assert len(refused) == 3, answers
        assert {r.code() for r in refused} == {grpc.StatusCode.ALREADY_EXISTS}, answers


async def test_another_system_racing_an_announcement_s_request_id_is_refused(
        calls: Calls, trading: ServiceUnderTest) -> None:
    """(As above, for AnnounceTender's two race paths: its re-check by request id and its
    IntegrityError path.) One request id from two systems at once: one tender, the other
    system refused ALREADY_EXISTS."""
    for _ in range(5):
        project = await _register(calls.via, PLATFORM, _registration(str(uuid.uuid4())))
        announcement = _announcement(str(uuid.uuid4()), project.project_no,
                                     datetime.now(UTC) + timedelta(days=21))
        answers = await asyncio.gather(
            *(calls.via(system).AnnounceTender(announcement, metadata=OFFICER)
              for system in (PLATFORM, OPERATOR) for _ in range(3)),
            return_exceptions=True)
        refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
        announced = {a.tender.tender_no for a in answers
                     if not isinstance(a, BaseException)}
        assert len(announced) == 1, answers
        assert len(refused) == 3, answers
        assert {r.code() for r in refused} == {grpc.StatusCode.ALREADY_EXISTS}, answers
