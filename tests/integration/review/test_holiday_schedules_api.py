"""Holiday schedules over gRPC, and the review activities on the same database.

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
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from govhall.review.v1 import review_pb2 as pb
from govhall.review.v1 import review_pb2_grpc
from services.review.activities import (
    DeadlineRequest,
    OfficialLookup,
    ReviewActivities,
)
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


async def test_the_deadline_activity_flags_then_uses_a_loaded_year(
        review: ServiceUnderTest) -> None:
    hosted = ReviewActivities(review.running.engine)
    environment = ActivityEnvironment()
    across_spring_festival = DeadlineRequest(start=date(2027, 2, 5), working_days=5)
    unknown = await environment.run(hosted.compute_deadline, across_spring_festival)
    async with review.channel() as channel:
        await _load_2027(review_pb2_grpc.ReviewServiceStub(channel))
    known = await environment.run(hosted.compute_deadline, across_spring_festival)
    makeup = await environment.run(hosted.compute_deadline,
                                   DeadlineRequest(start=date(2027, 2, 5), working_days=6))
    new_year = await environment.run(hosted.compute_deadline,
                                     DeadlineRequest(start=date(2026, 12, 28), working_days=5))
    assert unknown.due_date is None
    assert unknown.year_unknown and unknown.unknown_year == 2027
    assert "2027" in unknown.message
    assert known.due_date == date(2027, 2, 19)
    assert not known.year_unknown and known.message == ""
    assert makeup.due_date == date(2027, 2, 20)
    assert new_year.due_date == date(2027, 1, 5)


async def test_a_negative_deadline_fails_for_good(review: ServiceUnderTest) -> None:
    hosted = ReviewActivities(review.running.engine)
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(
            hosted.compute_deadline, DeadlineRequest(start=date(2026, 5, 6), working_days=-1))
    assert failed.value.non_retryable
    assert failed.value.type == "InvalidArgument"


async def test_the_official_roles_activity(review: ServiceUnderTest) -> None:
    hosted = ReviewActivities(review.running.engine)
    environment = ActivityEnvironment()
    leader = await environment.run(hosted.official_roles, OfficialLookup("SCJGJ-006"))
    with pytest.raises(ApplicationError) as unknown:
        await environment.run(hosted.official_roles, OfficialLookup("ABC-999"))
    assert (leader.official_id, leader.department_code, leader.roles) == (
        "SCJGJ-006", "SCJGJ", ["leader"])
    assert unknown.value.non_retryable
    assert unknown.value.type == "NotFound"
    assert "ABC-999" in str(unknown.value)
