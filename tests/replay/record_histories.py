"""Record histories of the approval workflow as it is now, for the replay tests.

Run before a change to the workflow's shape, and commit the files:
``python -m tests.replay.record_histories [recording]`` (starts its own
time-skipping server). Activities are the in-memory fakes: a history records
their results, so a replay needs no services. Three cases are recorded:

- ``approved``: a special procedure, an extension, a recompute signal, then
  review, signature and seal;
- ``withdrawn``: reviewed, then withdrawn at the window;
- ``late``: yellow, then red with the escalation, then decided and sealed.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.temporal import SEARCH_ATTRIBUTES
from tests.unit.workflows.fakes import LEADER, REVIEWER, SEALER, Center, Signers
from workflows import approval_contract as c
from workflows.approval import ApprovalWorkflow

HISTORIES = Path(__file__).parent / "histories"
#: Histories of the workflow type ApprovalWorkflowV2 are named approval-type2-<recording>-*.
PREFIX = "approval-type2"
K = c.StatementKind


async def _decide_all(signers: Signers, handle: WorkflowHandle[ApprovalWorkflow, c.ApprovalResult],
                      number: str) -> None:
    for who, stage, outcome in ((REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE),
                                (LEADER, c.Stage.SIGN, c.Outcome.APPROVE),
                                (SEALER, c.Stage.SEAL, c.Outcome.SEAL)):
        await handle.execute_update(c.DECIDE, signers.decision(number, who, stage, outcome))


async def record(recording: str) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=pydantic_data_converter)
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace, search_attributes={
            key.name: IndexedValueType.ValueType(key.indexed_value_type)
            for key in SEARCH_ATTRIBUTES}))
    signers = Signers(Path(tempfile.mkdtemp()) / "pki")
    center = Center(signers=signers)
    prefix = f"record{uuid.uuid4().hex[:8]}-"
    recorded: dict[str, WorkflowHandle[ApprovalWorkflow, c.ApprovalResult]] = {}

    async def start(number: str, *, promised: int = 5,
                    legal: int = 20) -> WorkflowHandle[ApprovalWorkflow, c.ApprovalResult]:
        acceptance = signers.acceptance(number, accepted_at=await env.get_current_time(),
                                        promised=promised, legal=legal)
        return await env.client.start_workflow(
            ApprovalWorkflow.run, c.ApprovalInput(acceptance), id=c.workflow_id(number),
            task_queue=f"{prefix}workflows")

    try:
        async with (
            Worker(env.client, task_queue=f"{prefix}workflows", workflows=[ApprovalWorkflow]),
            Worker(env.client, task_queue=f"{prefix}review", activities=center.of("review")),
            Worker(env.client, task_queue=f"{prefix}intake", activities=center.of("intake")),
        ):
            number = "AP-20261201-000001"
            approved = recorded["approved"] = await start(number)
            now = await env.get_current_time()
            await approved.execute_update(c.START_SPECIAL_PROCEDURE, signers.clock(
                K.PROCEDURE_START, number, REVIEWER, procedure="expert_review", at=now))
            await approved.execute_update(c.END_SPECIAL_PROCEDURE, signers.clock(
                K.PROCEDURE_END, number, REVIEWER, procedure="expert_review", at=now))
            await approved.execute_update(c.EXTEND_TIME_LIMIT, signers.clock(
                K.EXTENSION, number, LEADER, days=5, reason="需要现场核查"))
            await approved.signal(c.RECOMPUTE_DEADLINES, c.Recompute("schedule loaded"))
            await _decide_all(signers, approved, number)
            await approved.result()

            number = "AP-20261201-000002"
            withdrawn = recorded["withdrawn"] = await start(number)
            await withdrawn.execute_update(c.DECIDE, signers.decision(
                number, REVIEWER, c.Stage.REVIEW, c.Outcome.REFUSE))
            await withdrawn.execute_update(c.WITHDRAW, signers.withdrawal(number))
            await withdrawn.result()

            number = "AP-20261201-000003"
            late = recorded["late"] = await start(number, promised=2, legal=10)
            for _ in range(200):
                status: c.ApprovalStatus = await late.query(c.STATUS,
                                                            result_type=c.ApprovalStatus)
                if status.deadlines is not None:
                    break
                await asyncio.sleep(0.05)
            assert status.deadlines is not None
            await env.sleep(status.deadlines.promised_due_at - await env.get_current_time()
                            + timedelta(hours=1))
            for _ in range(200):
                if [m.sla_state for m in center.marks][-2:] == ["warning", "breached"]:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the late case never went red: {center.marks}")
            await _decide_all(signers, late, number)
            await late.result()

            for name, handle in recorded.items():
                history = await handle.fetch_history()
                path = HISTORIES / f"{PREFIX}-{recording}-{name}.json"
                path.write_text(history.to_json(), encoding="utf-8")
                print(f"wrote {path}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1] if len(sys.argv) > 1 else "r1"))
