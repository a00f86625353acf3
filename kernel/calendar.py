"""China's working days: weekends, public holidays and make-up working weekends (调休).

The ``chinese-calendar`` package knows the State Council's schedules up to
the year it was built for. The schedule of the next year is announced each
November, so operators load it (``YearSchedule``) before the package knows
it. A date in a year neither source covers raises ``UnknownYearError``:
a deadline is never guessed from weekends alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import chinese_calendar

#: The years the installed chinese-calendar package has official data for.
BUILT_IN_YEARS = range(min(d.year for d in chinese_calendar.holidays),
                       max(d.year for d in chinese_calendar.holidays) + 1)


class UnknownYearError(LookupError):
    """No official schedule is known for the year."""

    def __init__(self, year: int) -> None:
        super().__init__(
            f"no holiday schedule is known for {year}: load the State Council's schedule "
            f"for {year} (holidays and make-up working days) before computing deadlines in it")
        self.year = year


@dataclass(frozen=True)
class YearSchedule:
    """One year's official schedule: days off on weekdays, and working weekend days."""

    year: int
    holidays: frozenset[date]
    makeup_workdays: frozenset[date]

    def __post_init__(self) -> None:
        for day in (*self.holidays, *self.makeup_workdays):
            if day.year != self.year:
                raise ValueError(f"{day.isoformat()} is not in {self.year}")
        overlap = self.holidays & self.makeup_workdays
        if overlap:
            raise ValueError(
                f"{min(overlap).isoformat()} is both a holiday and a make-up working day")
        for day in self.makeup_workdays:
            if day.weekday() < 5:
                raise ValueError(f"make-up working day {day.isoformat()} is not a weekend day")


@dataclass
class WorkingCalendar:
    """Working days by the built-in schedules plus any loaded ones (loaded ones win)."""

    loaded: dict[int, YearSchedule] = field(default_factory=dict)

    @classmethod
    def with_schedules(cls, schedules: Iterable[YearSchedule]) -> WorkingCalendar:
        return cls({s.year: s for s in schedules})

    def knows(self, year: int) -> bool:
        return year in self.loaded or year in BUILT_IN_YEARS

    def is_working_day(self, day: date) -> bool:
        schedule = self.loaded.get(day.year)
        if schedule is not None:
            if day in schedule.makeup_workdays:
                return True
            if day in schedule.holidays:
                return False
            return day.weekday() < 5
        if day.year not in BUILT_IN_YEARS:
            raise UnknownYearError(day.year)
        return bool(chinese_calendar.is_workday(day))

    def add_working_days(self, start: date, days: int) -> date:
        """The date ``days`` working days after ``start`` (``start`` itself not counted)."""
        if days < 0:
            raise ValueError("days must not be negative")
        current = start
        remaining = days
        while remaining:
            current += timedelta(days=1)
            if self.is_working_day(current):
                remaining -= 1
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end``."""
        if end <= start:
            return 0
        count = 0
        current = start
        while current < end:
            current += timedelta(days=1)
            count += self.is_working_day(current)
        return count
