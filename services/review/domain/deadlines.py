"""A case's deadlines in working days of China's official calendar (DESIGN.md §1).

Counting rules, all in working days:

- The promised deadline is the end of the working day ``promised_limit_days
  + paused`` working days after the acceptance day (the acceptance day itself
  is not counted), the legal deadline the end of the working day
  ``legal_limit_days + extension_days + paused`` working days after it.
- The case turns yellow at the end of the working day before the promised
  deadline's day: ``promised_limit_days + paused - 1`` working days after
  acceptance. With a promised limit of one working day that is the end of the
  acceptance day itself, so the warning is always strictly before the
  deadline.
- A special procedure (art. 45) that started on day S and ended on day E stops
  the clock for the working days after S up to and including E: the clock ran
  on the day the procedure began and stands still on the day it ended. A
  procedure still running counts up to and including today.
- Each stage has its own limit inside the promised one: the seal has the last
  working day, the signature the one before it, and the review the rest
  (``max(1, promised_limit_days - 2)`` working days); with a promised limit of
  one or two working days the later stages share the review's last day.
  Pauses push every stage's limit like the promised one.
- "The end of a day" is 23:59:59 in China (Asia/Shanghai), given as an instant in UTC.
- A day in a year without a holiday schedule (neither built in nor loaded) is
  taken as a working day from Monday to Friday, and the first such year is
  named in ``unknown_year``: the deadlines are then provisional and the case is
  flagged, never silently guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from kernel.calendar import UnknownYearError, WorkingCalendar
from kernel.chinatime import CHINA
from kernel.errors import FieldViolation, InvalidArgument

#: The last second of a working day in China.
END_OF_DAY = time(23, 59, 59)


@dataclass(frozen=True)
class Pause:
    """A stretch the clock stood still for a special procedure; ``end_on`` None while it lasts."""

    procedure: str
    start_on: date
    end_on: date | None = None


@dataclass(frozen=True)
class CaseDeadlines:
    warning_at: datetime
    promised_due_at: datetime
    legal_due_at: datetime
    #: The first year without a schedule a deadline was counted through; 0 if none.
    unknown_year: int = 0
    #: When each stage (review, sign, seal) is due, inside the promised limit.
    stage_due_at: dict[str, datetime] = field(default_factory=dict)


@dataclass
class ProvisionalCalendar(WorkingCalendar):
    """The working calendar, taking Monday to Friday for a year it has no schedule of.

    Every year it had to take so is kept in ``unknown_years``.
    """

    unknown_years: set[int] = field(default_factory=set)

    def is_working_day(self, day: date) -> bool:
        try:
            return super().is_working_day(day)
        except UnknownYearError as gap:
            self.unknown_years.add(gap.year)
            return day.weekday() < 5


def end_of_day(day: date) -> datetime:
    """23:59:59 of ``day`` in China, as an instant in UTC."""
    return datetime.combine(day, END_OF_DAY, tzinfo=CHINA).astimezone(UTC)


def _check(accepted_on: date, promised_limit_days: int, legal_limit_days: int,
           extension_days: int, pauses: Sequence[Pause]) -> None:
    problems: list[FieldViolation] = []
    if promised_limit_days < 1:
        problems.append(FieldViolation("promised_limit_days", "must be 1 or more"))
    if legal_limit_days < 1:
        problems.append(FieldViolation("legal_limit_days", "must be 1 or more"))
    if extension_days < 0:
        problems.append(FieldViolation("extension_days", "must be 0 or more"))
    previous_end: date | None = None
    for index, pause in enumerate(sorted(pauses, key=lambda p: p.start_on)):
        if pause.start_on < accepted_on:
            problems.append(FieldViolation(
                f"paused[{index}].start_on", "must not be before the acceptance day"))
        if pause.end_on is not None and pause.end_on < pause.start_on:
            problems.append(FieldViolation(
                f"paused[{index}].end_on", "must not be before start_on"))
        if previous_end is not None and pause.start_on < previous_end:
            problems.append(FieldViolation(
                f"paused[{index}].start_on", "overlaps the pause before it"))
        previous_end = pause.end_on or date.max
    if problems:
        raise InvalidArgument(
            "the case's deadlines cannot be computed: "
            + "; ".join(f"{p.field}: {p.description}" for p in problems),
            violations=problems)


def paused_working_days(calendar: WorkingCalendar, pauses: Sequence[Pause], *,
                        today: date) -> int:
    """The working days the clock stood still, by the rule in this module's docstring."""
    return sum(calendar.working_days_between(p.start_on, p.end_on or max(today, p.start_on))
               for p in pauses)


def case_deadlines(calendar: WorkingCalendar, *, accepted_on: date, promised_limit_days: int,
                   legal_limit_days: int, extension_days: int = 0,
                   pauses: Sequence[Pause] = (), today: date) -> CaseDeadlines:
    """The warning, promised and legal deadlines of a case accepted on ``accepted_on``."""
    _check(accepted_on, promised_limit_days, legal_limit_days, extension_days, pauses)
    provisional = ProvisionalCalendar(loaded=dict(calendar.loaded))
    paused = paused_working_days(provisional, pauses, today=today)
    promised = provisional.add_working_days(accepted_on, promised_limit_days + paused)
    warning = provisional.add_working_days(accepted_on, promised_limit_days + paused - 1)
    legal = provisional.add_working_days(accepted_on,
                                         legal_limit_days + extension_days + paused)
    review_days = max(1, promised_limit_days - 2)
    sign_days = min(promised_limit_days, review_days + 1)
    stage_due = {
        "review": end_of_day(provisional.add_working_days(accepted_on, review_days + paused)),
        "sign": end_of_day(provisional.add_working_days(accepted_on, sign_days + paused)),
        "seal": end_of_day(promised),
    }
    return CaseDeadlines(end_of_day(warning), end_of_day(promised), end_of_day(legal),
                         min(provisional.unknown_years, default=0), stage_due)
