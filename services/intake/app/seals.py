"""The center's seal: sealing decisions, verifying and revoking them, the public register."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kernel.audit import Actor
from kernel.directory import Official, acting_official, require_official
from kernel.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from kernel.identity import Caller
from kernel.paging import page_size
from kernel.signing import BadSignature, ServiceSigner, TrustedKeys
from services.intake.app.cases import (
    CHAIN_SYSTEM,
    INTAKE_EVENT_PREFIX,
    INTAKE_STAGE,
    acceptance_statement,
)
from services.intake.db.audit import SEALED_DECISIONS
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.domain.cases import (
    IN_CHAIN,
    Case,
    CaseStatus,
    TimelineEvent,
    china_date,
    mask_name,
)
from services.intake.domain.decisions import (
    ChainDocument,
    RegisterEntry,
    RegisterEntryKind,
    SealedDecision,
    SealKey,
    Verdict,
    certificate_number,
    check_signature,
    document_fields,
    iso_utc,
    key_id,
    verdict_without_record,
    verification_code,
)
from services.intake.keystore import raw_public_key
from workflows.approval_contract import (
    CENTER_DEPARTMENT,
    SealReceipt,
    SealRequest,
    Stage,
    StatementFacts,
    StatementKind,
    as_statement,
    check_case_number,
    content_digest,
    iso_instant,
    statement_body,
    statement_json,
    verified_facts,
)
from workflows.approval_rules import RuleBroken, check_chain


@dataclass(frozen=True)
class DecisionVerification:
    verdict: Verdict
    certificate_number: str
    case_number: str
    key_id: str
    explanation: str
    revocation_reason: str = ""
    revoked_at: datetime | None = None
    #: The signature holds but the center's stored copy differs: the database was edited.
    stored_copy_altered: bool = False


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


def public_holder(case: Case) -> str:
    """The holder as the public reads it: an organisation's name; a person's, masked."""
    if case.applicant.kind == "organisation":
        return case.applicant.name
    return mask_name(case.applicant.name)


def _receipt(decision: SealedDecision, signer: ServiceSigner) -> SealReceipt:
    """The receipt, with intake's signed word for it (the same every time it is asked for)."""
    fields = document_fields(decision.document)
    sealed_by = fields.get("sealed_by")
    statement = as_statement(signer.sign(statement_body(
        kind=StatementKind.SEALED, case_number=decision.case_number,
        official_id=sealed_by if isinstance(sealed_by, str) and sealed_by else "intake",
        department_code=CENTER_DEPARTMENT, roles=["seal_custodian"], system="govhall-intake",
        issued_at=decision.issued_at, certificate_number=decision.certificate_number,
        outcome=decision.decision, content_sha256=decision.document_sha256)))
    return SealReceipt(decision.certificate_number, decision.key_id, decision.document_sha256,
                       decision.decision, statement)


def record_violation(*, uow: IntakeUnitOfWork, case_number: str, what: str, reason: str,
                     now: datetime) -> None:
    """Keep, in the audit log, a seal refused because nobody with authority asked for it."""
    with uow:
        uow.audit.append(actor=Actor(CHAIN_SYSTEM), action="violation.refused_seal",
                         subject=f"case/{case_number or 'unknown'}", at=now,
                         details={"what": what, "reason": reason[:200]})
        uow.commit()


def _chain_facts(request: SealRequest, keys: TrustedKeys) -> list[StatementFacts]:
    facts: list[StatementFacts] = []
    for taken in request.decisions:
        found = verified_facts(keys, taken.statement, StatementKind.DECISION)
        if found.case_number != request.case_number:
            raise BadSignature(f"a statement about case {found.case_number} was given")
        if content_digest(opinion=taken.opinion,
                          legal_basis=taken.legal_basis) != found.content_sha256:
            raise BadSignature(f"the texts of the {found.stage} decision are not the ones "
                               "review signed")
        facts.append(found)
    return facts


def _acceptance_facts(case: Case) -> StatementFacts:
    assert case.accepted_at is not None
    return StatementFacts(kind=StatementKind.ACCEPTANCE, case_number=case.number,
                          official_id=case.accepted_by, department_code=case.department_code,
                          roles=("window_clerk",), system=case.system,
                          issued_at=iso_instant(case.accepted_at))


