"""The intake service's repositories and unit of work."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, Table, func, insert, select, text, update

from kernel.audit import AuditLog
from kernel.authority import AuthorityRecords
from kernel.db import RunningNumbers, UnitOfWork
from kernel.directory import Departments, StaffDirectory
from services.intake.db import tables
from services.intake.domain.cases import (
    Case,
    CaseDeadlines,
    CaseStatus,
    Finding,
    IntakeOutcome,
    Notice,
    NoticeItem,
    NoticeKind,
    SubmittedMaterial,
    TimelineEvent,
    utc_iso,
)
from services.intake.domain.decisions import (
    RegisterEntry,
    RegisterEntryKind,
    SealedDecision,
    SealKey,
)
from services.intake.domain.model import ApprovalItem, Material
from services.intake.keystore import ApplicantCipher


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

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.approval_items

    def current(self, code: str) -> ApprovalItem | None:
        row = self._connection.execute(
            select(self._t).where(self._t.c.code == code, self._t.c.current.is_(True))).first()
        return _item(row) if row else None

    def at_version(self, code: str, version: int) -> ApprovalItem | None:
        row = self._connection.execute(
            select(self._t).where(self._t.c.code == code, self._t.c.version == version)).first()
        return _item(row) if row else None

    def list_current(self, *, department_code: str, after: str, limit: int) -> list[ApprovalItem]:
        query = select(self._t).where(self._t.c.current.is_(True), self._t.c.code > after)
        if department_code:
            query = query.where(self._t.c.department_code == department_code)
        rows = self._connection.execute(query.order_by(self._t.c.code).limit(limit))
        return [_item(r) for r in rows]

    def count_current(self) -> int:
        return len(self._connection.execute(
            select(self._t.c.code).where(self._t.c.current.is_(True))).all())

    def add(self, item: ApprovalItem) -> None:
        """Store ``item`` as the current version of its code."""
        self._connection.execute(
            update(self._t).where(self._t.c.code == item.code, self._t.c.current.is_(True))
            .values(current=False))
        self._connection.execute(insert(self._t).values(
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
            published_at=datetime.now(UTC),
        ))


def _is_postgresql(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def _lock(connection: Connection, name: str) -> None:
    """Serialise the transactions that take ``name`` until they end (PostgreSQL).

    SQLite needs nothing: a writing unit of work holds the database's write
    lock from its first statement (kernel.db).
    """
    if _is_postgresql(connection):
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


def _materials_json(materials: tuple[SubmittedMaterial, ...]) -> str:
    return json.dumps([{"code": m.code, "provided": m.provided, "defects": list(m.defects),
                        "fixed_on_spot": m.fixed_on_spot} for m in materials],
                      ensure_ascii=False)


def _materials(value: str) -> tuple[SubmittedMaterial, ...]:
    return tuple(SubmittedMaterial(m["code"], m["provided"], tuple(m["defects"]),
                                   m["fixed_on_spot"]) for m in json.loads(value))


class Cases:
    """Repository of cases; the applicant's personal data is encrypted on the way in."""

    def __init__(self, connection: Connection, cipher: ApplicantCipher | None) -> None:
        self._connection = connection
        self._cipher = cipher
        self._t = tables.cases

    def _require_cipher(self) -> ApplicantCipher:
        if self._cipher is None:
            raise RuntimeError("this unit of work was opened without the applicant cipher")
        return self._cipher

    def _case(self, row: Row[Any]) -> Case:
        deadlines = None
        if row.promised_due_at:
            deadlines = CaseDeadlines(row.warning_at, row.promised_due_at, row.legal_due_at)
        return Case(
            number=row.case_number, system=row.system, status=CaseStatus(row.status),
            outcome=IntakeOutcome(row.outcome), finding=Finding(row.finding),
            item_code=row.item_code, item_version=row.item_version, item_name=row.item_name,
            department_code=row.department_code,
            applicant=self._require_cipher().open(row.applicant),
            materials=_materials(row.materials), clerk_id=row.clerk_id,
            submitted_at=row.submitted_at,
            accepted_by=row.accepted_by or "", accepted_at=row.accepted_at,
            accepted_on=date.fromisoformat(row.accepted_on) if row.accepted_on else None,
            closed_at=row.closed_at, withdrawal_reason=row.withdrawal_reason or "",
            workflow_started=row.workflow_started, sla_state=row.sla_state,
            deadlines=deadlines, calendar_gap_year=row.calendar_gap_year,
            certificate_number=row.certificate_number or "")

    def get(self, case_number: str, *, for_update: bool = False) -> Case | None:
        query = select(self._t).where(self._t.c.case_number == case_number)
        if for_update:
            query = query.with_for_update()
        row = self._connection.execute(query).first()
        return self._case(row) if row else None

    def count(self) -> int:
        return int(self._connection.execute(select(func.count()).select_from(self._t)).scalar_one())

    def unstarted(self, *, limit: int) -> list[str]:
        """Accepted cases whose workflow was never started, oldest first."""
        rows = self._connection.execute(
            select(self._t.c.case_number)
            .where(self._t.c.status == CaseStatus.ACCEPTED,
                   self._t.c.workflow_started.is_(False))
            .order_by(self._t.c.accepted_at, self._t.c.case_number).limit(limit))
        return [r.case_number for r in rows]

    def add(self, case: Case) -> None:
        self._connection.execute(insert(self._t).values(
            case_number=case.number, system=case.system, status=case.status,
            outcome=case.outcome, finding=case.finding, item_code=case.item_code,
            item_version=case.item_version, item_name=case.item_name,
            department_code=case.department_code,
            applicant=self._require_cipher().seal(case.applicant),
            **self._changing(case)))

    def save(self, case: Case) -> None:
        """Store what may change on a case after it was registered."""
        self._connection.execute(update(self._t).where(self._t.c.case_number == case.number)
                              .values(status=case.status, outcome=case.outcome,
                                      **self._changing(case)))

    @staticmethod
    def _changing(case: Case) -> dict[str, Any]:
        deadlines = case.deadlines
        return {
            "materials": _materials_json(case.materials),
            "clerk_id": case.clerk_id,
            "submitted_at": case.submitted_at,
            "accepted_by": case.accepted_by or None,
            "accepted_at": case.accepted_at,
            "accepted_on": case.accepted_on.isoformat() if case.accepted_on else None,
            "closed_at": case.closed_at,
            "withdrawal_reason": case.withdrawal_reason or None,
            "workflow_started": case.workflow_started,
            "sla_state": case.sla_state,
            "warning_at": deadlines.warning_at if deadlines else None,
            "promised_due_at": deadlines.promised_due_at if deadlines else None,
            "legal_due_at": deadlines.legal_due_at if deadlines else None,
            "calendar_gap_year": case.calendar_gap_year,
            "certificate_number": case.certificate_number or None,
        }


