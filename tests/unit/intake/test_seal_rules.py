"""The seal as pure rules: canonical JSON, key ids, verdicts; the key files; update refusals."""

from __future__ import annotations

import hashlib
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from kernel import errors
from services.intake.chain import search_attributes, summary, update_refusal
from services.intake.domain.cases import Applicant
from services.intake.domain.decisions import (
    DecisionDocument,
    Verdict,
    canonical_json,
    certificate_number,
    check_signature,
    iso_utc,
    key_id,
    verdict_without_record,
)
from services.intake.keystore import (
    applicant_cipher,
    applicant_key_path,
    raw_public_key,
    seal_key,
    seal_key_path,
)
from workflows.approval_contract import ApprovalInput


def _document(signing: str) -> DecisionDocument:
    return DecisionDocument(
        certificate_number="SY-2026-000001", case_number="AP-20260302-000001",
        item_code="012101000007001", item_version=1, item_name="食品经营许可（新办）",
        department_code="SCJGJ", decision="approved", decided_at="2026-03-05T02:00:00Z",
        applicant_name="张三丰", legal_basis="《食品经营许可管理办法》", opinion="符合条件",
        reviewer_id="SCJGJ-003", signer_id="SCJGJ-006", sealed_by="ZWFWZX-001",
        key_id=signing, issued_at="2026-03-05T03:00:00Z")


def test_canonical_json_sorts_keys_without_spaces_and_keeps_chinese() -> None:
    assert canonical_json({"b": "申请", "a": 1}) == '{"a":1,"b":"申请"}'.encode()


def test_key_ids_certificate_numbers_and_times() -> None:
    raw = bytes(range(32))
    assert key_id(raw) == hashlib.sha256(raw).hexdigest()[:16]
    assert certificate_number(2026, 42) == "SY-2026-000042"
    assert iso_utc(datetime(2026, 3, 5, 10, 0, 1, 999, tzinfo=UTC)) == "2026-03-05T10:00:01Z"


def test_a_document_verifies_with_its_key_and_not_once_altered() -> None:
    key = Ed25519PrivateKey.generate()
    raw = raw_public_key(key)
    keys = {key_id(raw): raw}
    content = _document(key_id(raw)).canonical()
    signature = key.sign(content)
    assert check_signature(content, signature, keys).signed_by == key_id(raw)
    flipped = bytearray(content)
    flipped[content.index(b"approved")] ^= 0x01
    altered = check_signature(bytes(flipped), signature, keys)
    assert not altered.signed_by
    assert verdict_without_record(altered, keys) == Verdict.TAMPERED
    # A flip inside a Chinese character leaves no readable JSON: still tampered.
    broken = bytearray(content)
    broken[content.index("张".encode())] ^= 0x40
    unreadable = check_signature(bytes(broken), signature, keys)
    assert verdict_without_record(unreadable, keys) == Verdict.TAMPERED
    bad_signature = bytearray(signature)
    bad_signature[0] ^= 0x01
    assert not check_signature(content, bytes(bad_signature), keys).signed_by


def test_a_document_naming_a_foreign_key_is_unknown() -> None:
    ours = raw_public_key(Ed25519PrivateKey.generate())
    foreign = Ed25519PrivateKey.generate()
    content = _document(key_id(raw_public_key(foreign))).canonical()
    check = check_signature(content, foreign.sign(content), {key_id(ours): ours})
    assert verdict_without_record(check, {key_id(ours): ours}) == Verdict.UNKNOWN_KEY


def test_the_seal_key_is_made_once_private_and_shared_by_racing_starters(
        tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: raw_public_key(seal_key(tmp_path)), range(8)))
    assert len(set(keys)) == 1
    assert stat.S_IMODE(seal_key_path(tmp_path).stat().st_mode) == 0o600
    assert raw_public_key(seal_key(tmp_path)) == keys[0]
    assert sorted(p.name for p in seal_key_path(tmp_path).parent.iterdir()) == ["seal.key"]


def test_applicant_data_is_encrypted_and_comes_back(tmp_path: Path) -> None:
    applicant = Applicant("person", "张三丰", "110101199003077777", "13800000000")
    token = applicant_cipher(tmp_path).seal(applicant)
    assert "张三丰" not in token and "110101199003077777" not in token
    assert applicant_cipher(tmp_path).open(token) == applicant
    assert stat.S_IMODE(applicant_key_path(tmp_path).stat().st_mode) == 0o600
    other = tmp_path / "other"
    with pytest.raises(ValueError, match="cannot be decrypted"):
        applicant_cipher(other).open(token)


@pytest.mark.parametrize(("kind", "error"), [
    ("FailedPrecondition", errors.FailedPrecondition),
    ("PermissionDenied", errors.PermissionDenied),
    ("InvalidArgument", errors.InvalidArgument),
    ("NotFound", errors.NotFound),
])
def test_a_refused_update_becomes_the_kernel_error_of_its_name(
        kind: str, error: type[errors.GovhallError]) -> None:
    refused = WorkflowUpdateFailedError(ApplicationError("case X is finished", type=kind))
    mapped = update_refusal("AP-20260302-000001", refused)
    assert type(mapped) is error
    assert mapped.message == "case X is finished"


def test_an_unexpected_update_failure_is_still_a_clear_refusal() -> None:
    mapped = update_refusal("AP-20260302-000001",
                            WorkflowUpdateFailedError(RuntimeError("boom")))
    assert isinstance(mapped, errors.FailedPrecondition)


def test_what_temporal_is_told_of_a_case_holds_no_personal_data() -> None:
    case = ApprovalInput(
        case_number="AP-20260302-000001", item_code="012101000007001", item_version=1,
        item_name="食品经营许可（新办）", department_code="SCJGJ", accepted_on="2026-03-02",
        accepted_at=datetime(2026, 3, 2, 2, 0, tzinfo=UTC), clerk_id="SCJGJ-001",
        promised_limit_days=10, legal_limit_days=20)
    assert summary(case) == "Approval 012101000007001 食品经营许可（新办） — SCJGJ"
    values = {pair.key.name: pair.value for pair in search_attributes(case)}
    assert values == {"CaseNumber": "AP-20260302-000001", "ItemCode": "012101000007001",
                      "Department": "SCJGJ", "Stage": "review", "SlaState": "on_time",
                      "CaseKind": "approval"}
