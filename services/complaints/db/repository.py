"""The complaints service's repositories and unit of work."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from kernel import handled_requests as kernel_requests
from kernel.audit import AuditLog
from kernel.db import RunningNumbers, UnitOfWork, insert_rows
from kernel.directory import Departments, StaffDirectory
from kernel.errors import FailedPrecondition
from kernel.instants import utc_text
from services.complaints.db import tables
from services.complaints.db.links import CaseLinks
from services.complaints.db.metrics import CaseRecords
from services.complaints.domain.cases import (
    Complaint,
    ComplaintEvent,
    ComplaintKind,
    ComplaintStatus,
    DeadlineClass,
    Location,
)
from services.complaints.domain.model import Category, Platform, RoutingChange, RoutingRule
from services.complaints.domain.policy import DeadlinePolicy
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


# The statements of intake's checks, built once: building a statement anew for each
# batch (and its cache key) cost more than running it.
_CATEGORIES_OF_CODES = select(tables.categories).where(
    tables.categories.c.code.in_(bindparam("codes", expanding=True)))
_PLATFORM_OF_SYSTEM = select(tables.platforms).where(
    tables.platforms.c.system_name == bindparam("system"))
_CASES_OF_PLATFORM = select(tables.complaint_cases).where(
    tables.complaint_cases.c.platform_id == bindparam("platform_id"),
    tables.complaint_cases.c.external_id.in_(bindparam("external_ids", expanding=True)))


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

    def categories(self, codes: Iterable[str]) -> dict[str, Category]:
        """The categories of ``codes`` that exist, by code, in one query."""
        rows = self._connection.execute(_CATEGORIES_OF_CODES, {"codes": list(set(codes))})
        return {row.code: _category(row) for row in rows}

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
        row = self._connection.execute(_PLATFORM_OF_SYSTEM, {"system": system_name}).first()
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


#: The handling columns a new case starts with, as their Python-side defaults in
#: tables.complaint_cases give them (insert_rows does not apply those defaults).
_NEW_CASE_DEFAULTS: dict[str, object] = {
    "reopened": False, "merged_into": "", "escalations": 0, "workflow_started": False,
    "sla_state": "on_time", "returned_by": "", "extended_days": 0, "unknown_year": 0}

#: The columns ComplaintCases.add_all writes, in the order of its rows.
_NEW_CASE_COLUMNS = (
    "case_number", "platform_id", "external_id", "fingerprint", "kind", "urgent",
    "category_code", "department_code", "rule_version", "deadline_class", "content",
    "latitude", "longitude", "address", "complainant", "linked_case_number",
    "linked_tender_number", "status", "received_at", *_NEW_CASE_DEFAULTS)


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
        self.add_all([StoredComplaint(complaint, sealed_complainant, fingerprint)])

    def add_all(self, stored: Sequence[StoredComplaint]) -> None:
        """Store new cases in one statement; DuplicatePush when any one's key is taken."""
        rows: list[tuple[object, ...]] = []
        for entry in stored:
            complaint = entry.complaint
            location = complaint.location
            rows.append((
                complaint.number, complaint.platform_id, complaint.external_id,
                entry.fingerprint, str(complaint.kind), complaint.urgent,
                complaint.category_code, complaint.department_code, complaint.rule_version,
                str(complaint.deadline_class), complaint.content,
                location.latitude if location else None,
                location.longitude if location else None,
                location.address if location else None,
                entry.sealed_complainant, complaint.linked_case_number,
                complaint.linked_tender_number, str(complaint.status),
                utc_text(complaint.received_at), *_NEW_CASE_DEFAULTS.values()))
        try:
            insert_rows(self._connection, self._t, _NEW_CASE_COLUMNS, rows)
        except IntegrityError as error:
            raise DuplicatePush(", ".join(e.complaint.external_id for e in stored)) from error

    def get(self, case_number: str) -> StoredComplaint | None:
        row = self._connection.execute(
            select(self._t).where(self._t.c.case_number == case_number)).first()
        return self._stored(row) if row else None

    def of_platform_all(self, platform_id: str,
                        external_ids: Iterable[str]) -> dict[str, StoredComplaint]:
        """The platform's stored cases of ``external_ids``, by external id, in one query."""
        rows = self._connection.execute(_CASES_OF_PLATFORM, {
            "platform_id": platform_id, "external_ids": list(set(external_ids))})
        return {row.external_id: self._stored(row) for row in rows}

    def of_platform(self, platform_id: str, external_id: str) -> StoredComplaint | None:
        row = self._connection.execute(select(self._t).where(
            self._t.c.platform_id == platform_id,
            self._t.c.external_id == external_id)).first()
        return self._stored(row) if row else None


