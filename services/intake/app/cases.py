"""Applications at the window, and the timeline the approval chain writes.

One function per use case, each on its own unit of work. The clock is a
keyword (``now``), so a test can fix the day an application is accepted.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from kernel.audit import Actor
from kernel.directory import Official, acting_official, require_official
from kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from kernel.identity import Caller
from kernel.signing import ServiceSigner
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.domain.cases import (
    IN_CHAIN,
    Applicant,
    Case,
    CaseStatus,
    Findings,
    IntakeOutcome,
    Notice,
    NoticeItem,
    NoticeKind,
    SubmittedMaterial,
    TimelineEvent,
    acceptance_receipt,
    assess,
    case_number,
    check_materials,
    china_date,
    fixed_on_the_spot,
    numbered,
    outstanding,
    supplemented,
)
from services.intake.domain.decisions import canonical_json
from services.intake.domain.model import ApprovalItem
from workflows.approval_contract import (
    ApprovalInput,
    SignedStatement,
    Stage,
    StatementFacts,
    StatementKind,
    as_statement,
    statement_body,
    workflow_id,
)

SUBMIT = "submit"
SUPPLEMENT = "supplement"
INTAKE_EVENT_PREFIX = "intake-"
#: The stage the window's own events are recorded at.
INTAKE_STAGE = "intake"
#: Who records what the approval workflow reports.
CHAIN_SYSTEM = "approval-workflow"

_OUTCOME_NOTICE = {
    IntakeOutcome.ACCEPTED: NoticeKind.ACCEPTANCE_RECEIPT,
    IntakeOutcome.CORRECTION_REQUIRED: NoticeKind.CORRECTION,
    IntakeOutcome.NOT_SUBJECT_TO_PERMIT: NoticeKind.NOT_SUBJECT_TO_PERMIT,
    IntakeOutcome.OUTSIDE_AUTHORITY: NoticeKind.OUTSIDE_AUTHORITY,
    IntakeOutcome.REFUSED: NoticeKind.REFUSAL,
}
_OUTCOME_EVENT = {
    IntakeOutcome.ACCEPTED: "application.accepted",
    IntakeOutcome.CORRECTION_REQUIRED: "correction_notice.issued",
    IntakeOutcome.NOT_SUBJECT_TO_PERMIT: "application.closed",
    IntakeOutcome.OUTSIDE_AUTHORITY: "application.closed",
    IntakeOutcome.REFUSED: "application.closed",
}
_CLOSING_STATUSES = frozenset({CaseStatus.APPROVED, CaseStatus.REFUSED, CaseStatus.WITHDRAWN})


@dataclass(frozen=True)
class CaseView:
    """A case with what it is read with: its item version, department name and notices."""

    case: Case
    item: ApprovalItem
    department_name: str
    notices: list[Notice]
    applicant_masked: bool
    decision_revoked: bool = False


@dataclass(frozen=True)
class Submission:
    view: CaseView
    outcome: IntakeOutcome
    notice: Notice
    replayed: bool


@dataclass(frozen=True)
class Supplement:
    view: CaseView
    outcome: IntakeOutcome
    correction_notice: Notice
    outstanding: tuple[NoticeItem, ...]
    receipt: Notice | None
    replayed: bool


@dataclass(frozen=True)
class WithdrawalStep:
    """What a withdrawal needs: done here (``view``), or through the workflow (``clerk``)."""

    view: CaseView | None = None
    clerk: Official | None = None
    case: Case | None = None


def _fingerprint(operation: str, content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"operation": operation, **content})).hexdigest()


def _materials_content(materials: tuple[SubmittedMaterial, ...]) -> list[dict[str, Any]]:
    return [asdict(m) | {"defects": list(m.defects)} for m in materials]


def _view(uow: IntakeUnitOfWork, case: Case, *, masked: bool) -> CaseView:
    item = uow.catalogue.at_version(case.item_code, case.item_version)
    if item is None:
        raise RuntimeError(f"case {case.number} names item version "
                           f"{case.item_code}/{case.item_version}, which is not stored")
    department = uow.departments.get(case.department_code)
    sealed = uow.sealed.of_case(case.number)
    shown = replace(case, applicant=case.applicant.masked()) if masked else case
    return CaseView(shown, item, department.name if department else "",
                    uow.notices.for_case(case.number), masked,
                    decision_revoked=bool(sealed and sealed.revoked))


def _case(uow: IntakeUnitOfWork, number: str, *, for_update: bool = False) -> Case:
    case = uow.cases.get(number, for_update=for_update)
    if case is None:
        raise NotFound(f"case {number} is unknown")
    return case


def _clerk_of(official: Official, department_code: str, what: str) -> None:
    if official.department_code != department_code:
        raise PermissionDenied(
            f"official {official.id} is a window clerk of {official.department_code}; "
            f"{what} belongs to {department_code}, whose window takes it")


def _intake_event(uow: IntakeUnitOfWork, case: Case, kind: str, *, now: datetime,
                  official_id: str, details: dict[str, str]) -> None:
    ordinal = uow.timeline.count(case.number, prefix=INTAKE_EVENT_PREFIX) + 1
    uow.timeline.add(case.number, TimelineEvent(
        event_id=f"{INTAKE_EVENT_PREFIX}{ordinal:04d}", kind=kind, at=now,
        stage=INTAKE_STAGE, official_id=official_id, details=details, status=case.status,
        sla_state=case.sla_state), recorded_at=now)


def _replayed(uow: IntakeUnitOfWork, caller: Caller, key: str, *, operation: str,
              fingerprint: str) -> tuple[Case, IntakeOutcome] | None:
    """The case and outcome a retried request got the first time; None for a new key."""
    uow.idempotency.lock(caller.system, key)
    seen = uow.idempotency.get(caller.system, key)
    if seen is None:
        return None
    if seen.operation != operation or seen.fingerprint != fingerprint:
        raise AlreadyExists(
            f"idempotency key {key} was used for another request (case {seen.case_number}): "
            "a new request needs a new key")
    return _case(uow, seen.case_number), IntakeOutcome(seen.outcome)


def submit_application(*, uow: IntakeUnitOfWork, caller: Caller, idempotency_key: str,
                       item_code: str, applicant: Applicant,
                       materials: tuple[SubmittedMaterial, ...], findings: Findings,
                       now: datetime) -> Submission:
    with uow:
        official = require_official(uow.staff, caller, role="window_clerk")
        fingerprint = _fingerprint(SUBMIT, {
            "official": official.id, "item_code": item_code, "applicant": asdict(applicant),
            "materials": _materials_content(materials),
            "findings": asdict(findings) | {"refusal_reasons": list(findings.refusal_reasons)}})
        replay = _replayed(uow, caller, idempotency_key, operation=SUBMIT,
                           fingerprint=fingerprint)
        if replay is not None:
            case, outcome = replay
            notice = uow.notices.of_kind(case.number, _OUTCOME_NOTICE[outcome])
            assert notice is not None
            return Submission(_view(uow, case, masked=False), outcome, notice, replayed=True)
        item = uow.catalogue.current(item_code)
        if item is None:
            raise NotFound(f"approval item {item_code} is not in the catalogue")
        _clerk_of(official, item.department_code, f"item {item.code}")
        check_materials(item, materials)
        day = china_date(now)
        number = case_number(day, uow.sequences.next(f"AP-{day:%Y%m%d}"))
        assessment = assess(item, findings, materials, case_number=number, now=now)
        outcome = assessment.outcome
        notice = numbered(assessment.notice, number, 1)
        accepted = outcome == IntakeOutcome.ACCEPTED
        case = Case(
            number=number, system=caller.system, status=assessment.status, outcome=outcome,
            finding=findings.finding, item_code=item.code, item_version=item.version,
            item_name=item.name, department_code=item.department_code, applicant=applicant,
            materials=materials, clerk_id=official.id, submitted_at=now,
            accepted_by=official.id if accepted else "", accepted_at=now if accepted else None,
            accepted_on=day if accepted else None,
            closed_at=None if accepted or outcome == IntakeOutcome.CORRECTION_REQUIRED else now,
            sla_state="on_time" if accepted else "")
        uow.cases.add(case)
        uow.notices.add(number, notice)
        fixed = fixed_on_the_spot(materials)
        submitted = {"item_code": item.code, "item_version": str(item.version),
                     "finding": str(findings.finding)}
        if fixed:
            submitted["fixed_on_the_spot"] = ",".join(fixed)
        _intake_event(uow, case, "application.submitted", now=now, official_id=official.id,
                      details=submitted)
        _intake_event(uow, case, _OUTCOME_EVENT[outcome], now=now, official_id=official.id,
                      details=_outcome_details(case, notice))
        uow.idempotency.add(system=caller.system, key=idempotency_key, operation=SUBMIT,
                            fingerprint=fingerprint, case_number=number, outcome=outcome,
                            at=now)
        uow.audit.append(
            actor=Actor(caller.system, official.id), action="application.submitted",
            subject=f"case/{number}", at=now,
            details={"item": item.code, "version": item.version, "outcome": str(outcome),
                     "notice": notice.number,
                     "outstanding": [i.material_code for i in notice.items],
                     "fixed_on_the_spot": fixed})
        uow.commit()
        return Submission(_view(uow, case, masked=False), outcome, notice, replayed=False)


def _outcome_details(case: Case, notice: Notice) -> dict[str, str]:
    details = {"outcome": str(case.outcome), "notice": notice.number}
    if case.accepted_on is not None:
        details["accepted_on"] = case.accepted_on.isoformat()
    if notice.items:
        details["materials"] = ",".join(i.material_code for i in notice.items)
    return details


def supplement_materials(*, uow: IntakeUnitOfWork, caller: Caller, case_number: str,
                         idempotency_key: str, materials: tuple[SubmittedMaterial, ...],
                         now: datetime) -> Supplement:
    with uow:
        official = require_official(uow.staff, caller, role="window_clerk")
        fingerprint = _fingerprint(SUPPLEMENT, {
            "official": official.id, "case_number": case_number,
            "materials": _materials_content(materials)})
        replay = _replayed(uow, caller, idempotency_key, operation=SUPPLEMENT,
                           fingerprint=fingerprint)
        if replay is not None:
            case, outcome = replay
            return _supplement_answer(uow, case, outcome, replayed=True)
        case = _case(uow, case_number, for_update=True)
        _clerk_of(official, case.department_code, f"case {case.number}")
        if case.status != CaseStatus.AWAITING_MATERIALS:
            raise FailedPrecondition(
                f"case {case.number} is {case.status}: only a case awaiting materials "
                "takes a supplement")
        notice = uow.notices.of_kind(case.number, NoticeKind.CORRECTION)
        item = uow.catalogue.at_version(case.item_code, case.item_version)
        assert notice is not None and item is not None
        check_materials(item, materials, allowed={i.material_code for i in notice.items})
        merged = supplemented(case.materials, materials)
        remaining = outstanding(item, merged)
        case = replace(case, materials=merged)
        if not remaining:
            case = replace(case, status=CaseStatus.ACCEPTED, outcome=IntakeOutcome.ACCEPTED,
                           accepted_by=official.id, accepted_at=now,
                           accepted_on=china_date(now), sla_state="on_time")
        uow.cases.save(case)
        supplied = ",".join(m.code for m in materials)
        _intake_event(uow, case, "materials.supplemented", now=now, official_id=official.id,
                      details={"supplied": supplied,
                               "outstanding": ",".join(i.material_code for i in remaining)})
        if not remaining:
            receipt = numbered(acceptance_receipt(item, case.number, now), case.number,
                               len(uow.notices.for_case(case.number)) + 1)
            uow.notices.add(case.number, receipt)
            _intake_event(uow, case, "application.accepted", now=now, official_id=official.id,
                          details=_outcome_details(case, receipt))
        uow.idempotency.add(system=caller.system, key=idempotency_key, operation=SUPPLEMENT,
                            fingerprint=fingerprint, case_number=case.number,
                            outcome=case.outcome, at=now)
        uow.audit.append(
            actor=Actor(caller.system, official.id), action="materials.supplemented",
            subject=f"case/{case.number}", at=now,
            details={"supplied": [m.code for m in materials],
                     "outstanding": [i.material_code for i in remaining],
                     "outcome": str(case.outcome)})
        uow.commit()
        return _supplement_answer(uow, case, case.outcome, replayed=False)


def _supplement_answer(uow: IntakeUnitOfWork, case: Case, outcome: IntakeOutcome, *,
                       replayed: bool) -> Supplement:
    notice = uow.notices.of_kind(case.number, NoticeKind.CORRECTION)
    item = uow.catalogue.at_version(case.item_code, case.item_version)
    assert notice is not None and item is not None
    accepted = outcome == IntakeOutcome.ACCEPTED
    remaining = () if accepted else outstanding(item, case.materials)
    receipt = uow.notices.of_kind(case.number, NoticeKind.ACCEPTANCE_RECEIPT) if accepted \
        else None
    return Supplement(_view(uow, case, masked=False), outcome, notice, remaining, receipt,
                      replayed)


def withdraw_application(*, uow: IntakeUnitOfWork, caller: Caller, case_number: str,
                         reason: str, now: datetime) -> WithdrawalStep:
    """Close a case awaiting materials; for an accepted case, say who withdraws it."""
    with uow:
        official = require_official(uow.staff, caller, role="window_clerk")
        case = _case(uow, case_number, for_update=True)
        _clerk_of(official, case.department_code, f"case {case.number}")
        if case.status in IN_CHAIN:
            return WithdrawalStep(clerk=official, case=case)
        if case.status != CaseStatus.AWAITING_MATERIALS:
            raise FailedPrecondition(
                f"case {case.number} is {case.status}: it can no longer be withdrawn")
        case = replace(case, status=CaseStatus.WITHDRAWN, closed_at=now,
                       withdrawal_reason=reason)
        uow.cases.save(case)
        _intake_event(uow, case, "application.withdrawn", now=now, official_id=official.id,
                      details={})
        uow.audit.append(actor=Actor(caller.system, official.id),
                         action="application.withdrawn", subject=f"case/{case.number}",
                         at=now, details={"before": str(CaseStatus.AWAITING_MATERIALS)})
        uow.commit()
        return WithdrawalStep(view=_view(uow, case, masked=False))


def note_withdrawal(*, uow: IntakeUnitOfWork, caller: Caller, case_number: str, reason: str,
                    now: datetime) -> CaseView:
    """Keep the reason of a withdrawal the approval workflow carried out."""
    with uow:
        case = _case(uow, case_number, for_update=True)
        if case.withdrawal_reason != reason:
            case = replace(case, withdrawal_reason=reason)
            uow.cases.save(case)
            uow.commit()
        return _view(uow, case, masked=False)


def get_case(*, uow: IntakeUnitOfWork, caller: Caller,
             case_number: str) -> tuple[CaseView, list[TimelineEvent]]:
    """The case and its timeline; the applicant unmasked only for its own department.

    An official of the case's department (any role), named by a system that
    may speak for them there, sees the applicant; everyone else reads the
    masked view. Naming an official the system may not speak for is refused.
    """
    with uow:
        case = _case(uow, case_number)
        official = acting_official(uow.staff, caller) if caller.official_id else None
        sees_applicant = official is not None and official.department_code == case.department_code
        return (_view(uow, case, masked=not sees_applicant),
                uow.timeline.for_case(case.number))


# ---- the approval workflow's side -------------------------------------------------------

def acceptance_statement(case: Case, item: ApprovalItem,
                         signer: ServiceSigner) -> SignedStatement:
    """The window's acceptance of ``case``, signed by intake: what the chain starts from.

    The body is made only of what the case and its item version hold, and
    Ed25519 signatures are deterministic, so signing again gives the very
    same statement.
    """
    if case.accepted_at is None or case.accepted_on is None:
        raise FailedPrecondition(f"case {case.number} is not accepted")
    return as_statement(signer.sign(statement_body(
        kind=StatementKind.ACCEPTANCE, case_number=case.number, official_id=case.accepted_by,
        department_code=case.department_code, roles=["window_clerk"], system=case.system,
        issued_at=case.accepted_at, item_code=case.item_code, item_version=case.item_version,
        item_name=case.item_name, accepted_on=case.accepted_on.isoformat(),
        promised_limit_days=item.promised_limit_days, legal_limit_days=item.legal_limit_days,
        special_procedures=list(item.special_procedures))))


def approval_input(*, uow: IntakeUnitOfWork, case_number: str,
                   signer: ServiceSigner) -> ApprovalInput:
    """What the approval workflow of an accepted case starts with: no personal data."""
    with uow:
        case = _case(uow, case_number)
        item = uow.catalogue.at_version(case.item_code, case.item_version)
        if item is None:
            raise FailedPrecondition(f"case {case.number} has no item version to decide by")
        return ApprovalInput(acceptance_statement(case, item, signer))


def unstarted_cases(*, uow: IntakeUnitOfWork, limit: int = 100) -> list[str]:
    with uow:
        return uow.cases.unstarted(limit=limit)


def mark_workflow_started(*, uow: IntakeUnitOfWork, case_number: str, system: str,
                          started_at: datetime) -> bool:
    """Note that the case's workflow runs; False if it was noted already."""
    with uow:
        case = _case(uow, case_number, for_update=True)
        if case.workflow_started:
            return False
        case = replace(case, workflow_started=True,
                       status=CaseStatus.UNDER_REVIEW if case.status == CaseStatus.ACCEPTED
                       else case.status)
        uow.cases.save(case)
        _intake_event(uow, case, "workflow.started", now=started_at, official_id="",
                      details={"workflow_id": workflow_id(case.number)})
        uow.audit.append(actor=Actor(system), action="workflow.started",
                         subject=f"case/{case.number}", at=started_at,
                         details={"workflow_id": workflow_id(case.number)})
        uow.commit()
        return True


