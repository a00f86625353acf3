"""The intake service's repositories and unit of work."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.orm import Session

from kernel.audit import AuditLog
from kernel.db import UnitOfWork
from kernel.directory import Departments, StaffDirectory
from services.intake.db import tables
from services.intake.domain.model import ApprovalItem, Material


def _item(row: Row[Any]) -> ApprovalItem:
    return ApprovalItem(
        code=row.code,
        name=row.name,
        department_code=row.department_code,
        legal_limit_days=row.legal_limit_days,
        promised_limit_days=row.promised_limit_days,
        materials=tuple(Material(**m) for m in json.loads(row.materials)),
        special_procedures=tuple(json.loads(row.special_procedures)),
        fee_fen=row.fee_fen,
        basis=row.basis,
        version=row.version,
    )


class Catalogue:
    """Repository of approval items, every version kept."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._t = tables.approval_items

    def current(self, code: str) -> ApprovalItem | None:
        row = self._session.execute(
            select(self._t).where(self._t.c.code == code, self._t.c.current.is_(True))).first()
        return _item(row) if row else None

    def at_version(self, code: str, version: int) -> ApprovalItem | None:
        row = self._session.execute(
            select(self._t).where(self._t.c.code == code, self._t.c.version == version)).first()
        return _item(row) if row else None

    def list_current(self, *, department_code: str, after: str, limit: int) -> list[ApprovalItem]:
        query = select(self._t).where(self._t.c.current.is_(True), self._t.c.code > after)
        if department_code:
            query = query.where(self._t.c.department_code == department_code)
        rows = self._session.execute(query.order_by(self._t.c.code).limit(limit))
        return [_item(r) for r in rows]

    def count_current(self) -> int:
        return len(self._session.execute(
            select(self._t.c.code).where(self._t.c.current.is_(True))).all())

    def add(self, item: ApprovalItem) -> None:
        """Store ``item`` as the current version of its code."""
        self._session.execute(
            update(self._t).where(self._t.c.code == item.code, self._t.c.current.is_(True))
            .values(current=False))
        self._session.execute(insert(self._t).values(
            code=item.code,
            version=item.version,
            current=True,
            name=item.name,
            department_code=item.department_code,
            legal_limit_days=item.legal_limit_days,
            promised_limit_days=item.promised_limit_days,
            materials=json.dumps([asdict(m) for m in item.materials], ensure_ascii=False),
            special_procedures=json.dumps(list(item.special_procedures)),
            fee_fen=item.fee_fen,
            basis=item.basis,
            published_at=datetime.now(UTC).isoformat(),
        ))


class IntakeUnitOfWork(UnitOfWork):
    catalogue: Catalogue
    departments: Departments
    staff: StaffDirectory
    audit: AuditLog

    def bind(self, session: Session) -> None:
        self.catalogue = Catalogue(session)
        self.departments = Departments(session, tables.departments)
        self.staff = StaffDirectory(session, tables.officials)
        self.audit = AuditLog(session, tables.audit_log)
