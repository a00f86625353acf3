"""kill -9 of the complaints service between commit and workflow start, on real processes.

The complaints service runs as the runner runs it (``python -m
services.complaints.main serve``, tests/e2e/suite.py), first pointed at a
Temporal address where nothing listens: submits are committed and answered,
their workflows pending in the outbox. The process is killed with SIGKILL and
started again pointed at the session's dev server: every committed case gets
exactly one ComplaintWorkflow, counted by workflow id and by the CaseKind
search attribute. Then a burst of concurrent pushes with a kill -9 in the
middle: after the restart (and the platforms pushing again what failed),
unique accepted pushes = cases in the database = workflows.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import text
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from deploy.local import processes
from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from kernel.db import make_engine
from kernel.grpcserver import channel_credentials, secure_channel
from kernel.signing import service_signer
from kernel.temporal import WORKFLOW_TASK_QUEUE
from services.complaints.app.flow import SQUATTED, search_attributes
from services.complaints.app.recording import received_statement
from services.complaints.db.repository import ComplaintsUnitOfWork
from tests.e2e.suite import (
    WORKER,
    ChainProcesses,
    free_ports,
    fresh_namespace,
    within,
)
from workflows.complaint_contract import CASE_KIND, WORKFLOW_NAME, ComplaintInput, workflow_id

pytestmark = pytest.mark.e2e

TEST_SECONDS = 150
PLATFORMS = ("hotline-12345", "provincial-complaint-portal")
ADDRESS_SETTING = "GOVHALL_COMPLAINTS_TEMPORAL_ADDRESS"


@pytest.fixture
async def chain(tmp_path: Path,
                temporal_dev_server: WorkflowEnvironment) -> AsyncIterator[ChainProcesses]:
    """The complaints service and the worker, prepared, nothing started yet."""
    client = temporal_dev_server.client
    chain = ChainProcesses.create(
        tmp_path, temporal_address=str(client.service_client.config.target_host),
        namespace=await fresh_namespace(client), services=("complaints",))
    await asyncio.to_thread(chain.prepare, "complaints")
    try:
        yield chain
    finally:
        await chain.close()


async def _serving_without_temporal(chain: ChainProcesses, deadline: float) -> None:
    """Start the service pointed at an address where nothing listens; until it answers."""
    [nowhere] = free_ports(1)
    real = chain.environment[ADDRESS_SETTING]
    chain.environment[ADDRESS_SETTING] = f"127.0.0.1:{nowhere}"
    try:
        chain.start("complaints")
    finally:
        chain.environment[ADDRESS_SETTING] = real
    await processes.until_healthy(
        chain.address("complaints"), channel_credentials(chain.pki_dir, "operator"),
        deadline=deadline, check=chain.children["complaints"].check, name="complaints")


async def _push(chain: ChainProcesses, platform: str, external_id: str) -> str:
    async with secure_channel(chain.address("complaints"), pki_dir=chain.pki_dir,
                              system=platform) as channel:
        response = await complaints_pb2_grpc.ComplaintsServiceStub(channel).SubmitComplaint(
            pb.SubmitComplaintRequest(
                external_id=external_id, kind=pb.COMPLAINT_KIND_COMPLAINT,
                category_code="SC-01", content=f"超市出售过期食品 {external_id}",
                complainant_name="欧阳晓筠", complainant_phone="13975318642"), timeout=20)
    number: str = response.complaint.case_number
    return number


def _rows(chain: ChainProcesses, sql: str) -> list[tuple[Any, ...]]:
    engine = chain.read_only("complaints")
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


async def _workflows(client: Client, query: str) -> list[str]:
    return [w.id async for w in client.list_workflows(query)]


async def _exactly_one_workflow_each(chain: ChainProcesses, numbers: set[str],
                                     deadline: float, squatted: frozenset[str] = frozenset(),
                                     ) -> None:
    """Every case started (its flag set), and Temporal holding one run per case, no more."""
    async def all_started() -> bool:
        return _rows(chain, "SELECT count(*) FROM complaint_cases WHERE NOT workflow_started"
                     ) == [(0,)]
    await within(deadline, "the outbox started every committed case", all_started)
    client = await chain.client()
    wanted = sorted(workflow_id(n) for n in numbers)

    async def visible() -> bool:
        return sorted(await _workflows(client, f"CaseKind = '{CASE_KIND}'")) == wanted
    await within(deadline, "every case's workflow visible by its CaseKind", visible)
    by_kind = await _workflows(client, f"CaseKind = '{CASE_KIND}'")
    by_type = await _workflows(client, f"WorkflowType = '{WORKFLOW_NAME}'")
    assert Counter(by_kind) == Counter(by_type) == Counter(wanted)
    for number in numbers:
        # A squatter's run (ended) and the case's own one; otherwise the case's own only.
        runs = 2 if number in squatted else 1
        assert await _workflows(client, f"WorkflowId = '{workflow_id(number)}'") == [
            workflow_id(number)] * runs
    started = Counter(subject for (subject,) in _rows(
        chain, "SELECT subject FROM audit_log WHERE action = 'complaint.workflow_started'"))
    assert started == Counter(f"complaint/{n}" for n in numbers)


async def test_cases_committed_before_a_kill_9_each_get_one_workflow_after_restart(
        chain: ChainProcesses) -> None:
    deadline = time.monotonic() + TEST_SECONDS
    await _serving_without_temporal(chain, deadline)
    numbers = {await _push(chain, PLATFORMS[i % 2], f"K9-{i}") for i in range(6)}
    assert len(numbers) == 6
    assert _rows(chain, "SELECT count(*) FROM complaint_cases WHERE workflow_started") == [(0,)]
    chain.kill("complaints")

    await asyncio.gather(chain.start_and_wait("complaints", deadline),
                         chain.start_and_wait(WORKER, deadline))
    await _exactly_one_workflow_each(chain, numbers, deadline)
    # The workflows run for real: each opened its case (deadlines set by the service).
    async def opened() -> bool:
        return _rows(chain, "SELECT count(*) FROM complaint_cases "
                     "WHERE policy_version IS NULL") == [(0,)]
    await within(deadline, "every workflow opened its case", opened)


async def test_a_burst_with_a_kill_9_in_the_middle_loses_and_doubles_nothing(
        chain: ChainProcesses) -> None:
    deadline = time.monotonic() + TEST_SECONDS
    await asyncio.gather(chain.start_and_wait("complaints", deadline),
                         chain.start_and_wait(WORKER, deadline))
    rng = random.Random(8)
    unique = [(PLATFORMS[i % 2], f"BURST-{i}") for i in range(120)]
    # One push in ten is a platform pushing a case again.
    pushes = unique + rng.sample(unique, 12)
    rng.shuffle(pushes)
    accepted: dict[tuple[str, str], str] = {}
    failed: list[tuple[str, str]] = []
    answered = asyncio.Event()
    limit = asyncio.Semaphore(16)

    async def push(platform: str, external_id: str) -> None:
        async with limit:
            try:
                number = await _push(chain, platform, external_id)
            except grpc.aio.AioRpcError as error:
                # Only the kill may fail a push: anything else is a refusal to report.
                if error.code() not in (grpc.StatusCode.UNAVAILABLE,
                                        grpc.StatusCode.DEADLINE_EXCEEDED,
                                        grpc.StatusCode.CANCELLED):
                    raise
                failed.append((platform, external_id))
                return
        assert accepted.setdefault((platform, external_id), number) == number
        if len(accepted) >= 40:
            answered.set()

    async def kill_midway() -> None:
        await answered.wait()
        chain.kill("complaints")

    await asyncio.gather(kill_midway(), *(push(p, e) for p, e in pushes))
    assert failed, "the kill came after the burst: nothing was in flight"
    await chain.start_and_wait("complaints", deadline)
    # The platforms push again what was not answered (a re-push changes nothing).
    for platform, external_id in sorted(set(failed)):
        number = await _push(chain, platform, external_id)
        assert accepted.setdefault((platform, external_id), number) == number

    cases = _rows(chain, "SELECT platform_id, external_id, case_number FROM complaint_cases")
    assert len(accepted) == len(unique) == len(cases)
    assert {number for *_, number in cases} == set(accepted.values())
    await _exactly_one_workflow_each(chain, set(accepted.values()), deadline)


async def test_a_kill_9_between_the_start_and_its_flag_and_a_squatter(
        chain: ChainProcesses) -> None:
    """The service started a case's run and died before setting the flag: the next process
    finds the run its own (the same signed input) and starts no second one. Another case's
    id was taken by a run the service did not start: recorded, ended and replaced."""
    deadline = time.monotonic() + TEST_SECONDS
    await _serving_without_temporal(chain, deadline)
    own, squatted = [await _push(chain, "hotline-12345", f"OWN-{i}") for i in range(2)]
    chain.kill("complaints")
    engine = make_engine(f"sqlite:///{chain.database('complaints')}")
    try:
        with ComplaintsUnitOfWork(engine, write=False) as uow:
            case = uow.handling.get(own)
        assert case is not None
    finally:
        engine.dispose()
    client = await chain.client()
    # What the killed process had done before its end: the start, with its own input.
    await client.start_workflow(
        WORKFLOW_NAME, ComplaintInput(received_statement(
            service_signer(chain.pki_dir, "complaints"), case)),
        id=workflow_id(own), task_queue=WORKFLOW_TASK_QUEUE,
        search_attributes=search_attributes(case))
    # Someone else's run under the other case's id.
    await client.start_workflow("NotAComplaint", "squat", id=workflow_id(squatted),
                                task_queue="squatters")

    await asyncio.gather(chain.start_and_wait("complaints", deadline),
                         chain.start_and_wait(WORKER, deadline))
    await _exactly_one_workflow_each(chain, {own, squatted}, deadline,
                                     squatted=frozenset({squatted}))
    recorded = _rows(chain, "SELECT action, subject FROM audit_log "
                            "WHERE action LIKE 'violation.%'")
    assert recorded == [(SQUATTED, f"complaint/{squatted}")]
