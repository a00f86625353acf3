"""The embedded runner: the whole suite on one machine, the README's first command.

It makes the local CA, starts the Temporal dev server (SQLite file under
var/, custom search attributes registered, UI on 8233), migrates every
service's database and loads the sample data once, starts the four
services (each with its activity worker) and the workflows worker when
there are workflows to serve, waits until every service answers its
health check, prints every address, and on Ctrl-C stops everything in
order. Restarting keeps all data: everything lives under var/.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from kernel.grpcserver import channel_credentials
from kernel.pki import SAMPLE_SYSTEMS, ca_cert_path, client_pair, ensure_pki, server_pair
from kernel.settings import VAR, ServiceSettings
from kernel.temporal import SEARCH_ATTRIBUTES, WORKFLOW_TASK_QUEUE
from services.complaints.settings import ComplaintsSettings
from services.intake.settings import IntakeSettings
from services.review.settings import ReviewSettings
from services.trading.settings import TradingSettings
from workflows.worker import WORKFLOWS

SERVICES: tuple[tuple[str, type[ServiceSettings]], ...] = (
    ("intake", IntakeSettings),
    ("review", ReviewSettings),
    ("trading", TradingSettings),
    ("complaints", ComplaintsSettings),
)
BIN = Path(sys.executable).parent


class RunnerSettings(BaseSettings):
    """The runner's own settings: environment variables prefixed GOVHALL_RUNNER_."""

    model_config = SettingsConfigDict(env_prefix="GOVHALL_RUNNER_", extra="ignore", frozen=True)

    var_dir: Path = VAR
    host: str = "127.0.0.1"
    temporal_port: int = Field(default=7233, ge=1, le=65535)
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    temporal_http_port: int = Field(default=7243, ge=1, le=65535)
    temporal_metrics_port: int = Field(default=7244, ge=1, le=65535)
    #: A Temporal cluster to use instead of starting the dev server (host:port).
    temporal_address: str = ""
    namespace: str = "default"
    ready_timeout_seconds: float = Field(default=120.0, gt=0)

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"{self.host}:{self.temporal_port}"


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes] = field(repr=False)


