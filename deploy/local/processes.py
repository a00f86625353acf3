"""Starting, watching and stopping govhall's processes, one way for everyone who does it.

The embedded runner (deploy/local/runner.py) starts the codec server,
Temporal, the services and the workflows worker; the end-to-end tests (tests/e2e/suite.py) start the
runner whole, or its children one by one so they can kill them; the
benchmarks (bench/suite.py) start the runner. All of them use this module:
free ports, each process's command and settings, children logging to a file,
waiting with a deadline until a service answers its health check or a worker
polls its task queue, stopping in order, and the runner as a child process
whose ready line is awaited.

Waiting never sleeps for a guessed time: each wait polls a condition until a
deadline and checks on every round that the process it waits for still runs,
so a crash is reported at once with the end of its log.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from kernel.pki import ca_cert_path
from kernel.temporal import SEARCH_ATTRIBUTES

#: The services, in the order they are started and listed.
SERVICES = ("intake", "review", "trading", "complaints")
#: The workflows worker, by the name its log and its child go by.
WORKER = "worker"
#: The codec server (operators decode Temporal payloads through it), by the same.
CODEC_SERVER = "codec-server"
#: What the runner prints once everything is up ("ready in 12.3s").
READY_LINE = "ready in"
#: The runner's own ports, by the suffix of its GOVHALL_RUNNER_*_PORT setting.
RUNNER_PORTS = {"temporal": "TEMPORAL_PORT", "ui": "TEMPORAL_UI_PORT",
                "http": "TEMPORAL_HTTP_PORT", "metrics": "TEMPORAL_METRICS_PORT",
                "codec": "CODEC_PORT"}
#: Ports of the HTTP façades the services serve beside gRPC, by name, and their settings.
FACADE_PORTS = {"open311": "GOVHALL_COMPLAINTS_OPEN311_PORT"}
#: How often a wait looks again.
POLL_SECONDS = 0.2
#: How much of a log an error quotes.
LOG_TAIL = 3000


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now; all held open together so they differ."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for held in sockets:
            held.bind(("127.0.0.1", 0))
        return [held.getsockname()[1] for held in sockets]
    finally:
        for held in sockets:
            held.close()


# ---- commands and settings ---------------------------------------------------------------


def serve_command(name: str) -> list[str]:
    """How the runner starts a service (``serve``), the workflows worker or the codec server."""
    if name == WORKER:
        return [sys.executable, "-m", "workflows.worker"]
    if name == CODEC_SERVER:
        return [sys.executable, "-m", "kernel.codec_server"]
    return [sys.executable, "-m", f"services.{name}.main", "serve"]


def prepare_command(name: str) -> list[str]:
    """Migrations and the sample data, before a service first serves."""
    return [sys.executable, "-m", f"services.{name}.main", "prepare"]


def without_govhall_settings(environment: Mapping[str, str]) -> dict[str, str]:
    """``environment`` less every GOVHALL_ setting, so a child sees only the ones given."""
    return {k: v for k, v in environment.items() if not k.startswith("GOVHALL_")}


def service_environment(name: str, *, var_dir: Path, temporal_address: str,
                        namespace: str, port: int | None = None) -> dict[str, str]:
    """A service's settings as the embedded default sets them: all its state under var_dir."""
    prefix = f"GOVHALL_{name.upper()}_"
    settings = {
        prefix + "PKI_DIR": str(var_dir / "pki"),
        prefix + "DATABASE_URL": f"sqlite:///{var_dir / 'db' / f'{name}.sqlite3'}",
        prefix + "TEMPORAL_ADDRESS": temporal_address,
        prefix + "TEMPORAL_NAMESPACE": namespace,
    }
    if port is not None:
        settings[prefix + "PORT"] = str(port)
    return settings


def worker_environment(*, var_dir: Path, temporal_address: str, namespace: str,
                       review_address: str) -> dict[str, str]:
    """The workflows worker's settings: Temporal, the payload keys and its certificate under
    var_dir/pki, and review, where it reports the acts its workflows refused."""
    return {"GOVHALL_WORKER_TEMPORAL_ADDRESS": temporal_address,
            "GOVHALL_WORKER_TEMPORAL_NAMESPACE": namespace,
            "GOVHALL_WORKER_PKI_DIR": str(var_dir / "pki"),
            "GOVHALL_WORKER_REVIEW_ADDRESS": review_address}


