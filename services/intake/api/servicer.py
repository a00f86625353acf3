"""The intake gRPC API: protobuf in and out, the use cases in between.

Database work runs in a thread so the event loop keeps serving other calls.
An accepted case's approval workflow is started right after the acceptance
is committed; when Temporal is out of reach the answer says so
(``workflow_started`` false) and the outbox (services/intake/app/chain.py)
starts it as soon as it can.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import structlog
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Engine

from govhall.intake.v1 import intake_pb2 as pb
from govhall.intake.v1 import intake_pb2_grpc
from kernel.audittrail import AuditTrailService
from kernel.commonpb import checkpoint_from_proto, verification_to_proto
from kernel.identity import current_caller
from kernel.settings import ServiceSettings
from services.intake.app import cases, chain, handlers, seals
from services.intake.app.cases import CaseView
from services.intake.app.chain import ChainStarter
from services.intake.db.audit import AUDIT_TRAIL
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.domain.cases import (
    Applicant,
    CaseDeadlines,
    CaseStatus,
    Finding,
    Findings,
    IntakeOutcome,
    Notice,
    NoticeItem,
    NoticeKind,
    SubmittedMaterial,
    TimelineEvent,
    outstanding,
)
from services.intake.domain.decisions import (
    ALGORITHM,
    RegisterEntry,
    RegisterEntryKind,
    SealedDecision,
    SealKey,
    Verdict,
    key_id,
)
from services.intake.domain.model import ApprovalItem, Material
from services.intake.keystore import (
    applicant_cipher,
    public_key_pem,
    raw_public_key,
    seal_key,
    seal_key_path,
)
from workflows.approval_contract import workflow_id

log = structlog.get_logger("govhall.intake")

_FORMS = {"original": pb.MATERIAL_FORM_ORIGINAL, "copy": pb.MATERIAL_FORM_COPY}
_FORM_NAMES = {v: k for k, v in _FORMS.items()}
_PROCEDURES = {
    "hearing": pb.SPECIAL_PROCEDURE_HEARING,
    "expert_review": pb.SPECIAL_PROCEDURE_EXPERT_REVIEW,
    "inspection_testing": pb.SPECIAL_PROCEDURE_INSPECTION_TESTING,
    "appraisal": pb.SPECIAL_PROCEDURE_APPRAISAL,
    "tendering_auction": pb.SPECIAL_PROCEDURE_TENDERING_AUCTION,
}
_PROCEDURE_NAMES = {v: k for k, v in _PROCEDURES.items()}


def item_to_proto(item: ApprovalItem, department_name: str) -> pb.ApprovalItem:
    return pb.ApprovalItem(
        code=item.code,
        name=item.name,
        department_code=item.department_code,
        department_name=department_name,
        legal_limit_days=item.legal_limit_days,
        promised_limit_days=item.promised_limit_days,
        materials=[pb.Material(code=m.code, name=m.name, required=m.required, form=_FORMS[m.form])
                   for m in item.materials],
        special_procedures=[_PROCEDURES[p] for p in item.special_procedures],
        fee_fen=item.fee_fen,
        basis=item.basis,
        version=item.version,
    )


def item_from_proto(message: pb.ApprovalItem) -> ApprovalItem:
    return ApprovalItem(
        code=message.code,
        name=message.name,
        department_code=message.department_code,
        legal_limit_days=message.legal_limit_days,
        promised_limit_days=message.promised_limit_days,
        materials=tuple(Material(m.code, m.name, m.required, _FORM_NAMES[m.form])
                        for m in message.materials),
        special_procedures=tuple(_PROCEDURE_NAMES[p] for p in message.special_procedures),
        fee_fen=message.fee_fen,
        basis=message.basis,
    )


_APPLICANT_KINDS = {"person": pb.APPLICANT_KIND_PERSON,
                    "organisation": pb.APPLICANT_KIND_ORGANISATION}
_APPLICANT_KIND_NAMES = {v: k for k, v in _APPLICANT_KINDS.items()}
_FINDINGS = {
    pb.FINDING_NONE: Finding.NONE,
    pb.FINDING_NOT_SUBJECT_TO_PERMIT: Finding.NOT_SUBJECT_TO_PERMIT,
    pb.FINDING_OUTSIDE_AUTHORITY: Finding.OUTSIDE_AUTHORITY,
    pb.FINDING_REFUSED: Finding.REFUSED,
}
_OUTCOMES = {
    IntakeOutcome.ACCEPTED: pb.INTAKE_OUTCOME_ACCEPTED,
    IntakeOutcome.CORRECTION_REQUIRED: pb.INTAKE_OUTCOME_CORRECTION_REQUIRED,
    IntakeOutcome.NOT_SUBJECT_TO_PERMIT: pb.INTAKE_OUTCOME_NOT_SUBJECT_TO_PERMIT,
    IntakeOutcome.OUTSIDE_AUTHORITY: pb.INTAKE_OUTCOME_OUTSIDE_AUTHORITY,
    IntakeOutcome.REFUSED: pb.INTAKE_OUTCOME_REFUSED,
}
_STATUSES = {
    CaseStatus.AWAITING_MATERIALS: pb.CASE_STATUS_AWAITING_MATERIALS,
    CaseStatus.ACCEPTED: pb.CASE_STATUS_ACCEPTED,
    CaseStatus.UNDER_REVIEW: pb.CASE_STATUS_UNDER_REVIEW,
    CaseStatus.AWAITING_SIGNATURE: pb.CASE_STATUS_AWAITING_SIGNATURE,
    CaseStatus.AWAITING_SEAL: pb.CASE_STATUS_AWAITING_SEAL,
    CaseStatus.APPROVED: pb.CASE_STATUS_APPROVED,
    CaseStatus.REFUSED: pb.CASE_STATUS_REFUSED,
    CaseStatus.WITHDRAWN: pb.CASE_STATUS_WITHDRAWN,
    CaseStatus.NOT_SUBJECT_TO_PERMIT: pb.CASE_STATUS_NOT_SUBJECT_TO_PERMIT,
    CaseStatus.OUTSIDE_AUTHORITY: pb.CASE_STATUS_OUTSIDE_AUTHORITY,
    CaseStatus.NOT_ACCEPTED: pb.CASE_STATUS_NOT_ACCEPTED,
}
_NOTICE_KINDS = {
    NoticeKind.ACCEPTANCE_RECEIPT: pb.NOTICE_KIND_ACCEPTANCE_RECEIPT,
    NoticeKind.CORRECTION: pb.NOTICE_KIND_CORRECTION,
    NoticeKind.NOT_SUBJECT_TO_PERMIT: pb.NOTICE_KIND_NOT_SUBJECT_TO_PERMIT,
    NoticeKind.OUTSIDE_AUTHORITY: pb.NOTICE_KIND_OUTSIDE_AUTHORITY,
    NoticeKind.REFUSAL: pb.NOTICE_KIND_REFUSAL,
}
_SLA_STATES = {"on_time": pb.SLA_STATE_ON_TIME, "warning": pb.SLA_STATE_WARNING,
               "breached": pb.SLA_STATE_BREACHED, "paused": pb.SLA_STATE_PAUSED}
_VERDICTS = {
    Verdict.VALID: pb.VERIFICATION_RESULT_VALID,
    Verdict.TAMPERED: pb.VERIFICATION_RESULT_TAMPERED,
    Verdict.REVOKED: pb.VERIFICATION_RESULT_REVOKED,
    Verdict.UNKNOWN_KEY: pb.VERIFICATION_RESULT_UNKNOWN_KEY,
    Verdict.UNKNOWN_CERTIFICATE: pb.VERIFICATION_RESULT_UNKNOWN_CERTIFICATE,
}
_DECISIONS = {"approved": pb.DECISION_OUTCOME_APPROVED, "refused": pb.DECISION_OUTCOME_REFUSED}
_REGISTER_KINDS = {RegisterEntryKind.SEALED: pb.REGISTER_ENTRY_KIND_SEALED,
                   RegisterEntryKind.REVOKED: pb.REGISTER_ENTRY_KIND_REVOKED}


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def _iso_timestamp(value: str) -> Timestamp | None:
    return _timestamp(datetime.fromisoformat(value)) if value else None


def materials_from_proto(messages: Any) -> tuple[SubmittedMaterial, ...]:
    return tuple(SubmittedMaterial(m.code, m.provided, tuple(m.defects), m.fixed_on_spot)
                 for m in messages)


def notice_item_to_proto(item: NoticeItem) -> pb.NoticeItem:
    return pb.NoticeItem(material_code=item.material_code, material_name=item.material_name,
                         reason=item.reason)


def notice_to_proto(notice: Notice) -> pb.Notice:
    return pb.Notice(
        notice_number=notice.number, kind=_NOTICE_KINDS[notice.kind],
        issued_at=_timestamp(notice.issued_at), issued_on=notice.issued_on.isoformat(),
        text=notice.text, items=[notice_item_to_proto(i) for i in notice.items],
        competent_authority=notice.competent_authority, reasons=list(notice.reasons))


def _deadlines_to_proto(deadlines: CaseDeadlines | None) -> pb.Deadlines | None:
    if deadlines is None:
        return None
    return pb.Deadlines(warning_at=_timestamp(deadlines.warning_at),
                        promised_due_at=_timestamp(deadlines.promised_due_at),
                        legal_due_at=_timestamp(deadlines.legal_due_at))


def case_to_proto(view: CaseView) -> pb.Case:
    case = view.case
    given = {m.code: m for m in case.materials}
    still_missing = {i.material_code for i in outstanding(view.item, case.materials)}
    materials = []
    for material in view.item.materials:
        handed_in = given.get(material.code)
        materials.append(pb.CaseMaterial(
            code=material.code, name=material.name, required=material.required,
            provided=bool(handed_in and handed_in.provided),
            defects=list(handed_in.defects) if handed_in else [],
            fixed_on_spot=bool(handed_in and handed_in.fixed_on_spot),
            outstanding=case.status == CaseStatus.AWAITING_MATERIALS
            and material.code in still_missing))
    applicant = case.applicant
    return pb.Case(
        case_number=case.number, status=_STATUSES[case.status],
        outcome=_OUTCOMES[case.outcome], item_code=case.item_code,
        item_version=case.item_version, item_name=case.item_name,
        department_code=case.department_code, department_name=view.department_name,
        applicant=pb.Applicant(kind=_APPLICANT_KINDS[applicant.kind], name=applicant.name,
                               id_number=applicant.id_number, phone=applicant.phone),
        applicant_masked=view.applicant_masked, materials=materials,
        notices=[notice_to_proto(n) for n in view.notices],
        submitted_at=_timestamp(case.submitted_at),
        accepted_on=case.accepted_on.isoformat() if case.accepted_on else "",
        accepted_at=_timestamp(case.accepted_at), closed_at=_timestamp(case.closed_at),
        deadlines=_deadlines_to_proto(case.deadlines),
        sla_state=_SLA_STATES.get(case.sla_state, pb.SLA_STATE_UNSPECIFIED),
        calendar_gap_year=case.calendar_gap_year, certificate_number=case.certificate_number,
        decision_revoked=view.decision_revoked,
        workflow_id=workflow_id(case.number) if case.accepted_at else "",
        workflow_started=case.workflow_started, clerk_id=case.clerk_id,
        withdrawal_reason=case.withdrawal_reason)


def event_to_proto(event: TimelineEvent) -> pb.CaseEvent:
    return pb.CaseEvent(
        event_id=event.event_id, kind=event.kind, at=_timestamp(event.at), stage=event.stage,
        official_id=event.official_id, details=event.details or {},
        deadlines=_deadlines_to_proto(event.deadlines),
        status=_STATUSES.get(CaseStatus(event.status), pb.CASE_STATUS_UNSPECIFIED)
        if event.status else pb.CASE_STATUS_UNSPECIFIED,
        sla_state=_SLA_STATES.get(event.sla_state, pb.SLA_STATE_UNSPECIFIED))


def seal_key_to_proto(key: SealKey) -> pb.SealKey:
    return pb.SealKey(key_id=key.key_id, public_key=key.public_key,
                      public_key_pem=public_key_pem(key.public_key), algorithm=ALGORITHM,
                      created_at=_timestamp(key.created_at), active=key.active)


def decision_to_proto(decision: SealedDecision) -> pb.SealedDecision:
    return pb.SealedDecision(
        certificate_number=decision.certificate_number, case_number=decision.case_number,
        decision=_DECISIONS[decision.decision], document=decision.document,
        signature=decision.signature, key_id=decision.key_id,
        document_sha256=decision.document_sha256, issued_at=_timestamp(decision.issued_at),
        revoked=decision.revoked, revocation_reason=decision.revocation_reason,
        revoked_at=_timestamp(decision.revoked_at))


def public_decision_to_proto(found: seals.PublicDecision) -> pb.PublicDecision:
    return pb.PublicDecision(
        certificate_number=found.certificate_number, item_code=found.item_code,
        item_name=found.item_name, department_code=found.department_code,
        decision=_DECISIONS[found.decision], holder=found.holder, decided_at=found.decided_at,
        issued_at=found.issued_at, revoked=found.revoked,
        revocation_reason=found.revocation_reason, document_sha256=found.document_sha256,
        key_id=found.key_id)


def register_entry_to_proto(entry: RegisterEntry) -> pb.RegisterEntry:
    return pb.RegisterEntry(
        sequence=entry.sequence, kind=_REGISTER_KINDS[entry.kind],
        certificate_number=entry.certificate_number, case_number=entry.case_number,
        item_code=entry.item_code, item_name=entry.item_name,
        department_code=entry.department_code, decision=_DECISIONS[entry.decision],
        holder=entry.holder, decided_at=_iso_timestamp(entry.decided_at),
        issued_at=_iso_timestamp(entry.issued_at), reason=entry.reason,
        recorded_at=_timestamp(entry.recorded_at))


def _utc_now() -> datetime:
    return datetime.now(UTC)


class IntakeServicer(intake_pb2_grpc.IntakeServiceServicer):
    def __init__(self, engine: Engine, settings: ServiceSettings, *, starter: ChainStarter,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self._engine = engine
        self._clock = clock
        self._cipher = applicant_cipher(settings.pki_dir)
        key = seal_key(settings.pki_dir)
        raw = raw_public_key(key)
        self._seal_key = SealKey(
            key_id(raw), raw,
            datetime.fromtimestamp(seal_key_path(settings.pki_dir).stat().st_mtime, UTC),
            active=True)
        self._starter = starter
        self._audit = AuditTrailService(engine, AUDIT_TRAIL, service=settings.service,
                                        pki_dir=settings.pki_dir)

    def _reading(self) -> IntakeUnitOfWork:
        return IntakeUnitOfWork(self._engine, write=False, cipher=self._cipher)

    def _writing(self) -> IntakeUnitOfWork:
        return IntakeUnitOfWork(self._engine, cipher=self._cipher)

    async def ListApprovalItems(self, request: pb.ListApprovalItemsRequest,
                                context: grpc.aio.ServicerContext[Any, Any],
                                ) -> pb.ListApprovalItemsResponse:
        page = await asyncio.to_thread(
            handlers.list_approval_items, uow=self._reading(),
            department_code=request.department_code, requested_size=request.page_size,
            page_token=request.page_token)
        return pb.ListApprovalItemsResponse(
            items=[item_to_proto(i, page.department_names[i.department_code])
                   for i in page.items],
            next_page_token=page.next_page_token)

    async def GetApprovalItem(self, request: pb.GetApprovalItemRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.GetApprovalItemResponse:
        item, department_name = await asyncio.to_thread(
            handlers.get_approval_item, uow=self._reading(), code=request.code,
            version=request.version)
        return pb.GetApprovalItemResponse(item=item_to_proto(item, department_name))

    async def PublishApprovalItemVersion(
        self, request: pb.PublishApprovalItemVersionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> pb.PublishApprovalItemVersionResponse:
        item, department_name = await asyncio.to_thread(
            handlers.publish_approval_item_version, uow=self._writing(),
            caller=current_caller(), item=item_from_proto(request.item))
        return pb.PublishApprovalItemVersionResponse(item=item_to_proto(item, department_name))

    async def VerifyAuditLog(self, request: pb.VerifyAuditLogRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.VerifyAuditLogResponse:
        result = await asyncio.to_thread(
            self._audit.verify, kept=[checkpoint_from_proto(c) for c in request.checkpoints])
        return pb.VerifyAuditLogResponse(verification=verification_to_proto(result))

    # ---- applications ------------------------------------------------------------------

    async def SubmitApplication(self, request: pb.SubmitApplicationRequest,
                                context: grpc.aio.ServicerContext[Any, Any],
                                ) -> pb.SubmitApplicationResponse:
        applicant = request.applicant
        submission = await chain.submit_application(
            self._starter, caller=current_caller(),
            idempotency_key=request.idempotency_key, item_code=request.item_code,
            applicant=Applicant(_APPLICANT_KIND_NAMES[applicant.kind], applicant.name,
                                applicant.id_number, applicant.phone),
            materials=materials_from_proto(request.materials),
            findings=Findings(_FINDINGS[request.finding], request.explanation,
                              request.competent_authority, tuple(request.refusal_reasons)),
            now=self._clock())
        return pb.SubmitApplicationResponse(
            case=case_to_proto(submission.view), outcome=_OUTCOMES[submission.outcome],
            notice=notice_to_proto(submission.notice), replayed=submission.replayed)

    async def SupplementMaterials(self, request: pb.SupplementMaterialsRequest,
                                  context: grpc.aio.ServicerContext[Any, Any],
                                  ) -> pb.SupplementMaterialsResponse:
        supplement = await chain.supplement_materials(
            self._starter, caller=current_caller(), case_number=request.case_number,
            idempotency_key=request.idempotency_key,
            materials=materials_from_proto(request.materials), now=self._clock())
        return pb.SupplementMaterialsResponse(
            case=case_to_proto(supplement.view), outcome=_OUTCOMES[supplement.outcome],
            correction_notice=notice_to_proto(supplement.correction_notice),
            outstanding=[notice_item_to_proto(i) for i in supplement.outstanding],
            receipt=notice_to_proto(supplement.receipt) if supplement.receipt else None,
            replayed=supplement.replayed)

    async def WithdrawApplication(self, request: pb.WithdrawApplicationRequest,
                                  context: grpc.aio.ServicerContext[Any, Any],
                                  ) -> pb.WithdrawApplicationResponse:
        view = await chain.withdraw(self._starter, caller=current_caller(),
                                    case_number=request.case_number, reason=request.reason,
                                    now=self._clock())
        return pb.WithdrawApplicationResponse(case=case_to_proto(view))

    async def GetCase(self, request: pb.GetCaseRequest,
                      context: grpc.aio.ServicerContext[Any, Any]) -> pb.GetCaseResponse:
        view, timeline = await asyncio.to_thread(
            cases.get_case, uow=self._reading(), caller=current_caller(),
            case_number=request.case_number)
        return pb.GetCaseResponse(case=case_to_proto(view),
                                  timeline=[event_to_proto(e) for e in timeline])

    # ---- the seal and the register -----------------------------------------------------

    async def GetSealKeys(self, request: pb.GetSealKeysRequest,
                          context: grpc.aio.ServicerContext[Any, Any],
                          ) -> pb.GetSealKeysResponse:
        keys = await asyncio.to_thread(seals.seal_keys, uow=self._reading(),
                                       current=self._seal_key)
        return pb.GetSealKeysResponse(keys=[seal_key_to_proto(k) for k in keys])

    async def VerifyDecision(self, request: pb.VerifyDecisionRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.VerifyDecisionResponse:
        result = await asyncio.to_thread(seals.verify_decision, uow=self._reading(),
                                         document=request.document,
                                         signature=request.signature)
        return pb.VerifyDecisionResponse(
            result=_VERDICTS[result.verdict], certificate_number=result.certificate_number,
            case_number=result.case_number, key_id=result.key_id,
            revocation_reason=result.revocation_reason,
            revoked_at=_timestamp(result.revoked_at), explanation=result.explanation,
            stored_copy_altered=result.stored_copy_altered)

    async def GetDecision(self, request: pb.GetDecisionRequest,
                          context: grpc.aio.ServicerContext[Any, Any],
                          ) -> pb.GetDecisionResponse:
        found = await asyncio.to_thread(
            seals.get_decision, uow=self._reading(), caller=current_caller(),
            certificate_number=request.certificate_number,
            verification_code=request.verification_code)
        if isinstance(found, seals.PublicDecision):
            return pb.GetDecisionResponse(public_decision=public_decision_to_proto(found))
        return pb.GetDecisionResponse(decision=decision_to_proto(found))

    async def RevokeDecision(self, request: pb.RevokeDecisionRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.RevokeDecisionResponse:
        decision = await asyncio.to_thread(
            seals.revoke_decision, uow=self._writing(), caller=current_caller(),
            certificate_number=request.certificate_number, reason=request.reason,
            now=self._clock())
        return pb.RevokeDecisionResponse(decision=decision_to_proto(decision))

    async def ListRegister(self, request: pb.ListRegisterRequest,
                           context: grpc.aio.ServicerContext[Any, Any],
                           ) -> pb.ListRegisterResponse:
        page = await asyncio.to_thread(seals.list_register, uow=self._reading(),
                                       cursor=request.cursor, requested_size=request.page_size)
        return pb.ListRegisterResponse(entries=[register_entry_to_proto(e) for e in page.entries],
                                       next_cursor=page.next_cursor)

    # ---- complaints linked to a case ---------------------------------------------------

    async def CheckCaseLink(self, request: pb.CheckCaseLinkRequest,
                            context: grpc.aio.ServicerContext[Any, Any],
                            ) -> pb.CheckCaseLinkResponse:
        link = await asyncio.to_thread(cases.check_case_link, uow=self._reading(),
                                       case_number=request.case_number)
        if link is None:
            return pb.CheckCaseLinkResponse(found=False)
        return pb.CheckCaseLinkResponse(found=True, item_code=link.item_code,
                                        department_code=link.department_code,
                                        status=_STATUSES[link.status])
