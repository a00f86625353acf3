"""Accepted cases and their approval workflow: the outbox, the whole chain, withdrawal.

The outbox tests count workflows, which needs visibility: they run on the
shared dev server, each service on a clock of a day of its own (case
numbers, hence workflow ids, never repeat within the run) and on task
queues of its own. The chain tests run the real ApprovalWorkflowV2 and
intake's real activities on a time-skipping server of their own, review's
activities faked (tests/unit/workflows/fakes.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from sqlalchemy import Engine, update
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from govhall.intake.v1 import intake_pb2 as pb
from govhall.intake.v1 import intake_pb2_grpc
from kernel.codec import ENCODING, KEY_ID
from kernel.db import make_engine
from kernel.service import ServiceDefinition, prepare
from kernel.settings import ServiceSettings
from kernel.signing import service_signer
from kernel.temporal import (
    CASE_KIND,
    CASE_NUMBER,
    DEPARTMENT,
    ITEM_CODE,
    SLA_STATE,
    STAGE,
    TemporalSecurity,
    connect,
    connect_with,
)
from kernel.workflow_gateway import WorkflowGateway
from services.intake.api.servicer import IntakeServicer
from services.intake.app import cases
from services.intake.app.chain import ChainStarter
from services.intake.db import tables
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.domain.cases import Applicant, Finding, Findings, SubmittedMaterial
from services.intake.keystore import applicant_cipher
from services.intake.main import DEFINITION
from services.intake.settings import IntakeSettings
from tests.integration.intake.sealing import CLERK, PERSON, application, closed_port
from tests.support import (
    ServiceUnderTest,
    as_official,
    fresh_database_url,
    register_system,
    sample_caller,
    service_under_test,
)
from tests.unit.workflows.fakes import LEADER, REVIEWER, SEALER, Center, Signers
from workflows import approval_contract as c
from workflows.approval import ApprovalWorkflow

if TYPE_CHECKING:
    from govhall.intake.v1.intake_pb2_grpc import IntakeServiceAsyncStub

ITEM = "012101000007001"
OPERATOR = "ZWFWZX-004"
_DAYS = itertools.count()


def _prefix() -> str:
    """Task queues of a test's own: ``t<uuid>-workflows``, ``-intake``, ``-review``."""
    return f"t{uuid.uuid4().hex[:10]}-"


def _a_day_of_its_own() -> datetime:
    """A day no other test of this run uses, so case numbers never repeat on the dev server."""
    return datetime(2011, 1, 3, 2, 0, tzinfo=UTC) + timedelta(days=next(_DAYS))


@dataclass
class Wiring:
    """The intake service as main.py wires it, on a fixed clock; its outbox, for the test."""

    day: datetime
    poll_seconds: float = 0.2
    starters: list[ChainStarter] = field(default_factory=list)

    def definition(self) -> ServiceDefinition:
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
                workflow_queue=settings.workflow_task_queue, poll_seconds=self.poll_seconds)
            self.starters.append(starter)
            intake_pb2_grpc.add_IntakeServiceServicer_to_server(
                IntakeServicer(engine, settings, starter=starter, clock=lambda: self.day),
                server)
            return [starter.run()]

        return replace(DEFINITION, register=register)


def _target(environment: WorkflowEnvironment) -> str:
    return str(environment.client.service_client.config.target_host)


def _request(*missing: str) -> pb.SubmitApplicationRequest:
    request = application()
    for material in request.materials:
        material.provided = material.code not in missing
    return request


async def _submit(stub: IntakeServiceAsyncStub,
                  request: pb.SubmitApplicationRequest) -> pb.SubmitApplicationResponse:
    response: pb.SubmitApplicationResponse = await stub.SubmitApplication(
        request, metadata=as_official(CLERK))
    return response


