"""The review service's repositories and unit of work."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from kernel.audit import AuditLog
from kernel.calendar import YearSchedule
from kernel.db import UnitOfWork
from kernel.directory import Departments, Official, StaffDirectory, official_from_record
from services.review.db import tables
from services.review.domain.model import Delegation, LoadedSchedule


class Staff(StaffDirectory):
    """The staff directory, which the review service owns and serves."""

    def __init__(self, session: Session) -> None:
        super().__init__(session, tables.officials)
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
        rows = self._session.execute(query.order_by(self._t.c.id).limit(limit))
        return [official_from_record(dict(r._mapping)) for r in rows]

    def lock(self, official_id: str) -> None:
        """Hold the official's row until commit, so that one leader's grants run one by one.

        SQLite needs nothing: a writing unit of work holds the database's
        write lock from its start.
        """
        self._session.execute(
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

    def __init__(self, session: Session) -> None:
        self._session = session
        self._t = tables.delegations

    def get(self, delegation_id: int, *, for_update: bool = False) -> Delegation | None:
        """One delegation; ``for_update`` holds its row until commit (PostgreSQL)."""
        query = select(self._t).where(self._t.c.id == delegation_id)
        row = self._session.execute(query.with_for_update() if for_update else query).first()
        return _delegation(row) if row else None

    def _in_force_at(self, moment: datetime) -> Any:
        return and_(self._t.c.valid_from <= moment, self._t.c.valid_until > moment,
                    or_(self._t.c.revoked_at.is_(None), self._t.c.revoked_at > moment))

    def of_leader_ending_after(self, leader_id: str, moment: datetime) -> list[Delegation]:
        """The leader's delegations not over by ``moment``, revoked or not."""
        rows = self._session.execute(
            select(self._t).where(self._t.c.leader_id == leader_id,
                                  self._t.c.valid_until > moment)
            .order_by(self._t.c.id))
        return [_delegation(r) for r in rows]

    def in_force_involving(self, official_id: str, moment: datetime) -> list[Delegation]:
        """Delegations in force at ``moment`` with the official as leader or deputy."""
        rows = self._session.execute(
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
        rows = self._session.execute(query.order_by(self._t.c.id).limit(limit))
        return [_delegation(r) for r in rows]

    def add(self, delegation: Delegation) -> int:
        """Store a new delegation; returns the id the database gave it."""
        new_id = self._session.execute(insert(self._t).returning(self._t.c.id).values(
            leader_id=delegation.leader_id, deputy_id=delegation.deputy_id,
            department_code=delegation.department_code, valid_from=delegation.valid_from,
            valid_until=delegation.valid_until, reason=delegation.reason,
            granted_at=delegation.granted_at, revoked_at=delegation.revoked_at,
            revoked_by=delegation.revoked_by,
            revocation_reason=delegation.revocation_reason)).scalar_one()
        return int(new_id)

    def record_revocation(self, delegation: Delegation) -> None:
        self._session.execute(
            update(self._t).where(self._t.c.id == delegation.id).values(
                revoked_at=delegation.revoked_at, revoked_by=delegation.revoked_by,
                revocation_reason=delegation.revocation_reason))


class HolidaySchedules:
    """Repository of the year schedules operators loaded."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._years = tables.holiday_schedules
        self._dates = tables.holiday_dates

    def all(self) -> list[LoadedSchedule]:
        days: dict[int, dict[str, set[date]]] = defaultdict(
            lambda: {"holiday": set(), "makeup_workday": set()})
        for row in self._session.execute(select(self._dates)):
            days[row.year][row.kind].add(row.day)
        return [
            LoadedSchedule(
                YearSchedule(row.year, frozenset(days[row.year]["holiday"]),
                             frozenset(days[row.year]["makeup_workday"])),
                row.loaded_at, row.loaded_by)
            for row in self._session.execute(select(self._years).order_by(self._years.c.year))
        ]

    def exists(self, year: int) -> bool:
        return bool(self._session.execute(
            select(func.count()).select_from(self._years).where(self._years.c.year == year)
        ).scalar_one())

    def put(self, loaded: LoadedSchedule) -> None:
        """Store ``loaded`` as its year's schedule, replacing any earlier one."""
        year = loaded.schedule.year
        self._session.execute(delete(self._dates).where(self._dates.c.year == year))
        self._session.execute(delete(self._years).where(self._years.c.year == year))
        self._session.execute(insert(self._years).values(
            year=year, loaded_at=loaded.loaded_at, loaded_by=loaded.loaded_by))
        rows = [{"year": year, "day": day, "kind": "holiday"}
                for day in loaded.schedule.holidays]
        rows += [{"year": year, "day": day, "kind": "makeup_workday"}
                 for day in loaded.schedule.makeup_workdays]
        if rows:
            self._session.execute(insert(self._dates), rows)


class ReviewUnitOfWork(UnitOfWork):
    staff: Staff
    departments: Departments
    delegations: Delegations
    holiday_schedules: HolidaySchedules
    audit: AuditLog

    def bind(self, session: Session) -> None:
        self.staff = Staff(session)
        self.departments = Departments(session, tables.departments)
        self.delegations = Delegations(session)
        self.holiday_schedules = HolidaySchedules(session)
        self.audit = AuditLog(session, tables.audit_log)
