"""Complaints whose deadlines guessed 2027 are recomputed once review has its schedule.

A real review over real gRPC and mTLS (the made-up 2027 of
test_holiday_schedules_from_review.py: New Year's Day, Friday 1 January, is
off) and a real complaints service: cases are taken in and handled by the
complaints activities while 2027 is unknown (counted Monday to Friday and
flagged), an operator loads 2027 in review, and one round of the
service's ``DeadlineRecompute`` (asking review as complaints-service)
recomputes them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from govhall.complaints.v1 import complaints_pb2, complaints_pb2_grpc
from govhall.review.v1 import review_pb2, review_pb2_grpc
from kernel.fieldcipher import field_cipher
from kernel.holiday_schedules import HolidaySchedules
from kernel.signing import ServiceSigner, TrustedKeys, service_signer
from kernel.workflow_gateway import WorkflowGateway
from services.complaints.activities import ComplaintsActivities
from services.complaints.app.deadlines import RECOMPUTED, DeadlineRecompute
from services.complaints.app.recording import received_statement
from services.complaints.db import tables
from services.complaints.db.repository import CaseHandling, ComplaintsUnitOfWork
from services.complaints.main import DEFINITION as COMPLAINTS
from services.complaints.settings import complainant_key_path
from services.review.main import DEFINITION as REVIEW
from tests.integration.review.conftest import temporal_address
from tests.support import ServiceUnderTest, as_official, fresh_database_url, service_under_test
from workflows.complaint_contract import (
    ActRecord,
    OpenCase,
    StatementKind,
    as_statement,
    complaint_statement_body,
    content_digest,
)

SCHEDULE_2027 = review_pb2.LoadHolidayScheduleRequest(
    year=2027,
    holidays=["2027-01-01", "2027-10-01", "2027-10-04", "2027-10-05", "2027-10-06",
              "2027-10-07"],
    makeup_workdays=["2027-10-09"])
OPERATOR = as_official("ZWFWZX-004")
NAME, PHONE = "欧阳晓筠", "13975318642"
#: Wednesday 16 December 2026, 10:00 in China.
RECEIVED = datetime(2026, 12, 16, 2, 0, tzinfo=UTC)


def _utc(month_day: tuple[int, int, int], hour: int = 9, minute: int = 30) -> datetime:
    return datetime(*month_day, hour, minute, tzinfo=UTC)


@pytest.fixture
async def review(backend: str, tmp_path: Path, pki_dir: Path,
                 temporal_dev_server: WorkflowEnvironment) -> AsyncIterator[ServiceUnderTest]:
    url = fresh_database_url(backend, "review", tmp_path)
    async with service_under_test(REVIEW, database_url=url, pki_dir=pki_dir,
                                  temporal_address=temporal_address(temporal_dev_server)
                                  ) as service:
        yield service


@pytest.fixture
async def complaints(backend: str, tmp_path: Path, pki_dir: Path
                     ) -> AsyncIterator[ServiceUnderTest]:
    url = fresh_database_url(backend, "complaints", tmp_path)
    async with service_under_test(COMPLAINTS, database_url=url, pki_dir=pki_dir) as service:
        yield service


@dataclass
class Desk:
    """The complaints activities as the worker runs them, counting with the built-in years."""

    service: ServiceUnderTest
    activities: ComplaintsActivities
    signer: ServiceSigner
    clock: list[datetime]

    def case(self, number: str) -> CaseHandling:
        with ComplaintsUnitOfWork(self.service.running.engine, write=False) as uow:
            case = uow.handling.get(number)
        assert case is not None
        return case

    def events(self, number: str) -> list[Any]:
        events = tables.complaint_events
        with self.service.running.engine.connect() as connection:
            return list(connection.execute(sa.select(events).where(
                events.c.case_number == number).order_by(events.c.sequence)))

    def audit(self, action: str) -> list[Any]:
        audit = tables.audit_log
        with self.service.running.engine.connect() as connection:
            return list(connection.execute(sa.select(audit).where(audit.c.action == action)))

    async def submit(self, external_id: str, received_at: datetime) -> str:
        async with self.service.channel("hotline-12345") as channel:
            response = await complaints_pb2_grpc.ComplaintsServiceStub(channel).SubmitComplaint(
                complaints_pb2.SubmitComplaintRequest(
                    external_id=external_id, kind=complaints_pb2.COMPLAINT_KIND_COMPLAINT,
                    category_code="SC-01", content="超市出售过期食品",
                    complainant_name=NAME, complainant_phone=PHONE))
        number: str = response.complaint.case_number
        with self.service.running.engine.begin() as connection:
            connection.execute(sa.update(tables.complaint_cases).where(
                tables.complaint_cases.c.case_number == number).values(
                received_at=received_at))
        await ActivityEnvironment().run(
            self.activities.open_case, OpenCase(received_statement(self.signer,
                                                                   self.case(number))))
        return number

    async def act(self, kind: StatementKind, number: str, at: datetime, *,
                  texts: dict[str, str] | None = None, **facts: Any) -> None:
        """An act of the case's handler (a dispatcher's or the platform's by ``facts``)."""
        self.clock[0] = at
        texts = texts or {}
        who: dict[str, Any] = {"official_id": "SCJGJ-008", "department_code": "SCJGJ",
                               "roles": ["complaint_handler"],
                               "system": "department-system-scjgj"}
        if kind in (StatementKind.EXTENSION_DECISION, StatementKind.DISPATCH):
            who |= {"official_id": "ZWFWZX-009", "department_code": "ZWFWZX",
                    "roles": ["complaint_dispatcher"]}
        if kind == StatementKind.RATING:
            who |= {"official_id": "12345", "department_code": "", "roles": [],
                    "platform_id": "12345"}
        body = complaint_statement_body(
            kind=kind, case_number=number, issued_at=at, request_id=f"r-{number}-{kind}",
            content_sha256=content_digest(**texts) if texts else "", **who, **facts)
        await ActivityEnvironment().run(self.activities.record_act,
                                        ActRecord(as_statement(self.signer.sign(body)), texts))