async def _eventually(check: Callable[[], Awaitable[bool]], what: str, *,
                      seconds: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def _terminated_at_the_end(client: Client) -> AsyncIterator[list[str]]:
    """Workflow ids the test started; each still running is terminated at the end."""
    ids: list[str] = []
    try:
        yield ids
    finally:
        for workflow_id in ids:
            with contextlib.suppress(RPCError):
                await client.get_workflow_handle(workflow_id).terminate("test finished")


async def _runs(client: Client, workflow_id: str) -> int:
    """How many executions of ``workflow_id`` there are, once visibility shows at least one."""
    found: list[str] = []

    async def listed() -> bool:
        found[:] = [w.run_id async for w in client.list_workflows(
            f"WorkflowId = '{workflow_id}'")]
        return bool(found)

    await _eventually(listed, f"{workflow_id} listed")
    return len(found)


async def _workflow_input(handle: WorkflowHandle[Any, Any], target: str,
                          security: TemporalSecurity) -> str:
    """The start event's input as the server stores it (encrypted: the codec would pass
    plaintext through), decrypted as govhall's own clients read it (JSON, not base64)."""
    history = await handle.fetch_history()
    stored = history.events[0].workflow_execution_started_event_attributes.input.payloads
    assert stored
    assert all(p.metadata["encoding"] == ENCODING and p.metadata[KEY_ID] for p in stored)
    codec = (await connect(target, security=security)).data_converter.payload_codec
    assert codec is not None
    return "".join(p.data.decode("utf-8") for p in await codec.decode(stored))


def _forget_the_start(intake: ServiceUnderTest, case_number: str) -> None:
    """The case as committed before its start was noted: accepted, no workflow started."""
    with intake.running.engine.begin() as connection:
        connection.execute(update(tables.cases).where(
            tables.cases.c.case_number == case_number).values(
            status="accepted", workflow_started=False))


# ---- the outbox -----------------------------------------------------------------------------

async def test_an_accepted_case_starts_its_workflow_once(
        backend: str, tmp_path: Path, pki_dir: Path, temporal_security: TemporalSecurity,
        temporal_dev_server: WorkflowEnvironment) -> None:
    client = temporal_dev_server.client
    url = fresh_database_url(backend, "intake", tmp_path)
    wiring = Wiring(_a_day_of_its_own())
    prefix = _prefix()
    async with _terminated_at_the_end(client) as started, service_under_test(
            wiring.definition(), database_url=url, pki_dir=pki_dir, task_queue_prefix=prefix,
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
        runs = await _runs(client, c.workflow_id(number))
        # The outbox finds nothing left to start, and a second start changes nothing.
        again = await wiring.starters[0].start_pending()
        description = await handle.describe()
        workflow_input = await _workflow_input(handle, _target(temporal_dev_server),
                                               temporal_security)
        read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
        runs_after = await _runs(client, c.workflow_id(number))
        # Intake lost its note that the case started (a crash before the commit), while the
        # run goes on and once it is over: each time the outbox finds the case's own run
        # under the id and starts no other (the id's conflict and reuse policies).
        _forget_the_start(intake, number)
        noted_running = await wiring.starters[0].start_pending()
        await handle.terminate("an operator stopped it")
        _forget_the_start(intake, number)
        noted_closed = await wiring.starters[0].start_pending()
        last = await handle.describe()
        runs_at_the_end = await _runs(client, c.workflow_id(number))
    assert response.case.workflow_started and retried.replayed
    assert response.case.status == pb.CASE_STATUS_UNDER_REVIEW
    assert retried.case.case_number == number
    assert runs == runs_after == 1 and again == 0
    assert (noted_running, noted_closed) == (1, 1)
    assert last.run_id == description.run_id and runs_at_the_end == 1
    assert last.status == WorkflowExecutionStatus.TERMINATED
    assert description.id == f"approval/{number}"
    assert description.workflow_type == c.WORKFLOW_NAME
    assert description.task_queue == f"{prefix}workflows"
    assert description.status == WorkflowExecutionStatus.RUNNING
    attributes = description.typed_search_attributes
    assert attributes.get(CASE_NUMBER) == number
    assert attributes.get(ITEM_CODE) == ITEM
    assert attributes.get(DEPARTMENT) == "SCJGJ"
    assert attributes.get(STAGE) == "review"
    assert attributes.get(SLA_STATE) == "on_time"
    assert attributes.get(CASE_KIND) == "approval"
    assert await description.static_summary() == f"Approval {ITEM} 食品经营许可（新办） — SCJGJ"
    # The input is intake's signed acceptance: codes and ids, no personal data.
    assert number in workflow_input and CLERK in workflow_input
    assert '"accepted_on":"2011-' in workflow_input.replace(" ", "")
    assert '"signer":"intake"' in workflow_input.replace(" ", "")
    for personal in (PERSON.name, PERSON.id_number, PERSON.phone):
        assert personal not in workflow_input
    assert not waiting.case.workflow_started
    assert [e.kind for e in read.timeline].count("workflow.started") == 1


async def test_a_case_committed_but_never_started_is_started_by_the_outbox(
        backend: str, tmp_path: Path, pki_dir: Path,
        temporal_dev_server: WorkflowEnvironment) -> None:
    client = temporal_dev_server.client
    url = fresh_database_url(backend, "intake", tmp_path)
    wiring = Wiring(_a_day_of_its_own())
    async with _terminated_at_the_end(client) as started, service_under_test(
            wiring.definition(), database_url=url, pki_dir=pki_dir, task_queue_prefix=_prefix(),
            temporal_address=_target(temporal_dev_server)) as intake, \
            intake.channel() as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        # A window process that committed the acceptance and died before it could start the
        # workflow: the case is in the database, nobody called start.
        engine = make_engine(url)
        try:
            committed = cases.submit_application(
                uow=IntakeUnitOfWork(engine, cipher=applicant_cipher(pki_dir)),
                caller=sample_caller("hall-window-system", CLERK),
                idempotency_key=str(uuid.uuid4()),
                item_code=ITEM, applicant=Applicant("person", "张三丰", PERSON.id_number, ""),
                materials=tuple(SubmittedMaterial(f"M0{i}", True) for i in range(1, 7)),
                findings=Findings(Finding.NONE), now=wiring.day)
        finally:
            engine.dispose()
        number = committed.view.case.number
        started.append(c.workflow_id(number))
        assert not committed.view.case.workflow_started

        async def started_by_the_outbox() -> bool:
            read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
            return bool(read.case.workflow_started)

        await _eventually(started_by_the_outbox, "the outbox started the workflow")
        runs = await _runs(client, c.workflow_id(number))
        description = await client.get_workflow_handle(c.workflow_id(number)).describe()
        read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
    assert runs == 1
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert read.case.status == pb.CASE_STATUS_UNDER_REVIEW


async def test_submit_answers_ok_with_the_start_pending_while_temporal_is_down(
        backend: str, tmp_path: Path, pki_dir: Path) -> None:
    url = fresh_database_url(backend, "intake", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=closed_port()) as intake, \
            intake.channel("hall-window-system") as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        # Any error here (INTERNAL, FAILED_PRECONDITION, UNAVAILABLE) fails the test.
        accepted = await _submit(stub, _request())
        waiting = await _submit(stub, _request("M03"))
        completed = await stub.SupplementMaterials(pb.SupplementMaterialsRequest(
            case_number=waiting.case.case_number, idempotency_key=str(uuid.uuid4()),
            materials=[pb.SubmittedMaterial(code="M03", provided=True)]),
            metadata=as_official(CLERK))
        with pytest.raises(grpc.aio.AioRpcError) as withdrawal:
            await stub.WithdrawApplication(pb.WithdrawApplicationRequest(
                case_number=accepted.case.case_number, reason="申请人撤回"),
                metadata=as_official(CLERK))
        read = await stub.GetCase(pb.GetCaseRequest(case_number=accepted.case.case_number))
    assert accepted.outcome == pb.INTAKE_OUTCOME_ACCEPTED
    assert accepted.case.status == pb.CASE_STATUS_ACCEPTED
    assert not accepted.case.workflow_started
    assert accepted.case.workflow_id == f"approval/{accepted.case.case_number}"
    assert completed.outcome == pb.INTAKE_OUTCOME_ACCEPTED
    assert not completed.case.workflow_started
    # A withdrawal needs the chain: it says so and changes nothing.
    assert withdrawal.value.code() == grpc.StatusCode.UNAVAILABLE
    assert read.case.status == pb.CASE_STATUS_ACCEPTED and not read.case.withdrawal_reason


class CountingGateway(WorkflowGateway):
    """The real gateway, counting the starts it is asked for."""

    starts = 0

    async def start(self, *args: Any, **kwargs: Any) -> bool:
        self.starts += 1
        return await super().start(*args, **kwargs)


@dataclass
class CountingStarter(ChainStarter):
    """The real outbox, noting when each round began (the event loop's clock)."""

    rounds: list[float] = field(default_factory=list)

    async def start_pending(self) -> int:
        self.rounds.append(asyncio.get_running_loop().time())
        return await super().start_pending()


async def test_the_outbox_asks_a_down_temporal_once_a_round_and_waits_between_rounds(
        backend: str, tmp_path: Path, pki_dir: Path) -> None:
    """Three cases pending, Temporal down: each round asks once (the first refusal ends it),
    and the next round comes only after the poll interval, never in a tight loop."""
    url = fresh_database_url(backend, "intake", tmp_path)
    settings = IntakeSettings(database_url=url, pki_dir=pki_dir)
    prepare(DEFINITION, settings)
    engine = make_engine(url)
    cipher = applicant_cipher(pki_dir)
    address = closed_port()
    security = TemporalSecurity.embedded(pki_dir)
    gateway = CountingGateway(lambda: connect(address, security=security),
                              call_timeout=timedelta(seconds=5))
    poll_seconds = 0.2
    starter = CountingStarter(
        reading=lambda: IntakeUnitOfWork(engine, write=False, cipher=cipher),
        writing=lambda: IntakeUnitOfWork(engine, cipher=cipher),
        signer=service_signer(pki_dir, "intake"), gateway=gateway,
        workflow_queue=f"{_prefix()}workflows", poll_seconds=poll_seconds)
    try:
        for _ in range(3):
            cases.submit_application(
                uow=IntakeUnitOfWork(engine, cipher=cipher),
                caller=sample_caller("hall-window-system", CLERK),
                idempotency_key=str(uuid.uuid4()), item_code=ITEM,
                applicant=Applicant("person", "张三丰", PERSON.id_number, ""),
                materials=tuple(SubmittedMaterial(f"M0{i}", True) for i in range(1, 7)),
                findings=Findings(Finding.NONE), now=datetime.now(UTC))
        loop = asyncio.create_task(starter.run())

        async def four_rounds() -> bool:
            return len(starter.rounds) > 3

        try:
            await _eventually(four_rounds, "four rounds of the outbox, three waits")
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        pending = cases.unstarted_cases(uow=IntakeUnitOfWork(engine, write=False,
                                                             cipher=cipher))
    finally:
        engine.dispose()
    rounds = starter.rounds
    assert len(pending) == 3
    # One ask a round: the round that was cut short by the cancel may not have asked yet.
    assert len(rounds) - 1 <= gateway.starts <= len(rounds)
    # asyncio.sleep never wakes early, so this lower bound holds however slow the machine.
    assert all(later - earlier >= poll_seconds
               for earlier, later in itertools.pairwise(rounds)), rounds


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


async def test_a_start_lost_while_temporal_was_away_is_made_once_it_answers(
        backend: str, tmp_path: Path, pki_dir: Path,
        temporal_dev_server: WorkflowEnvironment) -> None:
    client = temporal_dev_server.client
    url = fresh_database_url(backend, "intake", tmp_path)
    gate = Gate(_target(temporal_dev_server))
    async with gate as address, _terminated_at_the_end(client) as started, \
            service_under_test(Wiring(_a_day_of_its_own()).definition(), database_url=url,
                               pki_dir=pki_dir, temporal_address=address,
                               task_queue_prefix=_prefix()) as intake, \
            intake.channel("hall-window-system") as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        request = _request()
        lost = await _submit(stub, request)
        number = lost.case.case_number
        started.append(c.workflow_id(number))
        handle = client.get_workflow_handle(c.workflow_id(number))
        with pytest.raises(RPCError) as unknown:
            await handle.describe()
        gate.open = True
        retried = await _submit(stub, request)
        runs = await _runs(client, c.workflow_id(number))
        description = await handle.describe()
    assert unknown.value.status == RPCStatusCode.NOT_FOUND
    assert lost.outcome == pb.INTAKE_OUTCOME_ACCEPTED and not lost.case.workflow_started
    assert retried.replayed and retried.case.workflow_started
    assert runs == 1
    assert description.status == WorkflowExecutionStatus.RUNNING


async def test_the_service_starts_on_start_up_the_workflows_it_never_started(
        backend: str, tmp_path: Path, pki_dir: Path,
        temporal_dev_server: WorkflowEnvironment) -> None:
    client = temporal_dev_server.client
    url = fresh_database_url(backend, "intake", tmp_path)
    wiring = Wiring(_a_day_of_its_own())
    prefix = _prefix()
    async with _terminated_at_the_end(client) as started:
        async with service_under_test(wiring.definition(), database_url=url, pki_dir=pki_dir,
                                      temporal_address=closed_port(),
                                      task_queue_prefix=prefix) as down, \
                down.channel("hall-window-system") as channel:
            stub = intake_pb2_grpc.IntakeServiceStub(channel)
            numbers = [(await _submit(stub, _request())).case.case_number for _ in range(2)]
            started.extend(c.workflow_id(n) for n in numbers)
        async with service_under_test(wiring.definition(), database_url=url, pki_dir=pki_dir,
                                      temporal_address=_target(temporal_dev_server),
                                      task_queue_prefix=prefix) as up, \
                up.channel() as channel:
            stub = intake_pb2_grpc.IntakeServiceStub(channel)

            async def all_started() -> bool:
                for number in numbers:
                    read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
                    if not read.case.workflow_started:
                        return False
                return True

            await _eventually(all_started, "both workflows started")
            runs = [await _runs(client, c.workflow_id(n)) for n in numbers]
            descriptions = [await client.get_workflow_handle(c.workflow_id(n)).describe()
                            for n in numbers]
    assert runs == [1, 1]
    assert [d.status for d in descriptions] == [WorkflowExecutionStatus.RUNNING] * 2


# ---- the whole chain: the real workflow and intake's activities, review faked ---------------

@dataclass
class Chain:
    intake: ServiceUnderTest
    center: Center
    env: WorkflowEnvironment
    signers: Signers

    def handle(self, number: str) -> WorkflowHandle[Any, c.ApprovalResult]:
        return self.env.client.get_workflow_handle(c.workflow_id(number),
                                                   result_type=c.ApprovalResult)

    async def decide(self, number: str, stage: str) -> c.DecisionReceipt:
        who, outcome = {c.Stage.REVIEW: (REVIEWER, c.Outcome.APPROVE),
                        c.Stage.SIGN: (LEADER, c.Outcome.APPROVE),
                        c.Stage.SEAL: (SEALER, c.Outcome.SEAL)}[c.Stage(stage)]
        receipt: c.DecisionReceipt = await self.handle(number).execute_update(
            c.DECIDE, self.signers.decision(number, who, stage, outcome),
            result_type=c.DecisionReceipt)
        return receipt


@contextlib.asynccontextmanager
async def _chain(backend: str, tmp_path: Path, pki_dir: Path, signers: Signers,
                 env: WorkflowEnvironment) -> AsyncIterator[Chain]:
    """Intake (its activity worker included) on its own queues, the workflow, review faked."""
    prefix = _prefix()
    center = Center(signers=signers)
    url = fresh_database_url(backend, "intake", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=_target(env), task_queue_prefix=prefix,
                                  run_activity_worker=True) as intake, \
            Worker(env.client, task_queue=f"{prefix}workflows", workflows=[ApprovalWorkflow]), \
            Worker(env.client, task_queue=f"{prefix}review", activities=center.of("review")):
        yield Chain(intake, center, env, signers)


async def test_the_chain_ends_in_a_sealed_decision_that_no_withdrawal_undoes(
        backend: str, tmp_path: Path, pki_dir: Path, signers: Signers,
        time_skipping: WorkflowEnvironment) -> None:
    async with _chain(backend, tmp_path, pki_dir, signers, time_skipping) as chain, \
            chain.intake.channel("hall-window-system") as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        number = (await _submit(stub, _request())).case.case_number
        receipts = [await chain.decide(number, stage)
                    for stage in (c.Stage.REVIEW, c.Stage.SIGN, c.Stage.SEAL)]
        result = await chain.handle(number).result()
        read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
        # The window that accepted the case hands out its decision (the window's system
        # speaks for window clerks only, so it names the clerk, not an operator).
        decision = (await stub.GetDecision(pb.GetDecisionRequest(
            certificate_number=read.case.certificate_number),
            metadata=as_official(CLERK))).decision
        verdict = await stub.VerifyDecision(pb.VerifyDecisionRequest(
            document=decision.document, signature=decision.signature))
        register = await stub.ListRegister(pb.ListRegisterRequest())
        with pytest.raises(grpc.aio.AioRpcError) as after_the_seal:
            await stub.WithdrawApplication(pb.WithdrawApplicationRequest(
                case_number=number, reason="申请人撤回"), metadata=as_official(CLERK))
        after = await stub.GetCase(pb.GetCaseRequest(case_number=number))
        verdict_after = await stub.VerifyDecision(pb.VerifyDecisionRequest(
            document=decision.document, signature=decision.signature))
    certificate = receipts[-1].certificate_number
    assert certificate and certificate == result.certificate_number
    assert certificate == read.case.certificate_number
    assert result.outcome == "approved"
    assert read.case.status == pb.CASE_STATUS_APPROVED and read.case.HasField("closed_at")
    kinds = [e.kind for e in read.timeline]
    assert kinds[:3] == ["application.submitted", "application.accepted", "workflow.started"]
    for kind in ("review.decided", "sign.decided", "seal.decided", "decision.sealed"):
        assert kinds.count(kind) == 1, kind
    assert verdict.result == pb.VERIFICATION_RESULT_VALID
    assert [e.certificate_number for e in register.entries] == [certificate]
    # The document embeds the very acceptance the workflow was started with.
    chained = c.SignedStatement(**json.loads(decision.document)["chain"][0])
    assert chained == chain.center.opened[0].acceptance
    assert [t.decision.stage for t in chain.center.transitions] == ["review", "sign", "seal"]
    # Withdrawal is refused after the seal, and the decision stands.
    assert after_the_seal.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert after.case.status == pb.CASE_STATUS_APPROVED and not after.case.withdrawal_reason
    assert "withdrawn" not in [e.kind for e in after.timeline]
    assert verdict_after.result == pb.VERIFICATION_RESULT_VALID
    assert chain.center.closings == []


async def test_an_accepted_case_is_withdrawn_through_its_workflow(
        backend: str, tmp_path: Path, pki_dir: Path, signers: Signers,
        time_skipping: WorkflowEnvironment) -> None:
    async with _chain(backend, tmp_path, pki_dir, signers, time_skipping) as chain, \
            chain.intake.channel("hall-window-system") as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        number = (await _submit(stub, _request())).case.case_number
        killed = (await _submit(stub, _request())).case.case_number
        await chain.decide(number, c.Stage.REVIEW)
        request = pb.WithdrawApplicationRequest(case_number=number, reason="申请人撤回")
        # Through a system that speaks for the department's clerks and reviewers alike, so
        # the withdrawal's own rule (a window clerk) refuses the reviewer, not the registry.
        desk = register_system(
            chain.intake, "scjgj-front-desk",
            rpcs=["govhall.intake.v1.IntakeService/WithdrawApplication"],
            speaks_for=[("SCJGJ", "window_clerk"), ("SCJGJ", "reviewer")])
        async with chain.intake.channel(desk) as front_desk:
            with pytest.raises(grpc.aio.AioRpcError) as by_reviewer:
                await intake_pb2_grpc.IntakeServiceStub(front_desk).WithdrawApplication(
                    request, metadata=as_official(REVIEWER.official_id))
        withdrawn = await stub.WithdrawApplication(request, metadata=as_official(CLERK))
        result = await chain.handle(number).result()
        with pytest.raises(grpc.aio.AioRpcError) as twice:
            await stub.WithdrawApplication(request, metadata=as_official(CLERK))
        await chain.handle(killed).terminate("an operator stopped it")
        with pytest.raises(grpc.aio.AioRpcError) as finished:
            await stub.WithdrawApplication(pb.WithdrawApplicationRequest(
                case_number=killed, reason="申请人撤回"), metadata=as_official(CLERK))
        read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
        still = await stub.GetCase(pb.GetCaseRequest(case_number=killed))
        # The audit log is verified through the operators' console (the window may not).
        async with chain.intake.channel("operator") as console:
            audit = (await intake_pb2_grpc.IntakeServiceStub(console).VerifyAuditLog(
                pb.VerifyAuditLogRequest())).verification
    assert by_reviewer.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert by_reviewer.value.details() == (
        f"official {REVIEWER.official_id} does not hold the role window_clerk")
    assert withdrawn.case.status == pb.CASE_STATUS_WITHDRAWN
    assert withdrawn.case.withdrawal_reason == "申请人撤回"
    assert withdrawn.case.HasField("closed_at")
    assert result.outcome == "withdrawn" and not result.certificate_number
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert finished.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "finished" in (finished.value.details() or "")
    assert read.case.status == pb.CASE_STATUS_WITHDRAWN
    assert read.case.withdrawal_reason == "申请人撤回"
    event = next(e for e in read.timeline if e.kind == "withdrawn")
    assert event.official_id == CLERK and event.details["stage"] == "sign"
    assert [(x.case_number, x.stage, x.outcome) for x in chain.center.closings] == [
        (number, "sign", "withdrawn")]
    assert not read.case.certificate_number
    assert still.case.status == pb.CASE_STATUS_UNDER_REVIEW
    assert audit.intact