class IdempotencyKeys:
    """What each (calling system, idempotency key) stood for, so a retry gets the same answer."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.idempotency_keys

    def lock(self, system: str, key: str) -> None:
        """Make concurrent requests with one key wait for each other."""
        _lock(self._connection, f"govhall_intake_idempotency/{system}/{key}")

    def get(self, system: str, key: str) -> Row[Any] | None:
        return self._connection.execute(select(self._t).where(
            self._t.c.system == system, self._t.c.idempotency_key == key)).first()

    def add(self, *, system: str, key: str, operation: str, fingerprint: str,
            case_number: str, outcome: str, at: datetime) -> None:
        self._connection.execute(insert(self._t).values(
            system=system, idempotency_key=key, operation=operation, fingerprint=fingerprint,
            case_number=case_number, outcome=outcome, recorded_at=at))


class Notices:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.notices

    @staticmethod
    def _notice(row: Row[Any]) -> Notice:
        return Notice(
            kind=NoticeKind(row.kind), text=row.text,
            issued_at=row.issued_at,
            items=tuple(NoticeItem(**i) for i in json.loads(row.items)),
            competent_authority=row.competent_authority,
            reasons=tuple(json.loads(row.reasons)), number=row.notice_number)

    def add(self, case_number: str, notice: Notice) -> None:
        self._connection.execute(insert(self._t).values(
            notice_number=notice.number, case_number=case_number, kind=notice.kind,
            issued_at=notice.issued_at, issued_on=notice.issued_on.isoformat(),
            text=notice.text,
            items=json.dumps([asdict(i) for i in notice.items], ensure_ascii=False),
            competent_authority=notice.competent_authority,
            reasons=json.dumps(list(notice.reasons), ensure_ascii=False)))

    def for_case(self, case_number: str) -> list[Notice]:
        rows = self._connection.execute(select(self._t).where(self._t.c.case_number == case_number)
                                     .order_by(self._t.c.notice_number))
        return [self._notice(r) for r in rows]

    def of_kind(self, case_number: str, kind: NoticeKind) -> Notice | None:
        row = self._connection.execute(select(self._t).where(
            self._t.c.case_number == case_number, self._t.c.kind == kind)).first()
        return self._notice(row) if row else None


def _deadlines_json(deadlines: CaseDeadlines | None) -> str | None:
    if deadlines is None:
        return None
    return json.dumps({"warning_at": utc_iso(deadlines.warning_at),
                       "promised_due_at": utc_iso(deadlines.promised_due_at),
                       "legal_due_at": utc_iso(deadlines.legal_due_at)})


def _deadlines(value: str | None) -> CaseDeadlines | None:
    if not value:
        return None
    content = json.loads(value)
    return CaseDeadlines(datetime.fromisoformat(content["warning_at"]),
                         datetime.fromisoformat(content["promised_due_at"]),
                         datetime.fromisoformat(content["legal_due_at"]))


class Timeline:
    """Every event of every case, each recorded once (by case and event id)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.case_events

    def has(self, case_number: str, event_id: str) -> bool:
        return self._connection.execute(select(self._t.c.id).where(
            self._t.c.case_number == case_number, self._t.c.event_id == event_id),
        ).first() is not None

    def count(self, case_number: str, *, prefix: str = "") -> int:
        query = select(func.count()).select_from(self._t).where(
            self._t.c.case_number == case_number)
        if prefix:
            query = query.where(self._t.c.event_id.startswith(prefix, autoescape=True))
        return int(self._connection.execute(query).scalar_one())

    def add(self, case_number: str, event: TimelineEvent, *, recorded_at: datetime) -> None:
        self._connection.execute(insert(self._t).values(
            case_number=case_number, event_id=event.event_id, kind=event.kind,
            at=event.at, stage=event.stage, official_id=event.official_id,
            details=json.dumps(event.details or {}, ensure_ascii=False, sort_keys=True),
            deadlines=_deadlines_json(event.deadlines), status=event.status,
            sla_state=event.sla_state, recorded_at=recorded_at))

    def for_case(self, case_number: str) -> list[TimelineEvent]:
        rows = self._connection.execute(select(self._t).where(self._t.c.case_number == case_number)
                                     .order_by(self._t.c.at, self._t.c.id))
        return [TimelineEvent(event_id=r.event_id, kind=r.kind,
                              at=r.at, stage=r.stage,
                              official_id=r.official_id, details=json.loads(r.details),
                              deadlines=_deadlines(r.deadlines), status=r.status,
                              sla_state=r.sla_state) for r in rows]


