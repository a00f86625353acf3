"""A case's workflow id is the case's: a squatter's run is replaced, the case's own run is kept.

Case numbers are sequential, so whoever reaches Temporal could start a workflow
under the next case's id (``approval/<case number>``) before intake did, and
intake's start (then ``USE_EXISTING``) took that run for the case's: the case
was orphaned, or the squatter's worker answered its decisions with receipts of
its choosing (attacks/t_squat.py, t_squat_receipt.py). Now a held id is read:
the case's own run is kept as it is (never a second one), anything else is
recorded, ended and replaced.

Intake runs as main.py wires it, on a clock of a day of its own (case numbers,
hence workflow ids, never meet other tests' on the shared dev server), with
the real ApprovalWorkflowV2 on the test's own queues and review's activities
faked (tests/unit/workflows/fakes.py). The attacker is a bare Temporal client:
no certificate, no payload keys, Temporal's default data converter.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from govhall.intake.v1 import intake_pb2 as pb
from govhall.intake.v1 import intake_pb2_grpc
from kernel.db import make_engine
from kernel.service import ServiceDefinition
from kernel.settings import ServiceSettings
from kernel.signing import service_signer
from kernel.temporal import connect_with
from kernel.workflow_gateway import WorkflowGateway
from services.intake.api.servicer import IntakeServicer
from services.intake.app import cases
from services.intake.app.chain import SQUATTED, ChainStarter
from services.intake.db import tables
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.keystore import applicant_cipher
from services.intake.main import DEFINITION
from tests.integration.intake.sealing import CLERK, application, closed_port
from tests.support import as_official, fresh_database_url, service_under_test
from tests.unit.workflows.fakes import REVIEWER, Center, Signers
from workflows import approval_contract as c
from workflows.approval import ApprovalWorkflow

_DAYS = itertools.count()
SECONDS = 30


def _a_day_of_its_own() -> datetime:
    """A day no other test of the run uses (tests/integration/intake/test_chain_start.py
    counts from 2011)."""
    return datetime(2013, 3, 4, 2, 0, tzinfo=UTC) + timedelta(days=next(_DAYS))


def _definition(day: datetime) -> ServiceDefinition:
    """Intake as main.py wires it, on a clock fixed at ``day``."""
    def register(server: grpc.aio.Server, engine: Engine, settings: ServiceSettings,
                 ) -> list[Coroutine[Any, Any, None]]:
        cipher = applicant_cipher(settings.pki_dir)
        gateway = WorkflowGateway(
            lambda: connect_with(settings),
            call_timeout=timedelta(seconds=settings.workflow_call_timeout_seconds))
        starter = ChainStarter(
            reading=lambda: IntakeUnitOfWork(engine, write=False, cipher=cipher),
            writing=lambda: IntakeUnitOfWork(engine, cipher=cipher),
            signer=service_signer(settings.pki_dir, "intake"), gateway=gateway,
            workflow_queue=settings.workflow_task_queue, poll_seconds=0.2)
        intake_pb2_grpc.add_IntakeServiceServicer_to_server(
            IntakeServicer(engine, settings, starter=starter, clock=lambda: day), server)
        return [starter.run()]

    return replace(DEFINITION, register=register)


def _number(day: datetime, sequence: int = 1) -> str:
    """The case number intake gives the ``sequence``-th case of ``day``."""
    return f"AP-{day:%Y%m%d}-{sequence:06d}"


async def _eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + SECONDS
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.1)


async def _runs(client: Client, workflow_id: str, at_least: int) -> list[str]:
    """The run ids under ``workflow_id``, once visibility lists ``at_least`` of them."""
    found: list[str] = []

    async def listed() -> bool:
        found[:] = [w.run_id async for w in client.list_workflows(
            f"WorkflowId = '{workflow_id}'")]
        return len(found) >= at_least

    await _eventually(listed, f"{at_least} runs of {workflow_id} listed")
    return found


def _violations(engine: Engine, case_number: str) -> list[dict[str, Any]]:
    log = tables.audit_log
    with engine.connect() as connection:
        rows = connection.execute(sa.select(log.c.action, log.c.details).where(
            log.c.action.like("violation.%"), log.c.subject == f"case/{case_number}")).all()
    return [{"action": row.action, **json.loads(row.details)} for row in rows]


def _target(environment: WorkflowEnvironment) -> str:
    return str(environment.client.service_client.config.target_host)


# ---- what the attacker runs ------------------------------------------------------------------

@workflow.defn(name=c.WORKFLOW_NAME, sandboxed=False)
class SquatterAnswering:
    """The squatter of t_squat_receipt.py: waits, and answers every decision with a receipt
    of its own making."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, argument: dict[str, Any]) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.update(name=c.DECIDE)
    async def decide(self, decision: dict[str, Any]) -> dict[str, Any]:
        return {"case_number": workflow.info().workflow_id.removeprefix("approval/"),
                "stage": "review", "outcome": "approve", "decided_at": "2026-12-01T00:00:00Z",
                "next_stage": "completed", "certificate_number": "SY-2026-999999"}


