"""The baseline of the approval benchmark: one govhall case's shape in bare Temporal.

What one approved case costs in Temporal terms, counted from
workflows/approval.py (ApprovalWorkflow.run and three ``decide`` updates):

- one workflow start (the intake service's ``start_workflow``);
- in ``run``, before the first decision: compute deadlines, the
  "deadlines.computed" event, the "chain.started" event (3 activities);
- one "open task" activity at each of review, sign and seal (3);
- the review and sign updates: record decision, close task, event (3 each);
- the seal update: record decision, close task, seal, event, notify (5);
- three updates sent by the client with ``execute_update``, each answered
  when its activities are done (the review service's ``DecideCase``).

That is 17 activities, all one after another, and 3 updates. Here every
activity is a no-op on the bench's own task queue, served in-process: no
database, no gRPC service, no audit log. Left out on purpose, as they are
not the chain's work but its presentation: search attributes upserted,
current details set, and the deadline watcher's timer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

WORKFLOW_NAME = "bench.BareApproval"
WORKFLOW_QUEUE = "bench-baseline-workflows"
ACTIVITY_QUEUE = "bench-baseline-activities"
DECIDE = "decide"

COMPUTE_DEADLINES = "bench.compute_deadlines"
RECORD_EVENT = "bench.record_event"
OPEN_TASK = "bench.open_task"
RECORD_DECISION = "bench.record_decision"
CLOSE_TASK = "bench.close_task"
SEAL = "bench.seal"
NOTIFY = "bench.notify"

#: The stages that take a decision, in the chain's order.
STAGES = ("review", "sign", "seal")
COMPLETED = "completed"
#: Activities one approved case runs, and updates it receives (see the module's docstring).
ACTIVITIES_PER_CASE = 17
UPDATES_PER_CASE = 3

#: As govhall's recording activities: retried until they land.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=30))
TIMEOUT = timedelta(seconds=30)


@dataclass
class BareCase:
    case_number: str


@dataclass
class BareStep:
    """What every baseline activity takes: which case, and what step of it."""

    case_number: str
    step: str


@dataclass
class BareDecision:
    stage: str


@dataclass
class BareReceipt:
    case_number: str
    stage: str
    next_stage: str
    certificate_number: str = ""


@dataclass
class BareResult:
    case_number: str
    certificate_number: str


@activity.defn(name=COMPUTE_DEADLINES)
async def compute_deadlines(step: BareStep) -> None:
    return None


@activity.defn(name=RECORD_EVENT)
async def record_event(step: BareStep) -> None:
    return None


@activity.defn(name=OPEN_TASK)
async def open_task(step: BareStep) -> None:
    return None


@activity.defn(name=RECORD_DECISION)
async def record_decision(step: BareStep) -> None:
    return None


@activity.defn(name=CLOSE_TASK)
async def close_task(step: BareStep) -> None:
    return None


@activity.defn(name=SEAL)
async def seal(step: BareStep) -> str:
    return f"BENCH-{step.case_number}"


@activity.defn(name=NOTIFY)
async def notify(step: BareStep) -> None:
    return None


ACTIVITIES = [compute_deadlines, record_event, open_task, record_decision, close_task, seal,
              notify]


@workflow.defn(name=WORKFLOW_NAME)
class BareApprovalWorkflow:
    @workflow.init
    def __init__(self, case: BareCase) -> None:
        self.case = case
        self.stage = STAGES[0]
        self.started = False
        self.deciding = False
        self.certificate_number = ""

    @workflow.run
    async def run(self, case: BareCase) -> BareResult:
        await self._step(COMPUTE_DEADLINES, "accepted")
        await self._step(RECORD_EVENT, "deadlines.computed")
        await self._step(RECORD_EVENT, "chain.started")
        self.started = True
        while self.stage != COMPLETED:
            stage = self.stage
            await self._step(OPEN_TASK, stage)
            await workflow.wait_condition(self._left(stage))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return BareResult(case.case_number, self.certificate_number)

    @workflow.update(name=DECIDE)
    async def decide(self, decision: BareDecision) -> BareReceipt:
        self.deciding = True
        try:
            await workflow.wait_condition(lambda: self.started)
            stage = decision.stage
            await self._step(RECORD_DECISION, stage)
            await self._step(CLOSE_TASK, stage)
            if stage == STAGES[-1]:
                self.certificate_number = await workflow.execute_activity(
                    SEAL, BareStep(self.case.case_number, stage), task_queue=ACTIVITY_QUEUE,
                    result_type=str, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
            await self._step(RECORD_EVENT, f"{stage}.decided")
            if stage == STAGES[-1]:
                await self._step(NOTIFY, "decision_sealed")
                next_stage = COMPLETED
            else:
                next_stage = STAGES[STAGES.index(stage) + 1]
            self.stage = next_stage
            return BareReceipt(self.case.case_number, stage, next_stage,
                               self.certificate_number)
        finally:
            self.deciding = False

    @decide.validator
    def _validate_decide(self, decision: BareDecision) -> None:
        # As govhall's validator: a decision for another stage is refused before it is recorded.
        if decision.stage != self.stage or self.deciding:
            raise ApplicationError(f"case {self.case.case_number} is at {self.stage}",
                                   type="FailedPrecondition", non_retryable=True)

    def _left(self, stage: str) -> Callable[[], bool]:
        return lambda: self.stage != stage

    async def _step(self, name: str, step: str) -> Any:
        return await workflow.execute_activity(
            name, BareStep(self.case.case_number, step), task_queue=ACTIVITY_QUEUE,
            start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
