"""Complaints whose deadlines guessed a year: recomputed once the year's schedule is loaded.

A deadline that falls in a year without a holiday schedule is counted
Monday to Friday and the case is flagged (``unknown_year``, see
services/complaints/domain/policy.py). Once operators load that year in
review (kernel/holiday_schedules.py), ``DeadlineRecompute`` (a task of the
service's process, once at start and every ``interval_seconds``) finds the
open cases flagged with a year now known and recomputes their running
deadlines by the case's own policy version and from the same start instants
as first computed:

- the sign-for due from when the case was routed: received, or the
  dispatcher's last decision on a return (``complaint_returns.decided_at``);
- the reply due from when the case was received (an urgent case's in clock
  hours) or, once reopened, from the rating (``rated_at``), moved on by each
  extension granted since, in the order granted (as recorded);
- the rating window from the reply (``replied_at``), while it runs.

Each case changed in ONE transaction: the columns, the flag (cleared, or the
next year still unknown), a case event ``complaint.deadlines_recomputed``
and an audit entry. Then the case's workflow is told (signal
``deadlines_changed``); the signal only wakes it, and it reads the dues
from the service (activity ``complaints.read_dues``, ``read_dues`` here):
Temporal carries work, not authority. A workflow not told (Temporal away)
is told at the next round; after a restart every open case recomputed once
is told again (the workflow reads the same dues: nothing changes).
Escalations already made stay made. A workflow's timer on a due the
recompute moved may fire before the workflow has read the new dues: the
escalation activity checks the dues as recomputed (recording.mark_overdue)
and records nothing, no violation either, while the new due has not passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from temporalio.service import RPCError, RPCStatusCode

from kernel.audit import Actor
from kernel.calendar import WorkingCalendar
from kernel.errors import NotFound
from kernel.holiday_schedules import HolidaySchedules
from kernel.workflow_gateway import WorkflowGateway
from services.complaints.app.recording import (
    DEADLINES_RECOMPUTED,
    WORKFLOWS,
    _policy,
    _recorded,
)
from services.complaints.db.repository import CaseHandling, ComplaintsUnitOfWork
from services.complaints.domain import policy as clock
from services.complaints.domain.cases import ComplaintEvent, ComplaintStatus
from workflows.complaint_contract import (
    DEADLINES_CHANGED,
    ActRecorded,
    DeadlinesChanged,
    DuesRequest,
    workflow_id,
)

log = structlog.get_logger("govhall.complaints.deadlines")

UnitOfWorkFactory = Callable[[], ComplaintsUnitOfWork]

#: The stages in which a deadline runs.
OPEN = (ComplaintStatus.ROUTED, ComplaintStatus.HANDLING, ComplaintStatus.RETURNED,
        ComplaintStatus.REPLIED)
#: The stages in which the reply deadline runs.
REPLY_RUNS = (ComplaintStatus.ROUTED, ComplaintStatus.HANDLING, ComplaintStatus.RETURNED)
#: The case event (and audit action) of a recompute.
RECOMPUTED = DEADLINES_RECOMPUTED
DUE_COLUMNS = ("sign_for_due", "reply_due", "rating_closes")


@dataclass(frozen=True)
class Recomputed:
    """A case's running deadlines as computed again, and the first year still guessed."""

    dues: dict[str, datetime]
    unknown_year: int


def recomputed_dues(unit: ComplaintsUnitOfWork, case: CaseHandling,
                    calendar: WorkingCalendar) -> Recomputed:
    """The running deadlines of ``case`` computed again, as first computed, with ``calendar``."""
    policy = _policy(unit, case)
    found: dict[str, clock.Due] = {}
    if case.status == ComplaintStatus.ROUTED:
        routed_at = unit.returns.last_decided_at(case.case_number) or case.received_at
        found["sign_for_due"] = clock.sign_for_due(policy, calendar, urgent=case.urgent,
                                                   routed_at=routed_at)
    if case.status in REPLY_RUNS:
        since = case.received_at
        if case.reopened and case.rated_at is not None:
            since = case.rated_at
            due = clock.reopened_reply_due(policy, calendar, rated_at=case.rated_at)
        elif case.deadline_class == "urgent":
            opening = clock.opening_clock(policy, calendar, deadline_class="urgent",
                                          received_at=case.received_at)
            due = clock.Due(opening.reply_due)
        else:
            due = clock.after_working_days(calendar, case.received_at,
                                           policy.reply_days(case.deadline_class))
        unknown = [due.unknown_year] if due.unknown_year else []
        for extension in unit.extensions.of_case(case.case_number):
            if extension.granted_days and extension.decided_at is not None \
                    and extension.decided_at >= since:
                due = clock.extended_reply_due(calendar, reply_due=due.at,
                                               days=extension.granted_days)
                unknown += [due.unknown_year] if due.unknown_year else []
        found["reply_due"] = clock.Due(due.at, min(unknown, default=0))
    if case.status == ComplaintStatus.REPLIED and case.replied_at is not None:
        found["rating_closes"] = clock.rating_closes(policy, calendar,
                                                     replied_at=case.replied_at)
    years = [d.unknown_year for d in found.values() if d.unknown_year]
    return Recomputed({name: d.at for name, d in found.items()}, min(years, default=0))