_EVENT_COLUMNS = ("case_number", "sequence", "code", "at", "details")


class ComplaintEvents:
    """Repository of what happened to each case."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.complaint_events

    def add(self, events: Iterable[ComplaintEvent]) -> None:
        insert_rows(self._connection, self._t, _EVENT_COLUMNS, [
            (e.case_number, e.sequence, e.code, utc_text(e.at),
             json.dumps(e.details, ensure_ascii=False, sort_keys=True)) for e in events])

    def last_sequence(self, case_number: str) -> int:
        last = self._connection.execute(select(func.max(self._t.c.sequence)).where(
            self._t.c.case_number == case_number)).scalar_one_or_none()
        return int(last or 0)

    def list(self, case_number: str, *, after_sequence: int,
             limit: int) -> list[ComplaintEvent]:
        t = self._t
        rows = self._connection.execute(
            select(t).where(t.c.case_number == case_number, t.c.sequence > after_sequence)
            .order_by(t.c.sequence).limit(limit))
        return [ComplaintEvent(r.case_number, r.sequence, r.code, r.at, json.loads(r.details))
                for r in rows]


@dataclass(frozen=True)
class CaseHandling:
    """A case's handling record: where it stands, its clock and outcome."""

    case_number: str
    platform_id: str
    status: ComplaintStatus
    department_code: str
    kind: str
    urgent: bool
    category_code: str
    deadline_class: str
    received_at: datetime
    sign_for_due: datetime | None
    signed_for_at: datetime | None
    reply_due: datetime | None
    first_replied_at: datetime | None
    replied_at: datetime | None
    closed_at: datetime | None
    rating: int | None
    rated_at: datetime | None
    reopened: bool
    merged_into: str
    policy_version: int | None
    escalations: int
    workflow_started: bool
    rating_closes: datetime | None
    sla_state: str
    returned_by: str
    extended_days: int
    unknown_year: int


_HANDLING_FIELDS = tuple(f for f in CaseHandling.__dataclass_fields__
                         if f not in ("case_number", "platform_id", "status", "department_code",
                                      "kind", "urgent", "category_code", "deadline_class",
                                      "received_at"))


def _handling(row: Row[Any]) -> CaseHandling:
    return CaseHandling(
        case_number=row.case_number, platform_id=row.platform_id,
        status=ComplaintStatus(row.status), department_code=row.department_code,
        kind=row.kind, urgent=bool(row.urgent), category_code=row.category_code,
        deadline_class=row.deadline_class, received_at=row.received_at,
        sign_for_due=row.sign_for_due, signed_for_at=row.signed_for_at,
        reply_due=row.reply_due, first_replied_at=row.first_replied_at,
        replied_at=row.replied_at, closed_at=row.closed_at, rating=row.rating,
        rated_at=row.rated_at, reopened=bool(row.reopened), merged_into=row.merged_into,
        policy_version=row.policy_version, escalations=row.escalations,
        workflow_started=bool(row.workflow_started), rating_closes=row.rating_closes,
        sla_state=row.sla_state, returned_by=row.returned_by,
        extended_days=row.extended_days, unknown_year=row.unknown_year)


