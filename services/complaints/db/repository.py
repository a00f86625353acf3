"""The complaints service's repositories and unit of work."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from kernel.audit import AuditLog
from kernel.db import UnitOfWork
from kernel.directory import Departments, StaffDirectory
from kernel.errors import FailedPrecondition
from services.complaints.db import tables
from services.complaints.domain.model import Category, Platform, RoutingChange, RoutingRule


def _category(row: Row[Any]) -> Category:
    return Category(row.code, row.name, row.department_code, row.rule_version)


def _rule(row: Row[Any]) -> RoutingRule:
    return RoutingRule(
        category_code=row.category_code,
        version=row.version,
        department_code=row.department_code,
        basis=row.basis,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        set_by_official_id=row.set_by_official_id,
    )


def _changed_meanwhile(code: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"category {code} was changed by another call at the same time: read it again and retry")


class RoutingTable:
    """Repository of the categories and every routing rule they have had."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._categories = tables.categories
        self._rules = tables.routing_rules

    def category(self, code: str) -> Category | None:
        row = self._connection.execute(
            select(self._categories).where(self._categories.c.code == code)).first()
        return _category(row) if row else None

    def list_categories(self, *, department_code: str, after: str,
                        limit: int) -> list[Category]:
        t = self._categories
        query = select(t).where(t.c.code > after)
        if department_code:
            query = query.where(t.c.department_code == department_code)
        rows = self._connection.execute(query.order_by(t.c.code).limit(limit))
        return [_category(r) for r in rows]

    def count_categories(self) -> int:
        return int(self._connection.execute(
            select(func.count()).select_from(self._categories)).scalar_one())

    def rule(self, category_code: str, version: int) -> RoutingRule | None:
        row = self._connection.execute(select(self._rules).where(
            self._rules.c.category_code == category_code,
            self._rules.c.version == version)).first()
        return _rule(row) if row else None

    def rules(self, category_code: str, *, after_version: int, limit: int) -> list[RoutingRule]:
        t = self._rules
        rows = self._connection.execute(
            select(t).where(t.c.category_code == category_code, t.c.version > after_version)
            .order_by(t.c.version).limit(limit))
        return [_rule(r) for r in rows]

    def apply(self, change: RoutingChange) -> None:
        """Store ``change``: the category as now routed, its new rule, the old one closed."""
        category, rule = change.category, change.rule
        if change.superseded_version:
            # Compare-and-set on the version read, so two dispatchers re-pointing
            # the same category at once cannot both succeed.
            moved = self._connection.execute(
                update(self._categories)
                .where(self._categories.c.code == category.code,
                       self._categories.c.rule_version == change.superseded_version)
                .values(department_code=category.department_code,
                        rule_version=category.rule_version))
            if moved.rowcount != 1:
                raise _changed_meanwhile(category.code)
            self._connection.execute(
                update(self._rules)
                .where(self._rules.c.category_code == category.code,
                       self._rules.c.version == change.superseded_version)
                .values(valid_until=rule.valid_from))
        else:
            try:
                self._connection.execute(insert(self._categories).values(
                    code=category.code, name=category.name,
                    department_code=category.department_code,
                    rule_version=category.rule_version))
            except IntegrityError as error:
                raise _changed_meanwhile(category.code) from error
        self._connection.execute(insert(self._rules).values(
            category_code=rule.category_code,
            version=rule.version,
            department_code=rule.department_code,
            basis=rule.basis,
            set_by_official_id=rule.set_by_official_id,
            valid_from=rule.valid_from,
            valid_until=rule.valid_until,
        ))


class Platforms:
    """Repository of the registered complaint platforms."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.platforms

    def list(self) -> list[Platform]:
        rows = self._connection.execute(select(self._t).order_by(self._t.c.id))
        return [Platform(r.id, r.name, r.kind) for r in rows]

    def replace_all(self, platforms: Iterable[Platform]) -> None:
        self._connection.execute(delete(self._t))
        rows = [{"id": p.id, "name": p.name, "kind": p.kind} for p in platforms]
        if rows:
            self._connection.execute(insert(self._t), rows)


class ComplaintsUnitOfWork(UnitOfWork):
    routing: RoutingTable
    platforms: Platforms
    departments: Departments
    staff: StaffDirectory
    audit: AuditLog

    def bind(self, connection: Connection) -> None:
        self.routing = RoutingTable(connection)
        self.platforms = Platforms(connection)
        self.departments = Departments(connection, tables.departments)
        self.staff = StaffDirectory(connection, tables.officials)
        self.audit = AuditLog(connection, tables.audit_log)