def record_withdrawal(*, uow: IntakeUnitOfWork, case_number: str, stage: str, at: datetime,
                      clerk_id: str, system: str, now: datetime) -> bool:
    """Close a case the approval workflow withdrew; False if it was closed already."""
    with uow:
        case = _case(uow, case_number, for_update=True)
        if case.status == CaseStatus.WITHDRAWN:
            return False
        if case.status not in IN_CHAIN:
            raise FailedPrecondition(f"case {case.number} is {case.status}: it can no longer "
                                     "be withdrawn")
        case = replace(case, status=CaseStatus.WITHDRAWN, closed_at=at)
        uow.cases.save(case)
        _intake_event(uow, case, "withdrawn", now=at, official_id=clerk_id,
                      details={"stage": stage})
        uow.audit.append(actor=Actor(system, clerk_id), action="application.withdrawn",
                         subject=f"case/{case.number}", at=now,
                         details={"through": workflow_id(case.number), "stage": stage})
        uow.commit()
        return True


#: What the applicant is told of each signed act on the case's clock.
NOTICE_TEMPLATES = {
    StatementKind.PROCEDURE_START: "special_procedure_started",
    StatementKind.PROCEDURE_END: "special_procedure_ended",
    StatementKind.EXTENSION: "time_limit_extended",
}


