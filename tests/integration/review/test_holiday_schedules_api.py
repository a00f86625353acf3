"""Holiday schedules over gRPC, and the deadlines review counts with them.

The 2027 schedule is made up for the tests: New Year's Day on Friday
1 January, a Spring Festival week of 8–12 February and a make-up working
Saturday on 20 February.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import grpc
import pytest
from sqlalchemy import create_engine, text

from govhall.review.v1 import review_pb2 as pb
from govhall.review.v1 import review_pb2_grpc
from services.review.app import handlers
from services.review.db.repository import ReviewUnitOfWork
from services.review.domain.deadlines import CaseDeadlines, case_deadlines, end_of_day
from tests.support import SAMPLE_AUDIT_ENTRIES, ServiceUnderTest, as_official, field_violations

if TYPE_CHECKING:
    from govhall.review.v1.review_pb2_grpc import ReviewServiceAsyncStub

OPERATOR = "ZWFWZX-004"
SCHEDULE_2027 = pb.LoadHolidayScheduleRequest(
    year=2027,
    holidays=["2027-01-01", "2027-02-08", "2027-02-09", "2027-02-10", "2027-02-11",
              "2027-02-12"],
    makeup_workdays=["2027-02-20"])


async def _load_2027(stub: ReviewServiceAsyncStub) -> pb.LoadHolidayScheduleResponse:
    response: pb.LoadHolidayScheduleResponse = await stub.LoadHolidaySchedule(
        SCHEDULE_2027, metadata=as_official(OPERATOR))
    return response


def _holiday_rows(review: ServiceUnderTest) -> int:
    engine = create_engine(review.settings.resolved_database_url())
    with engine.connect() as connection:
        count = connection.execute(text("SELECT COUNT(*) FROM holiday_dates")).scalar_one()
    engine.dispose()
    return int(count)


async def test_an_operator_loads_a_year_and_it_is_listed(review: ServiceUnderTest) -> None:
    async with review.channel() as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        before = (await stub.ListHolidaySchedules(pb.ListHolidaySchedulesRequest())).schedules
        loaded = await _load_2027(stub)
        after = (await stub.ListHolidaySchedules(pb.ListHolidaySchedulesRequest())).schedules
    assert 2027 not in [s.year for s in before]
    assert {s.source for s in before} == {pb.HOLIDAY_SCHEDULE_SOURCE_BUILT_IN}
    assert [s.year for s in before] == list(range(2004, 2027))
    assert not loaded.replaced
    assert loaded.schedule.source == pb.HOLIDAY_SCHEDULE_SOURCE_LOADED
    assert loaded.schedule.loaded_by == OPERATOR
    assert list(loaded.schedule.holidays) == list(SCHEDULE_2027.holidays)
    listed = after[-1]
    assert listed.year == 2027
    assert listed.source == pb.HOLIDAY_SCHEDULE_SOURCE_LOADED
    assert list(listed.makeup_workdays) == ["2027-02-20"]
    assert listed.HasField("loaded_at")
    assert [s.year for s in after] == list(range(2004, 2028))


async def test_loading_a_year_again_replaces_it(review: ServiceUnderTest) -> None:
    async with review.channel() as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        await _load_2027(stub)
        corrected = pb.LoadHolidayScheduleRequest(
            year=2027, holidays=["2027-01-01", "2027-02-08", "2027-02-09"],
            makeup_workdays=[])
        second = await stub.LoadHolidaySchedule(corrected, metadata=as_official("ZWFWZX-005"))
        listed = (await stub.ListHolidaySchedules(pb.ListHolidaySchedulesRequest())).schedules
        audit = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
    assert second.replaced
    assert second.schedule.loaded_by == "ZWFWZX-005"
    assert list(listed[-1].holidays) == ["2027-01-01", "2027-02-08", "2027-02-09"]
    assert list(listed[-1].makeup_workdays) == []
    assert audit.intact and audit.entries == SAMPLE_AUDIT_ENTRIES + 2
    assert _holiday_rows(review) == 3


async def test_only_an_operator_loads_a_schedule(review: ServiceUnderTest) -> None:
    async with review.channel() as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        outcomes = {}
        for label, metadata in (("nobody", ()), ("leader", as_official("SCJGJ-006")),
                                ("stranger", as_official("ABC-999"))):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.LoadHolidaySchedule(SCHEDULE_2027, metadata=metadata)
            outcomes[label] = refused.value.code()
        listed = (await stub.ListHolidaySchedules(pb.ListHolidaySchedulesRequest())).schedules
    assert outcomes == {
        "nobody": grpc.StatusCode.UNAUTHENTICATED,
        "leader": grpc.StatusCode.PERMISSION_DENIED,
        "stranger": grpc.StatusCode.PERMISSION_DENIED,
    }
    assert 2027 not in [s.year for s in listed]


async def test_a_wrong_schedule_is_refused_and_nothing_is_stored(
        review: ServiceUnderTest) -> None:
    cases = {
        "outside the year": pb.LoadHolidayScheduleRequest(
            year=2027, holidays=["2026-12-31"]),
        "weekday make-up": pb.LoadHolidayScheduleRequest(
            year=2027, makeup_workdays=["2027-02-22"]),
        "both": pb.LoadHolidayScheduleRequest(
            year=2027, holidays=["2027-02-20"], makeup_workdays=["2027-02-20"]),
        "no such day": pb.LoadHolidayScheduleRequest(year=2027, holidays=["2027-02-30"]),
        "not a date": pb.LoadHolidayScheduleRequest(year=2027, holidays=["27/02/01"]),
        "repeated": pb.LoadHolidayScheduleRequest(
            year=2027, holidays=["2027-01-01", "2027-01-01"]),
        "far year": pb.LoadHolidayScheduleRequest(year=3027),
    }
    async with review.channel() as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        errors = {}
        for label, request in cases.items():
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.LoadHolidaySchedule(request, metadata=as_official(OPERATOR))
            errors[label] = refused.value
        listed = (await stub.ListHolidaySchedules(pb.ListHolidaySchedulesRequest())).schedules
        audit = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
    assert {label: e.code() for label, e in errors.items()} == {
        label: grpc.StatusCode.INVALID_ARGUMENT for label in cases}
    assert field_violations(errors["outside the year"]) == ["holidays"]
    assert field_violations(errors["weekday make-up"]) == ["makeup_workdays"]
    assert "also listed as a holiday" in (errors["both"].details() or "")
    assert field_violations(errors["no such day"]) == ["holidays[0]"]
    assert field_violations(errors["far year"]) == ["year"]
    assert 2027 not in [s.year for s in listed]
    assert audit.entries == SAMPLE_AUDIT_ENTRIES
    assert _holiday_rows(review) == 0


async def test_deadlines_flag_an_unknown_year_then_follow_its_loaded_schedule(
        review: ServiceUnderTest) -> None:
    """Deadlines counted on review's calendar: built-in years, then what an operator loaded."""

    def counted(accepted_on: date, days: int) -> CaseDeadlines:
        calendar = handlers.working_calendar(
            uow=ReviewUnitOfWork(review.running.engine, write=False))
        return case_deadlines(calendar, accepted_on=accepted_on, promised_limit_days=days,
                              legal_limit_days=days, today=accepted_on)

    across_spring_festival = counted(date(2027, 2, 5), 5)
    async with review.channel() as channel:
        await _load_2027(review_pb2_grpc.ReviewServiceStub(channel))
    known = counted(date(2027, 2, 5), 5)
    makeup = counted(date(2027, 2, 5), 6)
    new_year = counted(date(2026, 12, 28), 5)
    # Unknown: Monday to Friday taken as working days, and the year named.
    assert across_spring_festival.unknown_year == 2027
    assert across_spring_festival.promised_due_at == end_of_day(date(2027, 2, 12))
    # Loaded: the festival week does not count, the make-up Saturday does.
    assert (known.unknown_year, known.promised_due_at) == (0, end_of_day(date(2027, 2, 19)))
    assert makeup.promised_due_at == end_of_day(date(2027, 2, 20))
    # 2026 from the built-in calendar, New Year's Day 2027 from the loaded one.
    assert (new_year.unknown_year, new_year.promised_due_at) == (
        0, end_of_day(date(2027, 1, 5)))
