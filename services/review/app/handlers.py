"""The review service's use cases, one function each, on a unit of work."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path

from kernel.audit import Actor, Verification
from kernel.calendar import WorkingCalendar
from kernel.directory import (
    Official,
    read_sample,
    require_official,
    sample_departments,
    sample_officials,
)
from kernel.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from kernel.identity import OFFICIAL_METADATA_KEY, Caller
from kernel.paging import decode_token, encode_token, page_size
from services.review.db.repository import ReviewUnitOfWork
from services.review.domain import model
from services.review.domain.model import Deadline, Delegation, LoadedSchedule

#: The system the sample directory is loaded as.
RUNNER = "govhall-runner"


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


def _department_names(uow: ReviewUnitOfWork, codes: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for code in codes:
        department = uow.departments.get(code)
        names[code] = department.name if department else ""
    return names


def _require_department(uow: ReviewUnitOfWork, department_code: str) -> None:
    if department_code and uow.departments.get(department_code) is None:
        raise NotFound(f"department {department_code} is not in the directory")


def _acting_official(uow: ReviewUnitOfWork, caller: Caller) -> Official:
    """The asserted official, whatever roles they hold; the caller of this checks those."""
    if not caller.official_id:
        raise Unauthenticated(
            f"this call changes something: name the acting official in the "
            f"{OFFICIAL_METADATA_KEY} metadata entry")
    official = uow.staff.get(caller.official_id)
    if official is None:
        raise PermissionDenied(f"official {caller.official_id} is not in the staff directory")
    return official


_DELEGATION_TOKEN = re.compile(r"[0-9]{1,18}")


def _delegation_after(page_token: str) -> int:
    after = decode_token(page_token)
    if not after:
        return 0
    if not _DELEGATION_TOKEN.fullmatch(after):
        raise InvalidArgument("page_token is not a token this service gave out")
    return int(after)


def list_officials(*, uow: ReviewUnitOfWork, department_code: str, role: str,
                   requested_size: int, page_token: str) -> OfficialPage:
    size = page_size(requested_size)
    with uow:
        _require_department(uow, department_code)
        officials = uow.staff.list(department_code=department_code, role=role,
                                   after=decode_token(page_token), limit=size + 1)
        more = len(officials) > size
        officials = officials[:size]
        return OfficialPage(
            officials, _department_names(uow, {o.department_code for o in officials}),
            encode_token(officials[-1].id) if more else "")


def get_official(*, uow: ReviewUnitOfWork, official_id: str, now: datetime) -> OfficialRecord:
    with uow:
        official = uow.staff.get(official_id)
        if official is None:
            raise NotFound(f"official {official_id} is not in the staff directory")
        return OfficialRecord(
            official, _department_names(uow, {official.department_code})[official.department_code],
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
        uow.audit.append(
            actor=Actor(caller.system, leader.id), action="delegation.granted",
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
        official = _acting_official(uow, caller)
        delegation = uow.delegations.get(delegation_id, for_update=True)
        if delegation is None:
            raise NotFound(f"delegation {delegation_id} does not exist")
        revoked = model.revoke_delegation(delegation, by=official, reason=reason, now=now)
        uow.delegations.record_revocation(revoked)
        uow.audit.append(
            actor=Actor(caller.system, official.id), action="delegation.revoked",
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
        delegations = uow.delegations.list(
            department_code=department_code, in_force_at=in_force_at,
            after=_delegation_after(page_token), limit=size + 1)
        more = len(delegations) > size
        delegations = delegations[:size]
        return DelegationPage(delegations,
                              encode_token(str(delegations[-1].id)) if more else "")


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


def verify_audit_log(*, uow: ReviewUnitOfWork) -> Verification:
    with uow:
        return uow.audit.verify()


def _sample_day(text: str) -> datetime:
    return datetime.combine(date.fromisoformat(text), time(), tzinfo=model.CENTER_TIME)


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
        for record in records:
            leader, deputy = officials[record["leader_id"]], officials[record["deputy_id"]]
            model.check_deputy(leader, deputy)
            start = _sample_day(record["valid_from"])
            # The sample gives dates, both included; no grant time is known, so
            # a sample delegation counts as granted when it begins.
            uow.delegations.add(Delegation(
                leader_id=leader.id, deputy_id=deputy.id,
                department_code=leader.department_code, valid_from=start,
                valid_until=_sample_day(record["valid_until"]) + timedelta(days=1),
                reason=record["reason"], granted_at=start))
        uow.audit.append(actor=Actor(RUNNER), action="directory.loaded",
                         subject="staff_directory", at=now,
                         details={"departments": len(departments),
                                  "officials": len(officials), "delegations": len(records)})
        uow.commit()
        return True
