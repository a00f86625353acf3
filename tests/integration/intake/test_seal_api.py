"""The seal over real gRPC: keys, verification, revocation, who reads a decision, the register.

Decisions are sealed by the ``intake.seal`` activity itself from chains
signed with review's key (tests/integration/intake/sealing.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import update

from govhall.intake.v1 import intake_pb2 as pb
from govhall.intake.v1 import intake_pb2_grpc as pb_grpc
from services.intake.db import tables
from services.intake.domain.cases import china_date
from services.intake.domain.decisions import canonical_document, key_id
from services.intake.keystore import raw_public_key, seal_key
from tests.integration.intake.sealing import ORGANISATION, PERSON, Sealing, routed
from tests.support import as_official

LEADER = "SCJGJ-006"
REVIEWER = "SCJGJ-003"
OTHER_LEADER = "ZJJ-006"
OPERATOR = "ZWFWZX-004"
SUPERVISOR = "JJZ-001"


async def test_a_sealed_decision_verifies_until_altered_or_revoked(sealing: Sealing) -> None:
    started = datetime.now(UTC)
    async with routed(sealing.service, "supervision-system") as stub:
        number, receipt = await sealing.sealed_case(stub)
        decision = (await stub.GetDecision(pb.GetDecisionRequest(
            certificate_number=receipt.certificate_number),
            metadata=as_official(OPERATOR))).decision
        keys = (await stub.GetSealKeys(pb.GetSealKeysRequest())).keys

        async def verdict(document: bytes, signature: bytes) -> pb.VerifyDecisionResponse:
            response: pb.VerifyDecisionResponse = await stub.VerifyDecision(
                pb.VerifyDecisionRequest(document=document, signature=signature))
            return response

        valid = await verdict(decision.document, decision.signature)
        flipped = bytearray(decision.document)
        flipped[decision.document.index(b"approved")] ^= 0x20
        tampered = await verdict(bytes(flipped), decision.signature)
        wrong_signature = bytearray(decision.signature)
        wrong_signature[10] ^= 0x01
        tampered_signature = await verdict(decision.document, bytes(wrong_signature))
        foreign_key = Ed25519PrivateKey.generate()
        foreign_document = canonical_document(json.loads(decision.document) | {
            "key_id": key_id(raw_public_key(foreign_key))})
        foreign = await verdict(foreign_document, foreign_key.sign(foreign_document))
        case = (await stub.GetCase(pb.GetCaseRequest(case_number=number))).case

        with pytest.raises(grpc.aio.AioRpcError) as by_other_department:
            await stub.RevokeDecision(pb.RevokeDecisionRequest(
                certificate_number=receipt.certificate_number, reason="许可证记载事项错误"),
                metadata=as_official(OTHER_LEADER))
        # Through the department's own system, which may call RevokeDecision and speak for
        # its reviewers: refused by the revocation's rule, not by the registry.
        with pytest.raises(grpc.aio.AioRpcError) as by_reviewer:
            await stub.RevokeDecision(pb.RevokeDecisionRequest(
                certificate_number=receipt.certificate_number, reason="许可证记载事项错误"),
                metadata=as_official(REVIEWER))
        with pytest.raises(grpc.aio.AioRpcError) as without_reason:
            await stub.RevokeDecision(pb.RevokeDecisionRequest(
                certificate_number=receipt.certificate_number, reason=""),
                metadata=as_official(LEADER))
        still_valid = await verdict(decision.document, decision.signature)
        revoked = (await stub.RevokeDecision(pb.RevokeDecisionRequest(
            certificate_number=receipt.certificate_number, reason="许可证记载事项错误"),
            metadata=as_official(LEADER))).decision
        with pytest.raises(grpc.aio.AioRpcError) as twice:
            await stub.RevokeDecision(pb.RevokeDecisionRequest(
                certificate_number=receipt.certificate_number, reason="再次撤销"),
                metadata=as_official(OPERATOR))
        after = await verdict(decision.document, decision.signature)
        read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.GetDecision(pb.GetDecisionRequest(certificate_number="SY-2026-999999"),
                                   metadata=as_official(OPERATOR))
        audit = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification

    # The year in China when sealed: the year the test started in, or the next should its New
    # Year's midnight fall while the test runs.
    years = {china_date(started).year, china_date(datetime.now(UTC)).year}
    assert receipt.certificate_number in {f"SY-{year}-000001" for year in years}
    content = json.loads(decision.document)
    assert decision.document == canonical_document(content)
    assert content["key_id"] == receipt.key_id == decision.key_id
    assert [k.key_id for k in keys] == [receipt.key_id] and keys[0].active
    assert key_id(keys[0].public_key) == keys[0].key_id and keys[0].algorithm == "Ed25519"
    assert case.certificate_number == receipt.certificate_number
    assert valid.result == pb.VERIFICATION_RESULT_VALID
    assert valid.certificate_number == receipt.certificate_number and valid.case_number == number
    assert tampered.result == pb.VERIFICATION_RESULT_TAMPERED
    assert tampered_signature.result == pb.VERIFICATION_RESULT_TAMPERED
    assert foreign.result == pb.VERIFICATION_RESULT_UNKNOWN_KEY
    who_revokes = "a decision is revoked by a leader of SCJGJ or by an operator"
    assert by_other_department.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert by_other_department.value.details() == (
        f"official {OTHER_LEADER} belongs to ZJJ, not to SCJGJ: {who_revokes}")
    assert by_reviewer.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert by_reviewer.value.details() == (
        f"official {REVIEWER} does not hold the role leader: {who_revokes}")
    assert without_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert still_valid.result == pb.VERIFICATION_RESULT_VALID
    assert revoked.revoked and revoked.revocation_reason == "许可证记载事项错误"
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert after.result == pb.VERIFICATION_RESULT_REVOKED
    assert after.revocation_reason == "许可证记载事项错误" and after.HasField("revoked_at")
    assert read.case.decision_revoked
    assert read.timeline[-1].kind == "decision.revoked"
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert audit.intact


async def test_a_decision_signed_with_a_center_key_but_never_registered_is_unknown(
        sealing: Sealing) -> None:
    key = seal_key(sealing.service.pki_dir)
    async with routed(sealing.service) as stub:
        _, receipt = await sealing.sealed_case(stub)
        decision = (await stub.GetDecision(pb.GetDecisionRequest(
            certificate_number=receipt.certificate_number),
            metadata=as_official(OPERATOR))).decision
        forged = canonical_document(json.loads(decision.document)
                                    | {"certificate_number": "SY-2026-777777"})
        response = await stub.VerifyDecision(pb.VerifyDecisionRequest(
            document=forged, signature=key.sign(forged)))
    assert response.result == pb.VERIFICATION_RESULT_UNKNOWN_CERTIFICATE


async def test_an_edit_of_the_stored_copy_is_reported_and_the_genuine_document_stays_valid(
        sealing: Sealing) -> None:
    async with routed(sealing.service) as stub:
        _, receipt = await sealing.sealed_case(stub)
        number = receipt.certificate_number
        genuine = (await stub.GetDecision(pb.GetDecisionRequest(certificate_number=number),
                                          metadata=as_official(OPERATOR))).decision
        before = await stub.VerifyDecision(pb.VerifyDecisionRequest(
            document=genuine.document, signature=genuine.signature))
        # Someone with the database rewrites the decision in the center's stored copy.
        edited = canonical_document(json.loads(genuine.document) | {"decision": "refused"})
        with sealing.engine.begin() as connection:
            connection.execute(update(tables.sealed_decisions)
                               .where(tables.sealed_decisions.c.certificate_number == number)
                               .values(document=edited))
        stored = (await stub.GetDecision(pb.GetDecisionRequest(certificate_number=number),
                                         metadata=as_official(OPERATOR))).decision
        after = await stub.VerifyDecision(pb.VerifyDecisionRequest(
            document=genuine.document, signature=genuine.signature))
        of_the_edit = await stub.VerifyDecision(pb.VerifyDecisionRequest(
            document=stored.document, signature=stored.signature))
    assert stored.document == edited
    assert before.result == pb.VERIFICATION_RESULT_VALID and not before.stored_copy_altered
    assert after.result == pb.VERIFICATION_RESULT_VALID
    assert after.stored_copy_altered and "altered" in after.explanation
    assert of_the_edit.result == pb.VERIFICATION_RESULT_TAMPERED
    assert not of_the_edit.stored_copy_altered


async def test_who_reads_a_decision_in_full_and_who_sees_its_public_view(
        sealing: Sealing) -> None:
    async with routed(sealing.service) as stub:
        _, of_person = await sealing.sealed_case(stub, PERSON)
        _, of_company = await sealing.sealed_case(stub, ORGANISATION, sign="refuse")

        async def read(certificate: str, code: str = "",
                       official: str = "") -> pb.GetDecisionResponse:
            response: pb.GetDecisionResponse = await stub.GetDecision(
                pb.GetDecisionRequest(certificate_number=certificate, verification_code=code),
                metadata=as_official(official) if official else ())
            return response

        async def refused(certificate: str, code: str = "",
                          official: str = "") -> grpc.StatusCode:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await read(certificate, code, official)
            return error.value.code()

        person = of_person.certificate_number
        company = of_company.certificate_number
        full = {who: await read(person, official=who)
                for who in (LEADER, REVIEWER, OPERATOR, SUPERVISOR)}
        code = json.loads(full[OPERATOR].decision.document)["verification_code"]
        company_code = json.loads(
            (await read(company, official=OPERATOR)).decision.document)["verification_code"]
        public = await read(person, code)
        public_to_another_department = await read(person, code, OTHER_LEADER)
        public_company = await read(company, company_code)
        wrong = "2" * 10 if code != "2" * 10 else "3" * 10
        statuses = {
            "wrong code": await refused(person, wrong),
            "another decision's code": await refused(person, company_code),
            "wrong code, another department": await refused(person, wrong, OTHER_LEADER),
            "no code, no official": await refused(person),
            "unknown certificate": await refused("SY-2026-999999", code),
        }
    for who, response in full.items():
        assert response.HasField("decision") and not response.HasField("public_decision"), who
        assert response.decision.document and response.decision.signature, who
    for response in (public, public_to_another_department, public_company):
        assert response.HasField("public_decision") and not response.HasField("decision")
    view = public.public_decision
    assert view.certificate_number == person and view.item_code == "012101000007001"
    assert view.department_code == "SCJGJ" and view.decision == pb.DECISION_OUTCOME_APPROVED
    assert view.holder == "张*"
    assert view.document_sha256 == full[OPERATOR].decision.document_sha256
    assert view.key_id == of_person.key_id and view.decided_at and view.issued_at
    wire = public.SerializeToString() + public_to_another_department.SerializeToString()
    for personal in (PERSON.name, PERSON.id_number, PERSON.phone):
        assert personal.encode() not in wire
    # A legal person's name is public, as on the register of permits.
    assert public_company.public_decision.holder == ORGANISATION.name
    assert public_company.public_decision.decision == pb.DECISION_OUTCOME_REFUSED
    assert ORGANISATION.id_number.encode() not in public_company.SerializeToString()
    assert statuses == {
        "wrong code": grpc.StatusCode.NOT_FOUND,
        "another decision's code": grpc.StatusCode.NOT_FOUND,
        "wrong code, another department": grpc.StatusCode.NOT_FOUND,
        "no code, no official": grpc.StatusCode.PERMISSION_DENIED,
        "unknown certificate": grpc.StatusCode.NOT_FOUND,
    }


async def test_the_register_is_anonymised_and_read_with_a_cursor(sealing: Sealing) -> None:
    def person(name: str) -> pb.Applicant:
        return pb.Applicant(kind=pb.APPLICANT_KIND_PERSON, name=name, id_number=PERSON.id_number)

    async with routed(sealing.service) as stub:
        receipts = [(await sealing.sealed_case(stub, PERSON))[1],
                    (await sealing.sealed_case(stub, person("李四"), sign="refuse"))[1]]
        await stub.RevokeDecision(pb.RevokeDecisionRequest(
            certificate_number=receipts[0].certificate_number, reason="依法撤销"),
            metadata=as_official(OPERATOR))
        receipts.append((await sealing.sealed_case(stub, person("王五")))[1])
        read: list[pb.RegisterEntry] = []
        cursor = 0
        cursors = []
        for _ in range(10):
            page = await stub.ListRegister(pb.ListRegisterRequest(cursor=cursor, page_size=1))
            if not page.entries:
                assert page.next_cursor == cursor
                break
            read += page.entries
            cursor = page.next_cursor
            cursors.append(cursor)
        later = await stub.ListRegister(pb.ListRegisterRequest(cursor=cursor))
        all_at_once = await stub.ListRegister(pb.ListRegisterRequest())
    assert [e.sequence for e in read] == [1, 2, 3, 4] == cursors
    assert list(all_at_once.entries) == read
    assert not later.entries
    assert [(e.kind, e.certificate_number) for e in read] == [
        (pb.REGISTER_ENTRY_KIND_SEALED, receipts[0].certificate_number),
        (pb.REGISTER_ENTRY_KIND_SEALED, receipts[1].certificate_number),
        (pb.REGISTER_ENTRY_KIND_REVOKED, receipts[0].certificate_number),
        (pb.REGISTER_ENTRY_KIND_SEALED, receipts[2].certificate_number)]
    assert [e.holder for e in read] == ["张*", "李*", "张*", "王*"]
    assert read[1].decision == pb.DECISION_OUTCOME_REFUSED
    assert read[2].reason == "依法撤销"
    wire = b"".join(e.SerializeToString() for e in read)
    for personal in ("张三丰".encode(), "李四".encode(), b"110101199003077777", b"13800000000"):
        assert personal not in wire


async def test_a_system_reads_a_full_decision_only_for_an_official_it_may_speak_for(
        sealing: Sealing) -> None:
    """Any registered system may call GetDecision; naming an official used to be enough to read
    the full document (the hotline naming an operator). Now the official counts only as far as
    the system's registry entry lets it speak for them; naming one it may not is refused."""
    async with routed(sealing.service) as stub:
        _, receipt = await sealing.sealed_case(stub, PERSON)
        certificate = receipt.certificate_number
        code = json.loads((await stub.GetDecision(pb.GetDecisionRequest(
            certificate_number=certificate), metadata=as_official(OPERATOR))).decision.document
        )["verification_code"]

    async def answer(system: str, official: str, with_code: bool) -> str:
        async with sealing.service.channel(system) as channel:
            try:
                response = await pb_grpc.IntakeServiceStub(channel).GetDecision(
                    pb.GetDecisionRequest(certificate_number=certificate,
                                          verification_code=code if with_code else ""),
                    metadata=as_official(official) if official else ())
            except grpc.aio.AioRpcError as error:
                return error.code().name
        shown = [f.name for f, _ in response.ListFields()]
        assert len(shown) == 1, shown
        return shown[0]

    matrix = {
        # The attacker's matrix (attacks/t_getdecision.py): systems naming officials they do
        # not speak for.
        ("hotline-12345", OPERATOR): "PERMISSION_DENIED",
        ("provincial-complaint-portal", SUPERVISOR): "PERMISSION_DENIED",
        ("trading-platform", "SCJGJ-001"): "PERMISSION_DENIED",
        ("department-system-zjj", REVIEWER): "PERMISSION_DENIED",
        ("department-system-scjgj", "SCJGJ-999"): "PERMISSION_DENIED",
        # Officials the systems do speak for: in full for the deciding department, operators
        # and supervisors; the public view with the code for anyone else.
        ("department-system-scjgj", REVIEWER): "decision",
        ("department-system-scjgj", LEADER): "decision",
        ("hall-window-system", "SCJGJ-001"): "decision",
        ("operator", OPERATOR): "decision",
        ("supervision-system", SUPERVISOR): "decision",
        ("department-system-zjj", "ZJJ-003"): "public_decision",
        ("operator", "ZWFWZX-007"): "public_decision",
        ("hotline-12345", ""): "public_decision",
    }
    with_code = {key: await answer(*key, with_code=True) for key in matrix}
    without_code = {key: await answer(*key, with_code=False) for key in matrix}
    assert with_code == matrix
    # Without the code the public view is not found, and the hotline naming nobody is told
    # whom a decision is for.
    assert without_code == {key: {"public_decision": "NOT_FOUND"}.get(shown, shown)
                            for key, shown in matrix.items()} | {
        ("hotline-12345", ""): "PERMISSION_DENIED"}
