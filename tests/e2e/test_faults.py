"""Faults on real processes: kill -9 in the middle of a chain, start again, and count.

The intake and review services and the workflows worker run as the runner
runs them (tests/e2e/suite.py), against the session's Temporal dev server
in a namespace of their own. A test kills a process with SIGKILL at a
chosen point of a case, starts it again on the same port and database, and
then counts what was recorded: a case completes exactly once, with one
decision per step, one certificate number and one audit entry per step,
and both audit logs still verify.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage as UpdateStage
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.update.v1 import UpdateRef, WaitPolicy
from temporalio.api.workflowservice.v1 import (
    PollWorkflowExecutionUpdateRequest,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from deploy.local.chain_driver import CLERK, acting
from govhall.intake.v1 import intake_pb2, intake_pb2_grpc
from govhall.review.v1 import review_pb2, review_pb2_grpc
from tests.e2e.suite import (
    REVIEW,
    SEAL,
    SIGN,
    WORKER,
    ChainProcesses,
    decide_until_done,
    decision_update_id,
    describe,
    intake_channel,
    review_channel,
    start_chain,
    submit,
    until_quiet,
    within,
)
from workflows.approval_contract import SEAL_DECISION, workflow_id

if TYPE_CHECKING:
    from govhall.intake.v1.intake_pb2_grpc import IntakeServiceAsyncStub
    from govhall.review.v1.review_pb2_grpc import ReviewServiceAsyncStub

pytestmark = pytest.mark.e2e

#: How long a test waits for what it waits for (a deadline for waits, not a speed to meet).
TEST_SECONDS = 90


@pytest.fixture(scope="module")
async def chain(tmp_path_factory: pytest.TempPathFactory,
                temporal_dev_server: WorkflowEnvironment) -> AsyncIterator[ChainProcesses]:
    processes = await start_chain(tmp_path_factory.mktemp("faults"),
                                  temporal=temporal_dev_server.client)
    try:
        yield processes
    finally:
        await processes.close()


async def _until_admitted(processes: ChainProcesses, case_number: str, update_id: str,
                          deadline: float) -> None:
    """Until Temporal holds the update (admitted at least): the decision has left the service."""
    client = await processes.client()
    request = PollWorkflowExecutionUpdateRequest(
        namespace=processes.namespace,
        update_ref=UpdateRef(workflow_execution=WorkflowExecution(
            workflow_id=workflow_id(case_number)), update_id=update_id),
        wait_policy=WaitPolicy(
            lifecycle_stage=UpdateStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED))

    async def admitted() -> bool:
        try:
            reply = await client.workflow_service.poll_workflow_execution_update(
                request, timeout=timedelta(seconds=1))
        except RPCError as error:
            if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.DEADLINE_EXCEEDED):
                return False
            raise
        return bool(reply.stage >= UpdateStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED)

    await within(deadline, f"update {update_id} reached Temporal", admitted)


async def _history_events(processes: ChainProcesses, case_number: str) -> list[HistoryEvent]:
    client = await processes.client()
    history = await client.get_workflow_handle(workflow_id(case_number)).fetch_history()
    return list(history.events)


def _rows(processes: ChainProcesses, service: str, sql: str,
          **parameters: str) -> list[tuple[object, ...]]:
    engine = processes.read_only(service)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), parameters)]
    finally:
        engine.dispose()


def _audit(processes: ChainProcesses, service: str,
           action: str) -> list[tuple[str, dict[str, str]]]:
    return [(str(subject), json.loads(str(details))) for subject, details in _rows(
        processes, service, "SELECT subject, details FROM audit_log WHERE action = :action",
        action=action)]


async def _until_completed(processes: ChainProcesses, case_number: str) -> None:
    """The workflow ran to its end: every step after the seal is recorded too."""
    client = await processes.client()
    handle = client.get_workflow_handle(workflow_id(case_number))
    await asyncio.wait_for(handle.result(), TEST_SECONDS)


async def _assert_completed_exactly_once(processes: ChainProcesses, case_number: str,
                                         certificate: str) -> None:
    await _until_completed(processes, case_number)
    stages = Counter({"review": 1, "sign": 1, "seal": 1})
    # The review database: one decision, one recorded-decision entry, one task per stage,
    # each closed by the decision taken on it.
    decisions = _rows(processes, "review",
                      "SELECT stage FROM decisions WHERE case_number = :case",
                      case=case_number)
    assert Counter(str(stage) for (stage,) in decisions) == stages
    recorded = [d for _, d in _audit(processes, "review", "decision.recorded")
                if d["case"] == case_number]
    assert Counter(d["stage"] for d in recorded) == stages
    tasks = _rows(processes, "review",
                  "SELECT stage, outcome FROM tasks WHERE case_number = :case "
                  "AND closed_at IS NOT NULL", case=case_number)
    assert sorted((str(stage), str(outcome)) for stage, outcome in tasks) == [
        ("review", "approve"), ("seal", "seal"), ("sign", "approve")]
    progress = _rows(processes, "review",
                     "SELECT stage, outcome, certificate_number FROM case_progress "
                     "WHERE case_number = :case", case=case_number)
    assert progress == [("completed", "approved", certificate)]

    # The intake database: one sealed decision, one certificate, each step once on the timeline.
    sealed = _rows(processes, "intake",
                   "SELECT certificate_number FROM sealed_decisions WHERE case_number = :case",
                   case=case_number)
    assert sealed == [(certificate,)]
    sealing = [d for subject, d in _audit(processes, "intake", "decision.sealed")
               if subject == f"case/{case_number}"]
    assert [d["certificate_number"] for d in sealing] == [certificate]
    register = _rows(processes, "intake",
                     "SELECT certificate_number FROM register_entries WHERE case_number = :case",
                     case=case_number)
    assert register == [(certificate,)]
    kinds = Counter(str(kind) for (kind,) in _rows(
        processes, "intake", "SELECT kind FROM case_events WHERE case_number = :case",
        case=case_number))
    assert (kinds["review.decided"], kinds["sign.decided"], kinds["seal.decided"]) == (1, 1, 1)

    # What the systems see.
    async with intake_channel(processes) as channel:
        intake: IntakeServiceAsyncStub = intake_pb2_grpc.IntakeServiceStub(channel)
        case = await intake.GetCase(intake_pb2.GetCaseRequest(case_number=case_number),
                                    metadata=acting(CLERK))
    async with intake_channel(processes, "operator") as channel:
        intake = intake_pb2_grpc.IntakeServiceStub(channel)
        intake_audit = (await intake.VerifyAuditLog(
            intake_pb2.VerifyAuditLogRequest())).verification
    async with review_channel(processes, "operator") as channel:
        review: ReviewServiceAsyncStub = review_pb2_grpc.ReviewServiceStub(channel)
        review_audit = (await review.VerifyAuditLog(
            review_pb2.VerifyAuditLogRequest())).verification
    assert case.case.status == intake_pb2.CASE_STATUS_APPROVED
    assert case.case.certificate_number == certificate
    timeline = Counter(event.kind for event in case.timeline)
    assert (timeline["review.decided"], timeline["sign.decided"],
            timeline["seal.decided"]) == (1, 1, 1)
    assert intake_audit.intact, intake_audit.reason
    assert review_audit.intact, review_audit.reason


async def test_a_case_survives_kill_9_of_the_worker_and_then_the_review_service(
        chain: ChainProcesses) -> None:
    deadline = time.monotonic() + TEST_SECONDS
    await chain.ensure_running(deadline)
    case_number = await submit(chain)
    await decide_until_done(chain, case_number, REVIEW, str(uuid.uuid4()), deadline)
    await until_quiet(chain, case_number, deadline)

    killed_worker = chain.pid(WORKER)
    chain.kill(WORKER)
    sign_id = str(uuid.uuid4())
    signing = asyncio.create_task(
        decide_until_done(chain, case_number, SIGN, sign_id, deadline))
    try:
        # The decision is with Temporal, no worker to take it; now its sender dies too.
        await _until_admitted(
            chain, case_number, decision_update_id(chain.pki_dir, case_number, SIGN, sign_id),
            deadline)
        killed_review = chain.pid("review")
        chain.kill("review")
        await chain.start_and_wait(WORKER, deadline)
        await chain.start_and_wait("review", deadline)
        signed = await signing
    finally:
        signing.cancel()
    assert chain.pid(WORKER) != killed_worker and chain.pid("review") != killed_review
    assert signed.count >= 2  # the first attempt died with the review service
    assert signed.response.receipt.stage == SIGN
    assert signed.response.receipt.next_stage == SEAL

    # The same request once more is answered with the first receipt, not decided again.
    replayed = await decide_until_done(chain, case_number, SIGN, sign_id, deadline)
    assert replayed.response.receipt == signed.response.receipt

    sealed = await decide_until_done(chain, case_number, SEAL, str(uuid.uuid4()), deadline)
    certificate = sealed.response.receipt.certificate_number
    assert certificate.startswith("SY-")
    await until_quiet(chain, case_number, deadline)
    await _assert_completed_exactly_once(chain, case_number, certificate)

    events = await _history_events(chain, case_number)
    update_ids = Counter(
        e.workflow_execution_update_accepted_event_attributes.protocol_instance_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    assert update_ids[decision_update_id(chain.pki_dir, case_number, SIGN, sign_id)] == 1
    assert sum(update_ids.values()) == 3  # review, sign, seal: one accepted update each


async def test_the_seal_is_issued_once_when_intake_dies_while_applying_it(
        chain: ChainProcesses) -> None:
    deadline = time.monotonic() + TEST_SECONDS
    await chain.ensure_running(deadline)
    case_number = await submit(chain)
    for stage in (REVIEW, SIGN):
        await decide_until_done(chain, case_number, stage, str(uuid.uuid4()), deadline)
    await until_quiet(chain, case_number, deadline)
    issued_before = _certificates_drawn(chain)

    # Hold the intake database's write lock, so the seal activity stops inside its
    # transaction; kill the service there, then let the database go.
    lock = sqlite3.connect(chain.database("intake"), timeout=10, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    sealing = asyncio.create_task(
        decide_until_done(chain, case_number, SEAL, str(uuid.uuid4()), deadline))
    try:
        async def sealing_started() -> bool:
            described = await describe(chain, case_number)
            return any(a.activity_type.name == SEAL_DECISION
                       and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                       for a in described.pending_activities)

        await within(deadline, "the seal activity runs", sealing_started)
        chain.kill("intake")
        lock.rollback()
        lock.close()
        await chain.start_and_wait("intake", deadline)
        sealed = await sealing
    finally:
        sealing.cancel()
        lock.close()
    certificate = sealed.response.receipt.certificate_number
    assert certificate.startswith("SY-")
    await until_quiet(chain, case_number, deadline)
    await _assert_completed_exactly_once(chain, case_number, certificate)

    # The killed attempt is retried once; one certificate number was drawn, none burnt.
    assert _certificates_drawn(chain) - issued_before == 1
    events = await _history_events(chain, case_number)
    activity_names = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
    seal_attempts = [
        e.activity_task_started_event_attributes.attempt for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and activity_names[e.activity_task_started_event_attributes.scheduled_event_id]
        == SEAL_DECISION]
    assert seal_attempts == [2]  # the killed attempt, then the one that sealed


def _certificates_drawn(processes: ChainProcesses) -> int:
    """How many certificate numbers the intake database has handed out, every year."""
    ((drawn,),) = _rows(processes, "intake",
                        "SELECT coalesce(sum(last), 0) FROM sequences WHERE name LIKE 'SY-%'")
    return int(str(drawn))
