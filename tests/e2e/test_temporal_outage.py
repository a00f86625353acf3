"""Temporal killed while the window submits: no INTERNAL, no orphan, each case started once.

A private Temporal dev server (its own SQLite file, so it keeps its data
across a restart) serves the intake and review services and the workflows
worker, started as the runner starts them. Applications are submitted while
it runs, then it is killed with SIGKILL and more are submitted: every
submission is answered (the case accepted, its workflow's start pending),
never INTERNAL. Reads keep being served. The server is started again on the
same port and file: the outbox starts every pending case, and in the end
every accepted case has exactly one workflow, and intake knows each is started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from temporalio.client import Client
from temporalio.service import RPCError

from govhall.intake.v1 import intake_pb2, intake_pb2_grpc
from kernel.temporal import TemporalSecurity, connect, search_attribute_flags
from tests.e2e.suite import ChainProcesses, free_ports, intake_channel, submit, within
from workflows.approval_contract import WORKFLOW_NAME, workflow_id

pytestmark = pytest.mark.e2e

TEMPORAL = Path(sys.executable).parent / "temporal"
SECONDS = 120


class DevServer:
    """``temporal server start-dev`` on a fixed port and file, killable and restartable."""

    def __init__(self, directory: Path) -> None:
        self.port, self.ui_port = free_ports(2)
        self.db = directory / "temporal.db"
        self.log = directory / "temporal.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(TEMPORAL), "server", "start-dev", "--ip", "127.0.0.1",
                 "--port", str(self.port), "--ui-port", str(self.ui_port), "--headless",
                 "--db-filename", str(self.db), "--log-level", "error",
                 *search_attribute_flags()],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    async def client(self, deadline: float, pki_dir: Path) -> Client:
        """A client once the server answers, with the payload keys under ``pki_dir``."""
        while True:
            try:
                client = await connect(self.address, "default",
                                       security=TemporalSecurity.embedded(pki_dir))
                await client.count_workflows()
                return client
            except (RuntimeError, RPCError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


@pytest.fixture
async def outage(tmp_path: Path) -> AsyncIterator[tuple[DevServer, ChainProcesses]]:
    server = DevServer(tmp_path)
    server.start()
    deadline = time.monotonic() + SECONDS
    processes = ChainProcesses.create(tmp_path / "var", temporal_address=server.address,
                                      namespace="default", services=("intake", "review"))
    await server.client(deadline, processes.pki_dir)
    try:
        await asyncio.to_thread(processes.prepare, "intake", "review")
        await processes.ensure_running(deadline)
        yield server, processes
    finally:
        processes.stop_all()
        if server.process is not None and server.process.poll() is None:
            server.kill()


def _intake_cases(processes: ChainProcesses) -> dict[str, bool]:
    engine = processes.read_only("intake")
    try:
        with engine.connect() as connection:
            return {str(number): bool(started) for number, started in connection.execute(text(
                "SELECT case_number, workflow_started FROM cases WHERE accepted_at IS NOT NULL"))}
    finally:
        engine.dispose()


async def test_submits_while_temporal_is_killed_are_all_started_once_it_returns(
        outage: tuple[DevServer, ChainProcesses]) -> None:
    server, processes = outage
    deadline = time.monotonic() + SECONDS
    before = [await submit(processes) for _ in range(3)]

    server.kill()
    during: list[str] = []
    async with intake_channel(processes) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        item = (await stub.GetApprovalItem(  # reads are served while Temporal is down
            intake_pb2.GetApprovalItemRequest(code="012101000007001"))).item
        assert item.code == "012101000007001"
    for _ in range(4):
        # Accepted and committed, the start pending: any error status fails the test.
        during.append(await submit(processes))
    pending = _intake_cases(processes)
    assert set(during) <= set(pending)
    assert not any(pending[number] for number in during), "started with Temporal dead?"

    server.start()
    client = await server.client(deadline, processes.pki_dir)

    async def all_started() -> bool:
        return all(_intake_cases(processes).values())

    await within(deadline, "the outbox starts every pending case", all_started)
    accepted = sorted(_intake_cases(processes))
    assert sorted([*before, *during]) == accepted
    runs = {}
    for number in accepted:
        runs[number] = [execution.run_id async for execution in client.list_workflows(
            f"WorkflowId = '{workflow_id(number)}'")]
        description = await client.get_workflow_handle(workflow_id(number)).describe()
        assert description.workflow_type == WORKFLOW_NAME
    assert all(len(found) == 1 for found in runs.values()), runs
