"""The center's seal: sealing decisions, verifying and revoking them, the public register."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kernel.audit import Actor
from kernel.directory import Official, require_official
from kernel.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from kernel.identity import Caller
from kernel.paging import page_size
from services.intake.app.cases import CHAIN_SYSTEM, INTAKE_EVENT_PREFIX, INTAKE_STAGE
from services.intake.db.audit import SEALED_DECISIONS
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.domain.cases import IN_CHAIN, TimelineEvent, china_date, mask_name
from services.intake.domain.decisions import (
    DecisionDocument,
    RegisterEntry,
    RegisterEntryKind,
    SealedDecision,
    SealKey,
    Verdict,
    certificate_number,
    check_signature,
    iso_utc,
    key_id,
    verdict_without_record,
)
from services.intake.keystore import raw_public_key
from workflows.approval_contract import SealReceipt, SealRequest

DECISIONS = ("approved", "refused")


@dataclass(frozen=True)
class DecisionVerification:
    verdict: Verdict
    certificate_number: str
    case_number: str
    key_id: str
    explanation: str
    revocation_reason: str = ""
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class RegisterPage:
    entries: list[RegisterEntry]
    next_cursor: int


def activate_seal_key(*, uow: IntakeUnitOfWork, key: Ed25519PrivateKey, now: datetime) -> str:
    """Make ``key`` the seal's active key (kept with every earlier one); returns its id."""
    raw = raw_public_key(key)
    identifier = key_id(raw)
    with uow:
        if uow.seal_keys.make_active(identifier, raw, at=now):
            uow.audit.append(actor=Actor("govhall-intake"), action="seal_key.activated",
                             subject=f"seal_key/{identifier}", at=now,
                             details={"key_id": identifier})
            uow.commit()
    return identifier


def seal_keys(*, uow: IntakeUnitOfWork, current: SealKey) -> list[SealKey]:
    """Every key the seal has used, and ``current``, the key it seals with now.

    A key is stored when it first seals; until then the current key is
    listed from its file, so a verifier can fetch it before any sealing.
    """
    with uow:
        stored = uow.seal_keys.all()
    keys = [replace(k, active=k.key_id == current.key_id) for k in stored]
    if current.key_id not in {k.key_id for k in stored}:
        keys.append(current)
    return keys


def _receipt(decision: SealedDecision) -> SealReceipt:
    return SealReceipt(decision.certificate_number, decision.key_id, decision.document_sha256)


def seal_decision(*, uow: IntakeUnitOfWork, request: SealRequest, key: Ed25519PrivateKey,
                  now: datetime) -> SealReceipt:
    """Seal the case's decision, once: a repeated request gets the decision sealed before."""
    if request.decision not in DECISIONS:
        raise InvalidArgument(f"a decision is one of {', '.join(DECISIONS)}, "
                              f"not {request.decision!r}")
    raw = raw_public_key(key)
    signing_key = key_id(raw)
    with uow:
        case = uow.cases.get(request.case_number, for_update=True)
        if case is None:
            raise NotFound(f"case {request.case_number} is unknown")
        existing = uow.sealed.of_case(case.number)
        if existing is not None:
            return _receipt(existing)
        if case.status not in IN_CHAIN:
            raise FailedPrecondition(f"case {case.number} is {case.status}: "
                                     "there is no decision to seal")
        if uow.seal_keys.make_active(signing_key, raw, at=now):
            uow.audit.append(actor=Actor("govhall-intake"), action="seal_key.activated",
                             subject=f"seal_key/{signing_key}", at=now,
                             details={"key_id": signing_key})
        year = china_date(now).year
        number = certificate_number(year, uow.sequences.next(f"SY-{year}"))
        document = DecisionDocument(
            certificate_number=number, case_number=case.number, item_code=case.item_code,
            item_version=case.item_version, item_name=case.item_name,
            department_code=case.department_code, decision=request.decision,
            decided_at=iso_utc(request.decided_at), applicant_name=case.applicant.name,
            legal_basis=request.legal_basis, opinion=request.opinion,
            reviewer_id=request.reviewer_id, signer_id=request.signer_id,
            sealed_by=request.sealed_by, key_id=signing_key, issued_at=iso_utc(now))
        content = document.canonical()
        sealed = SealedDecision(
            certificate_number=number, case_number=case.number, key_id=signing_key,
            decision=request.decision, document=content, signature=key.sign(content),
            document_sha256=hashlib.sha256(content).hexdigest(), issued_at=now)
        uow.sealed.add(sealed)
        uow.cases.save(replace(case, certificate_number=number))
        uow.register.append(RegisterEntry(
            kind=RegisterEntryKind.SEALED, certificate_number=number, case_number=case.number,
            item_code=case.item_code, item_name=case.item_name,
            department_code=case.department_code, decision=request.decision,
            holder=mask_name(case.applicant.name), decided_at=document.decided_at,
            issued_at=document.issued_at, reason="", recorded_at=now))
        uow.authority.record(SEALED_DECISIONS, number,
                             actor=Actor(CHAIN_SYSTEM, request.sealed_by), action="decision.sealed",
                             subject=f"case/{case.number}", at=now,
                             details={"certificate_number": number, "key_id": signing_key,
                                      "decision": request.decision,
                                      "document_sha256": sealed.document_sha256})
        uow.commit()
        return _receipt(sealed)


