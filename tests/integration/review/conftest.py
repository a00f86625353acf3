"""The review service under test, alone or driving the real approval workflow.

``review`` is the service's gRPC server over a real database. ``chain`` is
the service as its process runs it (gRPC server and activity worker) beside
the real ApprovalWorkflowV2 on the time-skipping test server; the intake
side is a stand-in (its activities by name) that signs acceptances and
withdrawals with intake's key from the same ``pki_dir`` the review service
trusts, and seals only a chain whose statements review signed and whose
rules hold, as intake does. ``chain_on_dev_server`` is the same on the
shared dev server, for what needs visibility (listing running workflows).

Every chain has its own task-queue prefix (``t<uuid>-``), so tests sharing
a Temporal server never take each other's tasks.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.chinatime import china_date
from kernel.signing import BadSignature
from services.review.main import DEFINITION
from tests.support import ServiceUnderTest, fresh_database_url, service_under_test
from tests.unit.workflows.fakes import Signers
from workflows import approval_contract as c
from workflows.approval import ApprovalWorkflow
from workflows.approval_rules import RuleBroken, check_chain

ITEM_CODE = "012101000001000"


def temporal_address(environment: WorkflowEnvironment) -> str:
    return environment.client.service_client.config.target_host


def new_case_number(day: date | None = None) -> str:
    """A case number of the form the RPCs accept, unique enough for a shared server."""
    when = day or china_date(datetime.now(UTC))
    return f"AP-{when:%Y%m%d}-{uuid.uuid4().int % 1_000_000:06d}"


def sign_acceptance(signers: Signers, case_number: str, *, accepted_at: datetime,
                    clerk_id: str = "SCJGJ-001", department_code: str = "SCJGJ",
                    accepted_on: date | None = None, promised: int = 5, legal: int = 20,
                    procedures: list[str] | None = None) -> c.SignedStatement:
    """The window's acceptance as intake signs it."""
    return c.as_statement(signers.intake.sign(c.statement_body(
        kind=c.StatementKind.ACCEPTANCE, case_number=case_number, official_id=clerk_id,
        department_code=department_code, roles=["window_clerk"], system="hall-window-system",
        issued_at=accepted_at, item_code=ITEM_CODE, item_version=1, item_name="食品经营许可",
        accepted_on=(accepted_on or china_date(accepted_at)).isoformat(),
        promised_limit_days=promised, legal_limit_days=legal,
        special_procedures=["expert_review"] if procedures is None else procedures)))


@pytest.fixture
def signers(pki_dir: Path) -> Signers:
    """Intake's and review's keys in the run's PKI, trusted by the workflows' validators.

    Made before any review service starts, so the keys the service loads
    include intake's.
    """
    return Signers(pki_dir)


@pytest.fixture
async def review(backend: str, tmp_path: Path, pki_dir: Path, signers: Signers,
                 temporal_dev_server: WorkflowEnvironment) -> AsyncIterator[ServiceUnderTest]:
    """The review service; it signals running cases on the dev server, no worker of its own."""
    url = fresh_database_url(backend, "review", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=temporal_address(temporal_dev_server)
                                  ) as service:
        yield service


def _refusal(error: Exception) -> ApplicationError:
    status = error.status if isinstance(error, RuleBroken) else "PermissionDenied"
    return ApplicationError(str(error), type=status, non_retryable=True)