@pytest.fixture
def desk(complaints: ServiceUnderTest, pki_dir: Path) -> Desk:
    signer = service_signer(pki_dir, "complaints")
    clock = [RECEIVED]
    activities = ComplaintsActivities(
        complaints.running.engine, TrustedKeys({"complaints": [signer.public_key]}),
        field_cipher(complainant_key_path(pki_dir)), clock=lambda: clock[0])
    return Desk(complaints, activities, signer, clock)


async def _load_2027(review: ServiceUnderTest) -> None:
    async with review.channel("operator") as channel:
        await review_pb2_grpc.ReviewServiceStub(channel).LoadHolidaySchedule(
            SCHEDULE_2027, metadata=OPERATOR)


def _recompute(desk: Desk, review: ServiceUnderTest, pki_dir: Path,
               connect: Any) -> DeadlineRecompute:
    engine = desk.service.running.engine
    return DeadlineRecompute(
        reading=lambda: ComplaintsUnitOfWork(engine, write=False),
        writing=lambda: ComplaintsUnitOfWork(engine),
        schedules=HolidaySchedules.from_review(review.address, pki_dir=pki_dir,
                                               system="complaints-service",
                                               retry_spacing_seconds=0.0),
        gateway=WorkflowGateway(connect), now=lambda: datetime(2026, 12, 29, 1, tzinfo=UTC))


async def _temporal_away() -> Client:
    raise RuntimeError("the workflow service cannot be reached")