def flagged_years(*, uow: UnitOfWorkFactory) -> set[int]:
    """The years open cases' deadlines had to guess."""
    with uow() as unit:
        return {case.unknown_year for case in unit.handling.flagged(OPEN)}


def recompute_known(*, uow: UnitOfWorkFactory, calendar: WorkingCalendar,
                    known: set[int], now: datetime) -> list[str]:
    """Recompute every open case flagged with a year in ``known``; the cases changed.

    One transaction per case; a case that fails is logged and left flagged for
    the next round.
    """
    with uow() as unit:
        numbers = [case.case_number for case in unit.handling.flagged(OPEN)
                   if case.unknown_year in known]
    changed = []
    for number in numbers:
        try:
            if recompute_case(uow=uow, case_number=number, calendar=calendar, known=known,
                              now=now):
                changed.append(number)
        except Exception:  # one case's trouble must not stop the others
            log.exception("complaint.recompute_failed", case_number=number)
    return changed


def recompute_case(*, uow: UnitOfWorkFactory, case_number: str, calendar: WorkingCalendar,
                   known: set[int], now: datetime) -> bool:
    """Recompute one flagged case (locked, checked again); whether it was recorded."""
    with uow() as unit:
        case = unit.handling.get(case_number, for_update=True)
        if case is None or case.status not in OPEN or case.unknown_year not in known:
            return False
        found = recomputed_dues(unit, case, calendar)
        before = {name: getattr(case, name) for name in found.dues}
        columns: dict[str, Any] = dict(found.dues)
        after = replace(case, unknown_year=found.unknown_year, **columns)
        unit.handling.save(after)
        details: dict[str, str] = {"calendar_gap_year": str(case.unknown_year),
                                   "still_unknown_year": str(found.unknown_year)}
        for name, due in found.dues.items():
            old = before[name]
            details[f"{name}_was"] = old.isoformat() if old is not None else ""
            details[name] = due.isoformat()
        unit.events.add([ComplaintEvent(case.case_number,
                                        unit.events.last_sequence(case.case_number) + 1,
                                        RECOMPUTED, now, details)])
        unit.audit.append(actor=Actor(WORKFLOWS), action=RECOMPUTED,
                          subject=f"complaint/{case.case_number}", at=now,
                          details={**details, "policy_version": case.policy_version or 0})
        unit.commit()
    log.info("complaint.deadlines_recomputed", case_number=case_number,
             calendar_gap_year=case.unknown_year, still_unknown_year=found.unknown_year)
    return True


def recomputed_open_cases(*, uow: UnitOfWorkFactory) -> list[str]:
    """Open cases whose deadlines were recomputed once (to tell again after a restart)."""
    with uow() as unit:
        return unit.handling.with_event(RECOMPUTED, OPEN)


def read_dues(*, uow: UnitOfWorkFactory, request: DuesRequest) -> ActRecorded:
    """The case's running deadlines as recorded now (for its workflow; nothing written)."""
    with uow() as unit:
        case = unit.handling.get(request.case_number)
        if case is None:
            raise NotFound(f"complaint case {request.case_number} is not in the complaints "
                           "database")
        return _recorded(case, [])


@dataclass
class DeadlineRecompute:
    """Recomputes flagged cases once their year is known and tells their workflows."""

    reading: UnitOfWorkFactory
    writing: UnitOfWorkFactory
    schedules: HolidaySchedules
    gateway: WorkflowGateway
    #: Seconds between rounds (the first runs at start).
    interval_seconds: float = 300.0
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: Cases whose workflow is still to be told.
    untold: set[str] = field(default_factory=set)
    _first: bool = field(default=True, init=False, repr=False)

    async def run_once(self) -> list[str]:
        """One round: recompute what can be, tell the workflows; the cases recomputed."""
        if self._first:
            self.untold.update(await asyncio.to_thread(recomputed_open_cases,
                                                       uow=self.reading))
            self._first = False
        years = await asyncio.to_thread(flagged_years, uow=self.reading)
        # A flagged year review may have loaded since the copy was read: asked at once.
        known = {year for year in years
                 if await asyncio.to_thread(self.schedules.knows_after_asking, year)}
        changed: list[str] = []
        if known:
            changed = await asyncio.to_thread(
                recompute_known, uow=self.writing,
                calendar=self.schedules.working_calendar(), known=known, now=self.now())
        self.untold.update(changed)
        await self.tell()
        return changed

    async def tell(self) -> None:
        """Signal each untold case's workflow; the ones Temporal does not take stay untold."""
        for number in sorted(self.untold):
            try:
                handle = await self.gateway.handle(workflow_id(number))
                await handle.signal(DEADLINES_CHANGED, DeadlinesChanged(number))
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    self.untold.discard(number)  # finished (or never started): nothing runs
                    continue
                log.warning("complaint.deadlines_untold", case_number=number,
                            status=error.status.name)
                return
            except Exception as error:  # Temporal out of reach: the next round tells
                log.warning("complaint.deadlines_untold", case_number=number,
                            error=type(error).__name__)
                return
            self.untold.discard(number)

    async def run(self) -> None:
        """Until cancelled: a round at start, then every ``interval_seconds``."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database outage, a bug: keep the task alive
                log.exception("complaint.recompute_round_failed")
            await asyncio.sleep(self.interval_seconds)
