"""A workflow that carries a marker through every kind of payload Temporal stores.

Workflow input and result, activity input, result and failure message, an
update's argument and result, a signal's argument: the history test looks
for the marker in the raw history afterwards.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

NOTE = "note"
REMARK = "remark"


@dataclass
class Carried:
    text: str


@activity.defn
async def echo(carried: Carried) -> Carried:
    return Carried(f"{carried.text} echoed")


@activity.defn
async def refuse(carried: Carried) -> Carried:
    raise ApplicationError(f"refused {carried.text}", type="Refused", non_retryable=True)


@workflow.defn
class MarkerWorkflow:
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.remarks: list[str] = []

    @workflow.run
    async def run(self, carried: Carried) -> Carried:
        echoed = await workflow.execute_activity(
            echo, carried, start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=1))
        with contextlib.suppress(ActivityError):
            await workflow.execute_activity(
                refuse, carried, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=1))
        await workflow.wait_condition(lambda: bool(self.notes) and bool(self.remarks))
        return Carried(f"{echoed.text} {self.notes[0]} {self.remarks[0]}")

    @workflow.update(name=NOTE)
    async def note(self, carried: Carried) -> Carried:
        self.notes.append(carried.text)
        return Carried(f"noted {carried.text}")

    @workflow.signal(name=REMARK)
    async def remark(self, carried: Carried) -> None:
        self.remarks.append(carried.text)
