"""A complaint's deadlines: the versioned deadline policy and the center's working time.

Counting rules (DESIGN.md §3, the Guangdong 12345 defaults):

- Working time is 09:00–12:00 and 13:30–17:30 in China (Asia/Shanghai) on
  the working days of China's official calendar (kernel.calendar: weekends,
  public holidays and make-up working weekends).
- The sign-for deadline is ``sign_for_working_hours`` of working time after
  the case arrives (a case arriving outside working time starts counting at
  the next working period); an urgent case's is ``urgent_sign_for_minutes``
  clock minutes.
- The reply deadline is the end of working time (17:30) on the day
  ``reply_days[class]`` working days after the day the case arrives (that day
  itself is not counted); an urgent case's is ``urgent_reply_hours`` clock
  hours after it arrives.
- The rating window closes at the end of working time ``rating_window_days``
  working days after the reply; an unsatisfied rating's re-handling is due
  ``reopen_reply_days`` working days after the rating.
- An extension of N working days moves the reply deadline to the end of
  working time N working days after the day it stood on.
- A day in a year without a holiday schedule is taken as a working day from
  Monday to Friday, and the first such year is named in ``unknown_year``:
  the deadline is then provisional and flagged, never silently guessed.

A policy is versioned: an operator sets a new version, and a case keeps the
version it was opened under.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from kernel.calendar import UnknownYearError, WorkingCalendar
from kernel.chinatime import CHINA
from kernel.errors import FieldViolation, InvalidArgument

#: The periods of a working day, in China's local time.
WORKING_PERIODS: tuple[tuple[time, time], ...] = ((time(9, 0), time(12, 0)),
                                                   (time(13, 30), time(17, 30)))
#: Deadline classes a policy gives a reply period in working days (urgent is in hours).
DAY_CLASSES = ("consultation", "request", "complaint")
#: The limits a policy may set, so that a typing error cannot put a case years away.
MAX_DAYS = 60
MAX_HOURS = 72
MAX_MINUTES = 24 * 60


@dataclass(frozen=True)
class DeadlinePolicy:
    """One version of the deadline policy (the defaults are version 1)."""

    version: int = 1
    consultation_days: int = 2
    request_days: int = 10
    complaint_days: int = 15
    urgent_reply_hours: int = 2
    sign_for_working_hours: int = 4
    urgent_sign_for_minutes: int = 30
    rating_window_days: int = 5
    reopen_reply_days: int = 15
    max_extension_days: int = 10

    def __post_init__(self) -> None:
        problems: list[FieldViolation] = []
        for name in ("consultation_days", "request_days", "complaint_days",
                     "rating_window_days", "reopen_reply_days", "max_extension_days"):
            if not 1 <= getattr(self, name) <= MAX_DAYS:
                problems.append(FieldViolation(name, f"must be 1 to {MAX_DAYS} working days"))
        for name in ("urgent_reply_hours", "sign_for_working_hours"):
            if not 1 <= getattr(self, name) <= MAX_HOURS:
                problems.append(FieldViolation(name, f"must be 1 to {MAX_HOURS} hours"))
        if not 1 <= self.urgent_sign_for_minutes <= MAX_MINUTES:
            problems.append(FieldViolation("urgent_sign_for_minutes",
                                           f"must be 1 to {MAX_MINUTES} minutes"))
        if self.version < 1:
            problems.append(FieldViolation("version", "must be 1 or more"))
        if problems:
            raise InvalidArgument(
                "the deadline policy is not valid: "
                + "; ".join(f"{p.field} {p.description}" for p in problems),
                violations=problems)

    def reply_days(self, deadline_class: str) -> int:
        """Working days to reply for a non-urgent deadline class."""
        days = {"consultation": self.consultation_days, "request": self.request_days,
                "complaint": self.complaint_days}
        if deadline_class not in days:
            raise ValueError(f"{deadline_class!r} is not a deadline class counted in days")
        return days[deadline_class]


@dataclass
class _Provisional(WorkingCalendar):
    """The working calendar, taking Monday to Friday for a year it has no schedule of."""

    #: The calendar asked first (it may read schedules loaded in review on the way).
    within: WorkingCalendar = field(default_factory=WorkingCalendar)
    unknown_years: set[int] = field(default_factory=set)

    def is_working_day(self, day: date) -> bool:
        try:
            return self.within.is_working_day(day)
        except UnknownYearError as gap:
            self.unknown_years.add(gap.year)
            return day.weekday() < 5


@dataclass(frozen=True)
class Due:
    """A deadline as an instant in UTC, and the first year it had to guess (0 if none)."""

    at: datetime
    unknown_year: int = 0


def _aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("an instant must carry its time zone")


def _provisional(calendar: WorkingCalendar) -> _Provisional:
    return _Provisional(within=calendar)


def _due(calendar: _Provisional, at: datetime) -> Due:
    return Due(at.astimezone(UTC), min(calendar.unknown_years, default=0))


def end_of_working_day(day: date) -> datetime:
    """The end of working time (17:30) on ``day`` in China, as an instant in UTC."""
    return datetime.combine(day, WORKING_PERIODS[-1][1], tzinfo=CHINA).astimezone(UTC)


def after_working_days(calendar: WorkingCalendar, start: datetime, days: int) -> Due:
    """The end of working time on the day ``days`` working days after ``start``'s day."""
    _aware(start)
    provisional = _provisional(calendar)
    day = provisional.add_working_days(start.astimezone(CHINA).date(), days)
    return _due(provisional, end_of_working_day(day))


