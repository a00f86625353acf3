"""The workflows worker: runs every govhall workflow on the task queue govhall-workflows.

``python -m workflows.worker``; settings from GOVHALL_WORKER_* variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import stamina
import structlog
from pydantic_settings import SettingsConfigDict
from temporalio.worker import Worker

from govhall.review.v1 import review_pb2, review_pb2_grpc
from kernel.grpcserver import secure_channel
from kernel.logging import configure_logging
from kernel.privatefiles import set_private_umask
from kernel.settings import TemporalClientSettings
from kernel.signing import TrustedKeys, public_keys_dir, trust_in_workflows
from kernel.temporal import BackgroundWorker, TemporalSecurity, connect_with
from workflows import refused_acts
from workflows.approval import ApprovalWorkflow
from workflows.complaint import ComplaintWorkflow
from workflows.listing import ListingWorkflow
from workflows.tender import TenderWorkflow

if TYPE_CHECKING:
    from govhall.review.v1.review_pb2_grpc import ReviewServiceAsyncStub

log = structlog.get_logger("govhall.workflows")

#: Every workflow class the worker serves; the runner starts the worker when it is not empty.
WORKFLOWS: list[type[Any]] = [ApprovalWorkflow, ComplaintWorkflow, TenderWorkflow,
                              ListingWorkflow]


class WorkerSettings(TemporalClientSettings):
    """GOVHALL_WORKER_*: Temporal's address, namespace, TLS, payload keys and token (see
    kernel.settings.TemporalClientSettings), and the log level."""

    model_config = SettingsConfigDict(env_prefix="GOVHALL_WORKER_", extra="ignore", frozen=True)

    log_level: str = "info"
    #: The workflows' task queue is this prefix and ``workflows``.
    task_queue_prefix: str = "govhall-"
    #: The services' public keys (``<service>/<key id>.pub``); empty for ``<pki_dir>/services``.
    public_keys_dir: Path | None = None
    #: Review's gRPC address, where refused acts are reported (RecordRefusedAct); empty:
    #: they are only logged.
    review_address: str = ""
    #: The calling system the worker is to review (its client certificate under pki_dir).
    system: str = "workflows-worker"
    #: Longest a refused act's report keeps being retried while review is unreachable.
    report_retry_seconds: float = 600.0

    @property
    def workflow_task_queue(self) -> str:
        return f"{self.task_queue_prefix}workflows"

    def trusted_keys(self) -> TrustedKeys:
        """The services' public keys the workflows' validators check statements with."""
        return TrustedKeys.load(self.public_keys_dir or public_keys_dir(self.pki_dir))


#: Review's answers worth trying again: it is down, restarting or slow.
_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                        grpc.StatusCode.RESOURCE_EXHAUSTED})


def _transient(error: Exception) -> bool:
    return isinstance(error, grpc.aio.AioRpcError) and error.code() in _TRANSIENT


def review_sender(stub: ReviewServiceAsyncStub, *, retry_seconds: float,
                  ) -> Callable[[refused_acts.RefusedAct], Awaitable[None]]:
    """Sends one refused act to review, retrying while review is unreachable."""

    async def send(act: refused_acts.RefusedAct) -> None:
        request = review_pb2.RecordRefusedActRequest(
            case_number=act.case_number, report_id=act.report_id,
            update_name=act.update_name, reason=act.reason)
        request.refused_at.FromDatetime(act.refused_at)
        async for attempt in stamina.retry_context(on=_transient, attempts=None,
                                                   timeout=retry_seconds, wait_max=10.0):
            with attempt:
                await stub.RecordRefusedAct(request, timeout=10)

    return send


async def run(settings: WorkerSettings) -> None:
    """Serve the workflows until SIGINT/SIGTERM; connects (and waits for Temporal) first.

    Started while Temporal is down, it keeps trying and polls once Temporal answers.
    """
    # The validators refuse a statement no service signed, before a workflow takes it.
    trust_in_workflows(settings.trusted_keys())
    security = TemporalSecurity.from_settings(settings)
    background = BackgroundWorker(
        name="workflows", connect=lambda: connect_with(settings, security=security),
        make_worker=lambda client: Worker(client, task_queue=settings.workflow_task_queue,
                                          workflows=WORKFLOWS),
        retry_wait_max=timedelta(seconds=settings.temporal_retry_max_seconds))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with reporting_refusals(settings):
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([stopping, background.task], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        # Re-raises what killed the worker, so the process exits non-zero.
        await background.shutdown()


@contextlib.asynccontextmanager
async def reporting_refusals(settings: WorkerSettings, *,
                             drain_seconds: float = 10.0) -> AsyncIterator[None]:
    """While the worker runs, its workflows' refusals of forged acts go to review.

    On the way out (the workflows stopped, so no refusal comes any more) the
    reports still waiting get ``drain_seconds`` to reach review; any left are
    counted in the log, since a refused update is in no history to find again.
    """
    if not settings.review_address:
        yield
        return
    channel = secure_channel(settings.review_address, pki_dir=settings.pki_dir,
                             system=settings.system)
    reporter = refused_acts.Reporter(
        review_sender(review_pb2_grpc.ReviewServiceStub(channel),
                      retry_seconds=settings.report_retry_seconds),
        loop=asyncio.get_running_loop())
    refused_acts.listen(reporter.take)
    reporting = asyncio.create_task(reporter.run())
    try:
        yield
    finally:
        refused_acts.listen(None)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_seconds):
                await reporter.drained()
        if reporter.waiting:
            log.warning("violation.reports_not_kept_at_stop", waiting=reporter.waiting)
        reporting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporting
        await channel.close(grace=None)


def main() -> None:
    set_private_umask()
    # The sandbox imports the workflow modules afresh for every run; a bytecode cache
    # spares compiling them from source each time, even where the environment turned
    # writing it off (PYTHONDONTWRITEBYTECODE).
    sys.dont_write_bytecode = False
    settings = WorkerSettings()
    configure_logging(service="workflows", level=settings.log_level)
    asyncio.run(run(settings))
    # Stopped cleanly. The Temporal SDK's native threads can outlive the event loop and
    # abort the interpreter's own teardown (temporalio/sdk-python#300: "PyGILState_Release
    # ... finalizing", SIGABRT), which would turn a clean stop into a crash: skip it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
