"""The complaints service's repositories and unit of work."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from kernel.audit import AuditLog
from kernel.db import RunningNumbers, UnitOfWork
from kernel.directory import Departments, StaffDirectory
from kernel.errors import FailedPrecondition
from services.complaints.db import tables
from services.complaints.domain.cases import (
    Complaint,
    ComplaintEvent,
    ComplaintKind,
    ComplaintStatus,
    DeadlineClass,
    Location,
)
from services.complaints.domain.model import Category, Platform, RoutingChange, RoutingRule
from services.complaints.domain.webhooks import PlatformEvent, PlatformWebhook


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

    @staticmethod
    def _platform(row: Row[Any]) -> Platform:
        return Platform(row.id, row.name, row.kind, row.system_name or "")

    def list(self) -> list[Platform]:
        rows = self._connection.execute(select(self._t).order_by(self._t.c.id))
        return [self._platform(r) for r in rows]

    def of_system(self, system_name: str) -> Platform | None:
        """The platform that pushes cases through calling system ``system_name``, if any."""
        row = self._connection.execute(
            select(self._t).where(self._t.c.system_name == system_name)).first()
        return self._platform(row) if row else None

    def replace_all(self, platforms: Iterable[Platform]) -> None:
        self._connection.execute(delete(self._t))
        rows = [{"id": p.id, "name": p.name, "kind": p.kind,
                 "system_name": p.system_name or None} for p in platforms]
        if rows:
            self._connection.execute(insert(self._t), rows)


class DuplicatePush(Exception):
    """Another transaction stored a case under the same platform and external id first."""


@dataclass(frozen=True)
class StoredComplaint:
    """A case as stored: the complainant still sealed, and the push's fingerprint."""

    complaint: Complaint
    sealed_complainant: str
    fingerprint: str


class ComplaintCases:
    """Repository of the cases platforms push in."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.complaint_cases

    @staticmethod
    def _stored(row: Row[Any]) -> StoredComplaint:
        location = None
        if row.latitude is not None or row.longitude is not None or row.address:
            location = Location(row.latitude, row.longitude, row.address or "")
        complaint = Complaint(
            number=row.case_number, platform_id=row.platform_id, external_id=row.external_id,
            kind=ComplaintKind(row.kind), urgent=bool(row.urgent),
            category_code=row.category_code, department_code=row.department_code,
            rule_version=row.rule_version, deadline_class=DeadlineClass(row.deadline_class),
            content=row.content, location=location,
            linked_case_number=row.linked_case_number,
            linked_tender_number=row.linked_tender_number,
            status=ComplaintStatus(row.status), received_at=row.received_at)
        return StoredComplaint(complaint, row.complainant, row.fingerprint)

    def add(self, complaint: Complaint, *, sealed_complainant: str, fingerprint: str) -> None:
        """Store a new case; DuplicatePush when its (platform, external id) is taken."""
        location = complaint.location
        try:
            self._connection.execute(insert(self._t).values(
                case_number=complaint.number, platform_id=complaint.platform_id,
                external_id=complaint.external_id, fingerprint=fingerprint,
                kind=str(complaint.kind), urgent=complaint.urgent,
                category_code=complaint.category_code,
                department_code=complaint.department_code,
                rule_version=complaint.rule_version,
                deadline_class=str(complaint.deadline_class), content=complaint.content,
                latitude=location.latitude if location else None,
                longitude=location.longitude if location else None,
                address=location.address if location else None,
                complainant=sealed_complainant,
                linked_case_number=complaint.linked_case_number,
                linked_tender_number=complaint.linked_tender_number,
                status=str(complaint.status), received_at=complaint.received_at))
        except IntegrityError as error:
            raise DuplicatePush(complaint.external_id) from error

    def get(self, case_number: str) -> StoredComplaint | None:
        row = self._connection.execute(
            select(self._t).where(self._t.c.case_number == case_number)).first()
        return self._stored(row) if row else None

    def of_platform(self, platform_id: str, external_id: str) -> StoredComplaint | None:
        row = self._connection.execute(select(self._t).where(
            self._t.c.platform_id == platform_id,
            self._t.c.external_id == external_id)).first()
        return self._stored(row) if row else None


class ComplaintEvents:
    """Repository of what happened to each case."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.complaint_events

    def add(self, events: Iterable[ComplaintEvent]) -> None:
        rows = [{"case_number": e.case_number, "sequence": e.sequence, "code": e.code,
                 "at": e.at, "details": json.dumps(e.details, ensure_ascii=False,
                                                   sort_keys=True)} for e in events]
        if rows:
            self._connection.execute(insert(self._t), rows)

    def list(self, case_number: str, *, after_sequence: int,
             limit: int) -> list[ComplaintEvent]:
        t = self._t
        rows = self._connection.execute(
            select(t).where(t.c.case_number == case_number, t.c.sequence > after_sequence)
            .order_by(t.c.sequence).limit(limit))
        return [ComplaintEvent(r.case_number, r.sequence, r.code, r.at, json.loads(r.details))
                for r in rows]


