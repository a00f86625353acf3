"""The review service's repositories and unit of work."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, func, insert, or_, select, update

from kernel import handled_requests as kernel_requests
from kernel.audit import AuditLog
from kernel.authority import AuthorityRecords
from kernel.calendar import YearSchedule
from kernel.db import MAX_INTEGER, UnitOfWork
from kernel.directory import Departments, Official, StaffDirectory, official_from_record
from services.review.db import tables
from services.review.domain.model import Delegation, LoadedSchedule
from services.review.domain.progress import CaseProgress, ChainEvent
from services.review.domain.tasks import Escalation, InboxScope, RecordedDecision, Task


class Staff(StaffDirectory):
    """The staff directory, which the review service owns and serves."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection, tables.officials)
        self._t = tables.officials

    def list(self, *, department_code: str, role: str, after: str,
             limit: int) -> list[Official]:
        query = select(self._t).where(self._t.c.id > after)
        if department_code:
            query = query.where(self._t.c.department_code == department_code)
        if role:
            # Roles are stored as a JSON list of quoted names; no role name
            # contains another in quotes, so this matches exactly one role.
            query = query.where(self._t.c.roles.contains(f'"{role}"', autoescape=True))
        rows = self._connection.execute(query.order_by(self._t.c.id).limit(limit))
        return [official_from_record(dict(r._mapping)) for r in rows]

    def lock(self, official_id: str) -> None:
        """Hold the official's row until commit, so that one leader's grants run one by one.

        SQLite needs nothing: a writing unit of work holds the database's
        write lock from its start.
        """
        self._connection.execute(
            select(self._t.c.id).where(self._t.c.id == official_id).with_for_update())


def _delegation(row: Row[Any]) -> Delegation:
    return Delegation(
        id=row.id, leader_id=row.leader_id, deputy_id=row.deputy_id,
        department_code=row.department_code, valid_from=row.valid_from,
        valid_until=row.valid_until, reason=row.reason, granted_at=row.granted_at,
        revoked_at=row.revoked_at, revoked_by=row.revoked_by,
        revocation_reason=row.revocation_reason)


class Delegations:
    """Repository of leaders' delegations; revoked ones are kept."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.delegations

    def get(self, delegation_id: int, *, for_update: bool = False) -> Delegation | None:
        """One delegation; ``for_update`` holds its row until commit (PostgreSQL)."""
        if not 0 < delegation_id <= MAX_INTEGER:
            return None  # no such id fits the column; PostgreSQL would refuse to compare it
        query = select(self._t).where(self._t.c.id == delegation_id)
        row = self._connection.execute(query.with_for_update() if for_update else query).first()
        return _delegation(row) if row else None

    def _in_force_at(self, moment: datetime) -> Any:
        return and_(self._t.c.valid_from <= moment, self._t.c.valid_until > moment,
                    or_(self._t.c.revoked_at.is_(None), self._t.c.revoked_at > moment))

    def of_leader_ending_after(self, leader_id: str, moment: datetime) -> list[Delegation]:
        """The leader's delegations not over by ``moment``, revoked or not."""
        rows = self._connection.execute(
            select(self._t).where(self._t.c.leader_id == leader_id,
                                  self._t.c.valid_until > moment)
            .order_by(self._t.c.id))
        return [_delegation(r) for r in rows]

    def in_force_involving(self, official_id: str, moment: datetime) -> list[Delegation]:
        """Delegations in force at ``moment`` with the official as leader or deputy."""
        rows = self._connection.execute(
            select(self._t).where(
                or_(self._t.c.leader_id == official_id, self._t.c.deputy_id == official_id),
                self._in_force_at(moment))
            .order_by(self._t.c.id))
        return [_delegation(r) for r in rows]

    def list(self, *, department_code: str, in_force_at: datetime | None, after: int,
             limit: int) -> list[Delegation]:
        query = select(self._t).where(self._t.c.id > after)
        if department_code:
            query = query.where(self._t.c.department_code == department_code)
        if in_force_at is not None:
            query = query.where(self._in_force_at(in_force_at))
        rows = self._connection.execute(query.order_by(self._t.c.id).limit(limit))
        return [_delegation(r) for r in rows]

    def add(self, delegation: Delegation) -> int:
        """Store a new delegation; returns the id the database gave it."""
        new_id = self._connection.execute(insert(self._t).returning(self._t.c.id).values(
            leader_id=delegation.leader_id, deputy_id=delegation.deputy_id,
            department_code=delegation.department_code, valid_from=delegation.valid_from,
            valid_until=delegation.valid_until, reason=delegation.reason,
            granted_at=delegation.granted_at, revoked_at=delegation.revoked_at,
            revoked_by=delegation.revoked_by,
            revocation_reason=delegation.revocation_reason)).scalar_one()
        return int(new_id)

    def record_revocation(self, delegation: Delegation) -> None:
        self._connection.execute(
            update(self._t).where(self._t.c.id == delegation.id).values(
                revoked_at=delegation.revoked_at, revoked_by=delegation.revoked_by,
                revocation_reason=delegation.revocation_reason))


