"""A workflow that only delivers one platform event, the way ComplaintWorkflow does.

The delivery activity runs under the contract's DELIVERY_RETRY, so a test
sees the retries Temporal makes (the receiver refusing the first attempts)
without the whole complaint workflow around them.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.complaint_contract import (
        DELIVER_PLATFORM_EVENT,
        DELIVERY_RETRY,
        DeliveryResult,
        PlatformDelivery,
    )


@workflow.defn
class DeliverOneEvent:
    @workflow.run
    async def run(self, delivery: PlatformDelivery) -> DeliveryResult:
        result: DeliveryResult = await workflow.execute_activity(
            DELIVER_PLATFORM_EVENT, delivery, result_type=DeliveryResult,
            start_to_close_timeout=timedelta(seconds=30), retry_policy=DELIVERY_RETRY)
        return result