def after_working_time(calendar: WorkingCalendar, start: datetime, minutes: int) -> Due:
    """The instant ``minutes`` of working time after ``start``."""
    _aware(start)
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    provisional = _provisional(calendar)
    local = start.astimezone(CHINA)
    day = local.date()
    remaining = timedelta(minutes=minutes)
    moment = local
    while True:
        if provisional.is_working_day(day):
            for opens, closes in WORKING_PERIODS:
                period_start = datetime.combine(day, opens, tzinfo=CHINA)
                period_end = datetime.combine(day, closes, tzinfo=CHINA)
                begin = max(period_start, moment)
                if begin >= period_end:
                    continue
                available = period_end - begin
                if remaining <= available:
                    return _due(provisional, begin + remaining)
                remaining -= available
        day += timedelta(days=1)
        moment = datetime.combine(day, time(0, 0), tzinfo=CHINA)


@dataclass(frozen=True)
class CaseClock:
    """A case's first deadlines."""

    sign_for_due: datetime
    reply_due: datetime
    unknown_year: int = 0


def opening_clock(policy: DeadlinePolicy, calendar: WorkingCalendar, *, deadline_class: str,
                  received_at: datetime) -> CaseClock:
    """The sign-for and reply deadlines of a case of ``deadline_class`` arriving now."""
    _aware(received_at)
    if deadline_class == "urgent":
        return CaseClock(
            (received_at + timedelta(minutes=policy.urgent_sign_for_minutes)).astimezone(UTC),
            (received_at + timedelta(hours=policy.urgent_reply_hours)).astimezone(UTC))
    sign_for = after_working_time(calendar, received_at, policy.sign_for_working_hours * 60)
    reply = after_working_days(calendar, received_at, policy.reply_days(deadline_class))
    unknown = [y for y in (sign_for.unknown_year, reply.unknown_year) if y]
    return CaseClock(sign_for.at, reply.at, min(unknown, default=0))


def sign_for_due(policy: DeadlinePolicy, calendar: WorkingCalendar, *, urgent: bool,
                 routed_at: datetime) -> Due:
    """The sign-for deadline of a case routed (again) at ``routed_at``."""
    if urgent:
        return Due((routed_at + timedelta(minutes=policy.urgent_sign_for_minutes))
                   .astimezone(UTC))
    return after_working_time(calendar, routed_at, policy.sign_for_working_hours * 60)


def rating_closes(policy: DeadlinePolicy, calendar: WorkingCalendar, *,
                  replied_at: datetime) -> Due:
    return after_working_days(calendar, replied_at, policy.rating_window_days)


def reopened_reply_due(policy: DeadlinePolicy, calendar: WorkingCalendar, *,
                       rated_at: datetime) -> Due:
    return after_working_days(calendar, rated_at, policy.reopen_reply_days)


def extended_reply_due(calendar: WorkingCalendar, *, reply_due: datetime, days: int) -> Due:
    """The reply deadline moved ``days`` working days on from the day it stood on."""
    if days < 1:
        raise ValueError("an extension is of one working day or more")
    return after_working_days(calendar, reply_due, days)
