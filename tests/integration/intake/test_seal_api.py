"""The seal over real gRPC: keys, verification, revocation, the register, offline checking.

Decisions are sealed by the intake.seal_decision activity itself, run in
temporalio's ActivityEnvironment against the service's database.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from temporalio.testing import ActivityEnvironment

from govhall.intake.v1 import intake_pb2 as pb
from govhall.intake.v1 import intake_pb2_grpc
from kernel.db import make_engine
from services.intake.activities import IntakeActivities
from services.intake.domain.cases import china_date
from services.intake.domain.decisions import canonical_json, key_id
from services.intake.keystore import raw_public_key, seal_key
from services.intake.main import DEFINITION
from tests.support import (
    ServiceUnderTest,
    as_official,
    fresh_database_url,
    service_under_test,
)
from workflows.approval_contract import SealReceipt, SealRequest

if TYPE_CHECKING:
    from govhall.intake.v1.intake_pb2_grpc import IntakeServiceAsyncStub

ROOT = Path(__file__).resolve().parents[3]
ITEM = "012101000007001"
CLERK = "SCJGJ-001"
LEADER = "SCJGJ-006"
OTHER_LEADER = "ZJJ-006"
OPERATOR = "ZWFWZX-004"
#: The systems each of them acts through.
WINDOW = "hall-window-system"
SYSTEM_OF = {CLERK: WINDOW, LEADER: "department-system-scjgj",
             OTHER_LEADER: "department-system-zjj", OPERATOR: "operator"}


@dataclass
class Sealing:
    service: ServiceUnderTest
    engine: Engine

    async def seal(self, case_number: str, decision: str = "approved") -> SealReceipt:
        request = SealRequest(case_number=case_number, decision=decision,
                              decided_at=datetime(2026, 3, 5, 2, 0, tzinfo=UTC),
                              sealed_by="ZWFWZX-001", reviewer_id="SCJGJ-003",
                              signer_id=LEADER, opinion="符合条件",
                              legal_basis="《食品经营许可管理办法》第十条")
        activities = IntakeActivities(self.engine, self.service.settings)
        receipt: SealReceipt = await ActivityEnvironment().run(activities.seal_decision, request)
        return receipt


@pytest.fixture
async def sealing(backend: str, tmp_path: Path, pki_dir: Path) -> AsyncIterator[Sealing]:
    url = fresh_database_url(backend, "intake", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address="127.0.0.1:1") as service:
        engine = make_engine(url)
        yield Sealing(service, engine)
        engine.dispose()


async def _accepted_case(service: ServiceUnderTest, name: str = "张三丰") -> str:
    """A case accepted at the window, through the hall's window system."""
    async with service.channel(WINDOW) as channel:
        stub: IntakeServiceAsyncStub = intake_pb2_grpc.IntakeServiceStub(channel)
        response = await stub.SubmitApplication(pb.SubmitApplicationRequest(
            idempotency_key=str(uuid.uuid4()), item_code=ITEM,
            applicant=pb.Applicant(kind=pb.APPLICANT_KIND_PERSON, name=name,
                                   id_number="110101199003077777", phone="13800000000"),
            materials=[pb.SubmittedMaterial(code=f"M0{i}", provided=True) for i in range(1, 7)],
            finding=pb.FINDING_NONE), metadata=as_official(CLERK))
    assert response.outcome == pb.INTAKE_OUTCOME_ACCEPTED
    return str(response.case.case_number)


async def _revoke(service: ServiceUnderTest, official: str, certificate_number: str,
                  reason: str) -> pb.SealedDecision:
    """Revoke as ``official``, through the system that speaks for them."""
    async with service.channel(SYSTEM_OF[official]) as channel:
        stub: IntakeServiceAsyncStub = intake_pb2_grpc.IntakeServiceStub(channel)
        response = await stub.RevokeDecision(pb.RevokeDecisionRequest(
            certificate_number=certificate_number, reason=reason),
            metadata=as_official(official))
    return response.decision


