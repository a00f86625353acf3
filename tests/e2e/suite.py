"""The suite's processes, started for end-to-end tests the way deploy/local/runner.py starts them
(both through deploy/local/processes.py).

Two shapes:

- ``RunnerSuite``: the runner itself (``python -m deploy.local.runner``) on
  free ports with its own var dir, as ``make run`` starts it.
- ``ChainProcesses``: some of the runner's children (services, the workflows
  worker) started one by one by the test, with the runner's commands and
  environment, against a Temporal server the test names, so that a test
  can kill -9 any of them and start it again on the same port and database.

Each ``ChainProcesses`` works in a Temporal namespace of its own: case
numbers restart at 000001 in every fresh intake database, so workflow ids
(``approval/<case no>``) would otherwise meet other tests' workflows on the
shared dev server.

Below them, what the tests do to a running chain: submit a case at the
window, decide a stage (retrying through outages with the same
request_id), and wait, with a deadline, for a condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.duration_pb2 import Duration
from sqlalchemy import Engine, create_engine
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
    RegisterNamespaceRequest,
)
from temporalio.client import Client

from deploy.local import processes
from deploy.local.chain_driver import (
    CLERK,
    DEPARTMENT_SYSTEM,
    LEADER,
    REVIEWER,
    SAMPLE_ITEM,
    SEAL_CUSTODIAN,
    SEAL_SYSTEM,
    WINDOW_SYSTEM,
    acting,
)
from govhall.intake.v1 import intake_pb2, intake_pb2_grpc
from govhall.review.v1 import review_pb2, review_pb2_grpc
from kernel.codec_server import token_path
from kernel.grpcserver import channel_credentials, secure_channel
from kernel.handled_requests import UPDATE_IDS, fingerprint, update_id
from kernel.pki import ca_cert_path, ensure_pki
from kernel.signing import service_signer
from kernel.temporal import WORKFLOW_TASK_QUEUE, TemporalSecurity, connect
from workflows.approval_contract import DECIDE, content_digest, workflow_id

if TYPE_CHECKING:
    from govhall.intake.v1.intake_pb2_grpc import IntakeServiceAsyncStub
    from govhall.review.v1.review_pb2_grpc import ReviewServiceAsyncStub

BIN = Path(sys.executable).parent
TEMPORAL_CLI = BIN / "temporal"
READY_SECONDS = 120
#: The workflows worker, by the name the runner gives it.
WORKER = processes.WORKER
#: The codec server, by the name the runner gives it.
CODEC_SERVER = processes.CODEC_SERVER
free_ports = processes.free_ports


# ---- the runner, whole -----------------------------------------------------------------


@dataclass
class RunnerSuite(processes.RunnerProcess):
    """The runner on its own ports and var dir (processes.runner_environment)."""

    var_dir: Path = Path()
    ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def create(cls, var_dir: Path) -> RunnerSuite:
        names = [*processes.RUNNER_PORTS, *processes.SERVICES, *processes.FACADE_PORTS]
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        return cls(processes.runner_environment(var_dir, ports), var_dir=var_dir, ports=ports)

    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    def channel(self, service: str) -> grpc.aio.Channel:
        return secure_channel(self.address(service), pki_dir=self.var_dir / "pki",
                              system="operator")


# ---- the runner's children, one by one ------------------------------------------------


async def fresh_namespace(client: Client) -> str:
    """A new namespace on ``client``'s server with govhall's search attributes registered."""
    namespace = f"govhall-e2e-{uuid.uuid4().hex[:12]}"
    await client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)))
    await processes.register_search_attributes(client, namespace)
    return namespace


@dataclass
class ChainProcesses:
    """Services and the workflows worker as separate processes, each killable and restartable."""

    var_dir: Path
    temporal_address: str
    namespace: str
    ports: dict[str, int]
    environment: dict[str, str]
    children: dict[str, processes.Child] = field(default_factory=dict)
    #: The codec server the ``temporal`` CLI decodes through, once started.
    codec_endpoint: str = field(default="", init=False)
    _client: Client | None = field(default=None, init=False, repr=False)

    @classmethod
    def create(cls, var_dir: Path, *, temporal_address: str, namespace: str,
               services: tuple[str, ...]) -> ChainProcesses:
        """The runner's environment (see deploy/local/runner.py, Suite) on free ports."""
        ensure_pki(var_dir / "pki")
        ports = dict(zip(services, free_ports(len(services)), strict=True))
        environment = processes.without_govhall_settings(os.environ)
        for name in services:
            environment |= processes.service_environment(
                name, var_dir=var_dir, temporal_address=temporal_address, namespace=namespace,
                port=ports[name])
        # The Open311 façade on a port of its own choosing: these tests speak gRPC.
        environment[processes.FACADE_PORTS["open311"]] = "0"
        environment |= processes.worker_environment(
            var_dir=var_dir, temporal_address=temporal_address, namespace=namespace,
            review_address=f"127.0.0.1:{ports['review']}" if "review" in ports else "")
        if "complaints" in ports:
            environment |= processes.complaints_environment(
                intake_address=f"127.0.0.1:{ports['intake']}" if "intake" in ports else "",
                trading_address=f"127.0.0.1:{ports['trading']}" if "trading" in ports else "")
        if "review" in ports:
            environment |= processes.holiday_schedules_environment(
                review_address=f"127.0.0.1:{ports['review']}")
        return cls(var_dir, temporal_address, namespace, ports, environment)

    @property
    def pki_dir(self) -> Path:
        return self.var_dir / "pki"

    def database(self, service: str) -> Path:
        return self.var_dir / "db" / f"{service}.sqlite3"

    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    def log_path(self, name: str) -> Path:
        return self.var_dir / "log" / f"{name}.log"

    def log_tail(self, name: str) -> str:
        child = self.children.get(name)
        return child.log_tail() if child is not None else ""

    def pid(self, name: str) -> int:
        return self.children[name].process.pid

    def prepare(self, *services: str) -> None:
        """Migrate and load the sample data, as the runner does before serving; in parallel."""
        runs = {name: processes.spawn(f"{name}", processes.prepare_command(name),
                                      environment=self.environment,
                                      log_dir=self.var_dir / "log") for name in services}
        for name, run in runs.items():
            try:
                code = run.process.wait(timeout=READY_SECONDS)
            finally:
                run.log.close()
            if code != 0:
                raise AssertionError(f"preparing {name} failed:\n{run.log_tail()}")

    def start(self, name: str) -> None:
        """Start a service (``serve``) or the workflows worker, logging to var/log."""
        running = self.children.get(name)
        if running is not None and running.running:
            raise AssertionError(f"{name} runs already")
        self.children[name] = processes.spawn(name, processes.serve_command(name),
                                              environment=self.environment,
                                              log_dir=self.var_dir / "log")

    def kill(self, name: str) -> None:
        """kill -9: no shutdown, no goodbye to Temporal, nothing flushed."""
        self.children[name].kill()

    def stop_all(self) -> None:
        """SIGTERM every child still running, then SIGKILL what has not stopped."""
        processes.stop(self.children.values(), timeout=10)

    async def wait_until_serving(self, service: str, deadline: float) -> None:
        """Until the service answers its health check and its activity worker polls."""
        await processes.until_healthy(
            self.address(service), channel_credentials(self.pki_dir, "operator"),
            deadline=deadline, check=self.children[service].check, name=service)
        await self.wait_until_polling(service, f"govhall-{service}",
                                      TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, deadline)

    async def wait_until_polling(self, name: str, task_queue: str,
                                 kind: TaskQueueType.ValueType, deadline: float) -> None:
        """Until the process itself (not a killed predecessor) polls ``task_queue``."""
        await processes.until_polling(
            await self.client(), namespace=self.namespace, task_queue=task_queue, kind=kind,
            deadline=deadline, check=self.children[name].check, name=name,
            identity_prefix=f"{self.pid(name)}@")

    async def start_and_wait(self, name: str, deadline: float) -> None:
        self.start(name)
        if name == WORKER:
            await self.wait_until_polling(WORKER, WORKFLOW_TASK_QUEUE,
                                          TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, deadline)
        else:
            await self.wait_until_serving(name, deadline)

    async def ensure_running(self, deadline: float) -> None:
        """Start again whatever is not running (say, after an earlier test failed midway)."""
        await asyncio.gather(*(
            self.start_and_wait(name, deadline) for name in (*self.ports, WORKER)
            if name not in self.children or not self.children[name].running))

    async def start_codec_server(self) -> str:
        """The codec server process on a free port, as the runner starts it.

        Once it answers, ``temporal_cli`` decodes payloads through it.
        """
        [port] = free_ports(1)
        endpoint = f"https://127.0.0.1:{port}"
        self.children[CODEC_SERVER] = processes.spawn(
            CODEC_SERVER, processes.serve_command(CODEC_SERVER),
            environment=self.environment | processes.codec_server_environment(
                var_dir=self.var_dir, host="127.0.0.1", port=port),
            log_dir=self.var_dir / "log")
        await processes.until_codec_server_answers(
            endpoint, self.pki_dir, deadline=time.monotonic() + READY_SECONDS,
            check=self.children[CODEC_SERVER].check)
        self.codec_endpoint = endpoint
        return endpoint

    async def close(self) -> None:
        self.stop_all()
        self._client = None

    def read_only(self, service: str) -> Engine:
        """The service's database, opened read-only: the test looks, never writes."""
        return create_engine(f"sqlite:///file:{self.database(service)}?mode=ro&uri=true")

    async def client(self) -> Client:
        """A Temporal client on this namespace, with govhall's data converter."""
        if self._client is None:
            self._client = await connect(self.temporal_address, self.namespace,
                                         security=TemporalSecurity.embedded(self.pki_dir))
        return self._client

    def temporal_cli(self, *args: str) -> Any:
        """Run ``temporal <args> --address … --namespace … -o json``; its parsed output.

        With a codec server started, the CLI decodes payloads through it as an operator
        does: the operator's bearer token, the center's CA trusted for its HTTPS.
        """
        codec: list[str] = []
        environment = dict(os.environ)
        if self.codec_endpoint:
            codec = ["--codec-endpoint", self.codec_endpoint]
            token = token_path(self.pki_dir).read_text().strip()
            environment |= {"TEMPORAL_CODEC_AUTH": f"Bearer {token}",
                            "SSL_CERT_FILE": str(ca_cert_path(self.pki_dir))}
        completed = subprocess.run(
            [str(TEMPORAL_CLI), *args, "--address", self.temporal_address,
             "--namespace", self.namespace, "-o", "json", *codec],
            capture_output=True, text=True, timeout=30, check=False, env=environment)
        if completed.returncode != 0:
            raise AssertionError(f"temporal {' '.join(args)} failed: {completed.stderr}")
        with contextlib.suppress(json.JSONDecodeError):
            return json.loads(completed.stdout)
        # Some commands print one JSON document per line.
        return [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]