def complaints_environment(*, intake_address: str, trading_address: str = ""
                           ) -> dict[str, str]:
    """The complaints service's links to intake and trading: where it checks the approval
    cases (CheckCaseLink) and the tenders (CheckTenderLink) complaints name, as the calling
    system complaints-service; and, everything running on one machine, plain-http webhooks
    to a receiver on the loopback host are taken."""
    return {"GOVHALL_COMPLAINTS_INTAKE_ADDRESS": intake_address,
            "GOVHALL_COMPLAINTS_TRADING_ADDRESS": trading_address,
            "GOVHALL_COMPLAINTS_WEBHOOK_ALLOW_LOOPBACK": "true"}


def holiday_schedules_environment(*, review_address: str) -> dict[str, str]:
    """Where complaints and trading read the holiday schedules operators loaded: review
    (ListHolidaySchedules, each as its own calling system)."""
    return {"GOVHALL_COMPLAINTS_REVIEW_ADDRESS": review_address,
            "GOVHALL_TRADING_REVIEW_ADDRESS": review_address}


def codec_server_environment(*, var_dir: Path, host: str, port: int,
                             ui_origins: Iterable[str] = ()) -> dict[str, str]:
    """The codec server's settings: where it listens, the keys under var_dir/pki, the UI's
    origins (for CORS; none when no Temporal UI uses it)."""
    settings = {"GOVHALL_CODEC_HOST": host, "GOVHALL_CODEC_PORT": str(port),
                "GOVHALL_CODEC_PKI_DIR": str(var_dir / "pki")}
    origins = list(ui_origins)
    if origins:
        settings["GOVHALL_CODEC_UI_ORIGINS"] = json.dumps(origins)
    return settings


def runner_environment(var_dir: Path, ports: Mapping[str, int],
                       base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The runner's settings for a suite of its own: ``var_dir`` and ``ports`` (by name).

    ``base`` (this process's environment by default) is taken without any
    GOVHALL_ setting, so the suite never inherits a developer's.
    """
    environment = without_govhall_settings(os.environ if base is None else base)
    environment["GOVHALL_RUNNER_VAR_DIR"] = str(var_dir)
    for name, suffix in RUNNER_PORTS.items():
        environment[f"GOVHALL_RUNNER_{suffix}"] = str(ports[name])
    for service in SERVICES:
        environment[f"GOVHALL_{service.upper()}_PORT"] = str(ports[service])
    for name, setting in FACADE_PORTS.items():
        # A façade whose port is not given listens on a free one, never on a default that
        # another suite (or ``make run``) may hold.
        environment[setting] = str(ports.get(name, 0))
    return environment


# ---- children ----------------------------------------------------------------------------


class ProcessExited(RuntimeError):
    """A child that should be running has exited."""


@dataclass
class Child:
    """One started process, its output appended to its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes] = field(repr=False)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:]

    def check(self) -> None:
        """ProcessExited, quoting the end of its log, unless it still runs."""
        code = self.process.poll()
        if code is not None:
            raise ProcessExited(f"{self.name} exited with {code}; its log ends:\n"
                                f"{self.log_tail()}")

    def kill(self) -> None:
        """kill -9: no shutdown, nothing flushed."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()


def spawn(name: str, argv: list[str], *, environment: Mapping[str, str],
          log_dir: Path) -> Child:
    """Start ``argv`` in a session of its own, its output appended to ``<log_dir>/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                               env=dict(environment), start_new_session=True)
    return Child(name, process, log_path, log)


def stop(children: Iterable[Child], *, timeout: float) -> None:
    """SIGTERM every child still running, give them ``timeout`` together, SIGKILL the rest."""
    members = list(children)
    for child in members:
        if child.running:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in members:
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
        child.log.close()


def run_to_end(name: str, argv: list[str], *, environment: Mapping[str, str], log_dir: Path,
               timeout: float) -> None:
    """Run ``argv`` to its end, its output appended to its log; ProcessExited if it fails."""
    child = spawn(name, argv, environment=environment, log_dir=log_dir)
    try:
        code = child.process.wait(timeout=timeout)
    finally:
        child.log.close()
    if code != 0:
        raise ProcessExited(f"{name} failed with {code}; its log ends:\n{child.log_tail()}")


