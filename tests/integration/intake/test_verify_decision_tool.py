"""tools/verify_decision.py: a sealed decision checked offline, seal and chain.

A decision is sealed by the real ``intake.seal`` activity; from there on the
tool gets nothing but files: the document, its signature, the seal's public
key and the services' published public keys (``<dir>/<service>/*.pub``, no
private key beside them). The forgeries re-seal the document with the
center's key, as someone holding the seal could: the statements inside must
still give them away.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from govhall.intake.v1 import intake_pb2 as pb
from kernel.signing import public_keys_dir, service_signer
from services.intake.domain.decisions import DecisionDocument, canonical_document, key_id
from services.intake.keystore import raw_public_key, seal_key
from tests.integration.intake.sealing import LEGAL_BASIS, OPINION, Sealing, routed
from tests.support import as_official
from tests.unit.workflows.fakes import LEADER, Official
from workflows import approval_contract as c

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tools" / "verify_decision.py"


@dataclass
class Offline:
    """A folder holding only public material, and the decision as the center issued it."""

    folder: Path
    document: bytes
    signature: bytes
    pki_dir: Path

    def content(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.document)
        return loaded

    def resealed(self, content: dict[str, Any]) -> tuple[bytes, bytes]:
        """``content`` as a format 2 document, sealed with the center's own key."""
        document = canonical_document(content)
        return document, seal_key(self.pki_dir).sign(document)

    def run(self, document: bytes | None = None, signature: bytes | None = None, *,
            seal_keys: tuple[str, ...] = ("seal.pem",),
            service_keys: str | None = "keys") -> subprocess.CompletedProcess[str]:
        (self.folder / "decision.json").write_bytes(self.document if document is None
                                                    else document)
        (self.folder / "decision.sig").write_bytes(self.signature if signature is None
                                                   else signature)
        extra = ["--service-keys", service_keys] if service_keys else []
        # -I: no environment variables, no current directory on the path.
        return subprocess.run(
            [sys.executable, "-I", str(SCRIPT), "decision.json", "decision.sig", *seal_keys,
             *extra], cwd=self.folder, capture_output=True, text=True, timeout=60,
            check=False)


