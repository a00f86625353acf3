"""Complaints and trading count working days by the schedules operators load in review.

A real review over real gRPC and mTLS: an operator loads 2027 (made up for
the tests: New Year's Day on Friday 1 January; National Day on Friday
1 October and the next week's Monday to Thursday, with Saturday 9 October a
make-up working day), and complaints and trading, each asking review as its
own calling system, count with it. Before the load, complaints takes
Monday to Friday and flags the case, and trading refuses.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp
from structlog.testing import capture_logs
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from govhall.complaints.v1 import complaints_pb2, complaints_pb2_grpc
from govhall.review.v1 import review_pb2, review_pb2_grpc
from govhall.trading.v1 import trading_pb2, trading_pb2_grpc
from kernel.calendar import UnknownYearError
from kernel.fieldcipher import field_cipher
from kernel.holiday_schedules import HolidaySchedules
from kernel.signing import TrustedKeys, service_signer
from services.complaints.activities import ComplaintsActivities, holiday_schedules
from services.complaints.app.recording import received_statement
from services.complaints.db import tables as complaint_tables
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.main import DEFINITION as COMPLAINTS
from services.complaints.settings import complainant_key_path
from services.review.main import DEFINITION as REVIEW
from services.trading.main import DEFINITION as TRADING
from tests.integration.intake.sealing import closed_port
from tests.integration.review.conftest import temporal_address
from tests.support import ServiceUnderTest, as_official, fresh_database_url, service_under_test
from workflows.complaint_contract import OpenCase

SCHEDULE_2027 = review_pb2.LoadHolidayScheduleRequest(
    year=2027,
    holidays=["2027-01-01", "2027-10-01", "2027-10-04", "2027-10-05", "2027-10-06",
              "2027-10-07"],
    makeup_workdays=["2027-10-09"])
OPERATOR = as_official("ZWFWZX-004")
TRADING_OFFICER = as_official("ZWFWZX-007")


@pytest.fixture
async def review(backend: str, tmp_path: Path, pki_dir: Path,
                 temporal_dev_server: WorkflowEnvironment) -> AsyncIterator[ServiceUnderTest]:
    # Loading a schedule recomputes the running approval cases' deadlines on Temporal (none
    # run here).
    url = fresh_database_url(backend, "review", tmp_path)
    async with service_under_test(REVIEW, database_url=url, pki_dir=pki_dir,
                                  temporal_address=temporal_address(temporal_dev_server)
                                  ) as service:
        yield service


async def _load_2027(review: ServiceUnderTest) -> None:
    async with review.channel("operator") as channel:
        loaded = await review_pb2_grpc.ReviewServiceStub(channel).LoadHolidaySchedule(
            SCHEDULE_2027, metadata=OPERATOR)
    assert loaded.schedule.source == review_pb2.HOLIDAY_SCHEDULE_SOURCE_LOADED


# ---- the source, as each calling system ----------------------------------------------------

@pytest.mark.parametrize("system", ["complaints-service", "trading-service"])
async def test_each_service_reads_the_loaded_schedules_as_its_own_system(
        review: ServiceUnderTest, pki_dir: Path, system: str) -> None:
    schedules = HolidaySchedules.from_review(review.address, pki_dir=pki_dir, system=system)
    assert not await _knows_2027(schedules)
    await _load_2027(review)
    assert await _knows_2027(schedules, refresh=True)
    calendar = schedules.calendar()
    assert not calendar.is_working_day(date(2027, 10, 4))
    assert calendar.is_working_day(date(2027, 10, 9))
    assert (schedules.reads, schedules.failures) == (2, 0)


async def test_a_system_the_registry_does_not_let_read_them_gets_the_built_in_ones(
        review: ServiceUnderTest, pki_dir: Path) -> None:
    await _load_2027(review)
    schedules = HolidaySchedules.from_review(review.address, pki_dir=pki_dir,
                                             system="hotline-12345")
    with capture_logs() as logs:
        assert not await _knows_2027(schedules)
    assert (schedules.reads, schedules.failures) == (0, 1)
    [warning] = [e for e in logs if e["event"] == "holidays.review_unreachable"]
    assert warning["code"] == "PERMISSION_DENIED"


async def test_review_down_leaves_the_built_in_schedules(pki_dir: Path) -> None:
    schedules = HolidaySchedules.from_review(closed_port(), pki_dir=pki_dir,
                                             system="complaints-service")
    calendar = schedules.working_calendar()
    assert not await asyncio.to_thread(lambda: calendar.is_working_day(date(2026, 10, 1)))
    with pytest.raises(UnknownYearError):
        await asyncio.to_thread(lambda: calendar.is_working_day(date(2027, 1, 4)))
    assert schedules.reads == 0 and schedules.failures >= 1


async def _knows_2027(schedules: HolidaySchedules, *, refresh: bool = False) -> bool:
    if refresh:
        await asyncio.to_thread(schedules.refresh)
    return await asyncio.to_thread(lambda: schedules.calendar().knows(2027))


# ---- (a) complaints: a reply due across the 2027 New Year holiday -----------------------------

@pytest.fixture
async def complaints(backend: str, tmp_path: Path, pki_dir: Path
                     ) -> AsyncIterator[ServiceUnderTest]:
    url = fresh_database_url(backend, "complaints", tmp_path)
    async with service_under_test(COMPLAINTS, database_url=url, pki_dir=pki_dir) as service:
        yield service


async def _open_complaint(complaints: ServiceUnderTest, activities: ComplaintsActivities,
                          external_id: str, received_at: datetime) -> str:
    async with complaints.channel("hotline-12345") as channel:
        response = await complaints_pb2_grpc.ComplaintsServiceStub(channel).SubmitComplaint(
            complaints_pb2.SubmitComplaintRequest(
                external_id=external_id, kind=complaints_pb2.COMPLAINT_KIND_COMPLAINT,
                category_code="SC-01", content="超市出售过期食品",
                complainant_name="欧阳晓筠", complainant_phone="13975318642"))
    number: str = response.complaint.case_number
    engine = complaints.running.engine
    with engine.begin() as connection:
        connection.execute(sa.update(complaint_tables.complaint_cases).where(
            complaint_tables.complaint_cases.c.case_number == number).values(
            received_at=received_at))
    with ComplaintsUnitOfWork(engine, write=False) as uow:
        case = uow.handling.get(number)
    assert case is not None
    signer = service_signer(complaints.pki_dir, "complaints")
    await ActivityEnvironment().run(activities.open_case,
                                    OpenCase(received_statement(signer, case)))
    return number


async def test_a_complaint_s_reply_due_follows_the_schedule_loaded_in_review(
        review: ServiceUnderTest, complaints: ServiceUnderTest, pki_dir: Path) -> None:
    # The complaints activities as complaints' worker builds them: review asked as the calling
    # system complaints-service (again at once when a deadline meets a year it lacks).
    settings = complaints.settings.model_copy(update={
        "review_address": review.address, "holiday_retry_spacing_seconds": 0.0})
    signer = service_signer(pki_dir, "complaints")
    activities = ComplaintsActivities(
        complaints.running.engine, TrustedKeys({"complaints": [signer.public_key]}),
        field_cipher(complainant_key_path(pki_dir)),
        calendar=holiday_schedules(settings).working_calendar())
    # Received Wednesday 16 December 2026, 10:00 in China: a complaint, 15 working days.
    received = datetime(2026, 12, 16, 2, 0, tzinfo=UTC)

    # Before the load: December 17-18, 21-25, 28-31 (11), then 2027 taken as Monday to
    # Friday: 1, 4, 5, 6 January; flagged.
    before = await _open_complaint(complaints, activities, "HL-HOL-1", received)
    with ComplaintsUnitOfWork(complaints.running.engine, write=False) as uow:
        guessed = uow.handling.get(before)
    assert guessed is not None
    assert guessed.reply_due == datetime(2027, 1, 6, 9, 30, tzinfo=UTC)
    assert guessed.unknown_year == 2027

    await _load_2027(review)
    # The copy is fresh, but the deadline meets 2027: review is asked again at once. New
    # Year's Day is off: 28-31 December (11), 4, 5, 6, 7 January; 17:30 in China.
    after = await _open_complaint(complaints, activities, "HL-HOL-2", received)
    with ComplaintsUnitOfWork(complaints.running.engine, write=False) as uow:
        counted = uow.handling.get(after)
    assert counted is not None
    assert counted.reply_due == datetime(2027, 1, 7, 9, 30, tzinfo=UTC)
    assert counted.unknown_year == 0
    assert counted.sign_for_due == datetime(2026, 12, 16, 7, 30, tzinfo=UTC)


# ---- (b) trading: a procurement tender whose limits fall in 2027 -------------------------------

@pytest.fixture
async def trading(backend: str, tmp_path: Path, pki_dir: Path, review: ServiceUnderTest
                  ) -> AsyncIterator[ServiceUnderTest]:
    # Temporal out of reach: an announced tender stays an outbox entry, as in
    # test_tenders_api.py.
    url = fresh_database_url(backend, "trading", tmp_path)
    async with service_under_test(TRADING, database_url=url, pki_dir=pki_dir,
                                  temporal_address=closed_port(),
                                  tender_start_wait_seconds=0.5,
                                  review_address=review.address,
                                  holiday_retry_spacing_seconds=0.0) as service:
        yield service


def _stamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


async def test_a_procurement_tender_with_limits_in_2027_follows_the_loaded_schedule(
        review: ServiceUnderTest, trading: ServiceUnderTest) -> None:
    # The documents are available until the end of Thursday 30 September 2027 in China.
    documents_until = datetime(2027, 9, 30, 15, 59, 59, tzinfo=UTC)
    async with trading.channel("trading-platform") as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        project = (await stub.RegisterProject(trading_pb2.RegisterProjectRequest(
            request_id=str(uuid.uuid4()),
            category=trading_pb2.TRADING_CATEGORY_GOVERNMENT_PROCUREMENT,
            title="沈阳市第一中学教学设备采购项目", estimated_value_fen=500_000_000,
            funding_source=trading_pb2.FUNDING_SOURCE_PUBLIC, department_code="JYJ"),
            metadata=TRADING_OFFICER)).project

        def announce(request_id: str) -> trading_pb2.AnnounceTenderRequest:
            request = trading_pb2.AnnounceTenderRequest(
                request_id=request_id, project_no=project.project_no,
                bid_deadline=_stamp(documents_until + timedelta(days=20)))
            request.documents_until.CopyFrom(_stamp(documents_until))
            return request

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.AnnounceTender(announce(str(uuid.uuid4())), metadata=TRADING_OFFICER)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "2027" in (refused.value.details() or "")

        await _load_2027(review)
        # Objections within 7 working days of the documents' end: 1 and 4-7 October off,
        # Friday 8 and the make-up Saturday 9, then 11-15 October: until the end of the 15th
        # in China (Monday to Friday would have said the 11th).
        tender = (await stub.AnnounceTender(announce(str(uuid.uuid4())),
                                            metadata=TRADING_OFFICER)).tender
    assert tender.documents_until.ToDatetime(tzinfo=UTC) == documents_until
    assert tender.objections_until.ToDatetime(tzinfo=UTC) == datetime(
        2027, 10, 15, 15, 59, 59, tzinfo=UTC)