class HolidaySchedules:
    """Repository of the year schedules operators loaded."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._years = tables.holiday_schedules
        self._dates = tables.holiday_dates

    def all(self) -> list[LoadedSchedule]:
        days: dict[int, dict[str, set[date]]] = defaultdict(
            lambda: {"holiday": set(), "makeup_workday": set()})
        for row in self._connection.execute(select(self._dates)):
            days[row.year][row.kind].add(row.day)
        return [
            LoadedSchedule(
                YearSchedule(row.year, frozenset(days[row.year]["holiday"]),
                             frozenset(days[row.year]["makeup_workday"])),
                row.loaded_at, row.loaded_by)
            for row in self._connection.execute(select(self._years).order_by(self._years.c.year))
        ]

    def exists(self, year: int) -> bool:
        return bool(self._connection.execute(
            select(func.count()).select_from(self._years).where(self._years.c.year == year)
        ).scalar_one())

    def put(self, loaded: LoadedSchedule) -> None:
        """Store ``loaded`` as its year's schedule, replacing any earlier one."""
        year = loaded.schedule.year
        self._connection.execute(delete(self._dates).where(self._dates.c.year == year))
        self._connection.execute(delete(self._years).where(self._years.c.year == year))
        self._connection.execute(insert(self._years).values(
            year=year, loaded_at=loaded.loaded_at, loaded_by=loaded.loaded_by))
        rows = [{"year": year, "day": day, "kind": "holiday"}
                for day in loaded.schedule.holidays]
        rows += [{"year": year, "day": day, "kind": "makeup_workday"}
                 for day in loaded.schedule.makeup_workdays]
        if rows:
            self._connection.execute(insert(self._dates), rows)





def _task(row: Row[Any]) -> Task:
    return Task(
        case_number=row.case_number, stage=row.stage, department_code=row.department_code,
        role=row.role, item_code=row.item_code, due_at=row.due_at, opened_at=row.opened_at,
        claimed_by=row.claimed_by, claimed_at=row.claimed_at, closed_at=row.closed_at,
        closed_by=row.closed_by, outcome=row.outcome)


@dataclass(frozen=True)
class InboxPosition:
    """The last task of a page, in the inbox's order."""

    due_at: datetime
    case_number: str
    stage: str


