"""Loaded holiday schedules and deadlines in working days, without a database.

The 2027 schedule here is made up for the tests (the real one is announced
in November 2026): New Year's Day on Friday 1 January, a Spring Festival
week of 8–12 February and a make-up working Saturday on 20 February.
"""

from __future__ import annotations

from datetime import date

import pytest

from kernel.calendar import WorkingCalendar
from kernel.errors import InvalidArgument
from services.review.domain.model import working_day_deadline, year_schedule

HOLIDAYS_2027 = [date(2027, 1, 1), *(date(2027, 2, day) for day in range(8, 13))]
MAKEUP_2027 = [date(2027, 2, 20)]


def _calendar_with_2027() -> WorkingCalendar:
    return WorkingCalendar.with_schedules(
        [year_schedule(2027, holidays=HOLIDAYS_2027, makeup_workdays=MAKEUP_2027)])


def test_a_valid_schedule_is_kept_as_given() -> None:
    schedule = year_schedule(2027, holidays=HOLIDAYS_2027, makeup_workdays=MAKEUP_2027)
    assert schedule.year == 2027
    assert schedule.holidays == frozenset(HOLIDAYS_2027)
    assert schedule.makeup_workdays == frozenset(MAKEUP_2027)


def test_every_wrong_date_is_named_at_once() -> None:
    with pytest.raises(InvalidArgument) as refused:
        year_schedule(2027, holidays=[date(2026, 12, 31), date(2027, 2, 20)],
                      makeup_workdays=[date(2027, 2, 20), date(2027, 2, 22), date(2028, 1, 1)])
    message = refused.value.message
    assert "2026-12-31 is not in 2027" in message
    assert "2028-01-01 is not in 2027" in message
    assert "2027-02-20 is also listed as a holiday" in message
    assert "2027-02-22 is a weekday" in message
    assert [v.field for v in refused.value.violations] == [
        "holidays", "makeup_workdays", "makeup_workdays", "makeup_workdays"]


def test_an_empty_schedule_is_a_year_of_plain_weekends() -> None:
    calendar = WorkingCalendar.with_schedules(
        [year_schedule(2030, holidays=[], makeup_workdays=[])])
    # Friday 4 January 2030 + 1 working day is Monday 7 January.
    assert working_day_deadline(calendar, start=date(2030, 1, 4),
                                working_days=1).due_date == date(2030, 1, 7)


def test_the_deadline_skips_loaded_holidays() -> None:
    # From Friday 5 February 2027, the holiday week and the weekend are skipped.
    deadline = working_day_deadline(_calendar_with_2027(), start=date(2027, 2, 5),
                                    working_days=5)
    assert deadline.due_date == date(2027, 2, 19)
    assert deadline.unknown_year == 0


def test_the_deadline_counts_a_makeup_saturday() -> None:
    deadline = working_day_deadline(_calendar_with_2027(), start=date(2027, 2, 5),
                                    working_days=6)
    assert deadline.due_date == date(2027, 2, 20)


def test_the_deadline_crosses_into_a_loaded_year() -> None:
    # 29, 30, 31 December 2026, then 1 January 2027 is off: 4 and 5 January.
    deadline = working_day_deadline(_calendar_with_2027(), start=date(2026, 12, 28),
                                    working_days=5)
    assert deadline.due_date == date(2027, 1, 5)


def test_a_year_nobody_loaded_is_flagged_not_guessed() -> None:
    deadline = working_day_deadline(WorkingCalendar(), start=date(2026, 12, 28),
                                    working_days=5)
    assert deadline.due_date is None
    assert deadline.unknown_year == 2027
    assert "2027" in deadline.message


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        working_day_deadline(WorkingCalendar(), start=date(2026, 5, 6), working_days=-1)