NOTICE_KINDS = frozenset(NOTICE_TEMPLATES)


def notice_of(facts: StatementFacts) -> tuple[str, str, dict[str, str]]:
    """The notice a verified statement gives the applicant: its id, template and details.

    Everything comes from the statement, nothing from the workflow's request,
    so nobody who only reaches Temporal can put a notice on a case's timeline.
    """
    template = NOTICE_TEMPLATES.get(StatementKind(facts.kind))
    if template is None:
        raise InvalidArgument(f"a {facts.kind} statement tells the applicant nothing")
    details = {"procedure": facts.procedure} if facts.procedure else {}
    if facts.kind == StatementKind.EXTENSION:
        details = {"days": str(facts.days)}
    digest = hashlib.sha256(f"{facts.kind}/{facts.issued_at}/{facts.official_id}".encode())
    return f"notice-{digest.hexdigest()[:20]}", template, details


def notify_applicant(*, uow: IntakeUnitOfWork, facts: StatementFacts, at: datetime,
                     now: datetime) -> bool:
    """Record that the applicant is told of ``facts`` (verified); False for a repeat."""
    event_id, template, details = notice_of(facts)
    with uow:
        case = _case(uow, facts.case_number, for_update=True)
        if uow.timeline.has(case.number, event_id):
            return False
        if case.status not in IN_CHAIN:
            raise FailedPrecondition(f"case {case.number} is {case.status}: nothing to tell "
                                     "of its clock")
        uow.timeline.add(case.number, TimelineEvent(
            event_id=event_id, kind="applicant.notified", at=at, stage=_stage_of(case),
            official_id=facts.official_id, details={"template": template, **details}),
            recorded_at=now)
        uow.audit.append(actor=Actor(facts.system, facts.official_id),
                         action="applicant.notified", subject=f"case/{case.number}", at=now,
                         details={"event_id": event_id, "template": template})
        uow.commit()
        return True


def _stage_of(case: Case) -> str:
    return {CaseStatus.UNDER_REVIEW: Stage.REVIEW, CaseStatus.AWAITING_SIGNATURE: Stage.SIGN,
            CaseStatus.AWAITING_SEAL: Stage.SEAL}.get(case.status, "")


# ---- complaints linked to a case ----------------------------------------------------------

@dataclass(frozen=True)
class CaseLink:
    """What a complaint naming a case is counted for: codes only, nothing of the applicant."""

    item_code: str
    department_code: str
    status: CaseStatus


def check_case_link(*, uow: IntakeUnitOfWork, case_number: str) -> CaseLink | None:
    """The item, department and status of case ``case_number``; None when there is none."""
    with uow:
        case = uow.cases.get(case_number)
        if case is None:
            return None
        return CaseLink(case.item_code, case.department_code, case.status)
