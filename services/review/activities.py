"""Activities the review service hosts on its own task queue (govhall-review).

Workflows compute deadlines in working days, look up officials, and keep the
inbox, the decisions and the escalations of the approval chain through
these, so workflow code stays deterministic and never touches a database.
The approval chain's activities take and give the dataclasses of
workflows/approval_contract.py; each may be retried and records once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine
from temporalio import activity

from kernel.activities import run_use_case
from kernel.chinatime import china_date
from kernel.errors import FieldViolation, InvalidArgument
from services.review.app import handlers
from services.review.db.repository import ReviewUnitOfWork
from services.review.domain.deadlines import Pause
from services.review.domain.tasks import RecordedDecision
from workflows.approval_contract import (
    CASE_DEADLINES,
    CLOSE_TASK,
    OPEN_ESCALATION,
    OPEN_TASK,
    RECORD_DECISION,
    CaseDeadlinesInput,
    Deadlines,
    DecisionRecord,
    EscalationOpening,
    TaskClosing,
    TaskOpening,
)


@dataclass(frozen=True)
class DeadlineRequest:
    """Count ``working_days`` working days after ``start`` (``start`` itself not counted)."""

    start: date
    working_days: int


@dataclass(frozen=True)
class DeadlineResult:
    """The due date, or, when a year on the way has no schedule, that year and why.

    A workflow flags ``year_unknown`` to the operators instead of guessing.
    """

    due_date: date | None
    year_unknown: bool = False
    unknown_year: int = 0
    message: str = ""


@dataclass(frozen=True)
class OfficialLookup:
    official_id: str


@dataclass(frozen=True)
class OfficialRoles:
    """What a workflow needs of an official to keep the duties of one case apart."""

    official_id: str
    department_code: str
    roles: list[str]


def _day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise InvalidArgument(f"{field} {text!r} is not a date",
                              violations=[FieldViolation(field, "not a date")]) from error


def _aware(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None:
        raise InvalidArgument(f"{field} must carry a time zone",
                              violations=[FieldViolation(field, "no time zone")])
    return moment


def _pauses(request: CaseDeadlinesInput) -> list[Pause]:
    return [Pause(span.procedure, _day(span.start_on, f"paused[{index}].start_on"),
                  _day(span.end_on, f"paused[{index}].end_on") if span.end_on else None)
            for index, span in enumerate(request.paused)]


class ReviewActivities:
    def __init__(self, engine: Engine,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._clock = clock

    def _reading(self) -> ReviewUnitOfWork:
        return ReviewUnitOfWork(self._engine, write=False)

    def _writing(self) -> ReviewUnitOfWork:
        return ReviewUnitOfWork(self._engine)

    @activity.defn(name=CASE_DEADLINES)
    async def case_deadlines(self, request: CaseDeadlinesInput) -> Deadlines:
        """The case's deadlines (see services/review/domain/deadlines.py for the rules).

        A year with no schedule does not fail the activity: its deadlines come
        back provisional, counted Monday to Friday, with ``unknown_year`` set.
        """
        today = china_date(self._clock())

        def compute() -> Deadlines:
            found = handlers.case_deadlines(
                uow=self._reading(), accepted_on=_day(request.accepted_on, "accepted_on"),
                promised_limit_days=request.promised_limit_days,
                legal_limit_days=request.legal_limit_days,
                extension_days=request.extension_days, pauses=_pauses(request), today=today)
            return Deadlines(found.warning_at, found.promised_due_at, found.legal_due_at,
                             found.unknown_year, dict(found.stage_due_at))

        return await run_use_case(compute)

    @activity.defn(name=OPEN_TASK)
    async def open_task(self, opening: TaskOpening) -> None:
        now = self._clock()
        await run_use_case(lambda: handlers.open_task(
            uow=self._writing(), case_number=opening.case_number, stage=opening.stage,
            department_code=opening.department_code, role=opening.role,
            item_code=opening.item_code, due_at=_aware(opening.due_at, "due_at"), now=now))

    @activity.defn(name=CLOSE_TASK)
    async def close_task(self, closing: TaskClosing) -> None:
        now = self._clock()
        await run_use_case(lambda: handlers.close_task(
            uow=self._writing(), case_number=closing.case_number, stage=closing.stage,
            official_id=closing.official_id, outcome=closing.outcome, now=now))

    @activity.defn(name=RECORD_DECISION)
    async def record_decision(self, record: DecisionRecord) -> None:
        now = self._clock()

        def keep() -> bool:
            decision = RecordedDecision(
                case_number=record.case_number, stage=record.stage, outcome=record.outcome,
                official_id=record.official_id, system=record.system,
                decided_at=_aware(record.decided_at, "decided_at"), opinion=record.opinion,
                legal_basis=record.legal_basis, on_behalf_of=record.on_behalf_of,
                delegation_id=record.delegation_id)
            return handlers.record_decision(uow=self._writing(), decision=decision, now=now)

        await run_use_case(keep)

    @activity.defn(name=OPEN_ESCALATION)
    async def open_escalation(self, opening: EscalationOpening) -> None:
        now = self._clock()
        await run_use_case(lambda: handlers.open_escalation(
            uow=self._writing(), case_number=opening.case_number,
            department_code=opening.department_code, stage=opening.stage, kind=opening.kind,
            due_at=_aware(opening.due_at, "due_at"), now=now))

    @activity.defn(name="review.compute_deadline")
    async def compute_deadline(self, request: DeadlineRequest) -> DeadlineResult:
        deadline = await run_use_case(
            handlers.compute_deadline, uow=self._reading(), start=request.start,
            working_days=request.working_days)
        return DeadlineResult(due_date=deadline.due_date,
                              year_unknown=bool(deadline.unknown_year),
                              unknown_year=deadline.unknown_year, message=deadline.message)

    @activity.defn(name="review.official_roles")
    async def official_roles(self, lookup: OfficialLookup) -> OfficialRoles:
        official = await run_use_case(
            handlers.find_official, uow=self._reading(), official_id=lookup.official_id)
        return OfficialRoles(official_id=official.id, department_code=official.department_code,
                             roles=sorted(official.roles))


def activities(engine: Engine, _settings: Any) -> Sequence[Callable[..., Any]]:
    hosted = ReviewActivities(engine)
    return [hosted.compute_deadline, hosted.official_roles, hosted.case_deadlines,
            hosted.open_task, hosted.close_task, hosted.record_decision,
            hosted.open_escalation]
