"""Leaders' delegations and the holiday schedules deadlines rest on (DESIGN.md §1).

A leader's signing authority may pass to a deputy of the same department,
explicitly, on the record and for a bounded time. The holiday schedule of
a year the built-in calendar does not know is loaded by an operator; a
deadline falling in a year nobody loaded is flagged, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from kernel.calendar import UnknownYearError, WorkingCalendar, YearSchedule
from kernel.chinatime import CHINA
from kernel.directory import Official
from kernel.errors import FailedPrecondition, FieldViolation, InvalidArgument, PermissionDenied

#: The longest a delegation may last. A longer absence calls for a new
#: leader in the directory, not a standing delegation.
MAX_DELEGATION = timedelta(days=90)

#: How far before the moment of granting a delegation may begin, to absorb the
#: difference between the calling system's clock and ours. Anything earlier
#: would cover signatures after the fact.
CLOCK_TOLERANCE = timedelta(minutes=5)

MAX_REASON_LENGTH = 200

DELEGATION_STATES = ("scheduled", "in_force", "ended", "revoked")


def _aware(moment: datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset() is not None


def _check_reason(reason: str, field: str) -> None:
    if not reason.strip() or len(reason) > MAX_REASON_LENGTH:
        raise InvalidArgument(
            f"{field} must be 1 to {MAX_REASON_LENGTH} characters and not blank",
            violations=[FieldViolation(field, "must be 1 to 200 characters and not blank")])


@dataclass(frozen=True)
class Delegation:
    """A leader's signing authority held by a deputy from valid_from until valid_until.

    valid_until itself is not covered, so back-to-back delegations never
    overlap.
    """

    leader_id: str
    deputy_id: str
    department_code: str
    valid_from: datetime
    valid_until: datetime
    reason: str
    granted_at: datetime
    #: Given by the database; 0 until stored.
    id: int = 0
    revoked_at: datetime | None = None
    revoked_by: str = ""
    revocation_reason: str = ""

    def __post_init__(self) -> None:
        instants = (self.valid_from, self.valid_until, self.granted_at,
                    *((self.revoked_at,) if self.revoked_at else ()))
        if not all(_aware(moment) for moment in instants):
            raise ValueError("delegation times must carry a time zone")
        problems: list[FieldViolation] = []
        if self.leader_id == self.deputy_id:
            problems.append(FieldViolation("deputy_id", "a leader cannot be their own deputy"))
        if self.valid_until <= self.valid_from:
            problems.append(FieldViolation("period", "valid_until must be after valid_from"))
        elif self.valid_until - self.valid_from > MAX_DELEGATION:
            problems.append(FieldViolation("period", "a delegation may last at most 90 days"))
        if problems:
            raise InvalidArgument(
                "the delegation is not valid: "
                + "; ".join(f"{p.field}: {p.description}" for p in problems),
                violations=problems)
        _check_reason(self.reason, "reason")

    @property
    def effective_until(self) -> datetime:
        """When the deputy's authority really ends: at revocation if that came first."""
        if self.revoked_at is not None and self.revoked_at < self.valid_until:
            return self.revoked_at
        return self.valid_until

    def in_force_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment < self.effective_until

    def state_at(self, moment: datetime) -> str:
        if self.revoked_at is not None and moment >= self.revoked_at:
            return "revoked"
        if moment < self.valid_from:
            return "scheduled"
        if moment < self.valid_until:
            return "in_force"
        return "ended"

    def overlaps(self, other: Delegation) -> bool:
        return (self.valid_from < other.effective_until
                and other.valid_from < self.effective_until)


def _period_text(delegation: Delegation) -> str:
    start = delegation.valid_from.astimezone(CHINA).isoformat(timespec="minutes")
    end = delegation.effective_until.astimezone(CHINA).isoformat(timespec="minutes")
    return f"{start} to {end}"


def check_deputy(leader: Official, deputy: Official) -> None:
    """A deputy is another leader of the leader's own department."""
    if deputy.id == leader.id:
        raise InvalidArgument(
            "a leader cannot delegate to themselves: name a deputy",
            violations=[FieldViolation("deputy_id", "must not be the delegating leader")])
    if deputy.department_code != leader.department_code:
        raise FailedPrecondition(
            f"official {deputy.id} belongs to {deputy.department_code}, not to "
            f"{leader.department_code}: a leader delegates only to a deputy of the same "
            "department")
    if "leader" not in deputy.roles:
        raise FailedPrecondition(
            f"official {deputy.id} holds no leader role: signing is delegated only to "
            "another leader of the department, never to a reviewer or clerk")


