"""The trading service's repositories and unit of work."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from kernel.audit import AuditLog
from kernel.db import UnitOfWork
from kernel.directory import Departments, StaffDirectory
from services.trading.db import tables
from services.trading.domain.model import Agency, CatalogueEntry, Expert


class Catalogue:
    """Repository of the catalogue of what must enter the venue."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.catalogue_entries

    def list(self, *, category: str = "") -> list[CatalogueEntry]:
        query = select(self._t)
        if category:
            query = query.where(self._t.c.category == category)
        rows = self._connection.execute(query.order_by(self._t.c.code))
        return [CatalogueEntry(r.code, r.category, r.name, r.threshold_fen, r.basis)
                for r in rows]

    def count(self) -> int:
        return int(self._connection.execute(select(func.count()).select_from(self._t)).scalar_one())

    def add(self, entry: CatalogueEntry) -> None:
        self._connection.execute(insert(self._t).values(
            code=entry.code, category=entry.category, name=entry.name,
            threshold_fen=entry.threshold_fen, basis=entry.basis))


class Agencies:
    """Repository of the tender agencies."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.agencies

    def get(self, code: str) -> Agency | None:
        row = self._connection.execute(select(self._t).where(self._t.c.code == code)).first()
        return Agency(row.code, row.name, row.qualification) if row else None

    def list(self, *, after: str, limit: int) -> list[Agency]:
        rows = self._connection.execute(
            select(self._t).where(self._t.c.code > after).order_by(self._t.c.code).limit(limit))
        return [Agency(r.code, r.name, r.qualification) for r in rows]

    def add(self, agency: Agency) -> None:
        self._connection.execute(insert(self._t).values(
            code=agency.code, name=agency.name, qualification=agency.qualification))


class ExpertPool:
    """Repository of the expert pool."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.experts
        self._s = tables.expert_specialties

    def _experts(self, rows: Iterable[Row[Any]]) -> list[Expert]:
        rows = list(rows)
        specialties: dict[str, list[str]] = defaultdict(list)
        if rows:
            for s in self._connection.execute(
                    select(self._s.c.expert_id, self._s.c.specialty)
                    .where(self._s.c.expert_id.in_([r.id for r in rows]))
                    .order_by(self._s.c.expert_id, self._s.c.position)):
                specialties[s.expert_id].append(s.specialty)
        return [Expert(id=r.id, name=r.name, specialties=tuple(specialties[r.id]),
                       employer=r.employer, available=r.available,
                       unavailable_reason=r.unavailable_reason) for r in rows]

    def get(self, expert_id: str) -> Expert | None:
        found = self._experts(self._connection.execute(
            select(self._t).where(self._t.c.id == expert_id)))
        return found[0] if found else None

    def list(self, *, specialty: str = "", after: str = "",
             limit: int | None = None) -> list[Expert]:
        query = select(self._t).where(self._t.c.id > after)
        if specialty:
            query = query.where(self._t.c.id.in_(
                select(self._s.c.expert_id).where(self._s.c.specialty == specialty)))
        query = query.order_by(self._t.c.id)
        if limit is not None:
            query = query.limit(limit)
        return self._experts(self._connection.execute(query))

    def add(self, expert: Expert) -> None:
        self._connection.execute(insert(self._t).values(
            id=expert.id, name=expert.name, employer=expert.employer,
            available=expert.available, unavailable_reason=expert.unavailable_reason,
            registered_at=datetime.now(UTC)))
        self._connection.execute(insert(self._s), [
            {"expert_id": expert.id, "specialty": s, "position": i}
            for i, s in enumerate(expert.specialties)])

    def save_availability(self, expert: Expert) -> None:
        self._connection.execute(
            update(self._t).where(self._t.c.id == expert.id)
            .values(available=expert.available, unavailable_reason=expert.unavailable_reason))


class TradingUnitOfWork(UnitOfWork):
    catalogue: Catalogue
    agencies: Agencies
    experts: ExpertPool
    departments: Departments
    staff: StaffDirectory
    audit: AuditLog

    def bind(self, connection: Connection) -> None:
        self.catalogue = Catalogue(connection)
        self.agencies = Agencies(connection)
        self.experts = ExpertPool(connection)
        self.departments = Departments(connection, tables.departments)
        self.staff = StaffDirectory(connection, tables.officials)
        self.audit = AuditLog(connection, tables.audit_log)