async def start_chain(var_dir: Path, *, temporal: Client,
                      services: tuple[str, ...] = ("intake", "review")) -> ChainProcesses:
    """The services and the workflows worker, running in a fresh namespace of ``temporal``."""
    deadline = time.monotonic() + READY_SECONDS
    namespace = await fresh_namespace(temporal)
    processes = ChainProcesses.create(
        var_dir, temporal_address=str(temporal.service_client.config.target_host),
        namespace=namespace, services=services)
    try:
        await asyncio.to_thread(processes.prepare, *services)
        await processes.ensure_running(deadline)
    except BaseException:
        processes.stop_all()
        raise
    return processes


# ---- talking to the running chain -----------------------------------------------------

SIGN = review_pb2.APPROVAL_STAGE_SIGN
SEAL = review_pb2.APPROVAL_STAGE_SEAL
REVIEW = review_pb2.APPROVAL_STAGE_REVIEW
#: Who decides each stage of a case of the sample item's department (SCJGJ).
DECIDERS = {REVIEW: REVIEWER, SIGN: LEADER, SEAL: SEAL_CUSTODIAN}
#: The systems they decide through.
DECIDING_SYSTEMS = {REVIEW: DEPARTMENT_SYSTEM, SIGN: DEPARTMENT_SYSTEM, SEAL: SEAL_SYSTEM}
#: A failed attempt that may be sent again with the same request_id.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
#: How long one attempt of a decision may take before the client gives up and retries.
ATTEMPT_SECONDS = 10
ORGANISATION = intake_pb2.Applicant(
    kind=intake_pb2.APPLICANT_KIND_ORGANISATION, name="沈阳示例餐饮有限公司",
    id_number="91210100MA0XXXXX1Y")


