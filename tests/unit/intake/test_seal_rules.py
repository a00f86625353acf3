"""The seal as pure rules: canonical JSON (formats 1 and 2), key ids, verdicts; the key files;
what Temporal is told of a case; how the gateway turns update failures into kernel errors."""

from __future__ import annotations

import hashlib
import json
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from kernel import errors
from kernel.signing import service_signer
from kernel.workflow_gateway import WorkflowGateway
from services.intake.app.chain import search_attributes, summary
from services.intake.domain.cases import Applicant
from services.intake.domain.decisions import (
    ChainDocument,
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
from workflows.approval_contract import (
    StatementFacts,
    StatementKind,
    as_statement,
    statement_body,
)


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


def test_a_format_2_document_is_rfc_8785_json_and_sealed_over_those_bytes() -> None:
    key = Ed25519PrivateKey.generate()
    raw = raw_public_key(key)
    fields = asdict(_document(key_id(raw)))
    chain_document = ChainDocument(
        **fields, verification_code="ABCDEFGH23",
        chain=[{"body": {"kind": "acceptance", "n": 2.0}, "signer": "intake", "key_id": "k",
                "signature": "s"}],
        texts={"review": {"opinion": "符合条件", "legal_basis": "第十条"}})
    document = chain_document.canonical()
    content = json.loads(document)
    assert content["format"] == "govhall-decision/2"
    assert rfc8785.dumps(content) == document
    # RFC 8785, not format 1's sort_keys: numbers are written the ECMAScript way.
    assert b'"n":2}' in document
    assert canonical_json({"format": "govhall-decision/2", **asdict(chain_document)}) \
        != document
    assert check_signature(document, key.sign(document), {key_id(raw): raw}).signed_by


def test_what_temporal_is_told_of_a_case_holds_no_personal_data(tmp_path: Path) -> None:
    signer = service_signer(tmp_path, "intake")
    acceptance = as_statement(signer.sign(statement_body(
        kind=StatementKind.ACCEPTANCE, case_number="AP-20260302-000001",
        official_id="SCJGJ-001", department_code="SCJGJ", roles=["window_clerk"],
        system="hall-window-system", issued_at=datetime(2026, 3, 2, 2, 0, tzinfo=UTC),
        item_code="012101000007001", item_version=1, item_name="食品经营许可（新办）",
        accepted_on="2026-03-02", promised_limit_days=10, legal_limit_days=20)))
    facts = StatementFacts.read(acceptance.body)
    assert summary(facts) == "Approval 012101000007001 食品经营许可（新办） — SCJGJ"
    values = {pair.key.name: pair.value for pair in search_attributes(facts)}
    assert values == {"CaseNumber": "AP-20260302-000001", "ItemCode": "012101000007001",
                      "Department": "SCJGJ", "Stage": "review", "SlaState": "on_time",
                      "CaseKind": "approval"}
    assert set(acceptance.body) <= {
        "kind", "case_number", "official_id", "department_code", "roles", "system",
        "issued_at", "request_id", "item_code", "item_version", "item_name", "accepted_on",
        "promised_limit_days", "legal_limit_days", "special_procedures"}


class _Handle:
    def __init__(self, failure: BaseException) -> None:
        self._failure = failure

    async def execute_update(self, *_: object, **__: object) -> None:
        raise self._failure


class _Client:
    """Stands in for a Temporal client whose every update fails with ``failure``."""

    def __init__(self, failure: BaseException) -> None:
        self._failure = failure

    def get_workflow_handle(self, workflow_id: str) -> _Handle:
        return _Handle(self._failure)


def _gateway(failure: BaseException) -> WorkflowGateway:
    async def connect() -> Client:
        return cast(Client, _Client(failure))

    return WorkflowGateway(connect)


async def _update(gateway: WorkflowGateway) -> None:
    await gateway.update("approval/AP-20260302-000001", "withdraw", None,
                         update_id="withdraw/AP-20260302-000001", result_type=dict)


@pytest.mark.parametrize(("kind", "error"), [
    ("FailedPrecondition", errors.FailedPrecondition),
    ("PermissionDenied", errors.PermissionDenied),
    ("InvalidArgument", errors.InvalidArgument),
    ("NotFound", errors.NotFound),
    ("AlreadyExists", errors.AlreadyExists),
])
async def test_a_refused_update_becomes_the_kernel_error_of_its_name(
        kind: str, error: type[errors.GovhallError]) -> None:
    # Also when an activity inside the update refused: the refusal is a cause further down.
    refusal = ApplicationError("case X is finished", type=kind, non_retryable=True)
    inside_an_activity = ActivityError("activity failed", scheduled_event_id=1,
                                       started_event_id=2, identity="w", activity_type="a",
                                       activity_id="1", retry_state=None)
    inside_an_activity.__cause__ = refusal
    for failure in (refusal, inside_an_activity):
        with pytest.raises(error) as mapped:
            await _update(_gateway(WorkflowUpdateFailedError(failure)))
        assert type(mapped.value) is error
        assert mapped.value.message == "case X is finished"


async def test_other_update_failures_are_a_clear_refusal_and_outages_unavailable() -> None:
    with pytest.raises(errors.FailedPrecondition) as unexpected:
        await _update(_gateway(WorkflowUpdateFailedError(RuntimeError("boom"))))
    with pytest.raises(errors.Unavailable) as outage:
        await _update(_gateway(RPCError("no", RPCStatusCode.UNAVAILABLE, b"")))

    async def unreachable() -> Client:
        raise RuntimeError("Failed client connect: connection refused")

    with pytest.raises(errors.Unavailable) as down:
        await _update(WorkflowGateway(unreachable, call_timeout=timedelta(seconds=1)))
    assert "did not take the change" in unexpected.value.message
    assert "try again" in outage.value.message and "try again" in down.value.message