class SealKeys:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.seal_keys

    def all(self) -> list[SealKey]:
        rows = self._connection.execute(select(self._t).order_by(self._t.c.created_at))
        return [SealKey(r.key_id, bytes(r.public_key), r.created_at,
                        r.active) for r in rows]

    def make_active(self, key_id: str, public_key: bytes, *, at: datetime) -> bool:
        """Make ``key_id`` the one active key, adding it if new; True if anything changed."""
        _lock(self._connection, "govhall_intake_seal_keys")
        current = {k.key_id: k for k in self.all()}
        if key_id in current and current[key_id].active and sum(
                k.active for k in current.values()) == 1:
            return False
        self._connection.execute(update(self._t).values(active=False))
        if key_id in current:
            self._connection.execute(update(self._t).where(self._t.c.key_id == key_id)
                                  .values(active=True))
        else:
            self._connection.execute(insert(self._t).values(
                key_id=key_id, public_key=public_key, created_at=at, active=True))
        return True


def _sealed(row: Row[Any]) -> SealedDecision:
    return SealedDecision(
        certificate_number=row.certificate_number, case_number=row.case_number,
        key_id=row.key_id, decision=row.decision, document=bytes(row.document),
        signature=bytes(row.signature), document_sha256=row.document_sha256,
        issued_at=row.issued_at, revoked=row.revoked,
        revocation_reason=row.revocation_reason or "", revoked_at=row.revoked_at,
        revoked_by=row.revoked_by or "")