# ---- waiting until ready -----------------------------------------------------------------


async def until_connected(connect: Callable[[], Awaitable[Client]], *, deadline: float,
                          check: Callable[[], None], what: str) -> Client:
    """A Temporal client, once the server answers; TimeoutError at the deadline."""
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        check()
        try:
            return await connect()
        except Exception as error:  # the SDK raises RuntimeError and others while it is down
            last_error = error
        await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(f"Temporal did not answer at {what}: {last_error}")


async def until_healthy(address: str, credentials: grpc.ChannelCredentials, *,
                        deadline: float, check: Callable[[], None], name: str) -> None:
    """Until the gRPC server at ``address`` answers SERVING to its health check."""
    while True:
        check()
        try:
            async with grpc.aio.secure_channel(address, credentials) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=2)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not become healthy at {address}")
        await asyncio.sleep(POLL_SECONDS)


async def until_codec_server_answers(endpoint: str, pki_dir: Path, *, deadline: float,
                                     check: Callable[[], None]) -> None:
    """Until the codec server at ``endpoint`` answers its health check over TLS."""
    context = ssl.create_default_context(cafile=str(ca_cert_path(pki_dir)))
    url = f"{endpoint}/health"
    async with aiohttp.ClientSession() as session:
        while True:
            check()
            try:
                async with session.get(url, ssl=context,
                                       timeout=aiohttp.ClientTimeout(total=2)) as reply:
                    if reply.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the codec server did not answer at {url}")
            await asyncio.sleep(POLL_SECONDS)


async def until_polling(client: Client, *, namespace: str, task_queue: str,
                        kind: TaskQueueType.ValueType, deadline: float,
                        check: Callable[[], None], name: str, identity_prefix: str = "") -> None:
    """Until a worker (whose identity starts with ``identity_prefix``) polls ``task_queue``."""
    request = DescribeTaskQueueRequest(namespace=namespace, task_queue=TaskQueue(name=task_queue),
                                       task_queue_type=kind)
    while True:
        check()
        reply = await client.workflow_service.describe_task_queue(request)
        if any(p.identity.startswith(identity_prefix) for p in reply.pollers):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not poll {task_queue}")
        await asyncio.sleep(POLL_SECONDS)


async def register_search_attributes(client: Client, namespace: str) -> None:
    """Add whichever of govhall's custom search attributes ``namespace`` lacks."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace))
    missing = {key.name: IndexedValueType.ValueType(key.indexed_value_type)
               for key in SEARCH_ATTRIBUTES if key.name not in existing.custom_attributes}
    if missing:
        await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace=namespace, search_attributes=missing))


# ---- the runner as a child ---------------------------------------------------------------


@dataclass
class RunnerProcess:
    """``python -m deploy.local.runner`` as a child: started until its ready line, stopped
    with Ctrl-C (it stops services, worker and Temporal in order)."""

    environment: dict[str, str]
    cwd: Path | None = None
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    def start(self, *, timeout_seconds: float = 180.0) -> float:
        """Seconds until the runner said it was ready; RuntimeError if it never did."""
        started = time.monotonic()
        self.lines = []
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deploy.local.runner"], cwd=self.cwd, env=self.environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self.reader.start()
        # The reader also sets the event when the runner exits, so a failed start is seen
        # at once instead of after the whole timeout.
        if self.ready.wait(timeout_seconds) and self.ready_line_seen():
            return time.monotonic() - started
        self.stop()
        raise RuntimeError(f"the suite did not become ready; the runner said:\n"
                           f"{self.output[-4000:]}")

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)
            if line.startswith(READY_LINE):
                self.ready.set()
        self.ready.set()

    def ready_line_seen(self) -> bool:
        return any(line.startswith(READY_LINE) for line in self.lines)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def startup_seconds(self) -> str:
        """The runner's own figure, from its ready line ("12.3s")."""
        for line in self.lines:
            if line.startswith(READY_LINE):
                return line[len(READY_LINE):].strip()
        return "?"

    def stop(self, *, timeout_seconds: float = 90.0) -> int | None:
        """Ctrl-C, then the runner's exit code (SIGKILL if it takes longer than the timeout)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.reader is not None:
            self.reader.join(timeout=10)
        return self.process.returncode