def seal_decision(*, uow: IntakeUnitOfWork, violations: Callable[[], IntakeUnitOfWork],
                  keys: TrustedKeys, signer: ServiceSigner, request: SealRequest,
                  key: Ed25519PrivateKey, now: datetime) -> SealReceipt:
    """Seal the case's decision, once, from its chain's signed statements.

    Every statement must verify with review's published keys and the chain
    must keep its rules (workflows/approval_rules.check_chain): the window's
    clerk, a reviewer and a leader of the case's department and a seal
    custodian of the center, four different people, in that order. Anything
    else is refused and recorded as a violation. A repeated request gets the
    decision sealed before.
    """
    check_case_number(request.case_number)
    try:
        facts = _chain_facts(request, keys)
    except (BadSignature, StatementFacts.Malformed) as error:
        record_violation(uow=violations(), case_number=request.case_number,
                         what="statements", reason=str(error), now=now)
        raise PermissionDenied(
            f"case {request.case_number} was not sealed: its decisions are not ones review "
            "signed (recorded as a violation)") from error
    raw = raw_public_key(key)
    signing_key = key_id(raw)
    with uow:
        case = uow.cases.get(request.case_number, for_update=True)
        if case is None:
            raise NotFound(f"case {request.case_number} is unknown")
        existing = uow.sealed.of_case(case.number)
        if existing is not None:
            return _receipt(existing, signer)
        if case.status not in IN_CHAIN or case.accepted_at is None:
            raise FailedPrecondition(f"case {case.number} is {case.status}: "
                                     "there is no decision to seal")
        broken: RuleBroken | None = None
        try:
            decision = check_chain(_acceptance_facts(case), facts)
        except RuleBroken as refused:
            broken = refused
        if broken is not None:
            uow.connection.rollback()
            record_violation(uow=violations(), case_number=case.number, what="chain",
                             reason=broken.message, now=now)
            raise PermissionDenied(f"case {case.number} was not sealed: {broken.message} "
                                   "(recorded as a violation)")
        item = uow.catalogue.at_version(case.item_code, case.item_version)
        assert item is not None
        if uow.seal_keys.make_active(signing_key, raw, at=now):
            uow.audit.append(actor=Actor("govhall-intake"), action="seal_key.activated",
                             subject=f"seal_key/{signing_key}", at=now,
                             details={"key_id": signing_key})
        year = china_date(now).year
        number = certificate_number(year, uow.sequences.next(f"SY-{year}"))
        by_stage = {f.stage: f for f in facts}
        texts = {taken.stage: {"opinion": taken.opinion, "legal_basis": taken.legal_basis}
                 for taken in request.decisions}
        signed_by_leader = texts[Stage.SIGN]
        document = ChainDocument(
            certificate_number=number, case_number=case.number, item_code=case.item_code,
            item_version=case.item_version, item_name=case.item_name,
            department_code=case.department_code, decision=decision,
            decided_at=by_stage[Stage.SIGN].issued_at, applicant_name=case.applicant.name,
            legal_basis=signed_by_leader["legal_basis"] or texts[Stage.REVIEW]["legal_basis"],
            opinion=signed_by_leader["opinion"] or texts[Stage.REVIEW]["opinion"],
            reviewer_id=by_stage[Stage.REVIEW].official_id,
            signer_id=by_stage[Stage.SIGN].official_id,
            sealed_by=by_stage[Stage.SEAL].official_id, key_id=signing_key,
            issued_at=iso_utc(now), verification_code=verification_code(),
            chain=[statement_json(acceptance_statement(case, item, signer)),
                   *(statement_json(taken.statement) for taken in request.decisions)],
            texts=texts)
        content = document.canonical()
        sealed = SealedDecision(
            certificate_number=number, case_number=case.number, key_id=signing_key,
            decision=decision, document=content, signature=key.sign(content),
            document_sha256=hashlib.sha256(content).hexdigest(), issued_at=now)
        uow.sealed.add(sealed)
        status = CaseStatus.APPROVED if decision == "approved" else CaseStatus.REFUSED
        uow.cases.save(replace(case, certificate_number=number, status=status, closed_at=now))
        for found in facts:
            details = {"outcome": found.outcome}
            if found.on_behalf_of:
                details |= {"on_behalf_of": found.on_behalf_of,
                            "delegation": found.delegation_id}
            uow.timeline.add(case.number, TimelineEvent(
                event_id=f"chain-{found.stage}", kind=f"{found.stage}.decided",
                at=datetime.fromisoformat(found.issued_at.replace("Z", "+00:00")),
                stage=found.stage, official_id=found.official_id, details=details),
                recorded_at=now)
        uow.timeline.add(case.number, TimelineEvent(
            event_id="chain-sealed", kind="decision.sealed", at=now, stage=Stage.SEAL,
            official_id=by_stage[Stage.SEAL].official_id,
            details={"decision": decision, "certificate_number": number}, status=str(status)),
            recorded_at=now)
        uow.register.append(RegisterEntry(
            kind=RegisterEntryKind.SEALED, certificate_number=number, case_number=case.number,
            item_code=case.item_code, item_name=case.item_name,
            department_code=case.department_code, decision=decision,
            holder=public_holder(case), decided_at=document.decided_at,
            issued_at=document.issued_at, reason="", recorded_at=now))
        uow.authority.record(SEALED_DECISIONS, number,
                             actor=Actor(CHAIN_SYSTEM, by_stage[Stage.SEAL].official_id),
                             action="decision.sealed", subject=f"case/{case.number}", at=now,
                             details={"certificate_number": number, "key_id": signing_key,
                                      "decision": decision,
                                      "document_sha256": sealed.document_sha256})
        uow.commit()
        return _receipt(sealed, signer)


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
            # The signature holds: this is what the center sealed. The stored copy differs,
            # so the database was edited, not the document.
            return DecisionVerification(
                Verdict.VALID, *found,
                f"the document is the one the center sealed as {check.certificate_number}; "
                "the center's stored copy of it was altered and is being looked into",
                stored_copy_altered=True)
        if sealed.revoked:
            return DecisionVerification(
                Verdict.REVOKED, *found, f"decision {sealed.certificate_number} was revoked",
                sealed.revocation_reason, sealed.revoked_at)
        return DecisionVerification(
            Verdict.VALID, *found,
            f"decision {sealed.certificate_number} was sealed by the center and is in force")