def verdicts(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Each check's verdict word, by check name."""
    found = {}
    for line in result.stdout.splitlines():
        check, _, rest = line.partition(": ")
        found[check] = rest.split(" — ")[0]
    return found


@pytest.fixture
async def offline(sealing: Sealing, tmp_path: Path, pki_dir: Path) -> Offline:
    async with routed(sealing.service) as stub:
        _, receipt = await sealing.sealed_case(stub)
        decision = (await stub.GetDecision(pb.GetDecisionRequest(
            certificate_number=receipt.certificate_number),
            metadata=as_official("ZWFWZX-004"))).decision
        key = (await stub.GetSealKeys(pb.GetSealKeysRequest())).keys[0]
    folder = tmp_path / "offline"
    folder.mkdir()
    (folder / "seal.pem").write_text(key.public_key_pem)
    for published in public_keys_dir(pki_dir).glob("*/*.pub"):
        target = folder / "keys" / published.parent.name / published.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(published, target)
    return Offline(folder, decision.document, decision.signature, pki_dir)


def test_a_sealed_chain_verifies_offline_check_by_check(offline: Offline) -> None:
    result = offline.run()
    assert result.returncode == 0, result.stdout + result.stderr
    found = verdicts(result)
    assert found.pop("VALID").startswith("certificate SY-")
    assert found == {
        "seal": "VALID", "canonical form": "VALID",
        "statement 1 (acceptance, signed by intake)": "VALID",
        "statement 2 (decision, signed by review)": "VALID",
        "statement 3 (decision, signed by review)": "VALID",
        "statement 4 (decision, signed by review)": "VALID",
        "texts of review": "VALID", "texts of sign": "VALID", "texts of seal": "VALID",
        "chain rules": "VALID", "document fields": "VALID"}
    assert "approved" in result.stdout
    assert not list(offline.folder.rglob("*.key"))


def test_without_the_services_keys_the_chain_is_not_taken_on_trust(offline: Offline) -> None:
    result = offline.run(service_keys=None)
    assert result.returncode == 1
    assert verdicts(result)["seal"] == "VALID"
    assert verdicts(result)["statements"] == "FAILED"


def test_the_seal_key_is_found_among_several_and_another_key_is_said_so(
        offline: Offline) -> None:
    other = service_signer(offline.folder.parent / "elsewhere", "seal")
    (offline.folder / "other.pem").write_text(other.public_pem())
    among = offline.run(seal_keys=("other.pem", "seal.pem"))
    only_other = offline.run(seal_keys=("other.pem",))
    missing = offline.run(seal_keys=("nowhere.pem",))
    assert among.returncode == 0, among.stdout
    assert only_other.returncode == 2 and "OTHER KEY" in only_other.stdout
    assert missing.returncode == 3 and "UNREADABLE" in missing.stderr


def test_an_altered_document_or_statement_fails_offline(offline: Offline) -> None:
    content = offline.content()
    altered_bytes = offline.run(offline.document.replace(b"approved", b"refused"))
    # A statement edited, the document re-sealed: the statement's signature gives it away.
    edited = json.loads(json.dumps(content))
    edited["chain"][2]["body"]["outcome"] = "refuse"
    edited_statement = offline.run(*offline.resealed(edited))
    # The opinion rewritten beside its statement.
    rewritten = json.loads(json.dumps(content))
    rewritten["texts"]["sign"]["opinion"] = "不予许可"
    rewritten_text = offline.run(*offline.resealed(rewritten))
    # The face of the document saying what the chain does not.
    face = content | {"decision": "refused", "signer_id": "SCJGJ-007"}
    other_face = offline.run(*offline.resealed(face))
    assert altered_bytes.returncode == 1
    assert verdicts(altered_bytes) == {"seal": "FAILED", "NOT VALID": "at least one check failed"}
    assert edited_statement.returncode == 1
    assert verdicts(edited_statement)["seal"] == "VALID"
    assert verdicts(edited_statement)["statement 3 (decision, signed by review)"] == "FAILED"
    assert verdicts(edited_statement)["chain rules"] == "NOT CHECKED"
    assert rewritten_text.returncode == 1
    assert verdicts(rewritten_text)["texts of sign"] == "FAILED"
    assert verdicts(rewritten_text)["texts of review"] == "VALID"
    assert other_face.returncode == 1
    assert verdicts(other_face)["chain rules"] == "VALID"
    assert verdicts(other_face)["document fields"] == "FAILED"
    assert "decision is 'refused'" in other_face.stdout and "SCJGJ-007" in other_face.stdout


def test_statements_re_signed_by_an_unknown_key_fail_offline(offline: Offline) -> None:
    impostor = {service: service_signer(offline.folder.parent / "impostor", service)
                for service in ("intake", "review")}
    content = offline.content()
    forged = dict(content)
    forged["chain"] = [c.statement_json(c.as_statement(impostor[s["signer"]].sign(s["body"])))
                       for s in content["chain"]]
    result = offline.run(*offline.resealed(forged))
    found = verdicts(result)
    assert result.returncode == 1
    assert found["seal"] == "VALID"
    assert [found[f"statement {n} ({kind}, signed by {signer})"] for n, kind, signer in (
        (1, "acceptance", "intake"), (2, "decision", "review"), (3, "decision", "review"),
        (4, "decision", "review"))] == ["FAILED"] * 4
    assert "has no published key" in result.stdout


def test_a_chain_against_the_rules_fails_offline_though_every_signature_holds(
        offline: Offline, sealing: Sealing) -> None:
    """Genuine review signatures, but the leader also reviewed: one person acted twice."""
    content = offline.content()
    number = content["case_number"]
    decisions = sealing.chain(number, _accepted_at(content))
    leader_as_reviewer = Official(LEADER.official_id, "SCJGJ", ("leader", "reviewer"))
    twice = sealing.signers.statement(
        c.StatementKind.DECISION, number, leader_as_reviewer, stage="review",
        outcome="approve", at=decisions[0].decided_at,
        content_sha256=c.content_digest(opinion=OPINION, legal_basis=LEGAL_BASIS))
    broken = content | {"chain": [content["chain"][0], c.statement_json(twice),
                                  *(c.statement_json(d.statement) for d in decisions[1:])],
                        "reviewer_id": LEADER.official_id}
    result = offline.run(*offline.resealed(broken))
    found = verdicts(result)
    assert result.returncode == 1
    assert found["statement 2 (decision, signed by review)"] == "VALID"
    assert found["chain rules"] == "FAILED" and "acts once" in result.stdout


def _accepted_at(content: dict[str, Any]) -> datetime:
    issued = c.StatementFacts.read(content["chain"][0]["body"]).issued_at
    return datetime.fromisoformat(issued.replace("Z", "+00:00"))


def test_a_format_1_document_is_checked_for_its_seal_only_and_says_so(
        offline: Offline) -> None:
    key = seal_key(offline.pki_dir)
    document = DecisionDocument(
        certificate_number="SY-2025-000007", case_number="AP-20250303-000001",
        item_code="012101000007001", item_version=1, item_name="食品经营许可（新办）",
        department_code="SCJGJ", decision="approved", decided_at="2025-03-05T02:00:00Z",
        applicant_name="张三丰", legal_basis=LEGAL_BASIS, opinion=OPINION,
        reviewer_id="SCJGJ-003", signer_id="SCJGJ-006", sealed_by="ZWFWZX-001",
        key_id=key_id(raw_public_key(key)), issued_at="2025-03-05T03:00:00Z").canonical()
    valid = offline.run(document, key.sign(document))
    tampered = offline.run(document.replace(b"approved", b"refused"), key.sign(document))
    assert valid.returncode == 0, valid.stdout
    assert verdicts(valid)["seal"] == "VALID"
    assert verdicts(valid)["statements"] == "NOT CHECKED"
    assert "format 1" in valid.stdout and "VALID (format 1: the seal only" in valid.stdout
    assert tampered.returncode == 1


def test_the_tool_needs_no_database_server_or_temporal() -> None:
    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('verify', {str(SCRIPT)!r})\n"
        "module = sys.modules['verify'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))\n")
    result = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True,
                            text=True, timeout=60, check=True)
    loaded = set(json.loads(result.stdout.replace("'", '"')))
    assert {"cryptography", "rfc8785", "kernel", "workflows"} <= loaded
    assert not loaded & {"sqlalchemy", "grpc", "temporalio", "services", "psycopg", "pydantic"}
