"""What every service process does around its own code.

A service names its settings, migrations, servicer, activities and sample
data loader in a ``ServiceDefinition``; ``prepare`` migrates and loads the
sample data once, ``serve`` runs the gRPC server and the activity worker
until SIGINT/SIGTERM and then stops both cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import structlog
from sqlalchemy import Engine
from temporalio.worker import Worker

from govhall.common.v1 import audit_pb2_grpc, systems_pb2_grpc
from kernel.auditapi import AUDIT_CHECKPOINTS_SERVICE, AuditCheckpointsServicer
from kernel.audittrail import AuditTrail, AuditTrailService
from kernel.checkpoints import CheckpointPolicy
from kernel.db import make_engine
from kernel.grpcserver import create_server, mark_not_serving, mark_serving
from kernel.logging import configure_logging
from kernel.migrations import upgrade
from kernel.privatefiles import set_private_umask
from kernel.settings import ServiceSettings
from kernel.systems import SERVICE_NAME as SYSTEMS_SERVICE
from kernel.systems import RegistryUnitOfWork, SystemRegistry, load_sample_systems
from kernel.systems_api import CallingSystemsServicer
from kernel.temporal import BackgroundWorker, TemporalSecurity, connect_with

log = structlog.get_logger("govhall.service")


@dataclass(frozen=True)
class ServiceDefinition:
    """The parts of one service, wired together by its main.py."""

    name: str
    settings_type: type[ServiceSettings]
    migrations_dir: Path
    #: Fully qualified gRPC service names, for health and reflection.
    service_names: Sequence[str]
    #: Adds the service's servicer(s) to a server; returns the work the process runs beside
    #: them until it stops (an outbox, say), or None.
    register: Callable[[grpc.aio.Server, Engine, ServiceSettings],
                       Sequence[Coroutine[Any, Any, None]] | None]
    #: The activity callables this service hosts on its task queue.
    activities: Callable[[Engine, ServiceSettings], Sequence[Callable[..., Any]]]
    #: Makes what the service needs on first start (keys, sample directory data in an
    #: empty database); returns True if it loaded the sample data.
    load_sample: Callable[[Engine, ServiceSettings], bool]
    #: The service's audit log, checkpoints and authority rows: the checkpoint feed is
    #: mounted and checkpoints are published on the settings' policy.
    audit_trail: AuditTrail | None = None


def served_service_names(definition: ServiceDefinition) -> tuple[str, ...]:
    """The gRPC services a service's server serves: its own, the registry's and, with
    an audit trail, the checkpoint feed."""
    audit = (AUDIT_CHECKPOINTS_SERVICE,) if definition.audit_trail is not None else ()
    return (*definition.service_names, SYSTEMS_SERVICE, *audit)


@dataclass
class RunningService:
    server: grpc.aio.Server
    port: int
    engine: Engine
    #: The activity worker; it connects to Temporal in the background.
    activity_worker: BackgroundWorker | None
    health: Any
    registry: SystemRegistry
    #: Publishes the audit checkpoints the settings' policy asks for, until it is set.
    checkpoints_task: asyncio.Task[None] | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    #: Work the service runs beside its servicers until it stops (intake's outbox).
    background: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def worker(self) -> Worker | None:
        """The activity worker once it has connected to Temporal."""
        return self.activity_worker.worker if self.activity_worker else None

    @property
    def worker_task(self) -> asyncio.Task[None] | None:
        return self.activity_worker.task if self.activity_worker else None

    async def stop(self, grace: float) -> None:
        await mark_not_serving(self.health)
        self.stopping.set()
        if self.checkpoints_task is not None:
            await self.checkpoints_task
        # The work beside the servicers stops first: some of it holds calls open until it
        # ends (trading's WatchTrades streams), which the server would otherwise wait for
        # through the whole grace period.
        for task in self.background:
            task.cancel()
        for task in self.background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.server.stop(grace)
        try:
            if self.activity_worker is not None:
                await self.activity_worker.shutdown()
        finally:
            self.engine.dispose()


def prepare(definition: ServiceDefinition, settings: ServiceSettings) -> bool:
    """Apply migrations and load the sample data if the database is new.

    The registry of calling systems is loaded once, on its own: a database
    made before the registry existed gets it on its next start.
    """
    url = settings.resolved_database_url()
    upgrade(migrations_dir=definition.migrations_dir, url=url)
    engine = make_engine(url)
    try:
        loaded = definition.load_sample(engine, settings)
        registry = load_sample_systems(uow=RegistryUnitOfWork(engine),
                                       sample_dir=settings.sample_dir)
        return loaded or registry
    finally:
        engine.dispose()


async def start(definition: ServiceDefinition, settings: ServiceSettings) -> RunningService:
    """Start the gRPC server (and the activity worker if configured)."""
    engine = make_engine(settings.resolved_database_url())
    registry = SystemRegistry(engine, ttl_seconds=settings.systems_cache_seconds)
    audit = (AuditTrailService(engine, definition.audit_trail, service=settings.service,
                               pki_dir=settings.pki_dir)
             if definition.audit_trail is not None else None)

    beside: list[Coroutine[Any, Any, None]] = []

    def register(server: grpc.aio.Server) -> None:
        beside.extend(definition.register(server, engine, settings) or ())
        systems_pb2_grpc.add_CallingSystemsServiceServicer_to_server(
            CallingSystemsServicer(engine, registry), server)
        if audit is not None:
            audit_pb2_grpc.add_AuditCheckpointsServiceServicer_to_server(
                AuditCheckpointsServicer(audit), server)

    service_names = served_service_names(definition)
    server, port, health = await create_server(
        settings.address, register=register, service_names=service_names,
        pki_dir=settings.pki_dir, registry=registry,
        max_message_bytes=settings.max_message_bytes)
    await server.start()
    activity_worker: BackgroundWorker | None = None
    if settings.run_activity_worker:
        # Keys and TLS files are read now, so a bad one stops the start at once; the
        # connection itself is made in the background and retried while Temporal is down.
        security = TemporalSecurity.from_settings(settings)
        activities = list(definition.activities(engine, settings))
        activity_worker = BackgroundWorker(
            name=definition.name,
            connect=lambda: connect_with(settings, security=security),
            make_worker=lambda client: Worker(
                client, task_queue=settings.task_queue, activities=activities,
                graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_seconds)),
            retry_wait_max=timedelta(seconds=settings.temporal_retry_max_seconds))
    stopping = asyncio.Event()
    checkpoints_task: asyncio.Task[None] | None = None
    policy = CheckpointPolicy(settings.audit_checkpoint_every_entries,
                              settings.audit_checkpoint_interval_seconds,
                              settings.audit_checkpoint_poll_seconds)
    if audit is not None and policy.active:
        checkpoints_task = asyncio.create_task(audit.run_checkpoints(policy, stopping))
    background = [asyncio.create_task(work) for work in beside]
    await mark_serving(health, service_names)
    log.info("service.started", address=f"{settings.host}:{port}",
             task_queue=settings.task_queue if activity_worker else None)
    return RunningService(server, port, engine, activity_worker, health, registry,
                          checkpoints_task, stopping, background)


async def serve(definition: ServiceDefinition, settings: ServiceSettings) -> None:
    running = await start(definition, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiters: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
    if running.worker_task is not None:
        waiters.append(running.worker_task)  # a worker that dies takes the service down
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    log.info("service.stopping")
    # Re-raises what killed the worker, so the process exits non-zero.
    await running.stop(settings.shutdown_grace_seconds)
    log.info("service.stopped")


def main(definition: ServiceDefinition, argv: Sequence[str] | None = None) -> None:
    """``python -m services.<name>.main [prepare|serve]`` (default: prepare, then serve)."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "run"
    set_private_umask()
    settings = definition.settings_type()
    configure_logging(service=definition.name, level=settings.log_level)
    if command in ("prepare", "run"):
        loaded = prepare(definition, settings)
        log.info("service.prepared", sample_loaded=loaded)
    if command in ("serve", "run"):
        asyncio.run(serve(definition, settings))
    elif command != "prepare":
        raise SystemExit(f"unknown command {command!r}: use prepare, serve or run")
