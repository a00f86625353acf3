"""Workflows an attacker with access to Temporal would write: they call govhall's activities
straight on the services' task queues, with inputs of their own making."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.approval_contract import (
        RECORD_TRANSITION,
        SEAL_DECISION,
        SealReceipt,
        SealRequest,
        Transition,
    )

ONCE = RetryPolicy(maximum_attempts=1)


@workflow.defn(name="RogueSeal")
class RogueSeal:
    """Asks intake to seal with statements the attacker made up."""

    @workflow.run
    async def run(self, request: SealRequest) -> SealReceipt:
        receipt: SealReceipt = await workflow.execute_activity(
            SEAL_DECISION, request, task_queue="govhall-intake", result_type=SealReceipt,
            start_to_close_timeout=timedelta(seconds=20), retry_policy=ONCE)
        return receipt


@workflow.defn(name="RogueRecord")
class RogueRecord:
    """Asks review to record a decision the attacker made up."""

    @workflow.run
    async def run(self, transition: Transition) -> None:
        await workflow.execute_activity(
            RECORD_TRANSITION, transition, task_queue="govhall-review",
            start_to_close_timeout=timedelta(seconds=20), retry_policy=ONCE)