@dataclass
class IntakeStandIn:
    """Intake's side of the chain, by activity name, kept in memory.

    It signs each case's acceptance, and seals as intake does: only a chain
    of decisions review signed, checked whole by ``check_chain``.
    """

    signers: Signers
    acceptances: dict[str, c.SignedStatement] = field(default_factory=dict)
    seals: dict[str, c.SealRequest] = field(default_factory=dict)
    receipts: dict[str, c.SealReceipt] = field(default_factory=dict)
    withdrawals: list[c.WithdrawalRecord] = field(default_factory=list)
    notices: list[c.ApplicantNotice] = field(default_factory=list)
    #: When set, the seal is refused with this message (FailedPrecondition), as intake
    #: refuses one it cannot seal now: a refusal inside the workflow's seal handler.
    refuse_seal: str = ""

    def accept(self, case_number: str, **terms: Any) -> c.SignedStatement:
        self.acceptances[case_number] = sign_acceptance(self.signers, case_number, **terms)
        return self.acceptances[case_number]

    def seal_outcome(self, request: c.SealRequest) -> str:
        keys = self.signers.keys
        try:
            acceptance = c.verified_facts(keys, self.acceptances[request.case_number],
                                          c.StatementKind.ACCEPTANCE)
            chain = [c.verified_facts(keys, d.statement, c.StatementKind.DECISION)
                     for d in request.decisions]
            return check_chain(acceptance, chain)
        except (BadSignature, RuleBroken) as error:
            raise _refusal(error) from error

    def activities(self) -> list[Any]:
        stand_in = self

        @activity.defn(name=c.SEAL_DECISION)
        async def seal(request: c.SealRequest) -> c.SealReceipt:
            if request.case_number in stand_in.receipts:
                return stand_in.receipts[request.case_number]
            if stand_in.refuse_seal:
                raise ApplicationError(stand_in.refuse_seal, type="FailedPrecondition",
                                       non_retryable=True)
            outcome = stand_in.seal_outcome(request)
            stand_in.seals[request.case_number] = request
            number = f"SY-2026-{len(stand_in.receipts) + 1:06d}"
            digest = hashlib.sha256(f"{request.case_number}/{outcome}".encode()).hexdigest()
            receipt = c.SealReceipt(number, stand_in.signers.intake.key_id, digest, outcome,
                                    stand_in.signers.sealed(request.case_number, number,
                                                            outcome, digest))
            stand_in.receipts[request.case_number] = receipt
            return receipt

        @activity.defn(name=c.RECORD_WITHDRAWAL)
        async def record_withdrawal(record: c.WithdrawalRecord) -> None:
            try:
                c.verified_facts(stand_in.signers.keys, record.statement,
                                 c.StatementKind.WITHDRAWAL)
            except BadSignature as error:
                raise _refusal(error) from error
            stand_in.withdrawals.append(record)

        @activity.defn(name=c.NOTIFY_APPLICANT)
        async def notify_applicant(notice: c.ApplicantNotice) -> None:
            stand_in.notices.append(notice)

        return [seal, record_withdrawal, notify_applicant]


@dataclass
class Chain:
    """The review service with its activity worker, the real workflow, a stand-in intake."""

    review: ServiceUnderTest
    env: WorkflowEnvironment
    intake: IntakeStandIn
    prefix: str
    started: list[str] = field(default_factory=list)

    @property
    def client(self) -> Client:
        return self.env.client

    @property
    def engine(self) -> Engine:
        return self.review.running.engine

    @property
    def signers(self) -> Signers:
        return self.intake.signers

    async def start_case(self, *, clerk_id: str = "SCJGJ-001", department_code: str = "SCJGJ",
                         accepted_on: str = "", promised: int = 5, legal: int = 20,
                         procedures: list[str] | None = None,
                         ) -> WorkflowHandle[ApprovalWorkflow, c.ApprovalResult]:
        """Start the chain for a newly accepted case, as intake does after its commit."""
        accepted_at = await self.env.get_current_time()
        day = date.fromisoformat(accepted_on) if accepted_on else china_date(accepted_at)
        case_number = new_case_number(day)
        acceptance = self.intake.accept(
            case_number, accepted_at=accepted_at, clerk_id=clerk_id,
            department_code=department_code, accepted_on=day, promised=promised, legal=legal,
            procedures=procedures)
        handle = await self.client.start_workflow(
            ApprovalWorkflow.run, c.ApprovalInput(acceptance), id=c.workflow_id(case_number),
            task_queue=f"{self.prefix}workflows")
        self.started.append(case_number)
        return handle


@asynccontextmanager
async def running_chain(env: WorkflowEnvironment, *, backend: str, tmp_path: Path,
                        pki_dir: Path, signers: Signers) -> AsyncIterator[Chain]:
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    url = fresh_database_url(backend, "review", tmp_path)
    intake = IntakeStandIn(signers)
    async with (
        service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                           temporal_address=temporal_address(env), run_activity_worker=True,
                           task_queue_prefix=prefix) as review,
        Worker(env.client, task_queue=f"{prefix}workflows", workflows=[ApprovalWorkflow]),
        Worker(env.client, task_queue=f"{prefix}intake", activities=intake.activities()),
    ):
        running = Chain(review, env, intake, prefix)
        try:
            yield running
        finally:
            # Cases left running on a shared server would wait for workers long gone.
            for case_number in running.started:
                handle = env.client.get_workflow_handle(c.workflow_id(case_number))
                if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await handle.terminate("test over")


@pytest.fixture
async def chain(backend: str, tmp_path: Path, pki_dir: Path, signers: Signers,
                time_skipping: WorkflowEnvironment) -> AsyncIterator[Chain]:
    async with running_chain(time_skipping, backend=backend, tmp_path=tmp_path,
                             pki_dir=pki_dir, signers=signers) as running:
        yield running


@pytest.fixture
async def chain_on_dev_server(backend: str, tmp_path: Path, pki_dir: Path, signers: Signers,
                              temporal_dev_server: WorkflowEnvironment) -> AsyncIterator[Chain]:
    async with running_chain(temporal_dev_server, backend=backend, tmp_path=tmp_path,
                             pki_dir=pki_dir, signers=signers) as running:
        yield running