class CaseHandlings:
    """Repository of the cases' handling records (columns of complaint_cases)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.complaint_cases

    def get(self, case_number: str, *, for_update: bool = False) -> CaseHandling | None:
        query = select(self._t).where(self._t.c.case_number == case_number)
        row = self._connection.execute(query.with_for_update() if for_update else query).first()
        return _handling(row) if row else None

    def save(self, handling: CaseHandling) -> None:
        self._connection.execute(update(self._t).where(
            self._t.c.case_number == handling.case_number).values(
            status=str(handling.status), department_code=handling.department_code,
            **{name: getattr(handling, name) for name in _HANDLING_FIELDS}))

    def unstarted(self, *, limit: int = 200) -> list[str]:
        """Committed cases whose workflow is not started yet (the outbox), oldest first."""
        rows = self._connection.execute(
            select(self._t.c.case_number).where(self._t.c.workflow_started.is_(False))
            .order_by(self._t.c.case_number).limit(limit))
        return [r.case_number for r in rows]

    def mark_started(self, case_number: str) -> bool:
        moved = self._connection.execute(update(self._t).where(
            self._t.c.case_number == case_number, self._t.c.workflow_started.is_(False))
            .values(workflow_started=True))
        return moved.rowcount == 1

    def merged_into(self, primary: str) -> list[CaseHandling]:
        rows = self._connection.execute(select(self._t).where(
            self._t.c.merged_into == primary).order_by(self._t.c.case_number))
        return [_handling(r) for r in rows]

    def of_departments(self, departments: Iterable[str], statuses: Iterable[str], *,
                       after: str, limit: int) -> list[CaseHandling]:
        rows = self._connection.execute(select(self._t).where(
            self._t.c.department_code.in_(list(departments)),
            self._t.c.status.in_(list(statuses)), self._t.c.case_number > after)
            .order_by(self._t.c.case_number).limit(limit))
        return [_handling(r) for r in rows]

    def in_status(self, statuses: Iterable[str], *, after: str, limit: int,
                  numbers: Iterable[str] | None = None) -> list[CaseHandling]:
        query = select(self._t).where(self._t.c.status.in_(list(statuses)),
                                      self._t.c.case_number > after)
        if numbers is not None:
            query = query.where(self._t.c.case_number.in_(list(numbers)))
        rows = self._connection.execute(query.order_by(self._t.c.case_number).limit(limit))
        return [_handling(r) for r in rows]

    def flagged(self, statuses: Iterable[str]) -> list[CaseHandling]:
        """Cases in ``statuses`` whose deadlines had to guess a year (unknown_year set)."""
        rows = self._connection.execute(select(self._t).where(
            self._t.c.unknown_year > 0, self._t.c.status.in_(list(statuses)))
            .order_by(self._t.c.case_number))
        return [_handling(r) for r in rows]

    def with_event(self, code: str, statuses: Iterable[str]) -> list[str]:
        """Cases in ``statuses`` that have an event ``code``."""
        events = tables.complaint_events
        rows = self._connection.execute(
            select(self._t.c.case_number).where(
                self._t.c.status.in_(list(statuses)),
                select(events.c.sequence).where(
                    events.c.case_number == self._t.c.case_number,
                    events.c.code == code).exists())
            .order_by(self._t.c.case_number))
        return [r.case_number for r in rows]


@dataclass(frozen=True)
class Reply:
    case_number: str
    sequence: int
    department_code: str
    official_id: str
    text: str
    published_text: str
    replied_at: datetime
    answered_by: str = ""


class Replies:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.complaint_replies

    def add(self, reply: Reply) -> Reply:
        last = self._connection.execute(select(func.max(self._t.c.sequence)).where(
            self._t.c.case_number == reply.case_number)).scalar_one_or_none() or 0
        stored = replace(reply, sequence=last + 1)
        self._connection.execute(insert(self._t).values(
            case_number=stored.case_number, sequence=stored.sequence,
            department_code=stored.department_code, official_id=stored.official_id,
            text=stored.text, published_text=stored.published_text,
            replied_at=stored.replied_at, answered_by=stored.answered_by))
        return stored

    def of_case(self, case_number: str) -> list[Reply]:
        rows = self._connection.execute(select(self._t).where(
            self._t.c.case_number == case_number).order_by(self._t.c.sequence))
        return [Reply(r.case_number, r.sequence, r.department_code, r.official_id, r.text,
                      r.published_text, r.replied_at, r.answered_by) for r in rows]


@dataclass(frozen=True)
class CoHandler:
    case_number: str
    department_code: str
    contribution: str | None = None
    contributed_at: datetime | None = None
    official_id: str = ""


class CoHandlers:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.complaint_co_handlers

    def of_case(self, case_number: str) -> list[CoHandler]:
        rows = self._connection.execute(select(self._t).where(
            self._t.c.case_number == case_number).order_by(self._t.c.department_code))
        return [CoHandler(r.case_number, r.department_code, r.contribution, r.contributed_at,
                          r.official_id) for r in rows]

    def set(self, case_number: str, departments: Iterable[str]) -> None:
        """The co-handlers are ``departments``; those that contributed are kept as they are."""
        wanted = set(departments)
        current = {c.department_code for c in self.of_case(case_number)}
        gone = current - wanted
        if gone:
            self._connection.execute(delete(self._t).where(
                self._t.c.case_number == case_number,
                self._t.c.department_code.in_(sorted(gone))))
        new = sorted(wanted - current)
        if new:
            self._connection.execute(insert(self._t), [
                {"case_number": case_number, "department_code": code} for code in new])

    def contribute(self, case_number: str, department_code: str, *, text: str,
                   official_id: str, at: datetime) -> None:
        self._connection.execute(update(self._t).where(
            self._t.c.case_number == case_number,
            self._t.c.department_code == department_code).values(
            contribution=text, contributed_at=at, official_id=official_id))

    def cases_of(self, department_code: str) -> list[str]:
        rows = self._connection.execute(select(self._t.c.case_number).where(
            self._t.c.department_code == department_code))
        return [r.case_number for r in rows]


@dataclass(frozen=True)
class Extension:
    case_number: str
    sequence: int
    department_code: str
    requested_days: int
    basis: str
    requested_by: str
    requested_at: datetime
    outcome: str = ""
    granted_days: int = 0
    decided_by: str = ""
    decided_at: datetime | None = None


class Extensions:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.complaint_extensions

    @staticmethod
    def _extension(r: Row[Any]) -> Extension:
        return Extension(r.case_number, r.sequence, r.department_code, r.requested_days,
                         r.basis, r.requested_by, r.requested_at, r.outcome, r.granted_days,
                         r.decided_by, r.decided_at)

    def add(self, extension: Extension) -> None:
        last = self._connection.execute(select(func.max(self._t.c.sequence)).where(
            self._t.c.case_number == extension.case_number)).scalar_one_or_none() or 0
        self._connection.execute(insert(self._t).values(
            case_number=extension.case_number, sequence=last + 1,
            department_code=extension.department_code,
            requested_days=extension.requested_days, basis=extension.basis,
            requested_by=extension.requested_by, requested_at=extension.requested_at))

    def pending(self, case_number: str) -> Extension | None:
        row = self._connection.execute(select(self._t).where(
            self._t.c.case_number == case_number, self._t.c.outcome == "")).first()
        return self._extension(row) if row else None

    def pending_cases(self) -> list[str]:
        rows = self._connection.execute(select(self._t.c.case_number).where(
            self._t.c.outcome == ""))
        return [r.case_number for r in rows]

    def decide(self, case_number: str, *, outcome: str, granted_days: int, decided_by: str,
               at: datetime) -> None:
        self._connection.execute(update(self._t).where(
            self._t.c.case_number == case_number, self._t.c.outcome == "").values(
            outcome=outcome, granted_days=granted_days, decided_by=decided_by, decided_at=at))

    def of_case(self, case_number: str) -> list[Extension]:
        rows = self._connection.execute(select(self._t).where(
            self._t.c.case_number == case_number).order_by(self._t.c.sequence))
        return [self._extension(r) for r in rows]


class Returns:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.complaint_returns

    def add(self, *, case_number: str, department_code: str, official_id: str, basis: str,
            at: datetime) -> None:
        last = self._connection.execute(select(func.max(self._t.c.sequence)).where(
            self._t.c.case_number == case_number)).scalar_one_or_none() or 0
        self._connection.execute(insert(self._t).values(
            case_number=case_number, sequence=last + 1, department_code=department_code,
            official_id=official_id, basis=basis, returned_at=at))

    def pending_basis(self, case_number: str) -> str:
        row = self._connection.execute(select(self._t.c.basis).where(
            self._t.c.case_number == case_number, self._t.c.outcome == "")).first()
        return str(row.basis) if row else ""

    def decide(self, case_number: str, *, outcome: str, target_department: str, basis: str,
               decided_by: str, at: datetime) -> None:
        self._connection.execute(update(self._t).where(
            self._t.c.case_number == case_number, self._t.c.outcome == "").values(
            outcome=outcome, target_department=target_department, dispatch_basis=basis,
            decided_by=decided_by, decided_at=at))

    def last_decided_at(self, case_number: str) -> datetime | None:
        """When the dispatcher last decided a return of the case (None: never)."""
        return self._connection.execute(select(func.max(self._t.c.decided_at)).where(
            self._t.c.case_number == case_number)).scalar_one_or_none()


@dataclass(frozen=True)
class RecordedAct:
    act_id: str
    case_number: str
    kind: str
    result: str


@dataclass(frozen=True)
class RequestAct:
    """An act recorded under a request id: its signed statement (document form), kind, the
    recording's answer (JSON of an ActRecorded) and when it was recorded."""

    statement: dict[str, Any]
    kind: str
    result: str
    recorded_at: datetime


