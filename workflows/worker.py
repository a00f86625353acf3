"""The workflows worker: runs every govhall workflow on the task queue govhall-workflows.

``python -m workflows.worker``; settings from GOVHALL_WORKER_* variables.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.worker import Worker

from kernel.logging import configure_logging
from kernel.settings import VAR
from kernel.signing import TrustedKeys, public_keys_dir, trust_in_workflows
from kernel.temporal import connect
from workflows.approval import ApprovalWorkflow

#: Every workflow class the worker serves; the runner starts the worker when it is not empty.
WORKFLOWS: list[type[Any]] = [ApprovalWorkflow]


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GOVHALL_WORKER_", extra="ignore", frozen=True)

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    log_level: str = "info"
    #: The workflows' task queue is this prefix and ``workflows``.
    task_queue_prefix: str = "govhall-"
    #: Where the CA and the services' published keys live (the embedded default's).
    pki_dir: Path = VAR / "pki"
    #: The services' public keys (``<service>/<key id>.pub``); empty for ``<pki_dir>/services``.
    public_keys_dir: Path | None = None

    def trusted_keys(self) -> TrustedKeys:
        return TrustedKeys.load(self.public_keys_dir or public_keys_dir(self.pki_dir))


async def run(settings: WorkerSettings) -> None:
    # The validators refuse a statement no service signed, before a workflow takes it.
    trust_in_workflows(settings.trusted_keys())
    client = await connect(settings.temporal_address, settings.temporal_namespace)
    worker = Worker(client, task_queue=f"{settings.task_queue_prefix}workflows",
                    workflows=WORKFLOWS)
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
