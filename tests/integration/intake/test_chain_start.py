"""Accepted cases and their ApprovalWorkflow, on the Temporal dev server.

Each test gives the service a clock on a day of its own, so case numbers
(and so workflow ids) never repeat within the dev server's run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from sqlalchemy import Engine
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from govhall.intake.v1 import intake_pb2 as pb
from govhall.intake.v1 import intake_pb2_grpc
from kernel.db import make_engine
from kernel.service import ServiceDefinition
from kernel.settings import ServiceSettings
from kernel.temporal import (
    CASE_KIND,
    CASE_NUMBER,
    DEPARTMENT,
    ITEM_CODE,
    SLA_STATE,
    STAGE,
    WORKFLOW_TASK_QUEUE,
)
from services.intake.api.servicer import IntakeServicer
from services.intake.main import DEFINITION
from tests.support import (
    ServiceUnderTest,
    as_official,
    fresh_database_url,
    service_under_test,
)
from workflows import approval_contract as c
from workflows.approval import ApprovalWorkflow

if TYPE_CHECKING:
    from govhall.intake.v1.intake_pb2_grpc import IntakeServiceAsyncStub

ITEM = "012101000007001"
CLERK = "SCJGJ-001"
APPLICANT = pb.Applicant(kind=pb.APPLICANT_KIND_PERSON, name="张三丰",
                         id_number="110101199003077777", phone="13800000000")
_DAYS = itertools.count()


def _definition_on_a_day_of_its_own() -> ServiceDefinition:
    """The intake service, its clock set to a day no other test of this run uses."""
    day = datetime(2011, 1, 3, 2, 0, tzinfo=UTC) + timedelta(days=next(_DAYS))

    def register(server: grpc.aio.Server, engine: Engine, settings: ServiceSettings) -> None:
        servicer = IntakeServicer(engine, settings, clock=lambda: day)
        intake_pb2_grpc.add_IntakeServiceServicer_to_server(servicer, server)
        servicer.resume_unstarted_chains()

    return replace(DEFINITION, register=register)


def _target(environment: WorkflowEnvironment) -> str:
    return str(environment.client.service_client.config.target_host)


def _request(*missing: str, key: str = "") -> pb.SubmitApplicationRequest:
    return pb.SubmitApplicationRequest(
        idempotency_key=key or str(uuid.uuid4()), item_code=ITEM, applicant=APPLICANT,
        materials=[pb.SubmittedMaterial(code=f"M0{i}", provided=f"M0{i}" not in missing)
                   for i in range(1, 7)],
        finding=pb.FINDING_NONE)


async def _submit(stub: IntakeServiceAsyncStub,
                  request: pb.SubmitApplicationRequest) -> pb.SubmitApplicationResponse:
    response: pb.SubmitApplicationResponse = await stub.SubmitApplication(
        request, metadata=as_official(CLERK))
    return response


async def _eventually(check: Callable[[], Awaitable[bool]], *, seconds: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def _terminated_at_the_end(client: Client) -> AsyncIterator[list[str]]:
    """Workflow ids the test started; each still running is terminated at the end."""
    ids: list[str] = []
    try:
        yield ids
    finally:
        for workflow_id in ids:
            with contextlib.suppress(Exception):
                await client.get_workflow_handle(workflow_id).terminate("test finished")


async def _workflow_input(handle: WorkflowHandle[Any, Any], client: Client) -> str:
    """The start event's input as the server stores it, decrypted (JSON, not base64)."""
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    codec = client.data_converter.payload_codec
    assert codec is not None
    return "".join(p.data.decode("utf-8") for p in await codec.decode(started.input.payloads))