class Acts:
    """Repository of the signed acts recorded, one row each."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.complaint_acts

    def get(self, act_id: str) -> RecordedAct | None:
        row = self._connection.execute(select(self._t).where(
            self._t.c.act_id == act_id)).first()
        return RecordedAct(row.act_id, row.case_number, row.kind, row.result) if row else None

    def statement_of_request(self, case_number: str, *, system: str,
                             request_id: str) -> dict[str, Any] | None:
        """The signed statement (document form) of the act ``system`` sent on ``case_number``
        under ``request_id``, if it was recorded; None otherwise."""
        rows = self._connection.execute(select(self._t.c.statement).where(
            self._t.c.case_number == case_number, self._t.c.system == system))
        for (text,) in rows:
            document: dict[str, Any] = json.loads(text)
            body = document.get("body")
            if isinstance(body, dict) and body.get("request_id") == request_id:
                return document
        return None

    def of_request(self, case_number: str, *, system: str,
                   request_id: str) -> RequestAct | None:
        """The act ``system`` sent on ``case_number`` under ``request_id``, as recorded (its
        statement, the recording's answer and when); None if it was not recorded."""
        rows = self._connection.execute(select(
            self._t.c.statement, self._t.c.kind, self._t.c.result, self._t.c.recorded_at)
            .where(self._t.c.case_number == case_number, self._t.c.system == system))
        for row in rows:
            document: dict[str, Any] = json.loads(row.statement)
            body = document.get("body")
            if isinstance(body, dict) and body.get("request_id") == request_id:
                return RequestAct(document, row.kind, row.result, row.recorded_at)
        return None

    def reopened_at(self, case_number: str) -> datetime | None:
        """When the rating that reopened ``case_number`` was recorded (None: never reopened)."""
        rows = self._connection.execute(select(self._t.c.result, self._t.c.recorded_at).where(
            self._t.c.case_number == case_number, self._t.c.kind == "complaint_rating")
            .order_by(self._t.c.recorded_at))
        for row in rows:
            if json.loads(row.result).get("stage") == "handling":
                moment: datetime = row.recorded_at
                return moment
        return None

    def add(self, *, act_id: str, case_number: str, kind: str, official_id: str, system: str,
            statement: str, result: str, at: datetime) -> None:
        self._connection.execute(insert(self._t).values(
            act_id=act_id, case_number=case_number, kind=kind, official_id=official_id,
            system=system, statement=statement, result=result, recorded_at=at))


@dataclass(frozen=True)
class StoredPolicy:
    policy: DeadlinePolicy
    basis: str
    set_by_official_id: str
    valid_from: datetime
    valid_until: datetime | None


_POLICY_FIELDS = tuple(DeadlinePolicy.__dataclass_fields__)


class DeadlinePolicies:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.deadline_policies

    def _stored(self, row: Row[Any]) -> StoredPolicy:
        return StoredPolicy(DeadlinePolicy(**{name: getattr(row, name)
                                              for name in _POLICY_FIELDS}),
                            row.basis, row.set_by_official_id, row.valid_from, row.valid_until)

    def in_force(self, *, for_update: bool = False) -> StoredPolicy:
        query = select(self._t).where(self._t.c.valid_until.is_(None))
        row = self._connection.execute(query.with_for_update() if for_update else query).first()
        if row is None:
            raise FailedPrecondition("no deadline policy is in force: an operator must set one")
        return self._stored(row)

    def get(self, version: int) -> StoredPolicy | None:
        row = self._connection.execute(select(self._t).where(
            self._t.c.version == version)).first()
        return self._stored(row) if row else None

    def replace_in_force(self, policy: DeadlinePolicy, *, basis: str, set_by_official_id: str,
                         at: datetime, superseded: int) -> None:
        """The new version in force from ``at``; the one in force until now ends there."""
        ended = self._connection.execute(update(self._t).where(
            self._t.c.version == superseded, self._t.c.valid_until.is_(None))
            .values(valid_until=at))
        if ended.rowcount != 1:
            raise FailedPrecondition(
                "the deadline policy was changed by another call at the same time: read it "
                "again and retry")
        try:
            self._connection.execute(insert(self._t).values(
                basis=basis, set_by_official_id=set_by_official_id, valid_from=at,
                valid_until=None, **{name: getattr(policy, name) for name in _POLICY_FIELDS}))
        except IntegrityError as error:
            raise FailedPrecondition(
                "the deadline policy was changed by another call at the same time: read it "
                "again and retry") from error


class HandledRequests(kernel_requests.HandledRequests):
    """The handling desk's requests taken."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection, tables.handled_requests)


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
    handling: CaseHandlings
    replies: Replies
    co_handlers: CoHandlers
    extensions: Extensions
    returns: Returns
    acts: Acts
    policies: DeadlinePolicies
    requests: HandledRequests
    sequences: RunningNumbers
    departments: Departments
    staff: StaffDirectory
    audit: AuditLog
    links: CaseLinks
    case_records: CaseRecords
    webhooks: PlatformWebhooks
    platform_events: PlatformEvents
    platform_event_numbers: RunningNumbers

    def bind(self, connection: Connection) -> None:
        self.routing = RoutingTable(connection)
        self.platforms = Platforms(connection)
        self.cases = ComplaintCases(connection)
        self.events = ComplaintEvents(connection)
        self.handling = CaseHandlings(connection)
        self.replies = Replies(connection)
        self.co_handlers = CoHandlers(connection)
        self.extensions = Extensions(connection)
        self.returns = Returns(connection)
        self.acts = Acts(connection)
        self.policies = DeadlinePolicies(connection)
        self.requests = HandledRequests(connection)
        self.sequences = RunningNumbers(connection, tables.complaint_sequences)
        self.departments = Departments(connection, tables.departments)
        self.staff = StaffDirectory(connection, tables.officials)
        self.audit = AuditLog(connection, tables.audit_log)
        self.links = CaseLinks(connection)
        self.case_records = CaseRecords(connection)
        self.webhooks = PlatformWebhooks(connection)
        self.platform_events = PlatformEvents(connection)
        self.platform_event_numbers = RunningNumbers(connection,
                                                     tables.platform_event_sequences)
