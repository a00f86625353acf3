"""Made-up holidays chosen from the day a test runs, so the property it needs holds on any day.

Tests that run on real (or time-skipping) clocks start "today" in China and
load holidays of their own around it. Each choice is a function of the day
here, and tests/unit/test_day_setups.py runs it for every day of a span
(past a year end, every weekday) asserting what the test relies on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from kernel.calendar import WorkingCalendar, YearSchedule


def weekdays_after(today: date, count: int) -> list[date]:
    """The next ``count`` days from Monday to Friday after ``today``."""
    days: list[date] = []
    current = today
    while len(days) < count:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days.append(current)
    return days


def plain_calendar(years: set[int], holidays: frozenset[date] = frozenset(),
                   makeup_workdays: frozenset[date] = frozenset()) -> WorkingCalendar:
    """``years`` loaded with only these holidays and make-up days (the built-in ones set
    aside), so a count never depends on which years chinese-calendar knows."""
    return WorkingCalendar.with_schedules(
        YearSchedule(year, frozenset(d for d in holidays if d.year == year),
                     frozenset(d for d in makeup_workdays if d.year == year))
        for year in years)


@dataclass(frozen=True)
class ApprovalDeadlineDays:
    """tests/integration/workflows/test_approval_deadlines.py's days.

    The second and third weekdays ahead are holidays and the Saturday after them is
    worked; the promised limit is the count of working days up to that Saturday.
    """

    holidays: frozenset[date]
    saturday: date
    #: The years whose (made-up) schedule is loaded.
    years: frozenset[int]
    promised: int
    #: The working days after today, up to and including the Saturday.
    expected: tuple[date, ...]

    def by_year(self) -> dict[int, tuple[list[date], list[date]]]:
        """Each loaded year's holidays and make-up working days."""
        loaded: dict[int, tuple[list[date], list[date]]] = {y: ([], []) for y in self.years}
        for day in sorted(self.holidays):
            loaded[day.year][0].append(day)
        loaded[self.saturday.year][1].append(self.saturday)
        return loaded


def approval_deadline_days(today: date) -> ApprovalDeadlineDays:
    weekdays = weekdays_after(today, 3)
    holidays = frozenset(weekdays[1:3])
    saturday = next(weekdays[2] + timedelta(n) for n in range(1, 8)
                    if (weekdays[2] + timedelta(n)).weekday() == 5)
    # This year and the next are both loaded (made up), so no deadline falls in an unknown
    # year, and the built-in holidays of this year play no part.
    years = frozenset({today.year, today.year + 1, saturday.year,
                       *(day.year for day in holidays)})
    calendar = plain_calendar(set(years), holidays, frozenset({saturday}))
    expected = [today]
    while expected[-1] != saturday:
        expected.append(calendar.add_working_days(today, len(expected)))
    return ApprovalDeadlineDays(holidays, saturday, years, len(expected) - 1,
                                tuple(expected[1:]))


def holidays_until_the_weekend(today: date) -> frozenset[date]:
    """Every weekday from today to the next Friday: the next working day is after a weekend."""
    days: list[date] = []
    current = today
    while not (days and current.weekday() == 5):
        if current.weekday() < 5:
            days.append(current)
        current += timedelta(days=1)
    return frozenset(days)


def first_working_day_after(today: date, holidays: frozenset[date]) -> date:
    """The first day after ``today`` that is neither a weekend day nor one of ``holidays``."""
    first = today + timedelta(days=1)
    while first.weekday() >= 5 or first in holidays:
        first += timedelta(days=1)
    return first


def schedules_ahead(today: date, years: int = 2) -> list[YearSchedule]:
    """Plain schedules (weekends only) for this year and the next ``years`` that the built-in
    calendar does not know, as operators load each year's schedule before it begins.

    A service under test has no review to read loaded schedules from: without these, a count
    started in December that ends in January would meet a year nobody knows, and the test
    would pass or fail by the day it runs.
    """
    known = WorkingCalendar()
    return [YearSchedule(year, frozenset(), frozenset())
            for year in range(today.year, today.year + years + 1) if not known.knows(year)]
