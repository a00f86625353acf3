from __future__ import annotations

from datetime import date

import pytest

from kernel.calendar import UnknownYearError, WorkingCalendar, YearSchedule

# 2027's schedule as the State Council might announce it; any schedule will do
# for the rules under test, which only need holidays on weekdays and a make-up
# Saturday.
SPRING_FESTIVAL_2027 = YearSchedule(
    year=2027,
    holidays=frozenset(date(2027, 2, d) for d in range(5, 13)),
    makeup_workdays=frozenset({date(2027, 2, 13)}),
)


def test_weekends_are_not_working_days() -> None:
    calendar = WorkingCalendar()
    assert calendar.is_working_day(date(2026, 11, 26))  # a Thursday
    assert not calendar.is_working_day(date(2026, 11, 28))  # a Saturday


def test_public_holidays_and_make_up_saturdays_follow_the_official_schedule() -> None:
    calendar = WorkingCalendar()
    assert not calendar.is_working_day(date(2026, 10, 1))  # National Day
    assert calendar.is_working_day(date(2026, 10, 10))  # make-up working Saturday


def test_adding_working_days_skips_a_holiday_week() -> None:
    calendar = WorkingCalendar()
    assert calendar.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert calendar.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)


def test_a_year_without_a_schedule_is_an_error_not_a_guess() -> None:
    calendar = WorkingCalendar()
    with pytest.raises(UnknownYearError) as error:
        calendar.add_working_days(date(2026, 12, 25), 10)
    assert error.value.year == 2027
    assert not calendar.knows(2027)


def test_a_loaded_schedule_covers_a_new_year() -> None:
    calendar = WorkingCalendar.with_schedules([SPRING_FESTIVAL_2027])
    assert calendar.knows(2027)
    assert not calendar.is_working_day(date(2027, 2, 8))  # a Monday in the festival
    assert calendar.is_working_day(date(2027, 2, 13))  # a make-up Saturday
    # From Thursday 4 Feb the festival (5th-12th) is skipped; Saturday the 13th counts.
    assert calendar.add_working_days(date(2027, 2, 4), 1) == date(2027, 2, 13)
    assert calendar.working_days_between(date(2027, 2, 4), date(2027, 2, 15)) == 2


def test_a_schedule_must_be_consistent() -> None:
    with pytest.raises(ValueError, match="not in 2027"):
        YearSchedule(2027, frozenset({date(2026, 1, 1)}), frozenset())
    with pytest.raises(ValueError, match="both"):
        YearSchedule(2027, frozenset({date(2027, 2, 13)}), frozenset({date(2027, 2, 13)}))
    with pytest.raises(ValueError, match="not a weekend day"):
        YearSchedule(2027, frozenset(), frozenset({date(2027, 2, 10)}))


def test_negative_days_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        WorkingCalendar().add_working_days(date(2026, 1, 5), -1)