class SealedDecisions:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.sealed_decisions

    def get(self, certificate_number: str, *, for_update: bool = False) -> SealedDecision | None:
        query = select(self._t).where(self._t.c.certificate_number == certificate_number)
        if for_update:
            query = query.with_for_update()
        row = self._connection.execute(query).first()
        return _sealed(row) if row else None

    def of_case(self, case_number: str) -> SealedDecision | None:
        row = self._connection.execute(
            select(self._t).where(self._t.c.case_number == case_number)).first()
        return _sealed(row) if row else None

    def add(self, decision: SealedDecision) -> None:
        self._connection.execute(insert(self._t).values(
            certificate_number=decision.certificate_number, case_number=decision.case_number,
            key_id=decision.key_id, decision=decision.decision, document=decision.document,
            signature=decision.signature, document_sha256=decision.document_sha256,
            issued_at=decision.issued_at, revoked=False))

    def revoke(self, certificate_number: str, *, reason: str, at: datetime,
               official_id: str) -> None:
        self._connection.execute(update(self._t)
                              .where(self._t.c.certificate_number == certificate_number)
                              .values(revoked=True, revocation_reason=reason,
                                      revoked_at=at, revoked_by=official_id))

    def count_revoked(self) -> int:
        return int(self._connection.execute(select(func.count()).select_from(self._t)
                                         .where(self._t.c.revoked.is_(True))).scalar_one())


class Register:
    """The public register: entries numbered in the order they commit."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t: Table = tables.register_entries

    def append(self, entry: RegisterEntry) -> int:
        # Numbers are taken under a lock held to commit, so an entry with a
        # higher number is never visible before one with a lower number: a
        # reader continuing after the last number it read misses nothing.
        _lock(self._connection, "govhall_intake_register")
        last = self._connection.execute(select(func.max(self._t.c.sequence))).scalar_one()
        sequence = int(last or 0) + 1
        values = asdict(entry) | {"sequence": sequence, "kind": str(entry.kind),
                                  "recorded_at": entry.recorded_at}
        self._connection.execute(insert(self._t).values(**values))
        return sequence

    def after(self, cursor: int, *, limit: int) -> list[RegisterEntry]:
        rows = self._connection.execute(select(self._t).where(self._t.c.sequence > cursor)
                                     .order_by(self._t.c.sequence).limit(limit))
        return [RegisterEntry(
            kind=RegisterEntryKind(r.kind), certificate_number=r.certificate_number,
            case_number=r.case_number, item_code=r.item_code, item_name=r.item_name,
            department_code=r.department_code, decision=r.decision, holder=r.holder,
            decided_at=r.decided_at, issued_at=r.issued_at, reason=r.reason,
            recorded_at=r.recorded_at, sequence=r.sequence)
            for r in rows]


class IntakeUnitOfWork(UnitOfWork):
    catalogue: Catalogue
    departments: Departments
    staff: StaffDirectory
    audit: AuditLog
    authority: AuthorityRecords
    cases: Cases
    idempotency: IdempotencyKeys
    sequences: RunningNumbers
    notices: Notices
    timeline: Timeline
    seal_keys: SealKeys
    sealed: SealedDecisions
    register: Register

    def __init__(self, engine: Engine, *, write: bool = True,
                 cipher: ApplicantCipher | None = None) -> None:
        super().__init__(engine, write=write)
        self._cipher = cipher

    def bind(self, connection: Connection) -> None:
        self.catalogue = Catalogue(connection)
        self.departments = Departments(connection, tables.departments)
        self.staff = StaffDirectory(connection, tables.officials)
        self.audit = AuditLog(connection, tables.audit_log)
        self.authority = AuthorityRecords(connection, self.audit)
        self.cases = Cases(connection, self._cipher)
        self.idempotency = IdempotencyKeys(connection)
        self.sequences = RunningNumbers(connection, tables.sequences)
        self.notices = Notices(connection)
        self.timeline = Timeline(connection)
        self.seal_keys = SealKeys(connection)
        self.sealed = SealedDecisions(connection)
        self.register = Register(connection)
