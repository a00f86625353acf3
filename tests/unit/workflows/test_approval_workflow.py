"""ApprovalWorkflow's rules, its activities faked by name.

Human decisions are updates, which the time-skipping test server does not
serve, so those tests run on the shared dev server, with deadlines seconds
away where they must pass; the deadline marks over working days and
holidays run on the time-skipping server, driven by time alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.calendar import YearSchedule
from tests.unit.workflows.fakes import CHINA, Center
from workflows import approval_contract as c
from workflows.approval import ApprovalWorkflow

CLERK = c.Actor("SCJGJ-001", "SCJGJ", ["window_clerk"], "hall-window-system")
REVIEWER = c.Actor("SCJGJ-003", "SCJGJ", ["reviewer"], "department-review-system")
OTHER_REVIEWER = c.Actor("SCJGJ-004", "SCJGJ", ["reviewer"], "department-review-system")
LEADER = c.Actor("SCJGJ-006", "SCJGJ", ["leader"], "department-review-system")
FOREIGN_REVIEWER = c.Actor("FGW-003", "FGW", ["reviewer"], "department-review-system")
SEALER = c.Actor("ZWFWZX-001", "ZWFWZX", ["seal_custodian"], "hall-window-system")


@dataclass
class Case:
    handle: WorkflowHandle[ApprovalWorkflow, c.ApprovalResult]
    center: Center
    env: WorkflowEnvironment

    async def decide(self, actor: c.Actor, stage: str, outcome: str) -> c.DecisionReceipt:
        receipt: c.DecisionReceipt = await self.handle.execute_update(
            c.DECIDE, c.Decision(actor, stage, outcome, "意见", "依据"),
            result_type=c.DecisionReceipt)
        return receipt

    async def refused(self, update: str, argument: object) -> ApplicationError:
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await self.handle.execute_update(update, argument)
        assert isinstance(failure.value.cause, ApplicationError)
        return failure.value.cause

    async def status(self) -> c.ApprovalStatus:
        status: c.ApprovalStatus = await self.handle.query(c.STATUS,
                                                           result_type=c.ApprovalStatus)
        return status

    async def until(self, check: Callable[[c.ApprovalStatus], bool]) -> c.ApprovalStatus:
        for _ in range(200):
            status = await self.status()
            if check(status):
                return status
            await asyncio.sleep(0.05)
        raise AssertionError(f"the case never got there: {status}")

    async def task(self, stage: str) -> c.TaskOpening:
        """The inbox task the workflow opened for ``stage``, once it has."""
        key = (self.handle.id.removeprefix("approval/"), stage)
        for _ in range(200):
            if key in self.center.open_tasks:
                return self.center.open_tasks[key]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {stage} task was opened")

    async def until_started(self) -> None:
        """Wait until the deadlines are known (the workflow's first activity)."""
        for _ in range(200):
            if (await self.status()).deadlines is not None:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the workflow computed no deadlines")

    async def wait_for(self, sla_state: str, seconds: float = 20) -> c.ApprovalStatus:
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            status = await self.status()
            if status.sla_state == sla_state:
                return status
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"still {status.sla_state}, not {sla_state}")
            await asyncio.sleep(0.1)


@asynccontextmanager
async def approval_case(env: WorkflowEnvironment, *, promised: int = 5, legal: int = 20,
                        procedures: list[str] | None = None,
                        schedules: list[YearSchedule] | None = None,
                        accepted_on: date | None = None,
                        fast_deadlines: tuple[float, float, float] | None = None,
                        ) -> AsyncIterator[Case]:
    center = Center(schedules=schedules or [], fast_deadlines=fast_deadlines)
    queue = f"workflows-{uuid.uuid4()}"
    now = await env.get_current_time()
    case_number = f"AP-{uuid.uuid4().hex[:8]}"
    case = c.ApprovalInput(
        case_number=case_number, item_code="012101000001000", item_version=1,
        item_name="食品经营许可", department_code="SCJGJ",
        accepted_on=(accepted_on or (now + CHINA).date()).isoformat(), accepted_at=now,
        clerk_id=CLERK.official_id, promised_limit_days=promised, legal_limit_days=legal,
        special_procedures=procedures if procedures is not None else ["expert_review"])
    async with (
        Worker(env.client, task_queue=queue, workflows=[ApprovalWorkflow]),
        Worker(env.client, task_queue=c.REVIEW_QUEUE, activities=center.review_activities),
        Worker(env.client, task_queue=c.INTAKE_QUEUE, activities=center.intake_activities),
    ):
        handle = await env.client.start_workflow(
            ApprovalWorkflow.run, case, id=c.workflow_id(case_number), task_queue=queue)
        started = Case(handle, center, env)
        await started.until_started()
        yield started


