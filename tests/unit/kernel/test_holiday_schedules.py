"""The holiday schedules read from review: kept, refreshed, asked again once on an unknown
year, and the built-in ones when review cannot be asked (review's answers stubbed here;
tests/integration/kernel/test_holiday_schedules.py asks a real review)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import grpc
import pytest
from structlog.testing import capture_logs

from govhall.review.v1 import review_pb2 as pb
from kernel.calendar import UnknownYearError, YearSchedule
from kernel.holiday_schedules import HolidaySchedules, schedules_from

NEW_YEAR_2027 = YearSchedule(year=2027, holidays=frozenset({date(2027, 1, 1)}),
                             makeup_workdays=frozenset({date(2027, 1, 9)}))


class Review:
    """Answers like review's ListHolidaySchedules: what it holds now, or an outage."""

    def __init__(self, *schedules: YearSchedule) -> None:
        self.schedules = list(schedules)
        self.down = False
        self.calls = 0

    def __call__(self) -> Sequence[YearSchedule]:
        self.calls += 1
        if self.down:
            raise _Unavailable()
        return list(self.schedules)


class _Unavailable(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_copy_is_read_on_first_use_and_again_once_stale() -> None:
    review, clock = Review(), Clock()
    schedules = HolidaySchedules(review, refresh_seconds=300, clock=clock)
    assert not schedules.calendar().knows(2027)
    assert review.calls == 1
    review.schedules = [NEW_YEAR_2027]
    clock.now += 299
    assert not schedules.calendar().knows(2027)  # still fresh: not asked
    assert review.calls == 1
    clock.now += 1
    calendar = schedules.calendar()
    assert review.calls == 2
    assert calendar.knows(2027) and not calendar.is_working_day(date(2027, 1, 1))
    assert calendar.is_working_day(date(2027, 1, 9))  # the make-up Saturday


def test_an_unknown_year_asks_review_at_once_then_looks_again_once() -> None:
    review, clock = Review(), Clock()
    schedules = HolidaySchedules(review, refresh_seconds=300, retry_spacing_seconds=5,
                                 clock=clock)
    calendar = schedules.working_calendar()
    assert calendar.is_working_day(date(2026, 12, 31))
    assert review.calls == 1
    # Loaded in review since; the copy is fresh, yet the first 2027 day asks again at once.
    review.schedules = [NEW_YEAR_2027]
    clock.now += 10
    assert calendar.add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 4)
    assert review.calls == 2
    assert calendar.is_working_day(date(2027, 1, 9))
    assert review.calls == 2


def test_a_year_review_does_not_know_either_raises_after_one_more_question() -> None:
    review, clock = Review(), Clock()
    schedules = HolidaySchedules(review, retry_spacing_seconds=5, clock=clock)
    calendar = schedules.working_calendar()
    schedules.calendar()
    clock.now += 10
    with pytest.raises(UnknownYearError) as unknown:
        calendar.add_working_days(date(2026, 12, 28), 10)
    assert unknown.value.year == 2027
    assert review.calls == 2
    # Asked moments ago: the next computations do not each ask again.
    for _ in range(3):
        with pytest.raises(UnknownYearError):
            calendar.is_working_day(date(2027, 3, 1))
    assert review.calls == 2
    clock.now += 5
    with pytest.raises(UnknownYearError):
        calendar.is_working_day(date(2027, 3, 1))
    assert review.calls == 3


def test_review_down_keeps_the_schedules_read_last_with_a_warning() -> None:
    review, clock = Review(NEW_YEAR_2027), Clock()
    schedules = HolidaySchedules(review, refresh_seconds=300, clock=clock)
    assert schedules.calendar().knows(2027)
    review.down = True
    clock.now += 300
    with capture_logs() as logs:
        calendar = schedules.calendar()
    assert calendar.knows(2027) and not calendar.is_working_day(date(2027, 1, 1))
    assert (schedules.reads, schedules.failures) == (1, 1)
    assert [e["event"] for e in logs] == ["holidays.review_unreachable"]
    assert logs[0]["log_level"] == "warning" and logs[0]["code"] == "UNAVAILABLE"


def test_review_down_from_the_start_gives_the_built_in_schedules() -> None:
    review = Review()
    review.down = True
    schedules = HolidaySchedules(review)
    calendar = schedules.working_calendar()
    assert not calendar.is_working_day(date(2026, 10, 1))  # National Day, built in
    with pytest.raises(UnknownYearError):
        calendar.is_working_day(date(2027, 1, 4))


def test_no_review_configured_warns_once_and_counts_with_the_built_in_schedules() -> None:
    with capture_logs() as logs:
        schedules = HolidaySchedules.from_review("", pki_dir=Path("/nonexistent"),
                                                system="x")
        calendar = schedules.working_calendar()
        assert calendar.is_working_day(date(2026, 10, 10))  # a make-up Saturday, built in
        with pytest.raises(UnknownYearError):
            calendar.is_working_day(date(2027, 1, 4))
    assert [e["event"] for e in logs] == ["holidays.review_not_configured"]
    assert schedules.reads == schedules.failures == 0


def test_only_loaded_schedules_that_make_sense_are_taken() -> None:
    response = pb.ListHolidaySchedulesResponse(schedules=[
        pb.HolidaySchedule(year=2026, source=pb.HOLIDAY_SCHEDULE_SOURCE_BUILT_IN),
        pb.HolidaySchedule(year=2027, source=pb.HOLIDAY_SCHEDULE_SOURCE_LOADED,
                           holidays=["2027-01-01"], makeup_workdays=["2027-01-09"]),
        pb.HolidaySchedule(year=2028, source=pb.HOLIDAY_SCHEDULE_SOURCE_LOADED,
                           makeup_workdays=["2028-01-03"])])  # a Monday
    with capture_logs() as logs:
        assert schedules_from(response) == [NEW_YEAR_2027]
    assert [(e["event"], e["year"]) for e in logs] == [("holidays.schedule_ignored", 2028)]

