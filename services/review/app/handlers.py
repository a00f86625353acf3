"""The review service's use cases, one function each, on a unit of work."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path

from kernel.audit import Actor
from kernel.authority import AuthorityTable
from kernel.calendar import BUILT_IN_YEARS, WorkingCalendar
from kernel.chinatime import CHINA
from kernel.directory import (
    Official,
    acting_official,
    read_sample,
    require_official,
    require_voice,
    sample_departments,
    sample_officials,
)
from kernel.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from kernel.identity import Caller
from kernel.paging import (
    after_number,
    after_text,
    decode_token,
    page_size,
    rows_to_fetch,
    take_page,
)
from services.review.db.audit import DELEGATIONS
from services.review.db.repository import InboxPosition, ReviewUnitOfWork
from services.review.domain import deadlines, model, tasks
from services.review.domain.deadlines import CaseDeadlines, Pause
from services.review.domain.model import Deadline, Delegation, LoadedSchedule
from services.review.domain.progress import CaseProgress, ChainEvent
from services.review.domain.tasks import (
    Capacity,
    Escalation,
    RecordedDecision,
    Task,
)
from workflows.approval_contract import STAGE_ROLE, Stage

#: The system the sample directory is loaded as.
RUNNER = "govhall-runner"
#: The system the approval workflows' activities act as in the audit log.
WORKFLOWS = "govhall-workflows"


@dataclass(frozen=True)
class OfficialPage:
    officials: list[Official]
    department_names: dict[str, str]
    next_page_token: str


@dataclass(frozen=True)
class OfficialRecord:
    official: Official
    department_name: str
    delegations_in_force: list[Delegation]


@dataclass(frozen=True)
class DelegationPage:
    delegations: list[Delegation]
    next_page_token: str


@dataclass(frozen=True)
class ScheduleLoad:
    loaded: LoadedSchedule
    replaced: bool


def _require_department(uow: ReviewUnitOfWork, department_code: str) -> None:
    if department_code and uow.departments.get(department_code) is None:
        raise NotFound(f"department {department_code} is not in the directory")


def list_officials(*, uow: ReviewUnitOfWork, department_code: str, role: str,
                   requested_size: int, page_token: str) -> OfficialPage:
    size = page_size(requested_size)
    with uow:
        _require_department(uow, department_code)
        page = take_page(uow.staff.list(department_code=department_code, role=role,
                                        after=after_text(page_token), limit=rows_to_fetch(size)),
                         size, key=lambda o: (o.id,))
        return OfficialPage(
            page.items, uow.departments.names({o.department_code for o in page.items}),
            page.next_page_token)


def get_official(*, uow: ReviewUnitOfWork, official_id: str, now: datetime) -> OfficialRecord:
    with uow:
        official = uow.staff.get(official_id)
        if official is None:
            raise NotFound(f"official {official_id} is not in the staff directory")
        return OfficialRecord(
            official, uow.departments.names({official.department_code})[official.department_code],
            uow.delegations.in_force_involving(official_id, now))


def grant_delegation(*, uow: ReviewUnitOfWork, caller: Caller, deputy_id: str,
          valid_from: datetime | None, valid_until: datetime, reason: str,
          now: datetime) -> Delegation:
    """The acting leader hands their signing authority to a deputy for a bounded time."""
    with uow:
        leader = require_official(uow.staff, caller, role="leader")
        deputy = uow.staff.get(deputy_id)
        if deputy is None:
            raise NotFound(f"official {deputy_id} is not in the staff directory")
        # One leader's grants run one by one, so two overlapping ones cannot both pass.
        uow.staff.lock(leader.id)
        delegation = model.grant_delegation(
            leader=leader, deputy=deputy, valid_from=valid_from, valid_until=valid_until,
            reason=reason, now=now,
            leaders_delegations=uow.delegations.of_leader_ending_after(leader.id, now))
        stored = replace(delegation, id=uow.delegations.add(delegation))
        uow.authority.record(
            DELEGATIONS, stored.id, actor=Actor(caller.system, leader.id),
            action="delegation.granted",
            subject=f"delegation/{stored.id}", at=now,
            details={"leader": stored.leader_id, "deputy": stored.deputy_id,
                     "department": stored.department_code,
                     "valid_from": stored.valid_from.isoformat(),
                     "valid_until": stored.valid_until.isoformat()})
        uow.commit()
        return stored


def revoke_delegation(*, uow: ReviewUnitOfWork, caller: Caller, delegation_id: int, reason: str,
           now: datetime) -> Delegation:
    """End a delegation now; only its leader or an operator may."""
    with uow:
        official = acting_official(uow.staff, caller)
        delegation = uow.delegations.get(delegation_id, for_update=True)
        if delegation is None:
            raise NotFound(f"delegation {delegation_id} does not exist")
        revoked = model.revoke_delegation(delegation, by=official, reason=reason, now=now)
        uow.delegations.record_revocation(revoked)
        uow.authority.record(
            DELEGATIONS, revoked.id, actor=Actor(caller.system, official.id),
            action="delegation.revoked",
            subject=f"delegation/{revoked.id}", at=now,
            details={"leader": revoked.leader_id, "deputy": revoked.deputy_id,
                     "department": revoked.department_code})
        uow.commit()
        return revoked


def list_delegations(*, uow: ReviewUnitOfWork, department_code: str,
                     in_force_at: datetime | None, requested_size: int,
                     page_token: str) -> DelegationPage:
    size = page_size(requested_size)
    with uow:
        _require_department(uow, department_code)
        page = take_page(uow.delegations.list(
            department_code=department_code, in_force_at=in_force_at,
            after=after_number(page_token), limit=rows_to_fetch(size)),
            size, key=lambda d: (d.id,))
        return DelegationPage(page.items, page.next_page_token)


def load_holiday_schedule(*, uow: ReviewUnitOfWork, caller: Caller, year: int,
                          holidays: list[date], makeup_workdays: list[date],
                          now: datetime) -> ScheduleLoad:
    """Store one year's official schedule; a year loaded again is replaced."""
    with uow:
        official = require_official(uow.staff, caller, role="operator")
        schedule = model.year_schedule(year, holidays=holidays, makeup_workdays=makeup_workdays)
        replaced = uow.holiday_schedules.exists(year)
        loaded = LoadedSchedule(schedule, now, official.id)
        uow.holiday_schedules.put(loaded)
        uow.audit.append(
            actor=Actor(caller.system, official.id),
            action="holiday_schedule.replaced" if replaced else "holiday_schedule.loaded",
            subject=f"holiday_schedule/{year}", at=now,
            details={"holidays": sorted(d.isoformat() for d in schedule.holidays),
                     "makeup_workdays": sorted(d.isoformat() for d in schedule.makeup_workdays)})
        uow.commit()
        return ScheduleLoad(loaded, replaced)


