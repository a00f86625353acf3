"""The approval benchmark's two bare baselines: govhall's case shape, and the least a case needs.

Both are bare Temporal workflows whose activities do nothing. Their workers
run in the benchmark's own process on bench-only task queues (no database,
no gRPC service, no signing, no audit log), so they measure what Temporal
alone costs for a case.

**Same shape** (``SameShapeWorkflow``): one govhall case in Temporal terms,
counted from workflows/approval.py (``ApprovalWorkflow``, type
ApprovalWorkflowV2) for an approved case:

- one workflow start (intake's outbox starts the workflow after its commit);
- in ``run``: ``review.open_case`` (deadlines, progress row, review task,
  timeline), before any decision is taken (1 activity in run);
- three ``decide`` updates, sent with ``execute_update`` by review's
  ``DecideCase``: review and sign take the decision into the workflow's
  state and answer at once (no activity in their handlers); the seal's
  handler runs ``intake.seal`` and answers with its certificate number
  (1 activity in a handler);
- in ``run`` again, after each update has answered: one
  ``review.record_transition`` per decided stage, in order (review, sign,
  seal: 3 activities in run).

That is 5 activities (4 in run, 1 in the seal's handler) and 3 updates.
The deadline watcher runs no activity on an approved case that stays on
time: ``_apply_sla`` returns at once while the SLA state does not change.

**Minimal** (``MinimalWorkflow``): the least a case needs to record four
acts exactly once and answer each decision after recording it: one start,
one activity in ``run`` (open the case), and one activity inside each of
the three updates' handlers (record the decision; the seal's returns the
certificate number) before the update answers. 4 activities (1 in run, 3
in handlers) and 3 updates.

Left out of both, as before and on purpose, as they are the chain's
presentation rather than its work: search attributes upserted (identity,
stage, due time), the current details set for the UI, and the deadline
watcher's timer. Payloads are tiny dataclasses, not signed statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

SAME_SHAPE = "same-shape"
MINIMAL = "minimal"

SAME_SHAPE_WORKFLOW = "bench.SameShapeApproval"
MINIMAL_WORKFLOW = "bench.MinimalApproval"
WORKFLOW_QUEUE = "bench-baseline-workflows"
ACTIVITY_QUEUE = "bench-baseline-activities"
DECIDE = "decide"
#: A query: whether the case is open (its first activity done), so decisions answer at once.
OPENED = "opened"

OPEN_CASE = "bench.open_case"
RECORD_TRANSITION = "bench.record_transition"
RECORD_DECISION = "bench.record_decision"
SEAL = "bench.seal"

#: The stages that take a decision, in the chain's order.
STAGES = ("review", "sign", "seal")
COMPLETED = "completed"


@dataclass(frozen=True)
class Expected:
    """What one approved case of a baseline costs, as its docstring counts it."""

    activities: int
    activities_in_handlers: int
    updates: int


#: The two baselines' shapes, counted in the module's docstring.
EXPECTED = {SAME_SHAPE: Expected(activities=5, activities_in_handlers=1, updates=3),
            MINIMAL: Expected(activities=4, activities_in_handlers=3, updates=3)}

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


@activity.defn(name=OPEN_CASE)
async def open_case(step: BareStep) -> None:
    return None


@activity.defn(name=RECORD_TRANSITION)
async def record_transition(step: BareStep) -> None:
    return None


@activity.defn(name=RECORD_DECISION)
async def record_decision(step: BareStep) -> None:
    return None


@activity.defn(name=SEAL)
async def seal(step: BareStep) -> str:
    return f"BENCH-{step.case_number}"


ACTIVITIES = [open_case, record_transition, record_decision, seal]


class _Chain:
    """The state both baselines keep: the stage, and the update validator govhall has."""

    def __init__(self, case: BareCase) -> None:
        self.case = case
        self.stage = STAGES[0]
        self.started = False
        self.deciding = False
        self.certificate_number = ""

    @workflow.query(name=OPENED)
    def opened(self) -> bool:
        return self.started

    def check(self, decision: BareDecision) -> None:
        # As govhall's validator: a decision for another stage is refused before it is taken.
        if decision.stage != self.stage or self.deciding:
            raise ApplicationError(f"case {self.case.case_number} is at {self.stage}",
                                   type="FailedPrecondition", non_retryable=True)

    def advance(self, stage: str) -> BareReceipt:
        following = COMPLETED if stage == STAGES[-1] else STAGES[STAGES.index(stage) + 1]
        self.stage = following
        return BareReceipt(self.case.case_number, stage, following, self.certificate_number)

    async def step(self, name: str, step: str) -> Any:
        return await workflow.execute_activity(
            name, BareStep(self.case.case_number, step), task_queue=ACTIVITY_QUEUE,
            start_to_close_timeout=TIMEOUT, retry_policy=RETRY)

    async def sealed(self) -> str:
        certificate: str = await workflow.execute_activity(
            SEAL, BareStep(self.case.case_number, STAGES[-1]), task_queue=ACTIVITY_QUEUE,
            result_type=str, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        return certificate


@workflow.defn(name=SAME_SHAPE_WORKFLOW)
class SameShapeWorkflow(_Chain):
    """govhall's shape: open in run, record each stage in run, seal in the seal's handler."""

    @workflow.init
    def __init__(self, case: BareCase) -> None:
        super().__init__(case)
        #: Decided stages not yet recorded, in order (govhall's ``to_record``).
        self.to_record: list[str] = []

    @workflow.run
    async def run(self, case: BareCase) -> BareResult:
        await self.step(OPEN_CASE, "accepted")
        self.started = True
        while True:
            await workflow.wait_condition(
                lambda: bool(self.to_record) or (
                    self.stage == COMPLETED and workflow.all_handlers_finished()))
            while self.to_record:
                await self.step(RECORD_TRANSITION, self.to_record[0])
                self.to_record.pop(0)
            if self.stage == COMPLETED and workflow.all_handlers_finished():
                break
        return BareResult(case.case_number, self.certificate_number)

    @workflow.update(name=DECIDE)
    async def decide(self, decision: BareDecision) -> BareReceipt:
        self.check(decision)
        self.deciding = True
        try:
            await workflow.wait_condition(lambda: self.started)
            if decision.stage == STAGES[-1]:
                self.certificate_number = await self.sealed()
            self.to_record.append(decision.stage)
            return self.advance(decision.stage)
        finally:
            self.deciding = False

    @decide.validator
    def _validate_decide(self, decision: BareDecision) -> None:
        self.check(decision)


@workflow.defn(name=MINIMAL_WORKFLOW)
class MinimalWorkflow(_Chain):
    """The least a case needs: open in run, then one recording activity inside each update."""

    @workflow.init
    def __init__(self, case: BareCase) -> None:
        super().__init__(case)

    @workflow.run
    async def run(self, case: BareCase) -> BareResult:
        await self.step(OPEN_CASE, "accepted")
        self.started = True
        await workflow.wait_condition(
            lambda: self.stage == COMPLETED and workflow.all_handlers_finished())
        return BareResult(case.case_number, self.certificate_number)

    @workflow.update(name=DECIDE)
    async def decide(self, decision: BareDecision) -> BareReceipt:
        self.check(decision)
        self.deciding = True
        try:
            await workflow.wait_condition(lambda: self.started)
            if decision.stage == STAGES[-1]:
                self.certificate_number = await self.sealed()
            else:
                await self.step(RECORD_DECISION, decision.stage)
            return self.advance(decision.stage)
        finally:
            self.deciding = False

    @decide.validator
    def _validate_decide(self, decision: BareDecision) -> None:
        self.check(decision)


#: Each baseline's workflow type, by the baseline's name.
WORKFLOW_TYPES = {SAME_SHAPE: SAME_SHAPE_WORKFLOW, MINIMAL: MINIMAL_WORKFLOW}
WORKFLOWS = [SameShapeWorkflow, MinimalWorkflow]
