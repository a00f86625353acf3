"""Tamper evidence that holds, over real gRPC, on SQLite and PostgreSQL.

Each service signs the head of its audit log in checkpoints published by
AuditCheckpointsService. An attacker holding a database can rewrite the
log and recompute every hash, cut its tail, rewrite the service's own
checkpoint table, or edit the rows that carry authority; what they cannot
do is sign as the service. These tests are that attacker: they tamper with
the database directly, then ask VerifyAuditLog (and tools/verify_audit.py)
with the checkpoints an outsider kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
import rfc8785
from alembic import command
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf.json_format import MessageToJson
from sqlalchemy import Engine, text

from govhall.common.v1 import audit_pb2, audit_pb2_grpc, common_pb2
from govhall.complaints.v1 import complaints_pb2, complaints_pb2_grpc
from govhall.intake.v1 import intake_pb2, intake_pb2_grpc
from govhall.review.v1 import review_pb2, review_pb2_grpc
from govhall.trading.v1 import trading_pb2, trading_pb2_grpc
from kernel.audittrail import AuditTrail, AuditTrailService
from kernel.checkpoints import sign_checkpoint
from kernel.commonpb import checkpoint_to_proto
from kernel.db import make_engine
from kernel.migrations import alembic_config
from kernel.service import ServiceDefinition
from kernel.signing import service_signer
from services.complaints.main import DEFINITION as COMPLAINTS
from services.intake.db.audit import AUDIT_TRAIL as INTAKE_TRAIL
from services.intake.main import DEFINITION as INTAKE
from services.review.app import chain as review_chain
from services.review.db.audit import AUDIT_TRAIL as REVIEW_TRAIL
from services.review.db.repository import ReviewUnitOfWork
from services.review.main import DEFINITION as REVIEW
from services.trading.main import DEFINITION as TRADING
from tests.audit_tampering import rewrite
from tests.integration.intake.sealing import Sealing, routed
from tests.integration.review.conftest import sign_acceptance
from tests.support import ServiceUnderTest, as_official, fresh_database_url, service_under_test
from tests.unit.workflows.fakes import REVIEWER, Signers
from workflows import approval_contract as c

ROOT = Path(__file__).resolve().parents[2]
ITEM = "012101000007001"
CLERK = "SCJGJ-001"
LEADER = "SCJGJ-006"
OPERATOR = "ZWFWZX-004"
DEFINITIONS = {"intake": INTAKE, "review": REVIEW, "trading": TRADING, "complaints": COMPLAINTS}
#: Checkpoints only when a test asks for one: the tests count them.
ON_DEMAND = {"audit_checkpoint_every_entries": 0, "audit_checkpoint_interval_seconds": 0}


@dataclass
class Running:
    name: str
    service: ServiceUnderTest
    engine: Engine

    async def publish(self) -> audit_pb2.AuditCheckpoint:
        async with self.service.channel("operator") as channel:
            response = await audit_pb2_grpc.AuditCheckpointsServiceStub(
                channel).PublishAuditCheckpoint(audit_pb2.PublishAuditCheckpointRequest(),
                                                metadata=as_official(OPERATOR))
        checkpoint: audit_pb2.AuditCheckpoint = response.checkpoint
        return checkpoint

    async def checkpoints(self, cursor: int = 0) -> audit_pb2.ListAuditCheckpointsResponse:
        async with self.service.channel("supervision-system") as channel:
            response: audit_pb2.ListAuditCheckpointsResponse = \
                await audit_pb2_grpc.AuditCheckpointsServiceStub(channel).ListAuditCheckpoints(
                    audit_pb2.ListAuditCheckpointsRequest(cursor=cursor))
        return response

    async def verify(self, kept: Sequence[audit_pb2.AuditCheckpoint] = (),
                     ) -> common_pb2.AuditLogVerification:
        """The service's VerifyAuditLog, given the checkpoints an outsider kept."""
        async with self.service.channel("supervision-system") as channel:
            stubs: dict[str, Any] = {
                "intake": (intake_pb2_grpc.IntakeServiceStub, intake_pb2),
                "review": (review_pb2_grpc.ReviewServiceStub, review_pb2),
                "trading": (trading_pb2_grpc.TradingServiceStub, trading_pb2),
                "complaints": (complaints_pb2_grpc.ComplaintsServiceStub, complaints_pb2)}
            stub, messages = stubs[self.name]
            response = await stub(channel).VerifyAuditLog(
                messages.VerifyAuditLogRequest(checkpoints=list(kept)))
        verification: common_pb2.AuditLogVerification = response.verification
        return verification

    async def export(self) -> list[audit_pb2.ExportAuditLogResponse]:
        """Every page of the audit log, as an outsider would fetch it."""
        pages: list[audit_pb2.ExportAuditLogResponse] = []
        after = 0
        async with self.service.channel("supervision-system") as channel:
            stub = audit_pb2_grpc.AuditCheckpointsServiceStub(channel)
            while True:
                page = await stub.ExportAuditLog(audit_pb2.ExportAuditLogRequest(
                    after_sequence=after, page_size=7))
                if not page.entries:
                    return pages
                pages.append(page)
                after = page.next_after_sequence

    def execute(self, statement: str, **values: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(text(statement), values)

    def scalar(self, statement: str, **values: Any) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(text(statement), values).scalar()

    def rewrite(self, *, sequence: int, details: str | None) -> None:
        with self.engine.begin() as connection:
            rewrite(connection, sequence=sequence, details=details)

    def head(self) -> int:
        return int(self.scalar("SELECT max(sequence) FROM audit_log") or 0)


@asynccontextmanager
async def running(name: str, backend: str, tmp_path: Path, pki_dir: Path,
                  **settings: Any) -> AsyncIterator[Running]:
    url = fresh_database_url(backend, name, tmp_path)
    async with service_under_test(DEFINITIONS[name], database_url=url, pki_dir=pki_dir,
                                  temporal_address="127.0.0.1:1",
                                  **(ON_DEMAND | settings)) as service:
        engine = make_engine(url)
        try:
            yield Running(name, service, engine)
        finally:
            engine.dispose()


@pytest.fixture
async def intake(backend: str, tmp_path: Path, pki_dir: Path) -> AsyncIterator[Running]:
    async with running("intake", backend, tmp_path, pki_dir) as service:
        yield service


async def _accepted_case(intake: Running) -> str:
    async with intake.service.channel("hall-window-system") as channel:
        response = await intake_pb2_grpc.IntakeServiceStub(channel).SubmitApplication(
            intake_pb2.SubmitApplicationRequest(
                idempotency_key=str(uuid.uuid4()), item_code=ITEM,
                applicant=intake_pb2.Applicant(kind=intake_pb2.APPLICANT_KIND_PERSON,
                                               name="张三丰", id_number="110101199003077777",
                                               phone="13800000000"),
                materials=[intake_pb2.SubmittedMaterial(code=f"M0{i}", provided=True)
                           for i in range(1, 7)],
                finding=intake_pb2.FINDING_NONE), metadata=as_official(CLERK))
    assert response.outcome == intake_pb2.INTAKE_OUTCOME_ACCEPTED
    return str(response.case.case_number)


async def _sealed_case(intake: Running) -> str:
    """A case accepted and sealed as the approval workflow seals it (from a chain review
    signed, by the ``intake.seal`` activity); its certificate number."""
    sealing = Sealing(intake.service, intake.engine, Signers(intake.service.pki_dir))
    async with routed(intake.service) as stub:
        _, receipt = await sealing.sealed_case(stub)
    return str(receipt.certificate_number)


def _forged(genuine: audit_pb2.AuditCheckpoint, **claims: Any) -> audit_pb2.AuditCheckpoint:
    """``genuine`` claiming something else, signed with a key that is not the service's."""
    body = rfc8785.dumps(json.loads(genuine.body) | claims)
    forged = audit_pb2.AuditCheckpoint()
    forged.CopyFrom(genuine)
    forged.body = body
    forged.signature = Ed25519PrivateKey.generate().sign(body)
    forged.ClearField("head_hash")
    forged.ClearField("sequence")
    return forged


# ---- checkpoints: signed, listed, published on their own ---------------------------------


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
async def test_a_checkpoint_is_signed_listed_and_verifies_with_the_published_key(
        name: str, backend: str, tmp_path: Path, pki_dir: Path) -> None:
    async with running(name, backend, tmp_path, pki_dir) as service:
        head = service.head()
        head_hash = service.scalar("SELECT entry_hash FROM audit_log WHERE sequence = :s",
                                   s=head)
        published = await service.publish()
        listed = await service.checkpoints()
        after = await service.checkpoints(cursor=published.number)
        async with service.service.channel("supervision-system") as channel:
            keys = await audit_pb2_grpc.AuditCheckpointsServiceStub(
                channel).ListAuditSigningKeys(audit_pb2.ListAuditSigningKeysRequest())
        verification = await service.verify([published])

    assert (published.number, published.service) == (1, name)
    assert (published.sequence, published.head_hash) == (head, head_hash)
    assert list(listed.checkpoints) == [published]
    assert listed.next_cursor == 1
    assert (list(after.checkpoints), after.next_cursor) == ([], 1)
    [key] = keys.keys
    assert keys.service == name and key.current
    public = serialization.load_pem_public_key(key.public_key_pem.encode())
    assert isinstance(public, Ed25519PublicKey)
    public.verify(published.signature, published.body)  # raises if it does not hold
    assert key.key_id == published.key_id == hashlib.sha256(key.public_key).hexdigest()[:16]
    assert json.loads(published.body)["head_hash"] == head_hash
    assert verification.intact
    assert verification.checkpoints_checked == 1
    assert verification.checkpointed_sequence == head


async def test_only_an_operator_publishes_a_checkpoint_on_demand(intake: Running) -> None:
    # The window's system may not call the RPC at all (the registry of calling systems);
    # through the operator's console, an official who is not an operator is refused by the
    # use case itself, and a call naming no official is unauthenticated.
    async with intake.service.channel("hall-window-system") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as by_window:
            await audit_pb2_grpc.AuditCheckpointsServiceStub(channel).PublishAuditCheckpoint(
                audit_pb2.PublishAuditCheckpointRequest(), metadata=as_official(CLERK))
    async with intake.service.channel("operator") as channel:
        stub = audit_pb2_grpc.AuditCheckpointsServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as by_trading_officer:
            await stub.PublishAuditCheckpoint(audit_pb2.PublishAuditCheckpointRequest(),
                                              metadata=as_official("ZWFWZX-007"))
        with pytest.raises(grpc.aio.AioRpcError) as by_nobody:
            await stub.PublishAuditCheckpoint(audit_pb2.PublishAuditCheckpointRequest())
    assert by_window.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may not call" in (by_window.value.details() or "")
    assert by_trading_officer.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "operator" in (by_trading_officer.value.details() or "")
    assert by_nobody.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert intake.scalar("SELECT count(*) FROM audit_checkpoints") == 0


@pytest.mark.parametrize("rule", [
    {"audit_checkpoint_every_entries": 1},
    {"audit_checkpoint_interval_seconds": 0.05},
])
async def test_the_service_publishes_checkpoints_on_its_own(
        rule: dict[str, Any], backend: str, tmp_path: Path, pki_dir: Path) -> None:
    async with running("intake", backend, tmp_path, pki_dir,
                       audit_checkpoint_poll_seconds=0.05, **rule) as intake:
        await _accepted_case(intake)
        head = intake.head()
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            listed = list((await intake.checkpoints()).checkpoints)
            if listed and listed[-1].sequence == head:
                break
            assert asyncio.get_running_loop().time() < deadline, f"no checkpoint of {head}"
            await asyncio.sleep(0.05)
        published_by = intake.scalar(
            "SELECT published_by FROM audit_checkpoints WHERE number = :n", n=listed[-1].number)
        verification = await intake.verify()
    assert published_by == ("entries" if "audit_checkpoint_every_entries" in rule else "timer")
    assert verification.intact and verification.checkpointed_sequence == head


# ---- rewrites, cuts and forgeries of the log ----------------------------------------------


async def test_a_rewrite_with_every_later_hash_recomputed_is_seen_only_through_checkpoints(
        intake: Running) -> None:
    await _accepted_case(intake)
    early = await intake.publish()
    await _accepted_case(intake)
    late = await intake.publish()
    kept = [early, late]
    head_before = (await intake.verify()).head_hash
    target = early.sequence + 1  # the first entry of the second case
    intake.rewrite(sequence=target, details='{"forged": true}')

    seen_by_own_feed = await intake.verify()
    # An insider rewrites the service's copy of the feed too.
    intake.execute("DELETE FROM audit_checkpoints")
    chain_alone = await intake.verify()
    with_kept = await intake.verify(kept)

    assert not seen_by_own_feed.intact
    assert seen_by_own_feed.first_broken_sequence == late.sequence
    # Every link holds: the chain alone calls the rewritten log intact.
    assert chain_alone.intact
    assert chain_alone.head_hash != head_before
    assert intake.scalar("SELECT details FROM audit_log WHERE sequence = :s",
                         s=target) == '{"forged": true}'
    # The signed head of the later checkpoint is gone; the earlier one still holds.
    assert not with_kept.intact
    assert with_kept.first_broken_sequence == late.sequence
    assert with_kept.suspect_from_sequence == early.sequence + 1
    assert with_kept.checkpoints_checked == 2
    assert f"checkpoint #{late.number}" in with_kept.reason


async def test_a_cut_tail_is_seen_through_a_kept_checkpoint(intake: Running) -> None:
    await _accepted_case(intake)
    early = await intake.publish()
    await _accepted_case(intake)
    late = await intake.publish()
    intake.execute("DELETE FROM audit_log WHERE sequence > :s", s=early.sequence)
    intake.execute("DELETE FROM audit_checkpoints WHERE number > :n", n=early.number)
    chain_and_own_feed = await intake.verify()
    with_kept = await intake.verify([early, late])
    assert chain_and_own_feed.intact
    assert not with_kept.intact
    assert with_kept.first_broken_sequence == early.sequence + 1
    assert "cut off" in with_kept.reason
    assert with_kept.checkpointed_sequence == late.sequence


async def test_a_forged_checkpoint_is_refused_and_vouches_for_nothing(intake: Running) -> None:
    await _accepted_case(intake)
    genuine = await intake.publish()
    # Claims the log once held other entries (a later, longer head): if believed it
    # would make the genuine log look cut and rewritten.
    forged = _forged(genuine, sequence=genuine.sequence + 50, head_hash="e" * 64)
    other_service = checkpoint_to_proto(sign_checkpoint(
        service_signer(intake.service.pki_dir, "review"), number=1, sequence=genuine.sequence,
        head_hash=genuine.head_hash, at=datetime.now(UTC)))
    result = await intake.verify([genuine, forged, other_service])
    # The same forgery written into the service's own table.
    intake.execute(
        "INSERT INTO audit_checkpoints (number, sequence, head_hash, signed_at, key_id, body, "
        "signature, published_by) VALUES (:n, :s, :h, :t, :k, :b, :sig, 'timer')",
        n=genuine.number + 1, s=genuine.sequence + 50, h="e" * 64,
        t="2026-03-05T02:00:00.000000Z", k=forged.key_id, b=forged.body.decode(),
        sig="AAAA")
    stored = await intake.verify()

    assert not result.intact
    assert result.first_broken_sequence == 0  # the chain itself is sound
    assert result.checkpoints_checked == 1
    assert result.checkpointed_sequence == genuine.sequence
    assert [r.reason for r in result.refused_checkpoints] == [
        "it is not signed by intake's key: the signature of intake does not hold",
        "it is a checkpoint of 'review', not of 'intake'"]
    assert "was refused" in result.reason
    assert not stored.intact and stored.first_broken_sequence == 0
    assert [r.number for r in stored.refused_checkpoints] == [genuine.number + 1]


# ---- rows that carry authority ------------------------------------------------------------


async def test_a_revocation_flipped_in_the_database_is_reported(intake: Running) -> None:
    certificate = await _sealed_case(intake)
    sealing = int(intake.scalar(
        "SELECT audit_sequence FROM sealed_decisions WHERE certificate_number = :c",
        c=certificate))
    clean = await intake.verify()
    intake.execute("UPDATE sealed_decisions SET revoked = true, revoked_by = 'SCJGJ-006' "
                   "WHERE certificate_number = :c", c=certificate)
    flipped = await intake.verify()

    assert clean.intact and clean.authority_rows_checked == 1
    assert not flipped.intact
    assert flipped.first_broken_sequence == 0  # the log is sound; the row is not
    [mismatch] = flipped.mismatched_rows
    assert (mismatch.table, mismatch.key, mismatch.audit_sequence) == (
        "sealed_decisions", certificate, sealing)
    assert mismatch.problem == common_pb2.AUTHORITY_ROW_PROBLEM_FIELDS_CHANGED
    assert flipped.reason == mismatch.reason


async def test_a_revocation_undone_or_a_sealed_decision_deleted_in_the_database_is_reported(
        intake: Running) -> None:
    certificate = await _sealed_case(intake)
    sealing = int(intake.scalar(
        "SELECT audit_sequence FROM sealed_decisions WHERE certificate_number = :c",
        c=certificate))
    async with intake.service.channel("department-system-scjgj") as channel:
        await intake_pb2_grpc.IntakeServiceStub(channel).RevokeDecision(
            intake_pb2.RevokeDecisionRequest(certificate_number=certificate,
                                             reason="许可证记载事项错误"),
            metadata=as_official(LEADER))
    revocation = int(intake.scalar(
        "SELECT audit_sequence FROM sealed_decisions WHERE certificate_number = :c",
        c=certificate))
    revoked = await intake.verify()
    intake.execute("UPDATE sealed_decisions SET revoked = false, revocation_reason = NULL, "
                   "revoked_at = NULL, revoked_by = NULL, audit_sequence = :s "
                   "WHERE certificate_number = :c", s=sealing, c=certificate)
    undone = await intake.verify()
    intake.execute("DELETE FROM sealed_decisions WHERE certificate_number = :c", c=certificate)
    deleted = await intake.verify()

    assert revoked.intact and revocation > sealing
    assert [(m.problem, m.audit_sequence) for m in undone.mismatched_rows] == [
        (common_pb2.AUTHORITY_ROW_PROBLEM_SUPERSEDED_ENTRY, sealing)]
    assert [(m.problem, m.audit_sequence) for m in deleted.mismatched_rows] == [
        (common_pb2.AUTHORITY_ROW_PROBLEM_ROW_MISSING, revocation)]
    assert not undone.intact and not deleted.intact


def _recorded_review_decision(review: Running) -> bool:
    """A case opened in review and its review decision recorded, as the approval workflow's
    activities do it (``review.open_case``, then ``review.record_transition``)."""
    signers = Signers(review.service.pki_dir)
    case_number, now = "AP-20260305-000001", datetime(2026, 3, 5, 2, 0, tzinfo=UTC)

    def uow() -> ReviewUnitOfWork:
        return ReviewUnitOfWork(review.engine)

    acceptance = sign_acceptance(signers, case_number, accepted_at=now)
    deadlines = review_chain.open_case(
        uow=uow, keys=signers.keys, event_key="open", now=now,
        request=c.DeadlinesRequest(acceptance, stage=c.Stage.REVIEW, at=now))
    decision = signers.decision(case_number, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE,
                                opinion="符合条件", legal_basis="《食品经营许可管理办法》第十条")
    taken = c.DecisionTaken(c.Stage.REVIEW, c.Outcome.APPROVE, REVIEWER.official_id, "", "",
                            REVIEWER.system, now, decision.statement, decision.opinion,
                            decision.legal_basis)
    return review_chain.record_transition(
        uow=uow, keys=signers.keys, now=now, transition=c.Transition(
            case_number, taken, c.Stage.SIGN, next_department="SCJGJ", next_role="leader",
            next_due_at=deadlines.stage_due_at[c.Stage.SIGN], item_code=ITEM,
            sla_state=c.SlaState.ON_TIME))


async def test_a_decision_or_delegation_edited_in_the_review_database_is_reported(
        backend: str, tmp_path: Path, pki_dir: Path) -> None:
    async with running("review", backend, tmp_path, pki_dir) as review:
        recorded = _recorded_review_decision(review)
        decision_id = review.scalar("SELECT id FROM decisions")
        delegation_id = review.scalar("SELECT min(id) FROM delegations")
        clean = await review.verify()
        review.execute("UPDATE decisions SET outcome = 'refuse' WHERE id = :i", i=decision_id)
        outcome_edited = await review.verify()
        review.execute("UPDATE decisions SET outcome = 'approve' WHERE id = :i", i=decision_id)
        review.execute("UPDATE delegations SET deputy_id = 'SCJGJ-002' WHERE id = :i",
                       i=delegation_id)
        delegation_edited = await review.verify()

    assert recorded
    # One decision and the four sample delegations, loaded with the directory.
    assert clean.intact and clean.authority_rows_checked == 5
    assert [(m.table, m.key, m.problem) for m in outcome_edited.mismatched_rows] == [
        ("decisions", str(decision_id), common_pb2.AUTHORITY_ROW_PROBLEM_FIELDS_CHANGED)]
    assert not outcome_edited.intact
    assert [(m.table, m.key, m.problem) for m in delegation_edited.mismatched_rows] == [
        ("delegations", str(delegation_id), common_pb2.AUTHORITY_ROW_PROBLEM_FIELDS_CHANGED)]


@pytest.mark.parametrize(("name", "trail", "legacy_row"), [
    pytest.param(
        "intake", INTAKE_TRAIL,
        "INSERT INTO sealed_decisions (certificate_number, case_number, key_id, decision, "
        "document, signature, document_sha256, issued_at, revoked) VALUES ('SY-2026-000001', "
        "'AP-20260305-000001', 'k', 'approved', :blob, :blob, 'h', "
        "'2026-03-05T02:00:00+00:00', false)", id="intake"),
    pytest.param(
        "review", REVIEW_TRAIL,
        "INSERT INTO decisions (case_number, stage, outcome, official_id, system, decided_at, "
        "opinion, legal_basis, on_behalf_of, delegation_id, recorded_at) VALUES ("
        "'AP-20260305-000001', 'review', 'approve', 'SCJGJ-003', 's', '2026-03-05 02:00:00', "
        "'', '', '', '', '2026-03-05 02:00:00')", id="review"),
])
async def test_rows_written_before_the_cross_check_are_adopted_by_the_migration(
        name: str, trail: AuditTrail, legacy_row: str, backend: str, tmp_path: Path,
        pki_dir: Path) -> None:
    """Revision 0002 of both is the one before the column that names the audit entry."""
    definition: ServiceDefinition = DEFINITIONS[name]
    url = fresh_database_url(backend, name, tmp_path)
    config = alembic_config(migrations_dir=definition.migrations_dir, url=url)
    command.upgrade(config, "0002")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(legacy_row), {"blob": b"legacy"})
        command.upgrade(config, "head")
        audit = AuditTrailService(engine, trail, service=name, pki_dir=pki_dir)
        verification = audit.verify()
        with engine.connect() as connection:
            actions = list(connection.execute(text("SELECT action FROM audit_log")).scalars())
    finally:
        engine.dispose()
    assert verification.intact, verification.reason
    assert verification.authority_rows_checked == 1
    assert actions == ["authority_rows.adopted"]