@workflow.defn(name=c.WORKFLOW_NAME, sandboxed=False)
class SquatterDone:
    """A squatter that is over before intake comes: its run is closed, the id still held."""

    @workflow.run
    async def run(self, argument: dict[str, Any]) -> None:
        return None


@dataclass(frozen=True)
class Squat:
    """How the attacker holds the id: with what, on which queue, and what intake sees."""

    workflow_type: str
    #: On intake's workflow queue (else on a queue of the attacker's).
    our_queue: bool
    argument: Any
    #: The attacker's workflow class run by its worker, if any.
    runs: type | None
    running: bool
    not_ours: str


SQUATS = {
    "answering decisions on its own queue": Squat(
        c.WORKFLOW_NAME, False, {"x": 1}, SquatterAnswering, True, "task_queue"),
    "completed on its own queue": Squat(
        c.WORKFLOW_NAME, False, {"x": 1}, SquatterDone, False, "task_queue"),
    "on intake's queue with an acceptance not intake's": Squat(
        c.WORKFLOW_NAME, True, {"acceptance": {"body": {"kind": "acceptance"},
                                               "signer": "intake", "key_id": "0" * 16,
                                               "signature": "AA=="}}, None, True, "input"),
    "on intake's queue with an input that is no acceptance": Squat(
        c.WORKFLOW_NAME, True, {"x": 1}, None, True, "input"),
    "of another type on intake's queue": Squat("Rogue", True, {"x": 1}, None, True,
                                               "workflow_type"),
}


