"""intake.seal: the center seals only a chain review signed, in order, by the right people;
intake.record_withdrawal closes a case only on a withdrawal intake signed.

Each decision is a statement signed with review's key (or, for the attacks,
with someone else's); the real activity runs against the service's database
and the results are read back over gRPC.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from govhall.intake.v1 import intake_pb2 as pb
from kernel.signing import ServiceSigner, Signed, TrustedKeys, public_keys_dir, service_signer
from services.intake.activities import IntakeActivities
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.domain.decisions import DecisionDocument, SealedDecision, key_id
from services.intake.keystore import applicant_cipher, raw_public_key, seal_key
from tests.integration.intake.sealing import (
    CLERK,
    LEGAL_BASIS,
    OPINION,
    Sealing,
    application,
    routed,
    taken,
)
from tests.support import as_official
from tests.unit.workflows.fakes import CLERK as CLERK_OFFICIAL
from tests.unit.workflows.fakes import (
    DEPUTY,
    LEADER,
    OTHER_REVIEWER,
    REVIEWER,
    SEALER,
    Official,
)
from workflows import approval_contract as c

OPERATOR = "ZWFWZX-004"
#: The department's other leader (each sample department has two).
OTHER_LEADER = Official("SCJGJ-007", "SCJGJ", ("leader",))
K = c.StatementKind
S = c.Stage


async def test_a_good_chain_is_sealed_once_into_a_format_2_document(
        sealing: Sealing, pki_dir: Path) -> None:
    async with routed(sealing.service) as stub:
        number, accepted_at = await sealing.accepted_case(stub)
        decisions = sealing.chain(number, accepted_at)
        receipt = await sealing.seal(number, decisions)
        again = await sealing.seal(number, decisions)
        read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
        decision = (await stub.GetDecision(pb.GetDecisionRequest(
            certificate_number=receipt.certificate_number),
            metadata=as_official(OPERATOR))).decision
        verdict = await stub.VerifyDecision(pb.VerifyDecisionRequest(
            document=decision.document, signature=decision.signature))
    assert again == receipt
    assert receipt.decision == "approved"
    assert sealing.count("sealed_decisions") == 1 and sealing.count("register_entries") == 1
    assert sealing.violations() == []
    assert read.case.status == pb.CASE_STATUS_APPROVED
    assert read.case.certificate_number == receipt.certificate_number
    assert [e.kind for e in read.timeline][-4:] == [
        "review.decided", "sign.decided", "seal.decided", "decision.sealed"]
    document = decision.document
    content = json.loads(document)
    # Format 2: RFC 8785 bytes, so a verifier in any language gets the same ones.
    assert rfc8785.dumps(content) == document
    assert content["format"] == "govhall-decision/2"
    assert content["decision"] == "approved" and content["case_number"] == number
    assert (content["reviewer_id"], content["signer_id"], content["sealed_by"]) == (
        REVIEWER.official_id, LEADER.official_id, SEALER.official_id)
    assert content["decided_at"] == decisions[1].statement.body["issued_at"]
    assert (content["opinion"], content["legal_basis"]) == (OPINION, LEGAL_BASIS)
    assert len(content["verification_code"]) == 10
    # The four statements of the chain, each verifying with its signer's published key.
    keys = TrustedKeys.load(public_keys_dir(pki_dir))
    chain = [Signed.from_dict(s) for s in content["chain"]]
    assert [(s.signer, s.body["kind"]) for s in chain] == [
        ("intake", "acceptance"), ("review", "decision"), ("review", "decision"),
        ("review", "decision")]
    for statement in chain:
        keys.verify(statement, signer=statement.signer)
    assert content["chain"][1:] == [c.statement_json(d.statement) for d in decisions]
    acceptance = c.StatementFacts.read(chain[0].body)
    assert (acceptance.case_number, acceptance.official_id, acceptance.item_code) == (
        number, "SCJGJ-001", "012101000007001")
    assert content["texts"] == {stage: {"opinion": OPINION, "legal_basis": LEGAL_BASIS}
                                for stage in ("review", "sign", "seal")}
    assert verdict.result == pb.VERIFICATION_RESULT_VALID and not verdict.stored_copy_altered


async def test_a_refusal_signed_by_the_leader_is_sealed_as_refused(sealing: Sealing) -> None:
    async with routed(sealing.service) as stub:
        number, accepted_at = await sealing.accepted_case(stub)
        receipt = await sealing.seal(number, sealing.chain(number, accepted_at,
                                                           review="refuse", sign="refuse"))
        overruled, at = await sealing.accepted_case(stub)
        # The leader's signature decides: a reviewer's refusal the leader approves is approved.
        approved = await sealing.seal(overruled, sealing.chain(overruled, at, review="refuse"))
        read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
    assert receipt.decision == "refused" and read.case.status == pb.CASE_STATUS_REFUSED
    assert approved.decision == "approved"


def _bad_chains(sealing: Sealing, number: str, accepted_at: datetime,
                tmp_path: Path) -> dict[str, list[c.DecisionTaken]]:
    """Chains the seal must refuse, each broken in one way."""
    signers = sealing.signers
    outsider = service_signer(tmp_path / "outsider", "review")

    def at(milliseconds: int) -> datetime:
        return accepted_at + timedelta(milliseconds=milliseconds)

    def chain(**changes: Callable[[], c.DecisionTaken]) -> list[c.DecisionTaken]:
        good = dict(zip((S.REVIEW, S.SIGN, S.SEAL), sealing.chain(number, accepted_at),
                        strict=True))
        return [changes[stage]() if stage in changes else decision
                for stage, decision in good.items()]

    def decided(who: Official, stage: str, outcome: str, milliseconds: int,
                signer: ServiceSigner | None = None) -> Callable[[], c.DecisionTaken]:
        return lambda: taken(signers, number, who, stage, outcome, at=at(milliseconds),
                             signer=signer)

    genuine = taken(signers, number, REVIEWER, S.REVIEW, "approve", at=at(1))
    raised_roles = replace(genuine, statement=replace(genuine.statement, body={
        **genuine.statement.body, "roles": ["leader", "reviewer"]}))
    review, _, seal = sealing.chain(number, accepted_at)
    leader_as_reviewer = replace(LEADER, roles=("leader", "reviewer"))
    return {
        "signed by an unknown key": chain(review=decided(
            REVIEWER, S.REVIEW, "approve", 1, signer=outsider)),
        "signed by intake, not review": chain(sign=decided(
            LEADER, S.SIGN, "approve", 2, signer=signers.intake)),
        "a body changed after signing": chain(review=lambda: raised_roles),
        "a statement of another case": chain(sign=lambda: taken(
            signers, "AP-20260101-000001", LEADER, S.SIGN, "approve", at=at(2))),
        "an opinion other than the signed one": chain(
            sign=lambda: replace(taken(signers, number, LEADER, S.SIGN, "approve", at=at(2)),
                                 opinion="同意（已改）")),
        "the same official twice": chain(
            review=decided(leader_as_reviewer, S.REVIEW, "approve", 1)),
        "a deputy for the reviewer": chain(
            sign=decided(replace(DEPUTY, on_behalf_of=REVIEWER.official_id), S.SIGN,
                         "approve", 2)),
        "a refusal with no leader's signature": [
            taken(signers, number, REVIEWER, S.REVIEW, "refuse", at=at(1)), seal],
        "a reviewer signing for the leader": chain(
            sign=decided(OTHER_REVIEWER, S.SIGN, "approve", 2)),
        "a leader of another department": chain(
            sign=decided(Official("FGW-006", "FGW", ("leader",)), S.SIGN, "approve", 2)),
        "a seal custodian outside the center": chain(
            seal=decided(Official("SCJGJ-005", "SCJGJ", ("seal_custodian",)), S.SEAL,
                         "seal", 3)),
        "signed before it was reviewed": chain(sign=decided(LEADER, S.SIGN, "approve", 0)),
        "reviewed before it was accepted": chain(
            review=decided(REVIEWER, S.REVIEW, "approve", -60)),
        "the stages out of order": [review, seal, *chain()[1:2]],
        # The stage sequence alone: every statement genuine, by the right person, in time.
        "no seal": [review, decided(LEADER, S.SIGN, "approve", 2)()],
        "the seal before the signature": [
            review, decided(SEALER, S.SEAL, "seal", 2)(), decided(LEADER, S.SIGN, "approve", 3)()],
        "signed twice, never sealed": [
            review, decided(LEADER, S.SIGN, "approve", 2)(),
            decided(OTHER_LEADER, S.SIGN, "approve", 3)()],
    }


IN_ORDER = "a sealed decision needs review, sign and seal in order"
#: What the seal records for each broken chain: the part it refused, and why.
REFUSED_FOR = {
    "signed by an unknown key": ("statements", "review has no published key"),
    "signed by intake, not review": ("statements", "signed by 'intake', not by 'review'"),
    "a body changed after signing": ("statements", "the signature of review does not hold"),
    "a statement of another case": ("statements",
                                    "a statement about case AP-20260101-000001 was given"),
    "an opinion other than the signed one": (
        "statements", "the texts of the sign decision are not the ones review signed"),
    "the same official twice": ("chain", "official SCJGJ-006 has already acted on case"),
    "a deputy for the reviewer": ("chain", "official SCJGJ-007 has already acted on case"),
    "a refusal with no leader's signature": ("chain", IN_ORDER),
    "a reviewer signing for the leader": ("chain", "official SCJGJ-004 is not a leader"),
    "a leader of another department": ("chain", "case {number} is decided by SCJGJ, not by FGW"),
    "a seal custodian outside the center": (
        "chain", "case {number} is decided by ZWFWZX, not by SCJGJ"),
    "signed before it was reviewed": ("chain", "the sign statement predates the step before it"),
    "reviewed before it was accepted": (
        "chain", "the review statement predates the step before it"),
    "the stages out of order": ("chain", IN_ORDER),
    "no seal": ("chain", IN_ORDER),
    "the seal before the signature": ("chain", IN_ORDER),
    "signed twice, never sealed": ("chain", IN_ORDER),
}


async def test_a_broken_chain_is_refused_records_a_violation_and_seals_nothing(
        sealing: Sealing, tmp_path: Path) -> None:
    async with routed(sealing.service) as stub:
        number, accepted_at = await sealing.accepted_case(stub)
        refusals: dict[str, str] = {}
        violations: dict[str, list[tuple[str, str, Any, Any]]] = {}
        for label, decisions in _bad_chains(sealing, number, accepted_at, tmp_path).items():
            before = len(sealing.violations())
            with pytest.raises(ApplicationError) as refused:
                await sealing.seal(number, decisions)
            assert refused.value.non_retryable, label
            refusals[label] = str(refused.value.type)
            violations[label] = [(action, subject, details["what"], details["reason"])
                                 for action, subject, details in sealing.violations()[before:]]
        unsealed = await stub.GetCase(pb.GetCaseRequest(case_number=number))
        sealed_after = sealing.count("sealed_decisions")
        # Nothing was left half done: the genuine chain still seals, with the year's first number.
        receipt = await sealing.seal(number, sealing.chain(number, accepted_at))
        audit = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
    assert refusals == dict.fromkeys(REFUSED_FOR, "PermissionDenied")
    # Each refused for its own fault: the violation recorded says which.
    assert set(violations) == set(REFUSED_FOR)
    for label, recorded in violations.items():
        [(action, subject, what, reason)] = recorded
        assert (action, subject, what) == ("violation.refused_seal", f"case/{number}",
                                           REFUSED_FOR[label][0]), label
        assert REFUSED_FOR[label][1].format(number=number) in reason, (label, reason)
    assert sealed_after == 0
    assert unsealed.case.status == pb.CASE_STATUS_ACCEPTED
    assert not unsealed.case.certificate_number
    assert receipt.certificate_number.endswith("-000001")
    assert audit.intact


async def test_only_a_case_in_its_chain_is_sealed(sealing: Sealing) -> None:
    async with routed(sealing.service) as stub:
        incomplete = application()
        incomplete.materials[0].provided = False
        waiting = await stub.SubmitApplication(incomplete, metadata=as_official(CLERK))
        number = waiting.case.case_number
        with pytest.raises(ApplicationError) as refused:
            await sealing.seal(number, sealing.chain(number, datetime.now(UTC)))
        with pytest.raises(ApplicationError) as unknown:
            await sealing.seal("AP-20260101-000099",
                               sealing.chain("AP-20260101-000099", datetime.now(UTC)))
    assert waiting.case.status == pb.CASE_STATUS_AWAITING_MATERIALS
    assert refused.value.type == "FailedPrecondition"
    assert unknown.value.type == "NotFound"
    assert sealing.count("sealed_decisions") == 0


async def test_a_format_1_document_sealed_before_the_chain_was_signed_still_verifies(
        sealing: Sealing) -> None:
    key = seal_key(sealing.service.pki_dir)
    raw = raw_public_key(key)
    async with routed(sealing.service) as stub:
        number, _ = await sealing.accepted_case(stub)
        document = DecisionDocument(
            certificate_number="SY-2025-000007", case_number=number,
            item_code="012101000007001", item_version=1, item_name="食品经营许可（新办）",
            department_code="SCJGJ", decision="approved", decided_at="2025-03-05T02:00:00Z",
            applicant_name="张三丰", legal_basis=LEGAL_BASIS, opinion=OPINION,
            reviewer_id="SCJGJ-003", signer_id="SCJGJ-006", sealed_by="ZWFWZX-001",
            key_id=key_id(raw), issued_at="2025-03-05T03:00:00Z").canonical()
        uow = IntakeUnitOfWork(sealing.engine, cipher=applicant_cipher(sealing.service.pki_dir))
        with uow:
            uow.seal_keys.make_active(key_id(raw), raw, at=datetime(2025, 1, 1, tzinfo=UTC))
            uow.sealed.add(SealedDecision(
                certificate_number="SY-2025-000007", case_number=number, key_id=key_id(raw),
                decision="approved", document=document, signature=key.sign(document),
                document_sha256="0" * 64, issued_at=datetime(2025, 3, 5, 3, tzinfo=UTC)))
            uow.commit()
        valid = await stub.VerifyDecision(pb.VerifyDecisionRequest(
            document=document, signature=key.sign(document)))
        altered = document.replace(b"approved", b"refused")
        tampered = await stub.VerifyDecision(pb.VerifyDecisionRequest(
            document=altered, signature=key.sign(document)))
    assert b'"format"' not in document
    assert valid.result == pb.VERIFICATION_RESULT_VALID, valid.explanation
    assert valid.certificate_number == "SY-2025-000007"
    assert tampered.result == pb.VERIFICATION_RESULT_TAMPERED


async def test_a_withdrawal_intake_did_not_sign_closes_nothing_and_is_recorded(
        sealing: Sealing, tmp_path: Path) -> None:
    signers = sealing.signers
    outsider = service_signer(tmp_path / "outsider", "intake")
    activities = IntakeActivities(sealing.engine, sealing.service.settings)

    async def withdraw(number: str, statement: c.SignedStatement) -> None:
        await ActivityEnvironment().run(activities.record_withdrawal, c.WithdrawalRecord(
            number, "review", datetime.now(UTC), statement))

    async with routed(sealing.service) as stub:
        number, _ = await sealing.accepted_case(stub)
        refusals = {}
        for label, statement in {
                "an unknown key": signers.statement(K.WITHDRAWAL, number, CLERK_OFFICIAL,
                                                    signer=outsider),
                "signed by review": signers.statement(K.WITHDRAWAL, number, CLERK_OFFICIAL,
                                                      signer=signers.review),
                "another case's": signers.statement(K.WITHDRAWAL, "AP-20260101-000001",
                                                    CLERK_OFFICIAL)}.items():
            with pytest.raises(ApplicationError) as refused:
                await withdraw(number, statement)
            refusals[label] = refused.value.type
        untouched = await stub.GetCase(pb.GetCaseRequest(case_number=number))
        await withdraw(number, signers.statement(K.WITHDRAWAL, number, CLERK_OFFICIAL))
        withdrawn = await stub.GetCase(pb.GetCaseRequest(case_number=number))
    assert refusals == dict.fromkeys(refusals, "PermissionDenied")
    assert [(action, subject) for action, subject, _ in sealing.violations()] == [
        ("violation.refused_seal", f"case/{number}")] * 3
    assert untouched.case.status == pb.CASE_STATUS_ACCEPTED
    assert withdrawn.case.status == pb.CASE_STATUS_WITHDRAWN


async def test_what_the_applicant_is_told_rests_on_an_act_review_signed(
        sealing: Sealing, tmp_path: Path) -> None:
    """Nobody who only reaches Temporal can put a notice, or an id, on a case's timeline."""
    signers = sealing.signers
    outsider = service_signer(tmp_path / "outsider", "review")
    activities = IntakeActivities(sealing.engine, sealing.service.settings)

    async def notify(number: str, statement: c.SignedStatement | None,
                     event_id: str = "chain-sealed") -> None:
        await ActivityEnvironment().run(activities.notify_applicant, c.ApplicantNotice(
            number, event_id, "special_procedure_started", datetime.now(UTC),
            {"procedure": "expert_review", "phone": "13800000000"}, statement))

    async with routed(sealing.service) as stub:
        number, _ = await sealing.accepted_case(stub)
        start = signers.statement(K.PROCEDURE_START, number, REVIEWER,
                                  procedure="expert_review")
        refusals = {}
        for label, statement in {
                "no statement": None,
                "an unknown key": signers.statement(K.PROCEDURE_START, number, REVIEWER,
                                                    procedure="expert_review",
                                                    signer=outsider),
                "a decision": signers.statement(K.DECISION, number, REVIEWER,
                                                stage="review", outcome="approve"),
                "another case's": signers.statement(K.PROCEDURE_START, "AP-20260101-000001",
                                                    REVIEWER, procedure="expert_review")}.items():
            with pytest.raises(ApplicationError) as refused:
                await notify(number, statement)
            refusals[label] = refused.value.type
        before = await stub.GetCase(pb.GetCaseRequest(case_number=number))
        await notify(number, start)
        await notify(number, start, event_id="anything")  # the same act: told once
        told = await stub.GetCase(pb.GetCaseRequest(case_number=number))
    assert refusals == dict.fromkeys(refusals, "PermissionDenied")
    assert len(sealing.violations()) == 4
    assert [e.kind for e in told.timeline][len(before.timeline):] == ["applicant.notified"]
    notice = told.timeline[-1]
    assert notice.event_id.startswith("notice-") and notice.event_id != "chain-sealed"
    # Template and details come from the statement: nothing the request said.
    assert dict(notice.details) == {"template": "special_procedure_started",
                                    "procedure": "expert_review"}