class Tasks:
    """Repository of inbox tasks; closed ones are kept."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.tasks

    def get(self, case_number: str, stage: str, *, for_update: bool = False) -> Task | None:
        query = select(self._t).where(self._t.c.case_number == case_number,
                                      self._t.c.stage == stage)
        row = self._connection.execute(query.with_for_update() if for_update else query).first()
        return _task(row) if row else None

    def add(self, task: Task) -> None:
        self._connection.execute(insert(self._t).values(
            case_number=task.case_number, stage=task.stage,
            department_code=task.department_code, role=task.role, item_code=task.item_code,
            due_at=task.due_at, opened_at=task.opened_at, claimed_by=task.claimed_by,
            claimed_at=task.claimed_at, closed_at=task.closed_at, closed_by=task.closed_by,
            outcome=task.outcome))

    def save(self, task: Task) -> None:
        """Store the changeable parts of a task: due time, claim and closing."""
        self._connection.execute(
            update(self._t).where(self._t.c.case_number == task.case_number,
                                  self._t.c.stage == task.stage)
            .values(due_at=task.due_at, claimed_by=task.claimed_by,
                    claimed_at=task.claimed_at, closed_at=task.closed_at,
                    closed_by=task.closed_by, outcome=task.outcome))

    def inbox(self, *, scope: InboxScope, claimed: str, official_id: str,
              after: InboxPosition | None, limit: int) -> list[Task]:
        """Open tasks in ``scope``, by due time then case number; ``claimed`` is
        "all", "unclaimed" or "mine"."""
        t = self._t
        query = select(t).where(t.c.closed_at.is_(None))
        if scope.oversight:
            query = query.where(t.c.stage.in_(scope.oversight_stages))
            if scope.oversight_department:
                query = query.where(t.c.department_code == scope.oversight_department)
        else:
            query = query.where(or_(*(and_(t.c.department_code == department,
                                           t.c.stage == stage)
                                      for department, stage in sorted(scope.pairs))))
        if claimed == "unclaimed":
            query = query.where(t.c.claimed_by == "")
        elif claimed == "mine":
            query = query.where(t.c.claimed_by == official_id)
        if after is not None:
            query = query.where(or_(
                t.c.due_at > after.due_at,
                and_(t.c.due_at == after.due_at, t.c.case_number > after.case_number),
                and_(t.c.due_at == after.due_at, t.c.case_number == after.case_number,
                     t.c.stage > after.stage)))
        rows = self._connection.execute(
            query.order_by(t.c.due_at, t.c.case_number, t.c.stage).limit(limit))
        return [_task(r) for r in rows]


def _decision(row: Row[Any]) -> RecordedDecision:
    return RecordedDecision(
        case_number=row.case_number, stage=row.stage, outcome=row.outcome,
        official_id=row.official_id, system=row.system, decided_at=row.decided_at,
        opinion=row.opinion, legal_basis=row.legal_basis, on_behalf_of=row.on_behalf_of,
        delegation_id=row.delegation_id, statement=row.statement)


class Decisions:
    """Repository of recorded decisions, one per case and stage."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.decisions

    def get(self, case_number: str, stage: str) -> RecordedDecision | None:
        row = self._connection.execute(
            select(self._t).where(self._t.c.case_number == case_number,
                                  self._t.c.stage == stage)).first()
        return _decision(row) if row else None

    def of_case(self, case_number: str) -> list[RecordedDecision]:
        rows = self._connection.execute(
            select(self._t).where(self._t.c.case_number == case_number).order_by(self._t.c.id))
        return [_decision(r) for r in rows]

    def add(self, decision: RecordedDecision, *, recorded_at: datetime) -> int:
        new_id = self._connection.execute(insert(self._t).returning(self._t.c.id).values(
            case_number=decision.case_number, stage=decision.stage, outcome=decision.outcome,
            official_id=decision.official_id, system=decision.system,
            decided_at=decision.decided_at, opinion=decision.opinion,
            legal_basis=decision.legal_basis, on_behalf_of=decision.on_behalf_of,
            delegation_id=decision.delegation_id, recorded_at=recorded_at,
            statement=decision.statement)).scalar_one()
        return int(new_id)


def _escalation(row: Row[Any]) -> Escalation:
    return Escalation(
        id=row.id, case_number=row.case_number, department_code=row.department_code,
        stage=row.stage, kind=row.kind, due_at=row.due_at, opened_at=row.opened_at,
        closed_at=row.closed_at)


class Escalations:
    """Repository of escalations to the supervision desk."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.escalations

    def get(self, case_number: str, kind: str) -> Escalation | None:
        row = self._connection.execute(
            select(self._t).where(self._t.c.case_number == case_number,
                                  self._t.c.kind == kind)).first()
        return _escalation(row) if row else None

    def add(self, escalation: Escalation) -> int:
        new_id = self._connection.execute(insert(self._t).returning(self._t.c.id).values(
            case_number=escalation.case_number, department_code=escalation.department_code,
            stage=escalation.stage, kind=escalation.kind, due_at=escalation.due_at,
            opened_at=escalation.opened_at, closed_at=escalation.closed_at)).scalar_one()
        return int(new_id)

    def close_of_case(self, case_number: str, *, now: datetime) -> list[int]:
        """Close the case's open escalations; returns their ids."""
        ids = [int(i) for i in self._connection.execute(
            select(self._t.c.id).where(self._t.c.case_number == case_number,
                                       self._t.c.closed_at.is_(None))
            .order_by(self._t.c.id)).scalars()]
        if ids:
            self._connection.execute(
                update(self._t).where(self._t.c.id.in_(ids)).values(closed_at=now))
        return ids

    def list(self, *, department_code: str, open_only: bool, after: int,
             limit: int) -> list[Escalation]:
        query = select(self._t).where(self._t.c.id > after)
        if department_code:
            query = query.where(self._t.c.department_code == department_code)
        if open_only:
            query = query.where(self._t.c.closed_at.is_(None))
        rows = self._connection.execute(query.order_by(self._t.c.id).limit(limit))
        return [_escalation(r) for r in rows]


def _progress(row: Row[Any]) -> CaseProgress:
    return CaseProgress(
        case_number=row.case_number, item_code=row.item_code,
        department_code=row.department_code, stage=row.stage, sla_state=row.sla_state,
        warning_at=row.warning_at, promised_due_at=row.promised_due_at,
        legal_due_at=row.legal_due_at, opened_at=row.opened_at, updated_at=row.updated_at,
        unknown_year=row.unknown_year,
        stage_due_at={stage: datetime.fromisoformat(due)
                      for stage, due in json.loads(row.stage_due_at).items()},
        paused_for=row.paused_for, extension_days=row.extension_days,
        certificate_number=row.certificate_number, outcome=row.outcome)