async def test_an_accepted_case_starts_its_workflow_once(
        backend: str, tmp_path: Path, pki_dir: Path,
        temporal_dev_server: WorkflowEnvironment) -> None:
    client = temporal_dev_server.client
    url = fresh_database_url(backend, "intake", tmp_path)
    async with _terminated_at_the_end(client) as started, service_under_test(
            _definition_on_a_day_of_its_own(), database_url=url, pki_dir=pki_dir,
            temporal_address=_target(temporal_dev_server)) as intake, \
            intake.channel("hall-window-system") as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        request = _request()
        response = await _submit(stub, request)
        number = response.case.case_number
        started.append(c.workflow_id(number))
        retried = await _submit(stub, request)
        waiting = await _submit(stub, _request("M01"))
        handle = client.get_workflow_handle(c.workflow_id(number))
        description = await handle.describe()
        runs = [w async for w in client.list_workflows(f"WorkflowId = '{c.workflow_id(number)}'")]
        workflow_input = await _workflow_input(handle, client)
        read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
    assert response.case.workflow_started and retried.replayed
    assert retried.case.case_number == number
    assert description.id == f"approval/{number}"
    assert description.workflow_type == c.WORKFLOW_NAME
    assert description.task_queue == WORKFLOW_TASK_QUEUE
    assert description.status == WorkflowExecutionStatus.RUNNING
    attributes = description.typed_search_attributes
    assert attributes.get(CASE_NUMBER) == number
    assert attributes.get(ITEM_CODE) == ITEM
    assert attributes.get(DEPARTMENT) == "SCJGJ"
    assert attributes.get(STAGE) == "review"
    assert attributes.get(SLA_STATE) == "on_time"
    assert attributes.get(CASE_KIND) == "approval"
    assert await description.static_summary() == f"Approval {ITEM} 食品经营许可（新办） — SCJGJ"
    assert len(runs) == 1
    assert number in workflow_input and "SCJGJ-001" in workflow_input
    assert '"accepted_on":"2011-' in workflow_input.replace(" ", "")
    for personal in (APPLICANT.name, APPLICANT.id_number, APPLICANT.phone):
        assert personal not in workflow_input
    assert not waiting.case.workflow_started
    assert "workflow.started" in [e.kind for e in read.timeline]