def verify_decision(*, uow: IntakeUnitOfWork, document: bytes,
                    signature: bytes) -> DecisionVerification:
    with uow:
        keys = {k.key_id: k.public_key for k in uow.seal_keys.all()}
        check = check_signature(document, signature, keys)
        found = (check.certificate_number, check.case_number, check.named_key)
        if not check.signed_by:
            verdict = verdict_without_record(check, keys)
            if verdict == Verdict.UNKNOWN_KEY:
                return DecisionVerification(
                    verdict, *found, f"the center's seal never had the key {check.named_key}")
            return DecisionVerification(
                verdict, *found, "the signature does not match the document: "
                "the document or the signature was altered")
        sealed = uow.sealed.get(check.certificate_number)
        if sealed is None:
            return DecisionVerification(
                Verdict.UNKNOWN_CERTIFICATE, *found,
                f"no certificate {check.certificate_number} was issued by the center")
        if sealed.document != document:
            return DecisionVerification(
                Verdict.TAMPERED, *found,
                f"the document is not the one issued as {sealed.certificate_number}")
        if sealed.revoked:
            return DecisionVerification(
                Verdict.REVOKED, *found, f"decision {sealed.certificate_number} was revoked",
                sealed.revocation_reason, sealed.revoked_at)
        return DecisionVerification(
            Verdict.VALID, *found,
            f"decision {sealed.certificate_number} was sealed by the center and is in force")


def get_decision(*, uow: IntakeUnitOfWork, certificate_number: str) -> SealedDecision:
    with uow:
        sealed = uow.sealed.get(certificate_number)
        if sealed is None:
            raise NotFound(f"no decision was sealed as {certificate_number}")
        return sealed


def _revoker(uow: IntakeUnitOfWork, caller: Caller, department_code: str) -> Official:
    """An operator, or a leader of the department that decided."""
    try:
        return require_official(uow.staff, caller, role="operator")
    except PermissionDenied:
        try:
            return require_official(uow.staff, caller, role="leader",
                                    department_code=department_code)
        except PermissionDenied as refused:
            raise PermissionDenied(
                f"{refused.message}: a decision is revoked by a leader of "
                f"{department_code} or by an operator") from refused


def revoke_decision(*, uow: IntakeUnitOfWork, caller: Caller, certificate_number: str,
                    reason: str, now: datetime) -> SealedDecision:
    if not reason.strip():
        raise InvalidArgument("a revocation needs its reason")
    with uow:
        sealed = uow.sealed.get(certificate_number, for_update=True)
        if sealed is None:
            raise NotFound(f"no decision was sealed as {certificate_number}")
        case = uow.cases.get(sealed.case_number, for_update=True)
        assert case is not None
        official = _revoker(uow, caller, case.department_code)
        if sealed.revoked:
            assert sealed.revoked_at is not None
            raise FailedPrecondition(
                f"decision {certificate_number} was revoked already, at "
                f"{sealed.revoked_at.isoformat()}")
        uow.sealed.revoke(certificate_number, reason=reason, at=now, official_id=official.id)
        uow.register.append(RegisterEntry(
            kind=RegisterEntryKind.REVOKED, certificate_number=certificate_number,
            case_number=case.number, item_code=case.item_code, item_name=case.item_name,
            department_code=case.department_code, decision=sealed.decision,
            holder=mask_name(case.applicant.name), decided_at=_decided_at(sealed),
            issued_at=iso_utc(sealed.issued_at), reason=reason, recorded_at=now))
        ordinal = uow.timeline.count(case.number, prefix=INTAKE_EVENT_PREFIX) + 1
        uow.timeline.add(case.number, TimelineEvent(
            event_id=f"{INTAKE_EVENT_PREFIX}{ordinal:04d}", kind="decision.revoked", at=now,
            stage=INTAKE_STAGE, official_id=official.id,
            details={"certificate_number": certificate_number}), recorded_at=now)
        uow.authority.record(SEALED_DECISIONS, certificate_number,
                             actor=Actor(caller.system, official.id), action="decision.revoked",
                             subject=f"case/{case.number}", at=now,
                             details={"certificate_number": certificate_number})
        uow.commit()
        return replace(sealed, revoked=True, revocation_reason=reason, revoked_at=now,
                       revoked_by=official.id)


def _decided_at(sealed: SealedDecision) -> str:
    value = json.loads(sealed.document.decode("utf-8")).get("decided_at", "")
    return value if isinstance(value, str) else ""


def list_register(*, uow: IntakeUnitOfWork, cursor: int, requested_size: int) -> RegisterPage:
    with uow:
        entries = uow.register.after(cursor, limit=page_size(requested_size))
        return RegisterPage(entries, entries[-1].sequence if entries else cursor)
