"""A project's registration and a tender's announcement: their request id answers only
that request again (the same calling system, the same subject, the same terms); another
system's reuse of the id, another subject's, or other terms are ALREADY_EXISTS and change
nothing; concurrent retries of one request make one record.

Over real gRPC, with Temporal out of reach (an announced tender stays an outbox entry).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select

from govhall.trading.v1 import trading_pb2 as pb
from services.trading.db import tables
from tests.integration.trading.test_tenders_api import OFFICER, SUPPLIER, Calls
from tests.integration.trading.test_tenders_api import calls as calls  # the fixture
from tests.integration.trading.test_tenders_api import trading as trading  # the fixture
from tests.support import ServiceUnderTest

PLATFORM, OPERATOR = "trading-platform", "operator"


@pytest.fixture
def via(calls: Calls) -> Any:
    return calls.via


def _state(service: ServiceUnderTest) -> tuple[int, ...]:
    """The rows a refused request must leave as they were."""
    with service.running.engine.connect() as connection:
        return tuple(int(connection.execute(select(func.count()).select_from(t)).scalar_one())
                     for t in (tables.audit_log, tables.projects, tables.tenders,
                               tables.sequences))


def _registration(request_id: str, *, title: str = "道路工程", department: str = "JYJ",
                  value: int = 500_000_000) -> pb.RegisterProjectRequest:
    return pb.RegisterProjectRequest(
        request_id=request_id, category=pb.TRADING_CATEGORY_CONSTRUCTION, title=title,
        estimated_value_fen=value, funding_source=pb.FUNDING_SOURCE_PUBLIC,
        department_code=department)


async def _register(via: Any, system: str, request: pb.RegisterProjectRequest) -> pb.Project:
    response = await via(system).RegisterProject(request, metadata=OFFICER)
    project: pb.Project = response.project
    return project


async def _refused(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value.code(), refused.value.details() or ""


def _all_refused(what: str, request_id: str, *, other_system: tuple[grpc.StatusCode, str],
                 other_subject: tuple[grpc.StatusCode, str],
                 other_terms: tuple[grpc.StatusCode, str], terms: str) -> None:
    """Each reuse of ``request_id`` refused ALREADY_EXISTS, saying why."""
    assert other_system == (grpc.StatusCode.ALREADY_EXISTS,
                            f"request id {request_id} was used for another {what}: a new "
                            "request takes a new request id")
    assert other_subject[0] == grpc.StatusCode.ALREADY_EXISTS
    assert f"used for another {what}" in other_subject[1]
    assert other_terms[0] == grpc.StatusCode.ALREADY_EXISTS
    assert f"with other terms ({terms})" in other_terms[1]


async def test_a_project_s_request_id_answers_only_its_own_request(
        via: Any, trading: ServiceUnderTest) -> None:
    shared = str(uuid.uuid4())
    first = await _register(via, PLATFORM, _registration(shared))
    again = await _register(via, PLATFORM, _registration(shared))
    before = _state(trading)
    other_system = await _refused(_register(via, OPERATOR, _registration(shared)))
    other_subject = await _refused(_register(via, PLATFORM,
                                             _registration(shared, department="FGW")))
    other_terms = await _refused(_register(via, PLATFORM,
                                           _registration(shared, title="桥梁工程",
                                                         value=600_000_000)))

    assert again.project_no == first.project_no
    _all_refused("project", shared, other_system=other_system, other_subject=other_subject,
                 other_terms=other_terms, terms="estimated_value_fen, title")
    assert _state(trading) == before


async def test_concurrent_retries_of_a_registration_make_one_project(
        via: Any, trading: ServiceUnderTest) -> None:
    request = _registration(str(uuid.uuid4()))
    before = _state(trading)
    answers = await asyncio.gather(*(_register(via, PLATFORM, request) for _ in range(8)))
    assert len({a.project_no for a in answers}) == 1
    assert _state(trading)[1] == before[1] + 1


def _announcement(request_id: str, project_no: str, deadline: datetime, *,
                  window_minutes: int = 0) -> pb.AnnounceTenderRequest:
    request = pb.AnnounceTenderRequest(request_id=request_id, project_no=project_no,
                                       decryption_window_minutes=window_minutes)
    request.bid_deadline.FromDatetime(deadline)
    return request


async def _announce(via: Any, system: str, request: pb.AnnounceTenderRequest) -> pb.Tender:
    response = await via(system).AnnounceTender(request, metadata=OFFICER)
    tender: pb.Tender = response.tender
    return tender


async def test_a_tender_s_request_id_answers_only_its_own_request(
        via: Any, trading: ServiceUnderTest) -> None:
    project = await _register(via, PLATFORM, _registration(str(uuid.uuid4())))
    other_project = await _register(via, PLATFORM, _registration(str(uuid.uuid4())))
    shared = str(uuid.uuid4())
    deadline = datetime.now(UTC) + timedelta(days=21)
    first = await _announce(via, PLATFORM, _announcement(shared, project.project_no, deadline))
    again = await _announce(via, PLATFORM, _announcement(shared, project.project_no, deadline))
    before = _state(trading)
    other_system = await _refused(_announce(
        via, OPERATOR, _announcement(shared, project.project_no, deadline)))
    other_subject = await _refused(_announce(
        via, PLATFORM, _announcement(shared, other_project.project_no, deadline)))
    other_terms = await _refused(_announce(
        via, PLATFORM, _announcement(shared, project.project_no,
                                     deadline + timedelta(days=1), window_minutes=90)))

    assert again.tender_no == first.tender_no
    _all_refused("tender", shared, other_system=other_system, other_subject=other_subject,
                 other_terms=other_terms, terms="bid_deadline, decryption_window_seconds")
    assert _state(trading) == before
    # The other project was not tendered by the refused reuse: it is announced as usual.
    tendered = await _announce(via, PLATFORM, _announcement(
        str(uuid.uuid4()), other_project.project_no, deadline))
    assert tendered.project_no == other_project.project_no


async def test_concurrent_retries_of_an_announcement_make_one_tender(
        via: Any, trading: ServiceUnderTest) -> None:
    project = await _register(via, PLATFORM, _registration(str(uuid.uuid4())))
    request = _announcement(str(uuid.uuid4()), project.project_no,
                            datetime.now(UTC) + timedelta(days=21))
    answers = await asyncio.gather(*(_announce(via, PLATFORM, request) for _ in range(8)))
    assert len({a.tender_no for a in answers}) == 1
    assert _state(trading)[2] == 1


def _award(request_id: str, project_no: str, amount: int) -> pb.RecordDirectAwardRequest:
    return pb.RecordDirectAwardRequest(request_id=request_id, project_no=project_no,
                                       supplier_code=SUPPLIER, amount_fen=amount)


async def test_a_direct_award_s_request_id_answers_only_its_own_request(
        via: Any, trading: ServiceUnderTest) -> None:
    project = await _register(via, PLATFORM, _registration(str(uuid.uuid4()),
                                                           value=50_000_000))
    other = await _register(via, PLATFORM, _registration(str(uuid.uuid4()), value=50_000_000))
    shared = str(uuid.uuid4())
    first = await via(PLATFORM).RecordDirectAward(
        _award(shared, project.project_no, 40_000_000), metadata=OFFICER)
    again = await via(PLATFORM).RecordDirectAward(
        _award(shared, project.project_no, 40_000_000), metadata=OFFICER)
    before = _state(trading)
    other_system = await _refused(via(OPERATOR).RecordDirectAward(
        _award(shared, project.project_no, 40_000_000), metadata=OFFICER))
    other_subject = await _refused(via(PLATFORM).RecordDirectAward(
        _award(shared, other.project_no, 40_000_000), metadata=OFFICER))
    other_terms = await _refused(via(PLATFORM).RecordDirectAward(
        _award(shared, project.project_no, 30_000_000), metadata=OFFICER))
    assert again.recorded_at == first.recorded_at
    _all_refused("direct award", shared, other_system=other_system,
                 other_subject=other_subject, other_terms=other_terms, terms="amount_fen")
    assert _state(trading)[1:] == before[1:]


async def test_a_project_raced_for_a_tender_and_a_direct_award_gets_one(
        via: Any, trading: ServiceUnderTest) -> None:
    """A project is tendered or awarded directly, never both: announced and awarded at
    once (on PostgreSQL both looked before either wrote, until the project's row was
    locked first: found by the s16 attack), exactly one of the two is taken."""
    deadline = datetime.now(UTC) + timedelta(days=25)
    for _ in range(8):
        project = await _register(via, PLATFORM, _registration(str(uuid.uuid4()),
                                                               value=50_000_000))
        outcomes: tuple[Any, ...] = await asyncio.gather(
            via(PLATFORM).AnnounceTender(_announcement(str(uuid.uuid4()), project.project_no,
                                                       deadline), metadata=OFFICER),
            via(OPERATOR).RecordDirectAward(_award(str(uuid.uuid4()), project.project_no,
                                                   40_000_000), metadata=OFFICER),
            return_exceptions=True)
        taken = [a for a in outcomes if not isinstance(a, BaseException)]
        refused = [a for a in outcomes if isinstance(a, grpc.aio.AioRpcError)]
        assert len(taken) == 1 and len(refused) == 1, outcomes
        assert refused[0].code() == grpc.StatusCode.FAILED_PRECONDITION
        with trading.running.engine.connect() as connection:
            counted = [int(connection.execute(select(func.count()).select_from(t).where(
                t.c.project_no == project.project_no)).scalar_one())
                for t in (tables.tenders, tables.direct_awards)]
        assert sorted(counted) == [0, 1]


async def test_an_announcement_retried_after_the_bid_period_bound_is_answered(
        via: Any, trading: ServiceUnderTest) -> None:
    """Announced with the deadline a few seconds beyond the 20-day bound, its answer lost,
    sent again once the bound has passed: the tender it announced is the answer (the rule
    that reads the clock is for a new tender only: found by the s16 attack). A new request
    with that deadline is refused by the rule, and writes nothing."""
    project = await _register(via, PLATFORM, _registration(str(uuid.uuid4())))
    request = _announcement(str(uuid.uuid4()), project.project_no,
                            datetime.now(UTC) + timedelta(days=20, seconds=5))
    first = await _announce(via, PLATFORM, request)
    # Until the deadline lies less than 20 days ahead.
    bound = request.bid_deadline.ToDatetime(tzinfo=UTC) - timedelta(days=20)
    await asyncio.sleep((bound - datetime.now(UTC)).total_seconds() + 0.1)
    again = await _announce(via, PLATFORM, request)
    assert again.tender_no == first.tender_no

    other = await _register(via, PLATFORM, _registration(str(uuid.uuid4())))
    before = _state(trading)
    code, details = await _refused(via(PLATFORM).AnnounceTender(_announcement(
        str(uuid.uuid4()), other.project_no, request.bid_deadline.ToDatetime(tzinfo=UTC)),
        metadata=OFFICER))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "20" in details
    assert _state(trading) == before


async def test_a_request_id_in_upper_case_is_the_same_request(
        via: Any, trading: ServiceUnderTest) -> None:
    """A UUID is the same in either case (RFC 9562 §4), and the proto's rule takes both:
    the same request with its id in upper case is answered with the first record, not
    taken a second time (found by the s16 attack)."""
    shared = str(uuid.uuid4())
    first = await _register(via, PLATFORM, _registration(shared))
    before = _state(trading)
    again = await _register(via, PLATFORM, _registration(shared.upper()))
    assert again.project_no == first.project_no
    assert _state(trading) == before
    tender = await _announce(via, PLATFORM, _announcement(
        shared.upper(), first.project_no, datetime.now(UTC) + timedelta(days=25)))
    retried = await _announce(via, PLATFORM, _announcement(
        shared, first.project_no, tender.bid_deadline.ToDatetime(tzinfo=UTC)))
    assert retried.tender_no == tender.tender_no