class Progress:
    """Repository of where each case of the chain stands."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.case_progress

    def get(self, case_number: str, *, for_update: bool = False) -> CaseProgress | None:
        query = select(self._t).where(self._t.c.case_number == case_number)
        row = self._connection.execute(query.with_for_update() if for_update else query).first()
        return _progress(row) if row else None

    def _values(self, progress: CaseProgress) -> dict[str, Any]:
        return {
            "item_code": progress.item_code, "department_code": progress.department_code,
            "stage": progress.stage, "sla_state": progress.sla_state,
            "warning_at": progress.warning_at, "promised_due_at": progress.promised_due_at,
            "legal_due_at": progress.legal_due_at, "unknown_year": progress.unknown_year,
            "stage_due_at": json.dumps({s: d.isoformat()
                                        for s, d in sorted(progress.stage_due_at.items())}),
            "paused_for": progress.paused_for, "extension_days": progress.extension_days,
            "certificate_number": progress.certificate_number, "outcome": progress.outcome,
            "opened_at": progress.opened_at, "updated_at": progress.updated_at}

    def add(self, progress: CaseProgress) -> None:
        self._connection.execute(insert(self._t).values(
            case_number=progress.case_number, **self._values(progress)))

    def save(self, progress: CaseProgress) -> None:
        self._connection.execute(update(self._t).where(
            self._t.c.case_number == progress.case_number).values(**self._values(progress)))


class ChainEvents:
    """Repository of the chain's timeline, in the order events were recorded."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.case_events

    def has(self, case_number: str, event_id: str) -> bool:
        return self._connection.execute(
            select(self._t.c.sequence).where(self._t.c.case_number == case_number,
                                             self._t.c.event_id == event_id)).first() is not None

    def add(self, case_number: str, event: ChainEvent, *, recorded_at: datetime) -> None:
        last = self._connection.execute(
            select(func.max(self._t.c.sequence)).where(
                self._t.c.case_number == case_number)).scalar()
        self._connection.execute(insert(self._t).values(
            case_number=case_number, event_id=event.event_id, sequence=int(last or 0) + 1,
            kind=event.kind, at=event.at, stage=event.stage, official_id=event.official_id,
            details=json.dumps(event.details, ensure_ascii=False, sort_keys=True),
            sla_state=event.sla_state, recorded_at=recorded_at))

    def of_case(self, case_number: str) -> list[ChainEvent]:
        rows = self._connection.execute(
            select(self._t).where(self._t.c.case_number == case_number)
            .order_by(self._t.c.sequence))
        return [ChainEvent(event_id=r.event_id, kind=r.kind, at=r.at, stage=r.stage,
                           official_id=r.official_id, details=json.loads(r.details),
                           sla_state=r.sla_state, sequence=r.sequence) for r in rows]


class HandledRequests(kernel_requests.HandledRequests):
    """Review's requests taken, with what its desk asks of them."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection, tables.handled_requests)

    def answered_stage(self, case_number: str, stage: str) -> bool:
        """Whether a decision at ``stage`` of the case was answered to some request."""
        rows = self._connection.execute(select(self._t.c.response).where(
            self._t.c.case_number == case_number, self._t.c.response != ""))
        for (response,) in rows:
            try:
                answer = json.loads(response)
            except ValueError:
                continue
            if isinstance(answer, dict) and answer.get("stage") == stage \
                    and "next_stage" in answer:
                return True
        return False

    def count_for_case(self, system: str, case_number: str) -> int:
        """How many requests of ``system`` about the case were taken."""
        return int(self._connection.execute(select(func.count()).select_from(self._t).where(
            self._t.c.system == system, self._t.c.case_number == case_number)).scalar_one())


class ReviewUnitOfWork(UnitOfWork):
    staff: Staff
    departments: Departments
    delegations: Delegations
    holiday_schedules: HolidaySchedules
    tasks: Tasks
    decisions: Decisions
    escalations: Escalations
    progress: Progress
    events: ChainEvents
    requests: HandledRequests
    audit: AuditLog
    authority: AuthorityRecords

    def bind(self, connection: Connection) -> None:
        self.staff = Staff(connection)
        self.departments = Departments(connection, tables.departments)
        self.delegations = Delegations(connection)
        self.holiday_schedules = HolidaySchedules(connection)
        self.tasks = Tasks(connection)
        self.decisions = Decisions(connection)
        self.escalations = Escalations(connection)
        self.progress = Progress(connection)
        self.events = ChainEvents(connection)
        self.requests = HandledRequests(connection)
        self.audit = AuditLog(connection, tables.audit_log)
        self.authority = AuthorityRecords(connection, self.audit)