def holiday_schedule_years(*, uow: ReviewUnitOfWork) -> list[tuple[int, LoadedSchedule | None]]:
    """Every year the calendar knows: built in (None) or loaded by an operator."""
    loaded = {s.schedule.year: s for s in list_holiday_schedules(uow=uow)}
    return [(year, loaded.get(year)) for year in sorted({*BUILT_IN_YEARS, *loaded})]


def list_holiday_schedules(*, uow: ReviewUnitOfWork) -> list[LoadedSchedule]:
    with uow:
        return uow.holiday_schedules.all()


def working_calendar(*, uow: ReviewUnitOfWork) -> WorkingCalendar:
    """The built-in calendar with every loaded schedule laid over it."""
    with uow:
        return WorkingCalendar.with_schedules(
            loaded.schedule for loaded in uow.holiday_schedules.all())


def compute_deadline(*, uow: ReviewUnitOfWork, start: date, working_days: int) -> Deadline:
    return model.working_day_deadline(working_calendar(uow=uow), start=start,
                                      working_days=working_days)


def find_official(*, uow: ReviewUnitOfWork, official_id: str) -> Official:
    with uow:
        found = uow.staff.get(official_id)
        if found is None:
            raise NotFound(f"official {official_id} is not in the staff directory")
        return found


def _sample_day(text: str) -> datetime:
    return datetime.combine(date.fromisoformat(text), time(), tzinfo=CHINA)