class Suite:
    def __init__(self, settings: RunnerSettings) -> None:
        self.settings = settings
        self.var = settings.var_dir.resolve()
        self.pki = self.var / "pki"
        self.children: list[Child] = []
        self.environment = dict(os.environ)
        for name, _ in SERVICES:
            prefix = f"GOVHALL_{name.upper()}_"
            self.environment.setdefault(prefix + "PKI_DIR", str(self.pki))
            self.environment.setdefault(
                prefix + "DATABASE_URL", f"sqlite:///{self.var / 'db' / f'{name}.sqlite3'}")
            self.environment.setdefault(prefix + "TEMPORAL_ADDRESS", settings.temporal_target)
            self.environment.setdefault(prefix + "TEMPORAL_NAMESPACE", settings.namespace)
        self.environment.setdefault("GOVHALL_WORKER_TEMPORAL_ADDRESS", settings.temporal_target)
        self.environment.setdefault("GOVHALL_WORKER_TEMPORAL_NAMESPACE", settings.namespace)
        # The worker trusts the services' public keys, published under the PKI folder.
        self.environment.setdefault("GOVHALL_WORKER_PKI_DIR", str(self.pki))

    def service_settings(self) -> list[tuple[str, ServiceSettings]]:
        return [(name, cls.model_validate(_from_environment(self.environment, name)))
                for name, cls in SERVICES]

    def spawn(self, name: str, argv: list[str]) -> Child:
        (self.var / "log").mkdir(parents=True, exist_ok=True)
        log_path = self.var / "log" / f"{name}.log"
        log = log_path.open("ab")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                   env=self.environment, start_new_session=True)
        child = Child(name, process, log_path, log)
        self.children.append(child)
        return child

    def start_temporal(self) -> None:
        if self.settings.temporal_address:
            return
        (self.var / "temporal").mkdir(parents=True, exist_ok=True)
        s = self.settings
        argv = [
            str(BIN / "temporal"), "server", "start-dev",
            "--ip", s.host, "--port", str(s.temporal_port),
            "--ui-ip", s.host, "--ui-port", str(s.temporal_ui_port),
            "--http-port", str(s.temporal_http_port),
            "--metrics-port", str(s.temporal_metrics_port),
            "--db-filename", str(self.var / "temporal" / "temporal.db"),
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
            "--namespace", s.namespace, "--ui-disable-news-fetch", "--log-level", "warn",
        ]
        self.spawn("temporal", argv)

    async def wait_for_temporal(self, deadline: float) -> Client:
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            self.check_children()
            try:
                return await Client.connect(self.settings.temporal_target,
                                            namespace=self.settings.namespace)
            except Exception as error:  # not up yet
                last_error = error
                await asyncio.sleep(0.3)
        raise TimeoutError(f"Temporal did not answer at {self.settings.temporal_target}: "
                           f"{last_error}")

    async def register_search_attributes(self, client: Client) -> None:
        """Add whichever custom search attributes the namespace lacks."""
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=self.settings.namespace))
        missing = {key.name: IndexedValueType.ValueType(key.indexed_value_type)
                   for key in SEARCH_ATTRIBUTES if key.name not in existing.custom_attributes}
        if missing:
            await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
                namespace=self.settings.namespace, search_attributes=missing))

    def prepare_services(self) -> None:
        for name, _ in SERVICES:
            result = subprocess.run(
                [sys.executable, "-m", f"services.{name}.main", "prepare"],
                env=self.environment, capture_output=True, text=True, check=False)
            (self.var / "log").mkdir(parents=True, exist_ok=True)
            with (self.var / "log" / f"{name}.log").open("a", encoding="utf-8") as log:
                log.write(result.stdout + result.stderr)
            if result.returncode != 0:
                raise RuntimeError(f"preparing {name} failed:\n{result.stderr[-2000:]}")

    def start_services(self) -> None:
        for name, _ in SERVICES:
            self.spawn(name, [sys.executable, "-m", f"services.{name}.main", "serve"])
        if WORKFLOWS:
            self.spawn("worker", [sys.executable, "-m", "workflows.worker"])

    async def wait_until_serving(self, deadline: float) -> None:
        credentials = channel_credentials(self.pki, "operator")
        for name, settings in self.service_settings():
            while True:
                self.check_children()
                try:
                    async with grpc.aio.secure_channel(settings.address, credentials) as channel:
                        reply = await health_pb2_grpc.HealthStub(channel).Check(
                            health_pb2.HealthCheckRequest(service=""), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.aio.AioRpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not become healthy at {settings.address}")
                await asyncio.sleep(0.3)

    async def wait_for_workflow_worker(self, client: Client, deadline: float) -> None:
        """Until the workflows worker polls its task queue."""
        if not WORKFLOWS:
            return
        request = DescribeTaskQueueRequest(
            namespace=self.settings.namespace,
            task_queue=TaskQueue(name=WORKFLOW_TASK_QUEUE),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
        while time.monotonic() < deadline:
            self.check_children()
            reply = await client.workflow_service.describe_task_queue(request)
            if reply.pollers:
                return
            await asyncio.sleep(0.3)
        raise TimeoutError(f"the workflows worker did not poll {WORKFLOW_TASK_QUEUE}")

    def check_children(self) -> None:
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                tail = child.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
                raise RuntimeError(f"{child.name} exited with {code}; its log ends:\n{tail}")

    def stop(self) -> None:
        """Stop services and worker first, Temporal last; each gets time to finish."""
        for group in (["worker"], [n for n, _ in SERVICES], ["temporal"]):
            members = [c for c in self.children if c.name in group]
            for child in members:
                if child.process.poll() is None:
                    child.process.send_signal(signal.SIGTERM)
            for child in members:
                try:
                    child.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()
                child.log.close()

    def addresses(self) -> str:
        s = self.settings
        lines = ["", "govhall is running (embedded default). Ctrl-C stops everything.", ""]
        if s.temporal_address:
            lines.append(f"  Temporal cluster      {s.temporal_address}  namespace {s.namespace}")
        else:
            lines += [
                f"  Temporal frontend     {s.host}:{s.temporal_port}  namespace {s.namespace}",
                f"  Temporal UI           http://{s.host}:{s.temporal_ui_port}",
            ]
        for name, settings in self.service_settings():
            lines.append(f"  {name:<21} {settings.address}  (gRPC, mTLS; "
                         f"activities on {settings.task_queue})")
        lines.append("  workflows worker      " + (
            f"running {', '.join(w.__name__ for w in WORKFLOWS)} on {WORKFLOW_TASK_QUEUE}"
            if WORKFLOWS else "not started: no workflows yet"))
        lines += ["", "  Certificates (var/pki):",
                  f"    CA                  {ca_cert_path(self.pki)}",
                  f"    server              {server_pair(self.pki).cert}"]
        for system in SAMPLE_SYSTEMS:
            pair = client_pair(self.pki, system)
            lines.append(f"    client {system:<28} {pair.cert}  (key {pair.key.name})")
        lines += ["", f"  Databases             {self.var / 'db'}",
                  f"  Logs                  {self.var / 'log'}", ""]
        return "\n".join(lines)


def _from_environment(environment: dict[str, str], name: str) -> dict[str, str]:
    prefix = f"GOVHALL_{name.upper()}_"
    return {k[len(prefix):].lower(): v for k, v in environment.items() if k.startswith(prefix)}


async def run(settings: RunnerSettings) -> int:
    suite = Suite(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        started = time.monotonic()
        deadline = started + settings.ready_timeout_seconds
        ensure_pki(suite.pki)
        suite.start_temporal()
        client = await suite.wait_for_temporal(deadline)
        await suite.register_search_attributes(client)
        suite.prepare_services()
        suite.start_services()
        await suite.wait_until_serving(deadline)
        await suite.wait_for_workflow_worker(client, deadline)
        print(suite.addresses(), flush=True)
        print(f"ready in {time.monotonic() - started:.1f}s", flush=True)
        while not stop.is_set():
            suite.check_children()
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except TimeoutError:
                continue
        print("stopping...", flush=True)
        return 0
    except (RuntimeError, TimeoutError) as error:
        print(f"govhall could not run: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        suite.stop()
        print("stopped", flush=True)


def main() -> None:
    raise SystemExit(asyncio.run(run(RunnerSettings())))


if __name__ == "__main__":
    main()
