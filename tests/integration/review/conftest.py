from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.chinatime import china_date
from kernel.service import prepare, start
from kernel.temporal import WORKFLOW_TASK_QUEUE
from services.review.main import DEFINITION
from tests.support import ServiceUnderTest, fresh_database_url, service_under_test
from workflows import approval_contract as c
from workflows.approval import ApprovalWorkflow


def temporal_address(environment: WorkflowEnvironment) -> str:
    return environment.client.service_client.config.target_host


@pytest.fixture
async def review(backend: str, tmp_path: Path, pki_dir: Path,
                 temporal_dev_server: WorkflowEnvironment) -> AsyncIterator[ServiceUnderTest]:
    """The review service; it signals running cases on the dev server, no worker of its own."""
    url = fresh_database_url(backend, "review", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=temporal_address(temporal_dev_server)
                                  ) as service:
        yield service


@asynccontextmanager
async def review_with_activity_worker(*, database_url: str, pki_dir: Path,
                                      address: str) -> AsyncIterator[ServiceUnderTest]:
    """The review service as its process runs it: gRPC server and activity worker.

    tests.support.service_under_test fixes run_activity_worker=False and
    cannot take it as an override, so this starts the service the same way
    with the worker on.
    """
    settings = DEFINITION.settings_type(
        port=0, database_url=database_url, pki_dir=pki_dir, run_activity_worker=True,
        temporal_address=address, shutdown_grace_seconds=0.5)
    prepare(DEFINITION, settings)
    running = await start(DEFINITION, settings)
    try:
        yield ServiceUnderTest(running, pki_dir, settings)
    finally:
        await running.stop(0.5)


@dataclass
class IntakeStandIn:
    """The intake activities the approval workflow calls, kept in memory by name.

    The intake service is not under test here; what the workflow told it is
    kept for the tests to look at.
    """

    events: list[c.CaseEvent] = field(default_factory=list)
    notices: list[c.ApplicantNotice] = field(default_factory=list)
    seals: dict[str, c.SealRequest] = field(default_factory=dict)

    def activities(self) -> list[Any]:
        stand_in = self

        @activity.defn(name=c.RECORD_CASE_EVENT)
        async def record_case_event(event: c.CaseEvent) -> None:
            stand_in.events.append(event)

        @activity.defn(name=c.NOTIFY_APPLICANT)
        async def notify_applicant(notice: c.ApplicantNotice) -> None:
            stand_in.notices.append(notice)

        @activity.defn(name=c.SEAL_DECISION)
        async def seal_decision(request: c.SealRequest) -> c.SealReceipt:
            stand_in.seals.setdefault(request.case_number, request)
            number = list(stand_in.seals).index(request.case_number) + 1
            return c.SealReceipt(f"SY-2026-{number:06d}", "seal-key-1", "0" * 64)

        return [record_case_event, notify_applicant, seal_decision]


@dataclass
class Chain:
    """The review service with its activity worker, the real ApprovalWorkflow, a stand-in intake."""

    review: ServiceUnderTest
    client: Client
    intake: IntakeStandIn
    started: list[str] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        return self.review.running.engine

    async def start_case(self, *, clerk_id: str = "SCJGJ-001", department_code: str = "SCJGJ",
                         accepted_on: str = "", promised: int = 5, legal: int = 20,
                         procedures: list[str] | None = None,
                         ) -> WorkflowHandle[ApprovalWorkflow, c.ApprovalResult]:
        now = datetime.now(UTC)
        case_number = (f"AP-{china_date(now):%Y%m%d}-"
                       f"{uuid.uuid4().int % 1_000_000:06d}")
        case = c.ApprovalInput(
            case_number=case_number, item_code="012101000001000", item_version=1,
            item_name="食品经营许可", department_code=department_code,
            accepted_on=accepted_on or china_date(now).isoformat(),
            accepted_at=now, clerk_id=clerk_id, promised_limit_days=promised,
            legal_limit_days=legal,
            special_procedures=["expert_review"] if procedures is None else procedures)
        handle = await self.client.start_workflow(
            ApprovalWorkflow.run, case, id=c.workflow_id(case_number),
            task_queue=WORKFLOW_TASK_QUEUE)
        self.started.append(case_number)
        return handle


@pytest.fixture
async def chain(backend: str, tmp_path: Path, pki_dir: Path,
                temporal_dev_server: WorkflowEnvironment) -> AsyncIterator[Chain]:
    url = fresh_database_url(backend, "review", tmp_path)
    client = temporal_dev_server.client
    intake = IntakeStandIn()
    async with (
        review_with_activity_worker(database_url=url, pki_dir=pki_dir,
                                    address=temporal_address(temporal_dev_server)) as review,
        Worker(client, task_queue=WORKFLOW_TASK_QUEUE, workflows=[ApprovalWorkflow]),
        Worker(client, task_queue=c.INTAKE_QUEUE, activities=intake.activities()),
    ):
        running = Chain(review, client, intake)
        try:
            yield running
        finally:
            # Cases left running would call the next test's activity worker.
            for case_number in running.started:
                handle = client.get_workflow_handle(c.workflow_id(case_number))
                if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await handle.terminate("test over")
