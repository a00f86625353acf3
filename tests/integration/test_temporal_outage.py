"""Services and the workflows worker start while Temporal is down and poll once it is up.

A service's gRPC server answers (health SERVING, reads) before Temporal
answers; its activity worker keeps trying in the background. A worker that
dies for good still takes its process down with a non-zero exit.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from govhall.review.v1 import review_pb2, review_pb2_grpc
from kernel.grpcserver import secure_channel
from kernel.service import prepare, start
from kernel.temporal import WORKFLOW_TASK_QUEUE, TemporalSecurity, data_converter
from services.review.main import DEFINITION
from tests.e2e.suite import free_ports

BIN = Path(sys.executable).parent
DEADLINE_SECONDS = 60


async def within(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {DEADLINE_SECONDS}s")
        await asyncio.sleep(0.1)


async def dev_server_on(port: int, security: TemporalSecurity) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        port=port, dev_server_existing_path=str(BIN / "temporal"),
        data_converter=data_converter(security.codec), dev_server_log_level="error",
        dev_server_extra_args=["--ui-disable-news-fetch"])


async def polled(client: Client, task_queue: str, kind: TaskQueueType.ValueType) -> bool:
    reply = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
        task_queue_type=kind))
    return bool(reply.pollers)


async def test_a_service_serves_reads_while_temporal_is_down_and_polls_once_it_is_up(
        tmp_path: Path, pki_dir: Path, temporal_security: TemporalSecurity) -> None:
    [port] = free_ports(1)
    settings = DEFINITION.settings_type(
        port=0, database_url=f"sqlite:///{tmp_path / 'review.sqlite3'}", pki_dir=pki_dir,
        run_activity_worker=True, temporal_address=f"127.0.0.1:{port}",
        temporal_retry_max_seconds=0.5, shutdown_grace_seconds=0.5)
    prepare(DEFINITION, settings)
    running = await start(DEFINITION, settings)
    environment: WorkflowEnvironment | None = None
    try:
        async with secure_channel(f"127.0.0.1:{running.port}", pki_dir=pki_dir,
                                  system="operator") as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""))
            officials = await review_pb2_grpc.ReviewServiceStub(channel).ListOfficials(
                review_pb2.ListOfficialsRequest(page_size=500))
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert officials.officials
        assert running.activity_worker is not None
        assert not running.activity_worker.connected.is_set()
        assert not running.activity_worker.task.done()

        environment = await dev_server_on(port, temporal_security)
        await within("the activity worker connecting", running.activity_worker.connected.wait)
        await within("the activity worker polling", lambda: polled(
            environment.client, settings.task_queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY))
    finally:
        await running.stop(0.5)
        if environment is not None:
            await environment.shutdown()


async def test_the_workflows_worker_starts_while_temporal_is_down_and_polls_once_it_is_up(
        tmp_path: Path, pki_dir: Path, temporal_security: TemporalSecurity) -> None:
    [port] = free_ports(1)
    environment_variables = {k: v for k, v in os.environ.items() if not k.startswith("GOVHALL_")}
    environment_variables |= {"GOVHALL_WORKER_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
                              "GOVHALL_WORKER_PKI_DIR": str(pki_dir),
                              "GOVHALL_WORKER_TEMPORAL_RETRY_MAX_SECONDS": "0.5"}
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workflows.worker", stdout=log, stderr=subprocess.STDOUT,
            env=environment_variables)
    try:
        async def retrying() -> bool:
            assert worker.returncode is None, log_path.read_text()
            return "retry_scheduled" in log_path.read_text()

        await within("the worker retrying its connection", retrying)
        environment = await dev_server_on(port, temporal_security)
        try:
            await within("the workflows worker polling", lambda: polled(
                environment.client, WORKFLOW_TASK_QUEUE,
                TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
            worker.terminate()
            assert await asyncio.wait_for(worker.wait(), DEADLINE_SECONDS) == 0
        finally:
            await environment.shutdown()
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()


async def test_a_service_whose_worker_dies_for_good_exits_non_zero(
        tmp_path: Path, pki_dir: Path, temporal_dev_server: WorkflowEnvironment) -> None:
    address = temporal_dev_server.client.service_client.config.target_host
    environment_variables = {k: v for k, v in os.environ.items() if not k.startswith("GOVHALL_")}
    environment_variables |= {
        "GOVHALL_REVIEW_PORT": "0", "GOVHALL_REVIEW_PKI_DIR": str(pki_dir),
        "GOVHALL_REVIEW_DATABASE_URL": f"sqlite:///{tmp_path / 'review.sqlite3'}",
        "GOVHALL_REVIEW_TEMPORAL_ADDRESS": address,
        # Temporal answers, but the worker cannot serve a namespace that does not exist.
        "GOVHALL_REVIEW_TEMPORAL_NAMESPACE": "no-such-namespace"}
    completed = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "services.review.main", "run"],
        env=environment_variables, capture_output=True, text=True,
        timeout=DEADLINE_SECONDS, check=False)
    assert completed.returncode != 0, completed.stdout + completed.stderr
    assert "service.stopped" not in completed.stdout
    assert "no-such-namespace" in completed.stdout + completed.stderr