class PlatformWebhooks:
    """Repository of the platforms' webhook URLs and their sealed signing secrets."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.platform_webhooks

    def get(self, platform_id: str) -> tuple[PlatformWebhook, str] | None:
        """The platform's webhook and its sealed secret, if one is set."""
        row = self._connection.execute(
            select(self._t).where(self._t.c.platform_id == platform_id)).first()
        if row is None:
            return None
        return (PlatformWebhook(row.platform_id, row.url, row.set_by_official_id, row.set_at),
                row.secret)

    def put(self, webhook: PlatformWebhook, *, sealed_secret: str) -> None:
        """Set the platform's webhook, replacing (and so revoking) any earlier one."""
        values = {"url": webhook.url, "secret": sealed_secret,
                  "set_by_official_id": webhook.set_by_official_id, "set_at": webhook.set_at}
        dialect: Any = postgresql if self._connection.dialect.name == "postgresql" else sqlite
        self._connection.execute(
            dialect.insert(self._t).values(platform_id=webhook.platform_id, **values)
            .on_conflict_do_update(index_elements=[self._t.c.platform_id], set_=values))


class PlatformEvents:
    """Repository of what each platform is told, numbered per platform."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.platform_events

    @staticmethod
    def _event(row: Row[Any]) -> PlatformEvent:
        return PlatformEvent(
            event_id=row.event_id, platform_id=row.platform_id, sequence=row.sequence,
            case_number=row.case_number, event_type=row.event_type,
            data=json.loads(row.payload)["data"], created_at=row.created_at,
            delivered_at=row.delivered_at, attempts=row.attempts, last_status=row.last_status)

    def add(self, event: PlatformEvent) -> None:
        self._connection.execute(insert(self._t).values(
            event_id=event.event_id, platform_id=event.platform_id, sequence=event.sequence,
            case_number=event.case_number, event_type=event.event_type, payload=event.body,
            created_at=event.created_at, delivered_at=event.delivered_at,
            attempts=event.attempts, last_status=event.last_status))

    def get(self, event_id: str) -> PlatformEvent | None:
        row = self._connection.execute(
            select(self._t).where(self._t.c.event_id == event_id)).first()
        return self._event(row) if row else None

    def after(self, platform_id: str, *, sequence: int, limit: int) -> list[PlatformEvent]:
        """The platform's events numbered after ``sequence``, in order."""
        t = self._t
        rows = self._connection.execute(
            select(t).where(t.c.platform_id == platform_id, t.c.sequence > sequence)
            .order_by(t.c.sequence).limit(limit))
        return [self._event(r) for r in rows]

    def record_attempt(self, event_id: str, *, status: int, delivered_at: datetime | None,
                       ) -> None:
        """Count one delivery attempt and its HTTP status; mark it delivered on a 2xx."""
        t = self._t
        self._connection.execute(update(t).where(t.c.event_id == event_id).values(
            attempts=t.c.attempts + 1, last_status=status))
        if delivered_at is not None:
            # The first 2xx is when it was delivered; a later repeat does not move it.
            self._connection.execute(update(t).where(
                t.c.event_id == event_id, t.c.delivered_at.is_(None)).values(
                delivered_at=delivered_at))


class ComplaintsUnitOfWork(UnitOfWork):
    routing: RoutingTable
    platforms: Platforms
    cases: ComplaintCases
    events: ComplaintEvents
    sequences: RunningNumbers
    departments: Departments
    staff: StaffDirectory
    audit: AuditLog
    webhooks: PlatformWebhooks
    platform_events: PlatformEvents
    platform_event_numbers: RunningNumbers

    def bind(self, connection: Connection) -> None:
        self.routing = RoutingTable(connection)
        self.platforms = Platforms(connection)
        self.cases = ComplaintCases(connection)
        self.events = ComplaintEvents(connection)
        self.sequences = RunningNumbers(connection, tables.complaint_sequences)
        self.departments = Departments(connection, tables.departments)
        self.staff = StaffDirectory(connection, tables.officials)
        self.audit = AuditLog(connection, tables.audit_log)
        self.webhooks = PlatformWebhooks(connection)
        self.platform_events = PlatformEvents(connection)
        self.platform_event_numbers = RunningNumbers(connection,
                                                     tables.platform_event_sequences)