async def test_the_chain_runs_review_sign_seal(
        temporal_dev_server: WorkflowEnvironment) -> None:
    async with approval_case(temporal_dev_server) as case:
        reviewed = await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        signed = await case.decide(LEADER, c.Stage.SIGN, c.Outcome.APPROVE)
        sealed = await case.decide(SEALER, c.Stage.SEAL, c.Outcome.SEAL)
        result = await case.handle.result()
    assert (reviewed.next_stage, signed.next_stage, sealed.next_stage) == (
        c.Stage.SIGN, c.Stage.SEAL, c.Stage.COMPLETED)
    assert result.outcome == "approved"
    assert result.certificate_number == sealed.certificate_number == "SY-2026-000001"
    center = case.center
    assert [(d.stage, d.official_id) for d in center.decisions] == [
        ("review", "SCJGJ-003"), ("sign", "SCJGJ-006"), ("seal", "ZWFWZX-001")]
    seal = center.seals[result.case_number]
    assert (seal.decision, seal.reviewer_id, seal.signer_id) == ("approved", "SCJGJ-003",
                                                                "SCJGJ-006")
    assert [t.stage for t in center.closed_tasks] == ["review", "sign", "seal"]
    assert not center.open_tasks
    assert center.open_tasks == {}
    kinds = center.event_kinds()
    assert kinds[:2] == ["deadlines.computed", "chain.started"]
    assert kinds[-3:] == ["review.decided", "sign.decided", "seal.decided"][-3:]
    assert [n.template for n in center.notices] == ["decision_sealed"]


async def test_a_refusal_at_review_is_sealed_without_a_signature(
        temporal_dev_server: WorkflowEnvironment) -> None:
    async with approval_case(temporal_dev_server) as case:
        refused = await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.REFUSE)
        await case.decide(SEALER, c.Stage.SEAL, c.Outcome.SEAL)
        result = await case.handle.result()
    assert refused.next_stage == c.Stage.SEAL
    assert result.outcome == "refused"
    assert case.center.seals[result.case_number].decision == "refused"


async def test_a_refusal_at_signature_is_sealed(
        temporal_dev_server: WorkflowEnvironment) -> None:
    async with approval_case(temporal_dev_server) as case:
        await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        await case.decide(LEADER, c.Stage.SIGN, c.Outcome.REFUSE)
        await case.decide(SEALER, c.Stage.SEAL, c.Outcome.SEAL)
        result = await case.handle.result()
    assert result.outcome == "refused"