@dataclass(frozen=True)
class PublicDecision:
    """What anyone holding the certificate number and its verification code may read.

    A natural person's name is masked; a legal person's is shown, as on the
    public register of permits.
    """

    certificate_number: str
    item_code: str
    item_name: str
    department_code: str
    decision: str
    holder: str
    decided_at: str
    issued_at: str
    revoked: bool
    revocation_reason: str
    document_sha256: str
    key_id: str


def get_decision(*, uow: IntakeUnitOfWork, caller: Caller, certificate_number: str,
                 verification_code: str) -> SealedDecision | PublicDecision:
    """The sealed decision for its department and operators; its public view for the code.

    Without an entitled official the verification code printed on the
    document is needed, and a wrong one is answered like an unknown
    certificate, so numbers cannot be probed. An official counts only in the
    roles the calling system may speak for (its registry entry); naming one
    it may speak for in none is refused, code or not, as everywhere else: a
    system that only wants the public view names nobody.
    """
    with uow:
        official = acting_official(uow.staff, caller) if caller.official_id else None
        sealed = uow.sealed.get(certificate_number)
        if sealed is None:
            raise NotFound(f"no decision was sealed as {certificate_number}")
        case = uow.cases.get(sealed.case_number)
        assert case is not None
        if official is not None and (
                official.department_code == case.department_code
                or official.roles & {"operator", "supervisor"}):
            return sealed
        fields = document_fields(sealed.document)
        printed = fields.get("verification_code", "")
        if not (verification_code and isinstance(printed, str)
                and hmac.compare_digest(printed.encode(), verification_code.encode())):
            if not verification_code and official is None:
                raise PermissionDenied(
                    "a sealed decision is read by officials of its department, or by anyone "
                    "with the verification code printed on it")
            raise NotFound(f"no decision was sealed as {certificate_number} with that code")
        holder = public_holder(case)
        return PublicDecision(
            certificate_number=sealed.certificate_number, item_code=case.item_code,
            item_name=case.item_name, department_code=case.department_code,
            decision=sealed.decision, holder=holder, decided_at=_decided_at(sealed),
            issued_at=iso_utc(sealed.issued_at), revoked=sealed.revoked,
            revocation_reason=sealed.revocation_reason, document_sha256=sealed.document_sha256,
            key_id=sealed.key_id)


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
            holder=public_holder(case), decided_at=_decided_at(sealed),
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