# ---- the offline tool ---------------------------------------------------------------------


def _verify_offline(tmp_path: Path, pages: list[audit_pb2.ExportAuditLogResponse],
                    kept: Sequence[audit_pb2.AuditCheckpoint],
                    key_pem: str) -> subprocess.CompletedProcess[str]:
    folder = tmp_path / f"offline-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    (folder / "log.json").write_text("\n".join(MessageToJson(p) for p in pages))
    (folder / "checkpoints.json").write_text(MessageToJson(
        audit_pb2.ListAuditCheckpointsResponse(checkpoints=kept)))
    (folder / "intake.pub").write_text(key_pem)
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "verify_audit.py"), "--service", "intake",
         "--log", str(folder / "log.json"), "--checkpoints", str(folder / "checkpoints.json"),
         "--key", str(folder / "intake.pub")],
        capture_output=True, text=True, check=False, timeout=60)


async def test_the_offline_tool_checks_an_exported_log_against_kept_checkpoints(
        intake: Running, tmp_path: Path) -> None:
    await _accepted_case(intake)
    early = await intake.publish()
    await _accepted_case(intake)
    await _accepted_case(intake)
    late = await intake.publish()
    async with intake.service.channel("supervision-system") as channel:
        keys = await audit_pb2_grpc.AuditCheckpointsServiceStub(channel).ListAuditSigningKeys(
            audit_pb2.ListAuditSigningKeysRequest())
    pem = keys.keys[0].public_key_pem
    intact = _verify_offline(tmp_path, await intake.export(), [early, late], pem)
    forged = _verify_offline(tmp_path, await intake.export(),
                             [early, _forged(late, head_hash="e" * 64)], pem)
    intake.rewrite(sequence=early.sequence + 2, details='{"forged": true}')
    rewritten = _verify_offline(tmp_path, await intake.export(), [early, late], pem)
    intake.execute("DELETE FROM audit_log WHERE sequence > :s", s=early.sequence + 1)
    cut = _verify_offline(tmp_path, await intake.export(), [early, late], pem)

    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert f"INTACT: {late.sequence} entries" in intact.stdout
    assert forged.returncode == 2, forged.stdout + forged.stderr
    assert f"REFUSED: checkpoint #{late.number}" in forged.stdout
    assert rewritten.returncode == 1, rewritten.stdout + rewritten.stderr
    assert f"BROKEN at entry {late.sequence}" in rewritten.stdout
    assert f"rewritten somewhere in entries {early.sequence + 1} to {late.sequence}" \
        in rewritten.stdout
    assert cut.returncode == 1
    assert f"BROKEN at entry {early.sequence + 2}" in cut.stdout
    assert "cut off" in cut.stdout