async def test_a_sealed_decision_verifies_until_altered_or_revoked(sealing: Sealing) -> None:
    async with sealing.service.channel("supervision-system") as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        number = await _accepted_case(sealing.service)
        receipt = await sealing.seal(number)
        again = await sealing.seal(number)
        decision = (await stub.GetDecision(pb.GetDecisionRequest(
            certificate_number=receipt.certificate_number))).decision
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
        foreign_content = json.loads(decision.document) | {
            "key_id": key_id(raw_public_key(foreign_key))}
        foreign_document = canonical_json(foreign_content)
        foreign = await verdict(foreign_document, foreign_key.sign(foreign_document))
        case = (await stub.GetCase(pb.GetCaseRequest(case_number=number))).case

        certificate = receipt.certificate_number
        with pytest.raises(grpc.aio.AioRpcError) as by_other_department:
            await _revoke(sealing.service, OTHER_LEADER, certificate, "许可证记载事项错误")
        with pytest.raises(grpc.aio.AioRpcError) as by_clerk:
            await _revoke(sealing.service, CLERK, certificate, "许可证记载事项错误")
        with pytest.raises(grpc.aio.AioRpcError) as without_reason:
            await _revoke(sealing.service, LEADER, certificate, "")
        still_valid = await verdict(decision.document, decision.signature)
        revoked = await _revoke(sealing.service, LEADER, certificate, "许可证记载事项错误")
        with pytest.raises(grpc.aio.AioRpcError) as twice:
            await _revoke(sealing.service, OPERATOR, certificate, "再次撤销")
        after = await verdict(decision.document, decision.signature)
        read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.GetDecision(pb.GetDecisionRequest(certificate_number="SY-2026-999999"))
        audit = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification

    assert receipt == again
    assert receipt.certificate_number == f"SY-{china_date(datetime.now(UTC)).year}-000001"
    content = json.loads(decision.document)
    assert decision.document == canonical_json(content)
    assert set(content) == {
        "certificate_number", "case_number", "item_code", "item_version", "item_name",
        "department_code", "decision", "decided_at", "applicant_name", "legal_basis",
        "opinion", "reviewer_id", "signer_id", "sealed_by", "key_id", "issued_at"}
    assert content["applicant_name"] == "张三丰" and content["decided_at"] == "2026-03-05T02:00:00Z"
    assert content["key_id"] == receipt.key_id == decision.key_id
    assert [k.key_id for k in keys] == [receipt.key_id] and keys[0].active
    assert key_id(keys[0].public_key) == keys[0].key_id and keys[0].algorithm == "Ed25519"
    assert case.certificate_number == receipt.certificate_number
    assert valid.result == pb.VERIFICATION_RESULT_VALID
    assert valid.certificate_number == receipt.certificate_number and valid.case_number == number
    assert tampered.result == pb.VERIFICATION_RESULT_TAMPERED
    assert tampered_signature.result == pb.VERIFICATION_RESULT_TAMPERED
    assert foreign.result == pb.VERIFICATION_RESULT_UNKNOWN_KEY
    assert by_other_department.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "belongs to ZJJ, not to SCJGJ" in (by_other_department.value.details() or "")
    assert by_clerk.value.code() == grpc.StatusCode.PERMISSION_DENIED
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
    async with sealing.service.channel() as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        number = await _accepted_case(sealing.service)
        receipt = await sealing.seal(number)
        decision = (await stub.GetDecision(pb.GetDecisionRequest(
            certificate_number=receipt.certificate_number))).decision
        forged = canonical_json(json.loads(decision.document)
                                | {"certificate_number": "SY-2026-777777"})
        response = await stub.VerifyDecision(pb.VerifyDecisionRequest(
            document=forged, signature=key.sign(forged)))
    assert response.result == pb.VERIFICATION_RESULT_UNKNOWN_CERTIFICATE


async def test_the_register_is_anonymised_and_read_with_a_cursor(sealing: Sealing) -> None:
    async with sealing.service.channel() as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        numbers = [await _accepted_case(sealing.service, name)
                   for name in ("张三丰", "李四", "王五")]
        receipts = [await sealing.seal(numbers[0]), await sealing.seal(numbers[1], "refused")]
        await _revoke(sealing.service, OPERATOR, receipts[0].certificate_number, "依法撤销")
        receipts.append(await sealing.seal(numbers[2]))
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


async def test_a_decision_verifies_offline_with_only_the_public_key(
        sealing: Sealing, tmp_path: Path) -> None:
    async with sealing.service.channel() as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        receipt = await sealing.seal(await _accepted_case(sealing.service))
        decision = (await stub.GetDecision(pb.GetDecisionRequest(
            certificate_number=receipt.certificate_number))).decision
        key = (await stub.GetSealKeys(pb.GetSealKeysRequest())).keys[0]
    # Nothing but three files and the script from here on: no database, no server.
    offline = tmp_path / "offline"
    offline.mkdir()
    (offline / "decision.json").write_bytes(decision.document)
    (offline / "decision.sig").write_bytes(decision.signature)
    (offline / "seal.pem").write_text(key.public_key_pem)
    (offline / "tampered.json").write_bytes(decision.document.replace(b"approved", b"refused"))
    script = ROOT / "tools" / "verify_decision.py"

    def run(document: str) -> subprocess.CompletedProcess[str]:
        # -I: no environment variables, no current directory on the path.
        return subprocess.run([sys.executable, "-I", str(script), document, "decision.sig",
                               "seal.pem"], cwd=offline, capture_output=True, text=True,
                              timeout=60, check=False)

    valid = run("decision.json")
    tampered = run("tampered.json")
    assert valid.returncode == 0, valid.stderr
    assert valid.stdout.startswith("VALID:") and receipt.certificate_number in valid.stdout
    assert tampered.returncode == 1
    assert tampered.stdout.startswith("TAMPERED")


def test_the_offline_verifier_needs_only_the_standard_library_and_cryptography() -> None:
    import ast

    tree = ast.parse((ROOT / "tools" / "verify_decision.py").read_text(encoding="utf-8"))
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module or "" for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom)}
    roots = {m.split(".")[0] for m in modules}
    assert roots - set(sys.stdlib_module_names) == {"cryptography"}