async def within(deadline: float, what: str, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` at the deadline."""
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within the deadline: {what}")
        await asyncio.sleep(0.2)


def intake_channel(processes: ChainProcesses,
                   system: str = WINDOW_SYSTEM) -> grpc.aio.Channel:
    return secure_channel(processes.address("intake"), pki_dir=processes.pki_dir,
                          system=system)


def review_channel(processes: ChainProcesses,
                   system: str = DEPARTMENT_SYSTEM) -> grpc.aio.Channel:
    return secure_channel(processes.address("review"), pki_dir=processes.pki_dir,
                          system=system)


async def submit(processes: ChainProcesses, *, item_code: str = SAMPLE_ITEM,
                 applicant: intake_pb2.Applicant = ORGANISATION) -> str:
    """Submit a complete application at the window; the accepted case's number."""
    async with intake_channel(processes) as channel:
        stub: IntakeServiceAsyncStub = intake_pb2_grpc.IntakeServiceStub(channel)
        item = (await stub.GetApprovalItem(
            intake_pb2.GetApprovalItemRequest(code=item_code))).item
        reply = await stub.SubmitApplication(intake_pb2.SubmitApplicationRequest(
            idempotency_key=str(uuid.uuid4()), item_code=item_code, applicant=applicant,
            materials=[intake_pb2.SubmittedMaterial(code=m.code, provided=True)
                       for m in item.materials],
            finding=intake_pb2.FINDING_NONE), metadata=acting(CLERK))
    assert reply.outcome == intake_pb2.INTAKE_OUTCOME_ACCEPTED, reply
    return reply.case.case_number


@dataclass
class Attempts:
    """A decision's answer and how many attempts it took."""

    response: review_pb2.DecideCaseResponse
    count: int


OPINION = "材料齐全，符合法定条件"
LEGAL_BASIS = "《中华人民共和国行政许可法》第三十八条"
_STAGE_NAMES = {REVIEW: "review", SIGN: "sign", SEAL: "seal"}


def decision_update_id(pki_dir: Path, case_number: str,
                       stage: review_pb2.ApprovalStage.ValueType, request_id: str) -> str:
    """The id of the update review sends for ``decide_until_done``'s request (keyed with
    review's own key, read from ``pki_dir`` as review made it)."""
    print_ = fingerprint("DecideCase", official=DECIDERS[stage], case=case_number,
                         stage=_STAGE_NAMES[stage],
                         outcome="seal" if stage == SEAL else "approve",
                         content=content_digest(opinion=OPINION, legal_basis=LEGAL_BASIS))
    return update_id(DECIDE, request_id, print_,
                     key=service_signer(pki_dir, "review").derived_key(UPDATE_IDS))


async def decide_until_done(processes: ChainProcesses, case_number: str,
                            stage: review_pb2.ApprovalStage.ValueType, request_id: str,
                            deadline: float) -> Attempts:
    """Approve (or seal) one stage, retrying through outages with the SAME request_id.

    Each attempt has a fresh channel, so a restarted server is reached at
    once rather than after a channel's reconnection back-off.
    """
    outcome = review_pb2.DECISION_OUTCOME_SEAL if stage == SEAL \
        else review_pb2.DECISION_OUTCOME_APPROVE
    request = review_pb2.DecideCaseRequest(
        case_number=case_number, stage=stage, outcome=outcome, opinion=OPINION,
        legal_basis=LEGAL_BASIS, request_id=request_id)
    attempts = 0
    while True:
        attempts += 1
        try:
            async with review_channel(processes, DECIDING_SYSTEMS[stage]) as channel:
                stub: ReviewServiceAsyncStub = review_pb2_grpc.ReviewServiceStub(channel)
                response = await stub.DecideCase(
                    request, metadata=acting(DECIDERS[stage]),
                    timeout=max(1.0, min(ATTEMPT_SECONDS, deadline - time.monotonic())))
            return Attempts(response, attempts)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)  # pacing between attempts, not a wait for a condition


async def describe(processes: ChainProcesses,
                   case_number: str) -> DescribeWorkflowExecutionResponse:
    """The case's workflow as Temporal describes it (pending activities, workflow task)."""
    client = await processes.client()
    return await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=processes.namespace,
            execution=WorkflowExecution(workflow_id=workflow_id(case_number))))


async def until_quiet(processes: ChainProcesses, case_number: str, deadline: float) -> None:
    """Until the case's workflow waits for a person: no activity or workflow task pending."""
    async def quiet() -> bool:
        described = await describe(processes, case_number)
        return not described.pending_activities and not described.HasField(
            "pending_workflow_task")

    await within(deadline, f"{case_number} waits for a decision", quiet)