async def test_wrong_decisions_are_refused_and_record_nothing(
        temporal_dev_server: WorkflowEnvironment) -> None:
    async with approval_case(temporal_dev_server) as case:
        wrong_department = await case.refused(
            c.DECIDE, c.Decision(FOREIGN_REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE))
        wrong_role = await case.refused(
            c.DECIDE, c.Decision(LEADER, c.Stage.REVIEW, c.Outcome.APPROVE))
        wrong_stage = await case.refused(
            c.DECIDE, c.Decision(LEADER, c.Stage.SIGN, c.Outcome.APPROVE))
        clerk_as_reviewer = c.Actor(CLERK.official_id, "SCJGJ", ["window_clerk", "reviewer"],
                                    "x")
        same_person = await case.refused(
            c.DECIDE, c.Decision(clerk_as_reviewer, c.Stage.REVIEW, c.Outcome.APPROVE))
        bad_outcome = await case.refused(
            c.DECIDE, c.Decision(REVIEWER, c.Stage.REVIEW, c.Outcome.SEAL))
        assert case.center.decisions == []
        await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        leader_and_reviewer = c.Actor(REVIEWER.official_id, "SCJGJ", ["reviewer", "leader"], "x")
        twice = await case.refused(
            c.DECIDE, c.Decision(leader_and_reviewer, c.Stage.SIGN, c.Outcome.APPROVE))
        replayed = await case.refused(
            c.DECIDE, c.Decision(OTHER_REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE))
        await case.decide(LEADER, c.Stage.SIGN, c.Outcome.APPROVE)
        await case.decide(SEALER, c.Stage.SEAL, c.Outcome.SEAL)
        await case.handle.result()
    assert (wrong_department.type, wrong_role.type, wrong_stage.type) == (
        "PermissionDenied", "PermissionDenied", "FailedPrecondition")
    assert (same_person.type, twice.type) == ("PermissionDenied", "PermissionDenied")
    assert "acts once" in same_person.message
    assert bad_outcome.type == "InvalidArgument"
    assert replayed.type == "FailedPrecondition"
    assert len(case.center.decisions) == 3


async def test_a_finished_case_takes_no_more_decisions(
        temporal_dev_server: WorkflowEnvironment) -> None:
    async with approval_case(temporal_dev_server) as case:
        await case.handle.execute_update(c.WITHDRAW, c.Withdrawal(CLERK, "applicant asked"))
        result = await case.handle.result()
    assert result.outcome == "withdrawn"
    assert case.center.closed_tasks[-1].outcome == "withdrawn"
    assert "withdrawn" in case.center.event_kinds()
    assert case.center.decisions == []


async def test_withdrawal_is_refused_after_the_seal_and_from_non_clerks(
        temporal_dev_server: WorkflowEnvironment) -> None:
    async with approval_case(temporal_dev_server) as case:
        not_a_clerk = await case.refused(c.WITHDRAW, c.Withdrawal(REVIEWER))
        await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.REFUSE)
        await case.decide(SEALER, c.Stage.SEAL, c.Outcome.SEAL)
        await case.handle.result()
    assert not_a_clerk.type == "PermissionDenied"


async def test_yellow_then_red_escalates_and_the_case_still_finishes(
        temporal_dev_server: WorkflowEnvironment) -> None:
    async with approval_case(temporal_dev_server, fast_deadlines=(1.5, 3.0, 60.0)) as case:
        first = await case.status()
        yellow = await case.wait_for(c.SlaState.WARNING)
        red = await case.wait_for(c.SlaState.BREACHED)
        await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        await case.decide(LEADER, c.Stage.SIGN, c.Outcome.APPROVE)
        await case.decide(SEALER, c.Stage.SEAL, c.Outcome.SEAL)
        result = await case.handle.result()
    assert first.sla_state == c.SlaState.ON_TIME
    assert yellow.stage == red.stage == c.Stage.REVIEW
    assert [(e.kind, e.department_code) for e in case.center.escalations] == [
        ("promised_breach", "SCJGJ")]
    assert result.outcome == "approved"
    assert result.sla_state == c.SlaState.BREACHED
    kinds = case.center.event_kinds()
    assert kinds.index("sla.warning") < kinds.index("sla.breached") < kinds.index("escalated")