@contextlib.asynccontextmanager
async def _attacker(environment: WorkflowEnvironment, queue: str,
                    runs: type | None) -> AsyncIterator[Client]:
    """A bare client (Temporal's default converter, no keys) and, if given, its worker."""
    client = await Client.connect(_target(environment), namespace=environment.client.namespace)
    if runs is None:
        yield client
        return
    async with Worker(client, task_queue=queue, workflows=[runs],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        yield client


@contextlib.asynccontextmanager
async def _chain(environment: WorkflowEnvironment, prefix: str,
                 center: Center) -> AsyncIterator[None]:
    """The real workflow on the test's queue, review's activities faked."""
    async with Worker(environment.client, task_queue=f"{prefix}workflows",
                      workflows=[ApprovalWorkflow]), \
            Worker(environment.client, task_queue=f"{prefix}review",
                   activities=center.of("review")):
        yield


@contextlib.asynccontextmanager
async def _cleaned(client: Client, workflow_id: str) -> AsyncIterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(workflow_id).terminate("test finished")


@pytest.mark.parametrize("squat", list(SQUATS))
async def test_a_squatter_holding_the_next_case_id_is_replaced_and_the_case_goes_on(
        squat: str, backend: str, tmp_path: Path, pki_dir: Path, signers: Signers,
        temporal_dev_server: WorkflowEnvironment) -> None:
    how = SQUATS[squat]
    client = temporal_dev_server.client
    day = _a_day_of_its_own()
    number = _number(day)
    identifier = c.workflow_id(number)
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    queue = f"{prefix}workflows" if how.our_queue else f"squat-{uuid.uuid4().hex[:8]}"
    center = Center()
    url = fresh_database_url(backend, "intake", tmp_path)
    async with _cleaned(client, identifier), \
            _attacker(temporal_dev_server, queue, how.runs) as attacker:
        squatter = await attacker.start_workflow(how.workflow_type, how.argument,
                                                 id=identifier, task_queue=queue)
        if how.runs is SquatterDone:
            await squatter.result()
        async with service_under_test(_definition(day), database_url=url, pki_dir=pki_dir,
                                      temporal_address=_target(temporal_dev_server),
                                      task_queue_prefix=prefix) as intake, \
                intake.channel("hall-window-system") as channel:
            stub = intake_pb2_grpc.IntakeServiceStub(channel)
            submitted = await stub.SubmitApplication(application(), metadata=as_official(CLERK))
            squatter_after = await client.get_workflow_handle(
                identifier, run_id=squatter.result_run_id).describe()
            current = await client.get_workflow_handle(identifier).describe()
            async with _chain(temporal_dev_server, prefix, center):
                # The case goes on: its own workflow opens it in review and takes the
                # reviewer's decision, which the squatter no longer answers.
                receipt = await client.get_workflow_handle(identifier).execute_update(
                    c.DECIDE, signers.decision(number, REVIEWER, c.Stage.REVIEW,
                                               c.Outcome.APPROVE),
                    result_type=c.DecisionReceipt)
            violations = _violations(intake.running.engine, number)
            read = await stub.GetCase(pb.GetCaseRequest(case_number=number),
                                      metadata=as_official(CLERK))
        runs = await _runs(client, identifier, at_least=2)
    assert submitted.case.case_number == number
    assert submitted.case.workflow_started
    assert submitted.case.status == pb.CASE_STATUS_UNDER_REVIEW
    assert violations == [{"action": SQUATTED, "workflow_id": identifier,
                           "run_id": squatter.result_run_id, "running": how.running,
                           "not_ours": how.not_ours}]
    assert squatter_after.status == (WorkflowExecutionStatus.TERMINATED if how.running
                                     else WorkflowExecutionStatus.COMPLETED)
    _assert_the_case_own(current, prefix)
    assert current.run_id != squatter.result_run_id
    assert set(runs) == {squatter.result_run_id, current.run_id}
    assert [opened.acceptance.body["case_number"] for opened in center.opened] == [number]
    assert receipt.stage == c.Stage.REVIEW and receipt.next_stage == c.Stage.SIGN
    assert not receipt.certificate_number
    assert read.case.workflow_started
    assert [e.kind for e in read.timeline].count("workflow.started") == 1


def _assert_the_case_own(run: WorkflowExecutionDescription, prefix: str) -> None:
    assert run.workflow_type == c.WORKFLOW_NAME
    assert run.task_queue == f"{prefix}workflows"
    assert run.status == WorkflowExecutionStatus.RUNNING


@pytest.mark.parametrize("closed", [False, True], ids=["running", "closed"])
async def test_the_case_own_run_started_before_a_crash_is_kept_not_started_again(
        closed: bool, backend: str, tmp_path: Path, pki_dir: Path,
        temporal_dev_server: WorkflowEnvironment) -> None:
    """Intake started the case's workflow and died before noting it; the run went on, or
    closed (here an operator terminated it). Back up, the outbox finds the run its own: it
    notes the case started, starts no second run and records no violation."""
    client = temporal_dev_server.client
    day = _a_day_of_its_own()
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    url = fresh_database_url(backend, "intake", tmp_path)
    definition = _definition(day)
    async with service_under_test(definition, database_url=url, pki_dir=pki_dir,
                                  temporal_address=closed_port(),
                                  task_queue_prefix=prefix) as down, \
            down.channel("hall-window-system") as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        pending = await stub.SubmitApplication(application(), metadata=as_official(CLERK))
    number = pending.case.case_number
    identifier = c.workflow_id(number)
    assert not pending.case.workflow_started
    # What intake started before it died: the acceptance it signs for the case, on its queue.
    engine = make_engine(url)
    try:
        case_input = cases.approval_input(
            uow=IntakeUnitOfWork(engine, write=False, cipher=applicant_cipher(pki_dir)),
            case_number=number, signer=service_signer(pki_dir, "intake"))
    finally:
        engine.dispose()
    async with _cleaned(client, identifier):
        own = await client.start_workflow(c.WORKFLOW_NAME, case_input, id=identifier,
                                          task_queue=f"{prefix}workflows")
        if closed:
            await own.terminate("an operator stopped it")
        async with service_under_test(definition, database_url=url, pki_dir=pki_dir,
                                      temporal_address=_target(temporal_dev_server),
                                      task_queue_prefix=prefix) as up, \
                up.channel("hall-window-system") as channel:
            stub = intake_pb2_grpc.IntakeServiceStub(channel)

            async def noted() -> bool:
                read = await stub.GetCase(pb.GetCaseRequest(case_number=number),
                                          metadata=as_official(CLERK))
                return bool(read.case.workflow_started)

            await _eventually(noted, f"{number} noted as started")
            violations = _violations(up.running.engine, number)
            current = await client.get_workflow_handle(identifier).describe()
        runs = await _runs(client, identifier, at_least=1)
    assert violations == []
    assert current.run_id == own.result_run_id
    assert runs == [own.result_run_id]
    assert current.status == (WorkflowExecutionStatus.TERMINATED if closed
                              else WorkflowExecutionStatus.RUNNING)