def grant_delegation(*, leader: Official, deputy: Official, valid_from: datetime | None,
                     valid_until: datetime, reason: str, now: datetime,
                     leaders_delegations: Iterable[Delegation]) -> Delegation:
    """A new delegation from ``leader`` to ``deputy``, checked against the leader's others.

    ``valid_from`` None means from ``now``.
    """
    if "leader" not in leader.roles:
        raise PermissionDenied(f"official {leader.id} does not hold the role leader")
    check_deputy(leader, deputy)
    start = now if valid_from is None else valid_from
    if start < now - CLOCK_TOLERANCE:
        raise InvalidArgument(
            "a delegation cannot begin before it is granted: signatures already made are "
            "not covered after the fact; leave valid_from unset to begin now",
            violations=[FieldViolation("period.valid_from", "must not lie in the past")])
    delegation = Delegation(
        leader_id=leader.id, deputy_id=deputy.id, department_code=leader.department_code,
        valid_from=start, valid_until=valid_until, reason=reason, granted_at=now)
    for existing in leaders_delegations:
        if existing.leader_id == leader.id and existing.overlaps(delegation):
            raise FailedPrecondition(
                f"official {leader.id} has already delegated to {existing.deputy_id} from "
                f"{_period_text(existing)} (delegation {existing.id}): revoke it or choose "
                "a time that does not overlap")
    return delegation


def revoke_delegation(delegation: Delegation, *, by: Official, reason: str,
                      now: datetime) -> Delegation:
    """``delegation`` ended at ``now`` by ``by``: the leader who granted it, or an operator."""
    if by.id != delegation.leader_id and "operator" not in by.roles:
        raise PermissionDenied(
            f"official {by.id} may not revoke delegation {delegation.id}: only the leader "
            f"who granted it ({delegation.leader_id}) or an operator may")
    _check_reason(reason, "reason")
    if delegation.revoked_at is not None:
        raise FailedPrecondition(
            f"delegation {delegation.id} was already revoked at "
            f"{delegation.revoked_at.astimezone(CHINA).isoformat(timespec='seconds')}")
    if delegation.valid_until <= now:
        raise FailedPrecondition(
            f"delegation {delegation.id} ended at "
            f"{delegation.valid_until.astimezone(CHINA).isoformat(timespec='seconds')}: "
            "there is nothing left to revoke")
    return replace(delegation, revoked_at=now, revoked_by=by.id, revocation_reason=reason)


@dataclass(frozen=True)
class LoadedSchedule:
    """A year's official schedule as an operator loaded it."""

    schedule: YearSchedule
    loaded_at: datetime
    loaded_by: str


def year_schedule(year: int, *, holidays: Sequence[date],
                  makeup_workdays: Sequence[date]) -> YearSchedule:
    """One year's schedule, refused with every wrong date named, not just the first."""
    problems: list[FieldViolation] = []
    for field, days in (("holidays", holidays), ("makeup_workdays", makeup_workdays)):
        for day in days:
            if day.year != year:
                problems.append(FieldViolation(field, f"{day.isoformat()} is not in {year}"))
    for day in sorted(set(holidays) & set(makeup_workdays)):
        problems.append(FieldViolation(
            "makeup_workdays", f"{day.isoformat()} is also listed as a holiday"))
    for day in makeup_workdays:
        if day.weekday() < 5:
            problems.append(FieldViolation(
                "makeup_workdays", f"{day.isoformat()} is a weekday, not a weekend day"))
    if problems:
        raise InvalidArgument(
            f"the holiday schedule for {year} is not valid: "
            + "; ".join(f"{p.field}: {p.description}" for p in problems),
            violations=problems)
    try:
        return YearSchedule(year, frozenset(holidays), frozenset(makeup_workdays))
    except ValueError as error:  # a rule of the calendar's that the checks above missed
        raise InvalidArgument(f"the holiday schedule for {year} is not valid: {error}") from error


@dataclass(frozen=True)
class Deadline:
    """A due date, or the year that stopped it from being computed."""

    due_date: date | None
    unknown_year: int = 0
    message: str = ""


def working_day_deadline(calendar: WorkingCalendar, *, start: date,
                         working_days: int) -> Deadline:
    """The date ``working_days`` working days after ``start``, or why it is unknown."""
    if working_days < 0:
        raise InvalidArgument("working_days must not be negative",
                              violations=[FieldViolation("working_days", "must be 0 or more")])
    try:
        return Deadline(calendar.add_working_days(start, working_days))
    except UnknownYearError as error:
        return Deadline(None, error.year, str(error))
