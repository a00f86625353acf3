"""The workflows worker: runs every govhall workflow on the task queue govhall-workflows.

``python -m workflows.worker``; settings from GOVHALL_WORKER_* variables.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from pydantic_settings import SettingsConfigDict
from temporalio.worker import Worker

from kernel.logging import configure_logging
from kernel.settings import TemporalClientSettings
from kernel.temporal import WORKFLOW_TASK_QUEUE, connect
from workflows.approval import ApprovalWorkflow

#: Every workflow class the worker serves; the runner starts the worker when it is not empty.
WORKFLOWS: list[type[Any]] = [ApprovalWorkflow]


class WorkerSettings(TemporalClientSettings):
    """GOVHALL_WORKER_*: how to reach Temporal (kernel.settings.TemporalClientSettings)."""

    model_config = SettingsConfigDict(env_prefix="GOVHALL_WORKER_", extra="ignore", frozen=True)

    log_level: str = "info"


async def run(settings: WorkerSettings) -> None:
    client = await connect(settings.temporal_address, settings.temporal_namespace,
                           api_key=settings.temporal_api_key())
    worker = Worker(client, task_queue=WORKFLOW_TASK_QUEUE, workflows=WORKFLOWS)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.shutdown()))
    await worker.run()


def main() -> None:
    # The sandbox imports the workflow modules afresh for every run; a bytecode cache
    # spares compiling them from source each time, even where the environment turned
    # writing it off (PYTHONDONTWRITEBYTECODE).
    sys.dont_write_bytecode = False
    settings = WorkerSettings()
    configure_logging(service="workflows", level=settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