def load_sample_directory(*, uow: ReviewUnitOfWork, sample_dir: Path, now: datetime) -> bool:
    """Load the sample directory and delegations into an empty database, once."""
    with uow:
        if uow.staff.count():
            return False
        departments = sample_departments(sample_dir)
        officials = {o.id: o for o in sample_officials(sample_dir)}
        uow.departments.replace_all(departments)
        uow.staff.replace_all(officials.values())
        records = read_sample(sample_dir, "staff.json").get("delegations", [])
        loaded: list[tuple[AuthorityTable, object]] = []
        for record in records:
            leader, deputy = officials[record["leader_id"]], officials[record["deputy_id"]]
            model.check_deputy(leader, deputy)
            start = _sample_day(record["valid_from"])
            # The sample gives dates, both included; no grant time is known, so
            # a sample delegation counts as granted when it begins.
            loaded.append((DELEGATIONS, uow.delegations.add(Delegation(
                leader_id=leader.id, deputy_id=deputy.id,
                department_code=leader.department_code, valid_from=start,
                valid_until=_sample_day(record["valid_until"]) + timedelta(days=1),
                reason=record["reason"], granted_at=start))))
        uow.authority.record_many(loaded, actor=Actor(RUNNER), action="directory.loaded",
                                  subject="staff_directory", at=now,
                                  details={"departments": len(departments),
                                           "officials": len(officials),
                                           "delegations": len(records)})
        uow.commit()
        return True


# ---- the approval chain: deadlines, tasks, decisions, escalations ----------------------


def case_deadlines(*, uow: ReviewUnitOfWork, accepted_on: date, promised_limit_days: int,
                   legal_limit_days: int, extension_days: int, pauses: Sequence[Pause],
                   today: date) -> CaseDeadlines:
    return deadlines.case_deadlines(
        working_calendar(uow=uow), accepted_on=accepted_on,
        promised_limit_days=promised_limit_days, legal_limit_days=legal_limit_days,
        extension_days=extension_days, pauses=pauses, today=today)


def _check_stage(stage: str) -> None:
    if stage not in tasks.TASK_STAGES:
        raise InvalidArgument(f"{stage!r} is not a stage that waits for a decision",
                              violations=[FieldViolation("stage", "review, sign or seal")])


def _case_subject(case_number: str) -> str:
    return f"case/{case_number}"


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    next_page_token: str


def _inbox_position(page_token: str) -> InboxPosition | None:
    key = decode_token(page_token, (datetime, str, str))
    return InboxPosition(*key) if key else None


def list_inbox(*, uow: ReviewUnitOfWork, caller: Caller, department_code: str, stage: str,
               claimed: str, requested_size: int, page_token: str, now: datetime) -> TaskPage:
    """The open tasks the acting official may take (or, for oversight, read)."""
    size = page_size(requested_size)
    after = _inbox_position(page_token)
    with uow:
        official = acting_official(uow.staff, caller)
        _require_department(uow, department_code)
        scope = tasks.inbox_scope(
            official, department_code=department_code, stage=stage,
            delegations_in_force=uow.delegations.in_force_involving(official.id, now))
        page = take_page(uow.tasks.inbox(scope=scope, claimed=claimed, official_id=official.id,
                                         after=after, limit=rows_to_fetch(size)),
                         size, key=lambda t: (t.due_at, t.case_number, t.stage))
        return TaskPage(page.items, page.next_page_token)


def _capacity(uow: ReviewUnitOfWork, caller: Caller, official: Official, role: str,
              now: datetime) -> Capacity:
    """The official's capacity in ``role``; a leader's role held by delegation counts only
    if the calling system may speak for that role of the leader's department."""
    capacity = tasks.acting_capacity(
        official, role=role,
        delegations_in_force=uow.delegations.in_force_involving(official.id, now))
    if capacity.on_behalf_of:
        require_voice(caller, capacity.department_code, role)
    return capacity