class Gate:
    """A TCP forwarder to the Temporal server that the test opens and closes."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self.open = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        for task in (asyncio.create_task(pipe(reader, upstream_writer)),
                     asyncio.create_task(pipe(upstream_reader, writer))):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


async def test_a_start_lost_after_acceptance_is_made_by_the_retry(
        backend: str, tmp_path: Path, pki_dir: Path,
        temporal_dev_server: WorkflowEnvironment) -> None:
    client = temporal_dev_server.client
    url = fresh_database_url(backend, "intake", tmp_path)
    gate = Gate(_target(temporal_dev_server))
    async with gate as address, _terminated_at_the_end(client) as started, \
            service_under_test(_definition_on_a_day_of_its_own(), database_url=url,
                               pki_dir=pki_dir, temporal_address=address) as intake, \
            intake.channel("hall-window-system") as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        request = _request()
        lost = await _submit(stub, request)
        number = lost.case.case_number
        started.append(c.workflow_id(number))
        handle = client.get_workflow_handle(c.workflow_id(number))
        with pytest.raises(RPCError) as never_started:
            await handle.describe()
        gate.open = True
        retried = await _submit(stub, request)
        description = await handle.describe()
    assert never_started.value.status == RPCStatusCode.NOT_FOUND
    assert lost.outcome == pb.INTAKE_OUTCOME_ACCEPTED and not lost.case.workflow_started
    assert retried.replayed and retried.case.workflow_started
    assert description.status == WorkflowExecutionStatus.RUNNING


async def test_the_service_starts_on_start_up_the_workflows_it_never_started(
        backend: str, tmp_path: Path, pki_dir: Path,
        temporal_dev_server: WorkflowEnvironment) -> None:
    client = temporal_dev_server.client
    url = fresh_database_url(backend, "intake", tmp_path)
    definition = _definition_on_a_day_of_its_own()
    async with _terminated_at_the_end(client) as started:
        async with service_under_test(definition, database_url=url, pki_dir=pki_dir,
                                      temporal_address="127.0.0.1:1") as down, \
                down.channel("hall-window-system") as channel:
            stub = intake_pb2_grpc.IntakeServiceStub(channel)
            numbers = [(await _submit(stub, _request())).case.case_number for _ in range(2)]
            started.extend(c.workflow_id(n) for n in numbers)
        async with service_under_test(definition, database_url=url, pki_dir=pki_dir,
                                      temporal_address=_target(temporal_dev_server)) as up, \
                up.channel() as channel:
            stub = intake_pb2_grpc.IntakeServiceStub(channel)

            async def all_started() -> bool:
                for number in numbers:
                    read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
                    if not read.case.workflow_started:
                        return False
                return True

            await _eventually(all_started)
            descriptions = [await client.get_workflow_handle(c.workflow_id(n)).describe()
                            for n in numbers]
    assert [d.status for d in descriptions] == [WorkflowExecutionStatus.RUNNING] * 2


# ---- the whole chain, with the review service's activities faked ----------------------------

def _review_fakes() -> list[Callable[..., Any]]:
    @activity.defn(name=c.CASE_DEADLINES)
    async def case_deadlines(request: c.CaseDeadlinesInput) -> c.Deadlines:
        now = datetime.now(UTC)
        return c.Deadlines(now + timedelta(days=10), now + timedelta(days=14),
                           now + timedelta(days=28), unknown_year=2027)

    @activity.defn(name=c.OPEN_TASK)
    async def open_task(task: c.TaskOpening) -> None:
        return None

    @activity.defn(name=c.CLOSE_TASK)
    async def close_task(task: c.TaskClosing) -> None:
        return None

    @activity.defn(name=c.RECORD_DECISION)
    async def record_decision(record: c.DecisionRecord) -> None:
        return None

    @activity.defn(name=c.OPEN_ESCALATION)
    async def open_escalation(escalation: c.EscalationOpening) -> None:
        return None

    return [case_deadlines, open_task, close_task, record_decision, open_escalation]


@contextlib.asynccontextmanager
async def _chain(backend: str, tmp_path: Path, pki_dir: Path,
                 environment: WorkflowEnvironment) -> AsyncIterator[ServiceUnderTest]:
    """The intake service and its activities, the real workflow, the review service faked."""
    client = environment.client
    url = fresh_database_url(backend, "intake", tmp_path)
    definition = _definition_on_a_day_of_its_own()
    async with service_under_test(definition, database_url=url, pki_dir=pki_dir,
                                  temporal_address=_target(environment)) as intake:
        # The service's own activities, as kernel.service.start would run them
        # (tests.support starts services with the activity worker switched off).
        engine = make_engine(url)
        try:
            async with Worker(client, task_queue=WORKFLOW_TASK_QUEUE,
                              workflows=[ApprovalWorkflow]), \
                    Worker(client, task_queue=c.REVIEW_QUEUE, activities=_review_fakes()), \
                    Worker(client, task_queue=intake.settings.task_queue,
                           activities=list(definition.activities(engine, intake.settings))):
                yield intake
        finally:
            engine.dispose()


def _actor(official: str, department: str, role: str) -> c.Actor:
    system = "center-seal-system" if role == "seal_custodian" else "department-system-scjgj"
    return c.Actor(official_id=official, department_code=department, roles=[role],
                   system=system)


async def test_the_chain_ends_in_a_sealed_decision_on_the_case(
        backend: str, tmp_path: Path, pki_dir: Path,
        temporal_dev_server: WorkflowEnvironment) -> None:
    client = temporal_dev_server.client
    async with _terminated_at_the_end(client) as started, \
            _chain(backend, tmp_path, pki_dir, temporal_dev_server) as intake, \
            intake.channel("hall-window-system") as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        number = (await _submit(stub, _request())).case.case_number
        started.append(c.workflow_id(number))
        handle = client.get_workflow_handle(c.workflow_id(number), result_type=c.ApprovalResult)
        for stage, actor, outcome in (
                ("review", _actor("SCJGJ-003", "SCJGJ", "reviewer"), "approve"),
                ("sign", _actor("SCJGJ-006", "SCJGJ", "leader"), "approve"),
                ("seal", _actor("ZWFWZX-001", c.CENTER_DEPARTMENT, "seal_custodian"), "seal")):
            receipt = await handle.execute_update(
                c.DECIDE, c.Decision(actor=actor, stage=stage, outcome=outcome,
                                     opinion="符合条件", legal_basis="《食品经营许可管理办法》"),
                result_type=c.DecisionReceipt)
        result = await handle.result()
        read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
        decision = (await stub.GetDecision(pb.GetDecisionRequest(
            certificate_number=read.case.certificate_number))).decision
        verdict = await stub.VerifyDecision(pb.VerifyDecisionRequest(
            document=decision.document, signature=decision.signature))
        register = await stub.ListRegister(pb.ListRegisterRequest())
    assert receipt.certificate_number == result.certificate_number == read.case.certificate_number
    assert result.outcome == "approved"
    assert read.case.status == pb.CASE_STATUS_APPROVED
    assert read.case.calendar_gap_year == 2027
    assert read.case.HasField("deadlines") and read.case.sla_state == pb.SLA_STATE_ON_TIME
    kinds = [e.kind for e in read.timeline]
    assert kinds[:3] == ["application.submitted", "application.accepted", "workflow.started"]
    for kind in ("deadlines.computed", "chain.started", "review.decided", "sign.decided",
                 "seal.decided", "applicant.notified"):
        assert kinds.count(kind) == 1, kind
    sealed = next(e for e in read.timeline if e.kind == "seal.decided")
    assert sealed.official_id == "ZWFWZX-001" and sealed.status == pb.CASE_STATUS_APPROVED
    assert verdict.result == pb.VERIFICATION_RESULT_VALID
    assert [e.certificate_number for e in register.entries] == [result.certificate_number]


async def test_an_accepted_case_is_withdrawn_through_its_workflow(
        backend: str, tmp_path: Path, pki_dir: Path,
        temporal_dev_server: WorkflowEnvironment) -> None:
    client = temporal_dev_server.client
    async with _terminated_at_the_end(client) as started, \
            _chain(backend, tmp_path, pki_dir, temporal_dev_server) as intake, \
            intake.channel("hall-window-system") as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        number = (await _submit(stub, _request())).case.case_number
        killed = (await _submit(stub, _request())).case.case_number
        started.extend(c.workflow_id(n) for n in (number, killed))
        request = pb.WithdrawApplicationRequest(case_number=number, reason="申请人撤回")
        withdrawn = await stub.WithdrawApplication(request, metadata=as_official(CLERK))
        result = await client.get_workflow_handle(c.workflow_id(number),
                                                  result_type=c.ApprovalResult).result()
        with pytest.raises(grpc.aio.AioRpcError) as twice:
            await stub.WithdrawApplication(request, metadata=as_official(CLERK))
        await client.get_workflow_handle(c.workflow_id(killed)).terminate("operator stopped it")
        with pytest.raises(grpc.aio.AioRpcError) as finished:
            await stub.WithdrawApplication(pb.WithdrawApplicationRequest(case_number=killed),
                                           metadata=as_official(CLERK))
        read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
    assert withdrawn.case.status == pb.CASE_STATUS_WITHDRAWN
    assert withdrawn.case.withdrawal_reason == "申请人撤回"
    assert result.outcome == "withdrawn"
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert finished.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "finished" in (finished.value.details() or "")
    assert read.timeline[-1].kind in {"withdrawn", "applicant.notified"}
    assert "withdrawn" in [e.kind for e in read.timeline]