# ---- bad input --------------------------------------------------------------------------


async def test_bad_requests_to_the_feed_are_refused_clearly(intake: Running) -> None:
    genuine = await intake.publish()
    out_of_range = audit_pb2.AuditCheckpoint()
    out_of_range.CopyFrom(genuine)
    out_of_range.signed_at.seconds = 2**62
    # Well-formed text, but signed by nobody: a checkpoint refused in the verdict.
    garbage = audit_pb2.AuditCheckpoint(number=7, body=b"\xff\x00", signature=b"\x01" * 64,
                                        key_id="no-such-key")
    async with intake.service.channel("supervision-system") as channel:
        stub = audit_pb2_grpc.AuditCheckpointsServiceStub(channel)
        refusals: dict[str, grpc.StatusCode] = {}
        calls: dict[str, Awaitable[Any]] = {
            "page": stub.ListAuditCheckpoints(audit_pb2.ListAuditCheckpointsRequest(
                page_size=100_000)),
            "cursor": stub.ListAuditCheckpoints(audit_pb2.ListAuditCheckpointsRequest(
                cursor=-1)),
            "export": stub.ExportAuditLog(audit_pb2.ExportAuditLogRequest(after_sequence=-5)),
            "time": intake_pb2_grpc.IntakeServiceStub(channel).VerifyAuditLog(
                intake_pb2.VerifyAuditLogRequest(checkpoints=[out_of_range])),
            "body": intake_pb2_grpc.IntakeServiceStub(channel).VerifyAuditLog(
                intake_pb2.VerifyAuditLogRequest(checkpoints=[audit_pb2.AuditCheckpoint(
                    body=b"x" * 5000)])),
            # Text no request may hold (kernel.wellformed), refused before any check.
            "control": intake_pb2_grpc.IntakeServiceStub(channel).VerifyAuditLog(
                intake_pb2.VerifyAuditLogRequest(checkpoints=[audit_pb2.AuditCheckpoint(
                    number=8, key_id="\x00")])),
        }
        for label, call in calls.items():
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            refusals[label] = refused.value.code()
    garbage_verdict = await intake.verify([garbage])
    assert set(refusals.values()) == {grpc.StatusCode.INVALID_ARGUMENT}, refusals
    assert [r.number for r in garbage_verdict.refused_checkpoints] == [7]
    assert intake.scalar("SELECT count(*) FROM audit_checkpoints") == 1


