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

from kernel.db import make_engine
from kernel.grpcserver import create_server, mark_not_serving, mark_serving
from kernel.logging import configure_logging
from kernel.migrations import upgrade
from kernel.settings import ServiceSettings
from kernel.temporal import connect

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


@dataclass
class RunningService:
    server: grpc.aio.Server
    port: int
    engine: Engine
    worker: Worker | None
    worker_task: asyncio.Task[None] | None
    health: Any
    background: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self, grace: float) -> None:
        await mark_not_serving(self.health)
        await self.server.stop(grace)
        for task in self.background:
            task.cancel()
        for task in self.background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.worker is not None:
            await self.worker.shutdown()
        if self.worker_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.worker_task
        self.engine.dispose()


def prepare(definition: ServiceDefinition, settings: ServiceSettings) -> bool:
    """Apply migrations and load the sample data if the database is new."""
    url = settings.resolved_database_url()
    upgrade(migrations_dir=definition.migrations_dir, url=url)
    engine = make_engine(url)
    try:
        return definition.load_sample(engine, settings)
    finally:
        engine.dispose()


async def start(definition: ServiceDefinition, settings: ServiceSettings) -> RunningService:
    """Start the gRPC server (and the activity worker if configured)."""
    engine = make_engine(settings.resolved_database_url())
    beside: list[Coroutine[Any, Any, None]] = []

    def register(server: grpc.aio.Server) -> None:
        beside.extend(definition.register(server, engine, settings) or ())

    server, port, health = await create_server(
        settings.address,
        register=register,
        service_names=definition.service_names,
        pki_dir=settings.pki_dir,
        max_message_bytes=settings.max_message_bytes,
    )
    await server.start()
    worker: Worker | None = None
    worker_task: asyncio.Task[None] | None = None
    if settings.run_activity_worker:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        worker = Worker(client, task_queue=settings.task_queue,
                        activities=list(definition.activities(engine, settings)),
                        graceful_shutdown_timeout=timedelta(
                        seconds=settings.shutdown_grace_seconds))
        worker_task = asyncio.create_task(worker.run())
    background = [asyncio.create_task(work) for work in beside]
    await mark_serving(health, definition.service_names)
    log.info("service.started", address=f"{settings.host}:{port}",
             task_queue=settings.task_queue if worker else None)
    return RunningService(server, port, engine, worker, worker_task, health, background)


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
    await running.stop(settings.shutdown_grace_seconds)
    log.info("service.stopped")


def main(definition: ServiceDefinition, argv: Sequence[str] | None = None) -> None:
    """``python -m services.<name>.main [prepare|serve]`` (default: prepare, then serve)."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "run"
    settings = definition.settings_type()
    configure_logging(service=definition.name, level=settings.log_level)
    if command in ("prepare", "run"):
        loaded = prepare(definition, settings)
        log.info("service.prepared", sample_loaded=loaded)
    if command in ("serve", "run"):
        asyncio.run(serve(definition, settings))
    elif command != "prepare":
        raise SystemExit(f"unknown command {command!r}: use prepare, serve or run")
