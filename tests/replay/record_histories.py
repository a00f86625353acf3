"""Record histories of ApprovalWorkflow as it is now, for the replay tests.

Run before a change to the workflow's shape, and commit the files:
``python -m tests.replay.record_histories`` (starts its own dev server).
Activities are the in-memory fakes: a history records their results, so a
replay needs no services.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.temporal import SEARCH_ATTRIBUTES
from tests.unit.workflows.fakes import Center
from workflows import approval_contract as c
from workflows.approval import ApprovalWorkflow

HISTORIES = Path(__file__).parent / "histories"
CLERK = c.Actor("SCJGJ-001", "SCJGJ", ["window_clerk"], "hall-window-system")
REVIEWER = c.Actor("SCJGJ-003", "SCJGJ", ["reviewer"], "department-review-system")
LEADER = c.Actor("SCJGJ-006", "SCJGJ", ["leader"], "department-review-system")
SEALER = c.Actor("ZWFWZX-001", "ZWFWZX", ["seal_custodian"], "hall-window-system")


def _case(number: str) -> c.ApprovalInput:
    now = datetime.now(UTC)
    return c.ApprovalInput(
        case_number=number, item_code="012101000007001", item_version=1,
        item_name="食品经营许可（新办）", department_code="SCJGJ",
        accepted_on=now.date().isoformat(), accepted_at=now, clerk_id=CLERK.official_id,
        promised_limit_days=10, legal_limit_days=20, special_procedures=["expert_review"])


async def record(version: str) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        data_converter=pydantic_data_converter, search_attributes=SEARCH_ATTRIBUTES)
    center = Center()
    queue = f"record-{uuid.uuid4()}"
    try:
        async with (
            Worker(env.client, task_queue=queue, workflows=[ApprovalWorkflow]),
            Worker(env.client, task_queue=c.REVIEW_QUEUE, activities=center.review_activities),
            Worker(env.client, task_queue=c.INTAKE_QUEUE, activities=center.intake_activities),
        ):
            approved = await env.client.start_workflow(
                ApprovalWorkflow.run, _case("AP-20261126-000001"),
                id=c.workflow_id("AP-20261126-000001"), task_queue=queue)
            expert = c.SpecialProcedureChange(REVIEWER, "expert_review", "专家评审")
            await approved.execute_update(c.START_SPECIAL_PROCEDURE, expert)
            await approved.execute_update(c.END_SPECIAL_PROCEDURE, expert)
            await approved.execute_update(c.EXTEND_TIME_LIMIT,
                                          c.Extension(LEADER, 5, "需要现场核查"))
            await approved.signal(c.RECOMPUTE_DEADLINES, c.Recompute("schedule loaded"))
            for actor, stage, outcome in ((REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE),
                                          (LEADER, c.Stage.SIGN, c.Outcome.APPROVE),
                                          (SEALER, c.Stage.SEAL, c.Outcome.SEAL)):
                await approved.execute_update(c.DECIDE, c.Decision(actor, stage, outcome))
            await approved.result()

            withdrawn = await env.client.start_workflow(
                ApprovalWorkflow.run, _case("AP-20261126-000002"),
                id=c.workflow_id("AP-20261126-000002"), task_queue=queue)
            await withdrawn.execute_update(c.DECIDE, c.Decision(
                REVIEWER, c.Stage.REVIEW, c.Outcome.REFUSE))
            await withdrawn.execute_update(c.WITHDRAW, c.Withdrawal(CLERK))
            await withdrawn.result()

            for name, handle in (("approved", approved), ("withdrawn", withdrawn)):
                history = await handle.fetch_history()
                path = HISTORIES / f"approval-{version}-{name}.json"
                path.write_text(history.to_json(), encoding="utf-8")
                print(f"wrote {path}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1] if len(sys.argv) > 1 else "v1"))
