"""The embedded runner: the whole suite on one machine, the README's first command.

It sets the umask 077 and makes var/ private, makes the local CA, starts
the codec server (operators decode encrypted payloads through it, on 8234)
and the Temporal dev server (SQLite file under var/, custom search
attributes registered, UI on 8233 pointed at the codec server), migrates every
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
from kernel.codec_server import browser_bundle, token_path
from kernel.grpcserver import channel_credentials
from kernel.pki import SAMPLE_SYSTEMS, ca_cert_path, client_pair, ensure_pki, server_pair
from kernel.privatefiles import make_private, set_private_umask
from kernel.settings import VAR, ServiceSettings, TemporalClientSettings
from kernel.temporal import WORKFLOW_TASK_QUEUE, TemporalSecurity, connect_with
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
    #: TLS to the cluster's frontend and the token its authorizer wants (see
    #: kernel.settings.TemporalClientSettings); the runner hands them to every process
    #: it starts.
    temporal_tls_ca: Path | None = None
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_server_name: str = ""
    temporal_api_key_file: Path | None = None
    #: Port of the codec server, which decodes payloads for operators in the Temporal UI.
    codec_port: int = Field(default=8234, ge=1, le=65535)
    ready_timeout_seconds: float = Field(default=120.0, gt=0)

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"{self.host}:{self.temporal_port}"

    @property
    def codec_endpoint(self) -> str:
        return f"https://{self.host}:{self.codec_port}"

    @property
    def ui_origins(self) -> list[str]:
        """Where the Temporal UI's pages come from, for the codec server's CORS."""
        origins = [f"http://{self.host}:{self.temporal_ui_port}"]
        if self.host == "127.0.0.1":
            origins.append(f"http://localhost:{self.temporal_ui_port}")
        return origins

    def temporal_client_settings(self) -> TemporalClientSettings:
        return TemporalClientSettings(
            temporal_address=self.temporal_target, temporal_namespace=self.namespace,
            pki_dir=self.var_dir.resolve() / "pki", temporal_tls_ca=self.temporal_tls_ca,
            temporal_tls_cert=self.temporal_tls_cert, temporal_tls_key=self.temporal_tls_key,
            temporal_tls_server_name=self.temporal_tls_server_name,
            temporal_api_key_file=self.temporal_api_key_file)

    def temporal_client_environment(self) -> dict[str, str]:
        """TEMPORAL_TLS_* and TEMPORAL_API_KEY_FILE values to hand to the processes
        (without their prefix)."""
        values = {"TEMPORAL_TLS_CA": self.temporal_tls_ca,
                  "TEMPORAL_TLS_CERT": self.temporal_tls_cert,
                  "TEMPORAL_TLS_KEY": self.temporal_tls_key,
                  "TEMPORAL_TLS_SERVER_NAME": self.temporal_tls_server_name,
                  "TEMPORAL_API_KEY_FILE": self.temporal_api_key_file}
        return {name: str(value) for name, value in values.items() if value}


class Suite:
    def __init__(self, settings: RunnerSettings) -> None:
        self.settings = settings
        self.var = settings.var_dir.resolve()
        self.pki = self.var / "pki"
        self.children: list[Child] = []
        # The embedded default's settings, unless the environment says otherwise.
        defaults: dict[str, str] = {}
        for name, _ in SERVICES:
            defaults |= processes.service_environment(
                name, var_dir=self.var, temporal_address=settings.temporal_target,
                namespace=settings.namespace)
        review = ReviewSettings.model_validate(
            _from_environment(defaults | dict(os.environ), "review"))
        defaults |= processes.worker_environment(
            var_dir=self.var, temporal_address=settings.temporal_target,
            namespace=settings.namespace, review_address=review.address)
        intake = IntakeSettings.model_validate(
            _from_environment(defaults | dict(os.environ), "intake"))
        trading = TradingSettings.model_validate(
            _from_environment(defaults | dict(os.environ), "trading"))
        defaults |= processes.complaints_environment(intake_address=intake.address,
                                                     trading_address=trading.address)
        defaults |= processes.holiday_schedules_environment(review_address=review.address)
        for prefix in [f"GOVHALL_{name.upper()}_" for name, _ in SERVICES] + ["GOVHALL_WORKER_"]:
            defaults |= {prefix + name: value
                         for name, value in settings.temporal_client_environment().items()}
        defaults |= processes.codec_server_environment(
            var_dir=self.var, host=settings.host, port=settings.codec_port,
            ui_origins=settings.ui_origins)
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
            "--ui-codec-endpoint", s.codec_endpoint,
        ]
        self.spawn("temporal", argv)

    def start_codec_server(self) -> None:
        browser_bundle(self.pki, "operator")
        self.spawn(processes.CODEC_SERVER, processes.serve_command(processes.CODEC_SERVER))

    async def wait_for_codec_server(self, deadline: float) -> None:
        """Until the codec server answers its health check over TLS."""
        await processes.until_codec_server_answers(
            self.settings.codec_endpoint, self.pki, deadline=deadline, check=self.check_children)

    async def wait_for_temporal(self, deadline: float) -> Client:
        client_settings = self.settings.temporal_client_settings()
        security = TemporalSecurity.from_settings(client_settings)
        return await processes.until_connected(
            lambda: connect_with(client_settings, security=security),
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
        for group in ([processes.WORKER], [n for n, _ in SERVICES] + [processes.CODEC_SERVER],
                      ["temporal"]):
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
        lines += [
            f"  Codec server          {s.codec_endpoint}  (decodes payloads for operators: "
            f"client certificate {client_pair(self.pki, 'operator').cert.with_suffix('.p12')};",
            "                        in the UI's codec settings turn on "
            "\"Include cross-origin credentials\";",
            f"                        the CLI: bearer token {token_path(self.pki)})",
        ]
        for name, settings in self.service_settings():
            lines.append(f"  {name:<21} {settings.address}  (gRPC, mTLS; "
                         f"activities on {settings.task_queue})")
        for _, settings in self.service_settings():
            if isinstance(settings, ComplaintsSettings) and settings.open311_enabled:
                lines.append(f"  Open311 GeoReport v2  {settings.open311_url}  (HTTPS, the "
                             "center's CA; platforms' api keys in "
                             f"{settings.resolved_open311_api_keys_file()})")
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
        suite.var.mkdir(parents=True, exist_ok=True)
        # Files made before everything was private (databases, logs, keys) become so.
        make_private(suite.var)
        ensure_pki(suite.pki)
        suite.start_codec_server()
        await suite.wait_for_codec_server(deadline)
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
    set_private_umask()
    raise SystemExit(asyncio.run(run(RunnerSettings())))


if __name__ == "__main__":
    main()