async def test_cases_that_guessed_2027_are_recomputed_once_review_has_its_schedule(
        review: ServiceUnderTest, desk: Desk, pki_dir: Path,
        temporal_dev_server: WorkflowEnvironment) -> None:
    # (a) Routed: reply due 15 working days after the 16th: 17-18, 21-25, 28-31 December
    # (11), then 1, 4, 5, 6 January taken as Monday to Friday.
    routed = await desk.submit("HL-R-1", RECEIVED)
    # (b) Extended by 2 working days (granted on the 17th): from 6 January, 7 and 8.
    extended = await desk.submit("HL-R-2", RECEIVED)
    await desk.act(StatementKind.SIGN_FOR, extended, _utc((2026, 12, 16), 3, 0))
    await desk.act(StatementKind.EXTENSION_REQUEST, extended, _utc((2026, 12, 16), 4, 0),
                   days=2, texts={"basis": "需要现场核查"})
    await desk.act(StatementKind.EXTENSION_DECISION, extended, _utc((2026, 12, 17), 2, 0),
                   outcome="granted", days=2)
    # (c) Reopened by a rating on Friday the 18th: 15 working days from then, 21-25 and
    # 28-31 December (9), then 1, 4-8 January.
    reopened = await desk.submit("HL-R-3", RECEIVED)
    await desk.act(StatementKind.SIGN_FOR, reopened, _utc((2026, 12, 16), 3, 0))
    await desk.act(StatementKind.REPLY, reopened, _utc((2026, 12, 17), 2, 0),
                   texts={"reply": "已查处"})
    await desk.act(StatementKind.RATING, reopened, _utc((2026, 12, 18), 2, 0), level=1,
                   texts={"comment": "不满意"})
    # (d) Replied on Monday the 28th: the rating window, 5 working days: 29-31 December,
    # 1 and 4 January.
    rating = await desk.submit("HL-R-4", RECEIVED)
    await desk.act(StatementKind.SIGN_FOR, rating, _utc((2026, 12, 16), 3, 0))
    await desk.act(StatementKind.REPLY, rating, _utc((2026, 12, 28), 2, 0),
                   texts={"reply": "已查处"})
    # (f) Returned, and reassigned by the dispatcher on Thursday 31 December at 16:00 in
    # China: four working hours, 16:00-17:30, then 1 January taken as working, 09:00-11:30.
    dispatched = await desk.submit("HL-R-6", RECEIVED)
    await desk.act(StatementKind.RETURN, dispatched, _utc((2026, 12, 31), 7, 0),
                   texts={"basis": "不属于本部门职责"})
    await desk.act(StatementKind.DISPATCH, dispatched, _utc((2026, 12, 31), 8, 0),
                   texts={"basis": "属卫健委职责"}, outcome="reassign", target_department="WJW")
    # (g) Received 1 December (its reply due in 2026), replied on the 28th: the rating
    # window guessed 2027 later, and flagged then.
    late = await desk.submit("HL-R-7", datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    await desk.act(StatementKind.SIGN_FOR, late, _utc((2026, 12, 1), 3, 0))
    await desk.act(StatementKind.REPLY, late, _utc((2026, 12, 28), 2, 0),
                   texts={"reply": "已查处"})
    # (e) Received 1 December: its deadlines stay in 2026, never flagged.
    plain = await desk.submit("HL-R-5", datetime(2026, 12, 1, 2, 0, tzinfo=UTC))

    guessed = {number: desk.case(number)
               for number in (routed, extended, reopened, rating, dispatched, late)}
    assert guessed[routed].reply_due == _utc((2027, 1, 6))
    assert guessed[extended].reply_due == _utc((2027, 1, 8))
    assert guessed[reopened].reply_due == _utc((2027, 1, 8))
    assert guessed[reopened].reopened and guessed[reopened].status == "handling"
    assert guessed[rating].rating_closes == _utc((2027, 1, 4))
    assert guessed[dispatched].sign_for_due == _utc((2027, 1, 1), 3, 30)
    assert guessed[late].rating_closes == _utc((2027, 1, 4))
    assert {case.unknown_year for case in guessed.values()} == {2027}
    untouched = desk.case(plain)
    assert untouched.unknown_year == 0 and untouched.reply_due == _utc((2026, 12, 22))
    plain_events = desk.events(plain)

    # Before the load: nothing known, nothing recomputed.
    away = _recompute(desk, review, pki_dir, _temporal_away)
    assert await away.run_once() == []

    await _load_2027(review)
    changed = await away.run_once()
    after = {number: desk.case(number) for number in guessed}
    # New Year's Day is off: each due falls one working day later.
    assert sorted(changed) == sorted(guessed)
    assert after[routed].reply_due == _utc((2027, 1, 7))
    assert after[routed].sign_for_due == guessed[routed].sign_for_due == _utc((2026, 12, 16),
                                                                               7, 30)
    assert after[extended].reply_due == _utc((2027, 1, 11))
    assert after[reopened].reply_due == _utc((2027, 1, 11))
    assert after[rating].rating_closes == _utc((2027, 1, 5))
    # The sign-for from the dispatch, 1 January off: Monday the 4th, 11:30 in China.
    assert after[dispatched].sign_for_due == _utc((2027, 1, 4), 3, 30)
    assert after[dispatched].reply_due == _utc((2027, 1, 7))
    assert after[late].rating_closes == _utc((2027, 1, 5))
    assert {case.unknown_year for case in after.values()} == {0}
    recorded = [event for event in desk.events(routed) if event.code == RECOMPUTED]
    assert len(recorded) == 1
    details = json.loads(recorded[0].details)
    assert details["reply_due_was"] == _utc((2027, 1, 6)).isoformat()
    assert details["reply_due"] == _utc((2027, 1, 7)).isoformat()
    assert details["calendar_gap_year"] == "2027"
    assert NAME not in recorded[0].details and PHONE not in recorded[0].details
    assert len(desk.audit(RECOMPUTED)) == 6
    assert desk.case(plain) == untouched and desk.events(plain) == plain_events
    # Temporal away: the workflows are still to be told.
    assert away.untold == set(guessed)

    # Twice: nothing changes the second time.
    assert await away.run_once() == []
    assert {number: desk.case(number) for number in guessed} == after
    assert len(desk.audit(RECOMPUTED)) == 6

    # After a restart, with Temporal back: every open case recomputed is told again (none
    # of these has a workflow here: nothing left to tell).
    async def temporal() -> Client:
        return temporal_dev_server.client

    back = _recompute(desk, review, pki_dir, temporal)
    assert await back.run_once() == []
    assert back.untold == set()
