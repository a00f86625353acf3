"""A rogue workflow that someone with access to Temporal runs on a queue of its own: it
schedules one of trading's listing activities, on trading's activity queue, with the
ListingStep it chooses (its ``at`` included). Kept in its own module for the sandbox."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.listing_contract import ListingStep, StepReceipt


@workflow.defn(name="RogueListingStep")
class RogueListingStep:
    @workflow.run
    async def run(self, activity: str, queue: str, step: ListingStep) -> StepReceipt:
        receipt: StepReceipt = await workflow.execute_activity(
            activity, step, task_queue=queue, result_type=StepReceipt,
            start_to_close_timeout=timedelta(seconds=30))
        return receipt
