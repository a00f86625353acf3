"""The suite's processes, started for end-to-end tests the way deploy/local/runner.py starts them.

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
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import grpc
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import Engine, create_engine
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
    RegisterNamespaceRequest,
)
from temporalio.client import Client

from deploy.local.chain_driver import (
    CLERK,
    LEADER,
    REVIEWER,
    SAMPLE_ITEM,
    SEAL_CUSTODIAN,
    acting,
)
from govhall.intake.v1 import intake_pb2, intake_pb2_grpc
from govhall.review.v1 import review_pb2, review_pb2_grpc
from kernel.grpcserver import channel_credentials, secure_channel
from kernel.pki import ensure_pki
from kernel.temporal import SEARCH_ATTRIBUTES, WORKFLOW_TASK_QUEUE, connect
from services.review.app.decisions import fingerprint, update_id
from workflows.approval_contract import DECIDE, content_digest, workflow_id

if TYPE_CHECKING:
    from govhall.intake.v1.intake_pb2_grpc import IntakeServiceAsyncStub
    from govhall.review.v1.review_pb2_grpc import ReviewServiceAsyncStub

BIN = Path(sys.executable).parent
TEMPORAL_CLI = BIN / "temporal"
READY_SECONDS = 120
#: The workflows worker, by the name the runner gives it.
WORKER = "worker"


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


# ---- the runner, whole -----------------------------------------------------------------


@dataclass
class RunnerSuite:
    environment: dict[str, str]
    var_dir: Path
    ports: dict[str, int]
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    def start(self) -> float:
        started = time.monotonic()
        self.lines = []
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deploy.local.runner"], env=self.environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self.reader.start()
        if self.ready.wait(READY_SECONDS):
            return time.monotonic() - started
        self.stop()
        raise AssertionError(f"the suite did not become ready:\n{self.output}")

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)
            if line.startswith("ready in"):
                self.ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        if self.reader is not None:
            self.reader.join(timeout=10)
        return self.process.returncode

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
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=namespace, search_attributes={
            key.name: IndexedValueType.ValueType(key.indexed_value_type)
            for key in SEARCH_ATTRIBUTES}))
    return namespace


@dataclass
class Child:
    process: subprocess.Popen[bytes]
    log: IO[bytes] = field(repr=False)


@dataclass
class ChainProcesses:
    """Services and the workflows worker as separate processes, each killable and restartable."""

    var_dir: Path
    temporal_address: str
    namespace: str
    ports: dict[str, int]
    environment: dict[str, str]
    children: dict[str, Child] = field(default_factory=dict)
    _client: Client | None = field(default=None, init=False, repr=False)

    @classmethod
    def create(cls, var_dir: Path, *, temporal_address: str, namespace: str,
               services: tuple[str, ...]) -> ChainProcesses:
        """The runner's environment (see deploy/local/runner.py, Suite) on free ports."""
        ensure_pki(var_dir / "pki")
        ports = dict(zip(services, free_ports(len(services)), strict=True))
        environment = {k: v for k, v in os.environ.items() if not k.startswith("GOVHALL_")}
        for name in services:
            prefix = f"GOVHALL_{name.upper()}_"
            environment |= {
                prefix + "PKI_DIR": str(var_dir / "pki"),
                prefix + "DATABASE_URL": f"sqlite:///{var_dir / 'db' / f'{name}.sqlite3'}",
                prefix + "TEMPORAL_ADDRESS": temporal_address,
                prefix + "TEMPORAL_NAMESPACE": namespace,
                prefix + "PORT": str(ports[name]),
            }
        environment |= {"GOVHALL_WORKER_TEMPORAL_ADDRESS": temporal_address,
                        "GOVHALL_WORKER_TEMPORAL_NAMESPACE": namespace,
                        "GOVHALL_WORKER_PKI_DIR": str(var_dir / "pki")}
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
        path = self.log_path(name)
        return path.read_text(encoding="utf-8", errors="replace")[-3000:] if path.exists() else ""

    def pid(self, name: str) -> int:
        return self.children[name].process.pid

    def prepare(self, *services: str) -> None:
        """Migrate and load the sample data, as the runner does before serving; in parallel."""
        (self.var_dir / "log").mkdir(parents=True, exist_ok=True)
        runs = {name: subprocess.Popen(
            [sys.executable, "-m", f"services.{name}.main", "prepare"], env=self.environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for name in services}
        for name, run in runs.items():
            output, _ = run.communicate(timeout=READY_SECONDS)
            with self.log_path(name).open("ab") as log:
                log.write(output)
            if run.returncode != 0:
                raise AssertionError(f"preparing {name} failed:\n{output.decode()[-3000:]}")

    def start(self, name: str) -> None:
        """Start a service (``serve``) or the workflows worker, logging to var/log."""
        running = self.children.get(name)
        if running is not None and running.process.poll() is None:
            raise AssertionError(f"{name} runs already")
        argv = ([sys.executable, "-m", "workflows.worker"] if name == WORKER
                else [sys.executable, "-m", f"services.{name}.main", "serve"])
        (self.var_dir / "log").mkdir(parents=True, exist_ok=True)
        log = self.log_path(name).open("ab")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                   env=self.environment, start_new_session=True)
        self.children[name] = Child(process, log)

    def kill(self, name: str) -> None:
        """kill -9: no shutdown, no goodbye to Temporal, nothing flushed."""
        child = self.children[name]
        os.kill(child.process.pid, signal.SIGKILL)
        child.process.wait(timeout=10)
        child.log.close()

    def stop_all(self) -> None:
        """SIGTERM every child still running, then SIGKILL what has not stopped."""
        running = [c for c in self.children.values() if c.process.poll() is None]
        for child in running:
            child.process.terminate()
        for child in running:
            try:
                child.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(timeout=10)
        for child in self.children.values():
            child.log.close()

    def _check_alive(self, name: str) -> None:
        code = self.children[name].process.poll()
        if code is not None:
            raise AssertionError(f"{name} exited with {code}; its log ends:\n"
                                 f"{self.log_tail(name)}")

    async def wait_until_serving(self, service: str, deadline: float) -> None:
        """Until the service answers its health check and its activity worker polls."""
        credentials = channel_credentials(self.pki_dir, "operator")
        while True:
            self._check_alive(service)
            try:
                async with grpc.aio.secure_channel(self.address(service),
                                                   credentials) as channel:
                    reply = await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(service=""), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service} did not become healthy at "
                                   f"{self.address(service)}")
            await asyncio.sleep(0.2)
        await self.wait_until_polling(service, f"govhall-{service}",
                                      TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, deadline)

    async def wait_until_polling(self, name: str, task_queue: str,
                                 kind: TaskQueueType.ValueType, deadline: float) -> None:
        """Until the process itself (not a killed predecessor) polls ``task_queue``."""
        client = await self.client()
        identity = f"{self.pid(name)}@"
        request = DescribeTaskQueueRequest(namespace=self.namespace,
                                           task_queue=TaskQueue(name=task_queue),
                                           task_queue_type=kind)
        while True:
            self._check_alive(name)
            reply = await client.workflow_service.describe_task_queue(request)
            if any(p.identity.startswith(identity) for p in reply.pollers):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not poll {task_queue}")
            await asyncio.sleep(0.2)

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
            if name not in self.children or self.children[name].process.poll() is not None))

    async def close(self) -> None:
        self.stop_all()
        self._client = None

    def read_only(self, service: str) -> Engine:
        """The service's database, opened read-only: the test looks, never writes."""
        return create_engine(f"sqlite:///file:{self.database(service)}?mode=ro&uri=true")

    async def client(self) -> Client:
        """A Temporal client on this namespace, with govhall's data converter."""
        if self._client is None:
            self._client = await connect(self.temporal_address, self.namespace)
        return self._client

    def temporal_cli(self, *args: str) -> Any:
        """Run ``temporal <args> --address … --namespace … -o json``; its parsed output."""
        completed = subprocess.run(
            [str(TEMPORAL_CLI), *args, "--address", self.temporal_address,
             "--namespace", self.namespace, "-o", "json"],
            capture_output=True, text=True, timeout=30, check=False)
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
                   system: str = "hall-window-system") -> grpc.aio.Channel:
    return secure_channel(processes.address("intake"), pki_dir=processes.pki_dir,
                          system=system)


def review_channel(processes: ChainProcesses,
                   system: str = "department-review-system") -> grpc.aio.Channel:
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


def decision_update_id(case_number: str, stage: review_pb2.ApprovalStage.ValueType,
                       request_id: str) -> str:
    """The id of the update review sends for ``decide_until_done``'s request."""
    print_ = fingerprint("DecideCase", official=DECIDERS[stage], case=case_number,
                         stage=_STAGE_NAMES[stage],
                         outcome="seal" if stage == SEAL else "approve",
                         content=content_digest(opinion=OPINION, legal_basis=LEGAL_BASIS))
    return update_id(DECIDE, request_id, print_)


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
            async with review_channel(processes) as channel:
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