def claim_task(*, uow: ReviewUnitOfWork, caller: Caller, case_number: str, stage: str,
               now: datetime) -> Task:
    """The acting official takes an open task; claiming one's own again changes nothing."""
    _check_stage(stage)
    with uow:
        official = acting_official(uow.staff, caller)
        task = uow.tasks.get(case_number, stage, for_update=True)
        if task is None:
            raise NotFound(f"case {case_number} has no {stage} task")
        capacity = _capacity(uow, caller, official, task.role, now)
        deciders = [who for d in uow.decisions.of_case(case_number)
                    for who in (d.official_id, d.on_behalf_of) if who]
        claimed = tasks.claim(task, capacity, now=now, earlier_deciders=deciders)
        if claimed == task:
            return task
        uow.tasks.save(claimed)
        details = {"stage": stage}
        if capacity.on_behalf_of:
            details |= {"on_behalf_of": capacity.on_behalf_of,
                        "delegation": str(capacity.delegation_id)}
        uow.audit.append(actor=Actor(caller.system, official.id), action="task.claimed",
                         subject=_case_subject(case_number), at=now, details=details)
        uow.commit()
        return claimed


def acting_capacity(*, uow: ReviewUnitOfWork, caller: Caller, role: str,
                    now: datetime) -> Capacity:
    """Who the acting official is for a change sent to a case's workflow, which checks it."""
    with uow:
        official = acting_official(uow.staff, caller)
        return _capacity(uow, caller, official, role, now)


def _request_of(decision: RecordedDecision) -> str:
    """The request id the recorded decision was signed for ('' when unknown)."""
    try:
        body = json.loads(decision.statement).get("body", {})
    except (ValueError, AttributeError):
        return ""
    request_id = body.get("request_id", "") if isinstance(body, dict) else ""
    return request_id if isinstance(request_id, str) else ""


def decision_capacity(*, uow: ReviewUnitOfWork, caller: Caller, case_number: str,
                      stage: str, now: datetime, request_id: str = "") -> Capacity:
    """The acting official's capacity to decide ``stage``, unless another holds the task.

    Role, department, stage and separation of duties are the workflow's to
    check, in the decision's validator.
    """
    _check_stage(stage)
    with uow:
        official = acting_official(uow.staff, caller)
        recorded = uow.decisions.get(case_number, stage)
        if (recorded is not None and _request_of(recorded) != request_id) or \
                uow.requests.answered_stage(case_number, stage):
            raise FailedPrecondition(f"the {stage} of case {case_number} was decided already")
        tasks.check_not_claimed_by_another(uow.tasks.get(case_number, stage), official.id)
        return _capacity(uow, caller, official, STAGE_ROLE[Stage(stage)], now)


def case_progress(*, uow: ReviewUnitOfWork, caller: Caller, case_number: str,
                  ) -> tuple[CaseProgress, list[RecordedDecision], list[ChainEvent]]:
    """Where a case stands, for officials of its department, supervision and operators."""
    with uow:
        official = acting_official(uow.staff, caller)
        progress = uow.progress.get(case_number)
        if progress is None:
            raise NotFound(f"case {case_number} is unknown to the approval chain")
        tasks.check_progress_reader(official, case_number=case_number,
                                    case_department=progress.department_code)
        return progress, uow.decisions.of_case(case_number), uow.events.of_case(case_number)


@dataclass(frozen=True)
class EscalationPage:
    escalations: list[Escalation]
    next_page_token: str


def list_escalations(*, uow: ReviewUnitOfWork, caller: Caller, department_code: str,
                     open_only: bool, requested_size: int,
                     page_token: str) -> EscalationPage:
    """Escalations to the supervision desk, for supervisors and operators."""
    size = page_size(requested_size)
    after = after_number(page_token)
    with uow:
        official = acting_official(uow.staff, caller)
        if not official.roles & tasks.OVERSIGHT_ROLES:
            raise PermissionDenied(
                f"official {official.id} holds neither the role supervisor nor operator")
        _require_department(uow, department_code)
        page = take_page(uow.escalations.list(department_code=department_code,
                                              open_only=open_only, after=after,
                                              limit=rows_to_fetch(size)),
                         size, key=lambda e: (e.id,))
        return EscalationPage(page.items, page.next_page_token)
