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
import sys
import time
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.client import Client

from deploy.local import processes
from deploy.local.processes import Child
from kernel.grpcserver import channel_credentials
from kernel.pki import SAMPLE_SYSTEMS, ca_cert_path, client_pair, ensure_pki, server_pair
from kernel.settings import VAR, ServiceSettings
from kernel.temporal import WORKFLOW_TASK_QUEUE
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


class Suite:
    def __init__(self, settings: RunnerSettings) -> None:
        self.settings = settings
        self.var = settings.var_dir.resolve()
        self.pki = self.var / "pki"
        self.children: list[Child] = []
        # The embedded default's settings, unless the environment says otherwise.
        defaults: dict[str, str] = processes.worker_environment(
            temporal_address=settings.temporal_target, namespace=settings.namespace)
        for name, _ in SERVICES:
            defaults |= processes.service_environment(
                name, var_dir=self.var, temporal_address=settings.temporal_target,
                namespace=settings.namespace)
        self.environment = defaults | dict(os.environ)

    def service_settings(self) -> list[tuple[str, ServiceSettings]]:
        return [(name, cls.model_validate(_from_environment(self.environment, name)))
                for name, cls in SERVICES]

    def spawn(self, name: str, argv: list[str]) -> Child:
        child = processes.spawn(name, argv, environment=self.environment,
                                log_dir=self.var / "log")
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
        return await processes.until_connected(
            lambda: Client.connect(self.settings.temporal_target,
                                   namespace=self.settings.namespace),
            deadline=deadline, check=self.check_children, what=self.settings.temporal_target)

    async def register_search_attributes(self, client: Client) -> None:
        """Add whichever custom search attributes the namespace lacks."""
        await processes.register_search_attributes(client, self.settings.namespace)

    def prepare_services(self) -> None:
        for name, _ in SERVICES:
            processes.run_to_end(name, processes.prepare_command(name),
                                 environment=self.environment, log_dir=self.var / "log",
                                 timeout=self.settings.ready_timeout_seconds)

    def start_services(self) -> None:
        for name, _ in SERVICES:
            self.spawn(name, processes.serve_command(name))
        if WORKFLOWS:
            self.spawn(processes.WORKER, processes.serve_command(processes.WORKER))

    async def wait_until_serving(self, deadline: float) -> None:
        credentials = channel_credentials(self.pki, "operator")
        for name, settings in self.service_settings():
            await processes.until_healthy(settings.address, credentials, deadline=deadline,
                                          check=self.check_children, name=name)

    async def wait_for_workflow_worker(self, client: Client, deadline: float) -> None:
        """Until the workflows worker polls its task queue."""
        if not WORKFLOWS:
            return
        await processes.until_polling(
            client, namespace=self.settings.namespace, task_queue=WORKFLOW_TASK_QUEUE,
            kind=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, deadline=deadline,
            check=self.check_children, name="the workflows worker")

    def check_children(self) -> None:
        for child in self.children:
            child.check()

    def stop(self) -> None:
        """Stop services and worker first, Temporal last; each group gets time to finish."""
        for group in ([processes.WORKER], [n for n, _ in SERVICES], ["temporal"]):
            processes.stop([c for c in self.children if c.name in group], timeout=20)

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
