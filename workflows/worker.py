"""The workflows worker: runs every govhall workflow on the task queue govhall-workflows.

``python -m workflows.worker``; settings from GOVHALL_WORKER_* variables.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta
from typing import Any

from pydantic_settings import SettingsConfigDict
from temporalio.worker import Worker

from kernel.logging import configure_logging
from kernel.privatefiles import set_private_umask
from kernel.settings import TemporalClientSettings
from kernel.temporal import (
    WORKFLOW_TASK_QUEUE,
    BackgroundWorker,
    TemporalSecurity,
    connect_with,
)
from workflows.approval import ApprovalWorkflow

#: Every workflow class the worker serves; the runner starts the worker when it is not empty.
WORKFLOWS: list[type[Any]] = [ApprovalWorkflow]


class WorkerSettings(TemporalClientSettings):
    """GOVHALL_WORKER_*: Temporal's address, namespace, TLS, payload keys and token (see
    kernel.settings.TemporalClientSettings), and the log level."""

    model_config = SettingsConfigDict(env_prefix="GOVHALL_WORKER_", extra="ignore", frozen=True)

    log_level: str = "info"


async def run(settings: WorkerSettings) -> None:
    """Serve the workflows until SIGINT/SIGTERM; connects (and waits for Temporal) first.

    Started while Temporal is down, it keeps trying and polls once Temporal answers.
    """
    security = TemporalSecurity.from_settings(settings)
    background = BackgroundWorker(
        name="workflows", connect=lambda: connect_with(settings, security=security),
        make_worker=lambda client: Worker(client, task_queue=WORKFLOW_TASK_QUEUE,
                                          workflows=WORKFLOWS),
        retry_wait_max=timedelta(seconds=settings.temporal_retry_max_seconds))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([stopping, background.task], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    # Re-raises what killed the worker, so the process exits non-zero.
    await background.shutdown()


def main() -> None:
    set_private_umask()
    # The sandbox imports the workflow modules afresh for every run; a bytecode cache
    # spares compiling them from source each time, even where the environment turned
    # writing it off (PYTHONDONTWRITEBYTECODE).
    sys.dont_write_bytecode = False
    settings = WorkerSettings()
    configure_logging(service="workflows", level=settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