async def test_no_malformed_request_to_the_feed_is_an_internal_error(intake: Running) -> None:
    service = audit_pb2.DESCRIPTOR.services_by_name["AuditCheckpointsService"]
    outcomes: dict[str, grpc.StatusCode] = {}
    async with intake.service.channel("operator") as channel:
        for method in service.methods:
            call = channel.unary_unary(f"/{service.full_name}/{method.name}",
                                       request_serializer=None, response_deserializer=None)
            for label, payload in {"garbage": b"\xff\xfe\x00\x01garbage", "empty": b"",
                                   "extreme": b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\x7f"
                                              b"\x10\xff\xff\xff\xff\x07"}.items():
                try:
                    await call(payload, metadata=as_official(OPERATOR))
                    outcomes[f"{method.name}/{label}"] = grpc.StatusCode.OK
                except grpc.aio.AioRpcError as error:
                    outcomes[f"{method.name}/{label}"] = error.code()
    assert len(outcomes) == 12
    bad = {k: v for k, v in outcomes.items()
           if v in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)}
    assert bad == {}
    assert outcomes["ListAuditCheckpoints/garbage"] == grpc.StatusCode.INVALID_ARGUMENT
    assert outcomes["ExportAuditLog/extreme"] == grpc.StatusCode.INVALID_ARGUMENT