async def test_a_special_procedure_stops_the_clock(
        temporal_dev_server: WorkflowEnvironment) -> None:
    async with approval_case(temporal_dev_server, fast_deadlines=(1.0, 2.0, 60.0)) as case:
        expert = c.SpecialProcedureChange(REVIEWER, "expert_review", "专家评审")
        await case.handle.execute_update(c.START_SPECIAL_PROCEDURE, expert)
        paused = await case.status()
        refused_decision = await case.refused(
            c.DECIDE, c.Decision(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE))
        not_allowed = await case.refused(
            c.START_SPECIAL_PROCEDURE, c.SpecialProcedureChange(REVIEWER, "hearing"))
        await asyncio.sleep(3)  # the promised deadline passes while the clock stands still
        during = await case.status()
        await case.handle.execute_update(c.END_SPECIAL_PROCEDURE, expert)
        after = await case.status()
        await case.handle.terminate("test over")
    assert paused.sla_state == during.sla_state == c.SlaState.PAUSED
    assert paused.paused_for == "expert_review"
    assert refused_decision.type == "FailedPrecondition"
    assert not_allowed.type == "FailedPrecondition"
    assert case.center.escalations == []
    assert after.sla_state == c.SlaState.ON_TIME
    span = case.center.deadline_requests[-1].paused
    assert [(p.procedure, bool(p.start_on), bool(p.end_on)) for p in span] == [
        ("expert_review", True, True)]
    assert [n.template for n in case.center.notices] == [
        "special_procedure_started", "special_procedure_ended"]
    assert case.center.open_tasks[(paused.case_number, "review")].due_at == (
        after.deadlines.promised_due_at if after.deadlines else None)


async def test_a_leader_extends_the_legal_limit_once(
        temporal_dev_server: WorkflowEnvironment) -> None:
    async with approval_case(temporal_dev_server) as case:
        before = await case.status()
        too_long = await case.refused(c.EXTEND_TIME_LIMIT, c.Extension(LEADER, 11, "复杂"))
        no_reason = await case.refused(c.EXTEND_TIME_LIMIT, c.Extension(LEADER, 5, " "))
        not_leader = await case.refused(c.EXTEND_TIME_LIMIT, c.Extension(REVIEWER, 5, "复杂"))
        receipt = await case.handle.execute_update(
            c.EXTEND_TIME_LIMIT, c.Extension(LEADER, 10, "需要现场核查"),
            result_type=c.ChangeReceipt)
        again = await case.refused(c.EXTEND_TIME_LIMIT, c.Extension(LEADER, 1, "再延"))
        await case.handle.terminate("test over")
    assert (too_long.type, no_reason.type, not_leader.type) == (
        "InvalidArgument", "InvalidArgument", "PermissionDenied")
    assert again.type == "FailedPrecondition"
    assert before.deadlines is not None
    assert receipt.deadlines.legal_due_at >= before.deadlines.legal_due_at + timedelta(days=14)
    assert receipt.deadlines.promised_due_at == before.deadlines.promised_due_at
    assert [(d.stage, d.outcome) for d in case.center.decisions] == [("extension", "extend_10")]


async def test_a_year_without_a_schedule_is_flagged_until_one_is_loaded(
        time_skipping: WorkflowEnvironment) -> None:
    async with approval_case(time_skipping, promised=10, legal=20,
                             accepted_on=date(2026, 12, 21)) as case:
        flagged = await case.status()
        case.center.schedules.append(YearSchedule(
            2027, frozenset({date(2027, 1, 1)}), frozenset()))
        await case.handle.signal(c.RECOMPUTE_DEADLINES, c.Recompute("2027 schedule loaded"))
        cleared = await case.until(lambda status: status.calendar_gap_year == 0)
        await case.handle.terminate("test over")
    assert flagged.calendar_gap_year == 2027
    assert cleared.calendar_gap_year == 0
    assert cleared.deadlines is not None and flagged.deadlines is not None
    # New Year's Day 2027 is a holiday in the loaded schedule: the deadline moves a day.
    assert cleared.deadlines.promised_due_at - flagged.deadlines.promised_due_at == timedelta(
        days=1)


async def test_each_stage_task_is_due_by_its_own_limit(
        temporal_dev_server: WorkflowEnvironment) -> None:
    async with approval_case(temporal_dev_server) as case:
        status = await case.status()
        review_task = await case.task("review")
        await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        sign_task = await case.task("sign")
        await case.handle.terminate("test over")
    assert status.deadlines is not None
    stage_due = status.deadlines.stage_due_at
    assert review_task.due_at == stage_due["review"] < stage_due["sign"]
    assert sign_task.due_at == stage_due["sign"]
