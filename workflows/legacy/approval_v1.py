"""ApprovalWorkflow: the four-single chain for one accepted case.

One window accepts (the intake service starts this workflow), one division
reviews, one leader signs, one seal completes. Human decisions arrive as
updates through the review and intake services; the update validators
refuse the wrong stage, role, department or person before anything is
recorded. Deadlines are working days computed by the review service; a
watcher turns the case yellow before the promised deadline and red after
it, opening an escalation for the supervision desk, and the case can still
finish. Special procedures stop the clock; a leader may extend the legal
limit once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from kernel.temporal import (
        CASE_KIND,
        CASE_NUMBER,
        DEPARTMENT,
        DUE_TIME,
        ITEM_CODE,
        SLA_STATE,
        STAGE,
    )
    from workflows.legacy.approval_v1_contract import (
        CASE_DEADLINES,
        CENTER_DEPARTMENT,
        CLOSE_TASK,
        DECIDE,
        END_SPECIAL_PROCEDURE,
        EXTEND_TIME_LIMIT,
        INTAKE_QUEUE,
        MAX_EXTENSION_DAYS,
        NOTIFY_APPLICANT,
        OPEN_ESCALATION,
        OPEN_TASK,
        RECOMPUTE_DEADLINES,
        RECORD_CASE_EVENT,
        RECORD_DECISION,
        REVIEW_QUEUE,
        SEAL_DECISION,
        STAGE_ROLE,
        START_SPECIAL_PROCEDURE,
        STATUS,
        WITHDRAW,
        WORKFLOW_NAME,
        Actor,
        ApplicantNotice,
        ApprovalInput,
        ApprovalResult,
        ApprovalStatus,
        CaseDeadlinesInput,
        CaseEvent,
        ChangeReceipt,
        Deadlines,
        Decision,
        DecisionReceipt,
        DecisionRecord,
        EscalationOpening,
        Extension,
        Outcome,
        PausedSpan,
        Recompute,
        SealReceipt,
        SealRequest,
        SlaState,
        SpecialProcedureChange,
        Stage,
        TaskClosing,
        TaskOpening,
        Withdrawal,
    )
    from workflows.legacy.approval_v1_contract import CASE_KIND as KIND_APPROVAL

#: Recording activities must land: retried until they do, unless the input is wrong.
RECORDING = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                        maximum_interval=timedelta(seconds=30),
                        non_retryable_error_types=["NotFound", "InvalidArgument"])
ACTIVITY_TIMEOUT = timedelta(seconds=30)
#: Patch: every change of SLA state (pause, recomputed deadlines) is upserted and put on
#: the timeline. Histories recorded before it (tests/replay, v1) keep the old path.
SLA_SHOWN_ON_EVERY_CHANGE = "sla-shown-on-every-change"
#: Patch: search attributes are upserted only when their value changes (fewer history
#: events per case; bench/approval.py).
UPSERT_ONLY_CHANGES = "upsert-only-changes"
TERMINAL = (Stage.COMPLETED, Stage.WITHDRAWN)


def _refuse(kind: str, message: str) -> ApplicationError:
    """An update refusal; ``kind`` is the gRPC status the service answers with."""
    return ApplicationError(message, type=kind, non_retryable=True)


@workflow.defn(name=WORKFLOW_NAME)
class ApprovalWorkflow:
    @workflow.init
    def __init__(self, case: ApprovalInput) -> None:
        self.case = case
        self.stage = Stage.REVIEW
        self.sla_state = SlaState.ON_TIME
        self.deadlines: Deadlines | None = None
        self.deadline_version = 0
        self.decisions: list[DecisionRecord] = []
        self.actors: set[str] = {case.clerk_id}
        self.deciding = False
        self.paused: list[PausedSpan] = []
        self.extension_days = 0
        self.outcome = ""
        self.certificate_number = ""
        self.escalated: set[str] = set()
        self.event_count = 0
        self.task_opened = ""
        self.shown_stage = ""
        #: Set once deadlines are known and the chain has begun; handlers wait for it.
        self.started = False

    # ---- the chain -------------------------------------------------------------------

    @workflow.run
    async def run(self, case: ApprovalInput) -> ApprovalResult:
        identity = [CASE_NUMBER.value_set(case.case_number),
                    ITEM_CODE.value_set(case.item_code),
                    DEPARTMENT.value_set(case.department_code),
                    CASE_KIND.value_set(KIND_APPROVAL)]
        if workflow.patched(UPSERT_ONLY_CHANGES):
            # The starter usually set them already: upsert only what it did not.
            present = workflow.info().typed_search_attributes
            identity = [u for u in identity if present.get(u.key) is None]
        if identity:
            workflow.upsert_search_attributes(identity)
        await self._compute_deadlines("accepted")
        await self._event("chain.started", stage=self.stage, official_id=case.clerk_id,
                          status="under_review")
        self.started = True
        watcher = asyncio.create_task(self._watch_deadlines())
        while self.stage not in TERMINAL:
            stage = self.stage
            self._show()
            if stage in STAGE_ROLE:
                await self._open_task(stage)
            await workflow.wait_condition(self._left(stage))
        await workflow.wait_condition(workflow.all_handlers_finished)
        watcher.cancel()
        self._show()
        return ApprovalResult(case.case_number, self.outcome, workflow.now(), self.sla_state,
                              self.certificate_number)

    async def _open_task(self, stage: str) -> None:
        """Put the stage in its deciders' inbox, due by the promised deadline."""
        assert self.deadlines is not None
        self.task_opened = stage
        await workflow.execute_activity(
            OPEN_TASK,
            TaskOpening(self.case.case_number, stage, self._deciding_department(stage),
                        STAGE_ROLE[Stage(stage)], self.case.item_code,
                        self._stage_due(stage)),
            task_queue=REVIEW_QUEUE, start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RECORDING, summary=f"open the {stage} task")

    def _stage_due(self, stage: str) -> datetime:
        """The stage's own limit, or the promised deadline where none is given."""
        assert self.deadlines is not None
        return self.deadlines.stage_due_at.get(stage, self.deadlines.promised_due_at)

    def _left(self, stage: str) -> Callable[[], bool]:
        return lambda: self.stage != stage

    def _deciding_department(self, stage: str) -> str:
        return CENTER_DEPARTMENT if stage == Stage.SEAL else self.case.department_code

    # ---- decisions --------------------------------------------------------------------

    @workflow.update(name=DECIDE)
    async def decide(self, decision: Decision) -> DecisionReceipt:
        # Two decisions can pass their validators before either handler runs.
        if self.deciding or decision.stage != self.stage:
            raise _refuse("FailedPrecondition",
                          f"case {self.case.case_number} is no longer at {decision.stage}")
        self.deciding = True
        try:
            await workflow.wait_condition(lambda: self.started)
            return await self._record(decision)
        finally:
            self.deciding = False

    @decide.validator
    def _validate_decide(self, decision: Decision) -> None:
        self._check_open()
        stage = decision.stage
        if stage not in STAGE_ROLE:
            raise _refuse("InvalidArgument", f"{stage} is not a stage that takes a decision")
        if stage != self.stage or self.deciding:
            raise _refuse("FailedPrecondition",
                          f"case {self.case.case_number} is at {self.stage}, not at {stage}")
        allowed = {Outcome.SEAL} if stage == Stage.SEAL else {Outcome.APPROVE, Outcome.REFUSE}
        if decision.outcome not in allowed:
            raise _refuse("InvalidArgument",
                          f"at {stage} the decision is one of {sorted(allowed)}")
        self._check_actor(decision.actor, STAGE_ROLE[Stage(stage)],
                          self._deciding_department(stage))
        if self._paused_now():
            raise _refuse("FailedPrecondition",
                          f"case {self.case.case_number} is paused for "
                          f"{self.paused[-1].procedure}")

    def _check_open(self) -> None:
        if self.stage in TERMINAL:
            raise _refuse("FailedPrecondition",
                          f"case {self.case.case_number} is finished ({self.outcome})")

    def _check_actor(self, actor: Actor, role: str, department: str) -> None:
        if role not in actor.roles:
            raise _refuse("PermissionDenied", f"official {actor.official_id} is not a {role}")
        if actor.department_code != department:
            raise _refuse("PermissionDenied",
                          f"case {self.case.case_number} is decided by {department}, "
                          f"not by {actor.department_code}")
        if actor.official_id in self.actors or (
                actor.on_behalf_of and actor.on_behalf_of in self.actors):
            raise _refuse("PermissionDenied",
                          f"official {actor.official_id} has already acted on case "
                          f"{self.case.case_number}: one person acts once on a case")

    async def _record(self, decision: Decision) -> DecisionReceipt:
        case = self.case
        stage = Stage(decision.stage)
        actor = decision.actor
        now = workflow.now()
        record = DecisionRecord(case.case_number, stage, decision.outcome, actor.official_id,
                                actor.system, now, decision.opinion, decision.legal_basis,
                                actor.on_behalf_of, actor.delegation_id)
        await workflow.execute_activity(
            RECORD_DECISION, record, task_queue=REVIEW_QUEUE,
            start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RECORDING,
            summary=f"record the {stage} decision")
        self.decisions.append(record)
        self.actors.add(actor.official_id)
        await workflow.execute_activity(
            CLOSE_TASK, TaskClosing(case.case_number, stage, actor.official_id, decision.outcome),
            task_queue=REVIEW_QUEUE, start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RECORDING, summary=f"close the {stage} task")
        if stage == Stage.SEAL:
            approved = all(d.outcome == Outcome.APPROVE for d in self.decisions
                           if d.stage in (Stage.REVIEW, Stage.SIGN))
            receipt: SealReceipt = await workflow.execute_activity(
                SEAL_DECISION,
                SealRequest(case.case_number, "approved" if approved else "refused", now,
                            actor.official_id, self._decider(Stage.REVIEW),
                            self._decider(Stage.SIGN), self._last_opinion(),
                            self._last_basis()),
                task_queue=INTAKE_QUEUE, result_type=SealReceipt,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RECORDING,
                summary="seal the decision document")
            self.certificate_number = receipt.certificate_number
            self.outcome = "approved" if approved else "refused"
            next_stage = Stage.COMPLETED
        elif decision.outcome == Outcome.REFUSE or stage == Stage.SIGN:
            next_stage = Stage.SEAL
        else:
            next_stage = Stage.SIGN
        details = {"outcome": decision.outcome}
        if actor.on_behalf_of:
            details |= {"on_behalf_of": actor.on_behalf_of, "delegation": actor.delegation_id}
        if self.certificate_number:
            details["certificate_number"] = self.certificate_number
        status = {Stage.SIGN: "awaiting_signature", Stage.SEAL: "awaiting_seal",
                  Stage.COMPLETED: self.outcome}[next_stage]
        await self._event(f"{stage}.decided", stage=stage, official_id=actor.official_id,
                          details=details, status=status)
        if next_stage == Stage.COMPLETED:
            await self._notify("decision_sealed",
                               {"decision": self.outcome,
                                "certificate_number": self.certificate_number})
        self.stage = next_stage
        self._show()
        return DecisionReceipt(case.case_number, stage, decision.outcome, now, next_stage,
                               self.certificate_number)

    def _decider(self, stage: Stage) -> str:
        return next((d.official_id for d in self.decisions if d.stage == stage), "")

    def _last_opinion(self) -> str:
        return next((d.opinion for d in reversed(self.decisions) if d.opinion), "")

    def _last_basis(self) -> str:
        return next((d.legal_basis for d in reversed(self.decisions) if d.legal_basis), "")

    # ---- withdrawal -------------------------------------------------------------------

    @workflow.update(name=WITHDRAW)
    async def withdraw(self, withdrawal: Withdrawal) -> ChangeReceipt:
        if self.stage in TERMINAL or self.deciding:
            raise _refuse("FailedPrecondition",
                          f"case {self.case.case_number} can no longer be withdrawn")
        stage = self.stage
        self.stage = Stage.WITHDRAWN
        self.outcome = "withdrawn"
        await workflow.wait_condition(lambda: self.started)
        await workflow.execute_activity(
            CLOSE_TASK,
            TaskClosing(self.case.case_number, stage, withdrawal.actor.official_id, "withdrawn"),
            task_queue=REVIEW_QUEUE, start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RECORDING, summary=f"close the {stage} task")
        await self._event("withdrawn", stage=stage, official_id=withdrawal.actor.official_id,
                          status="withdrawn")
        self._show()
        return self._receipt()

    @withdraw.validator
    def _validate_withdraw(self, withdrawal: Withdrawal) -> None:
        self._check_open()
        if self.deciding:
            raise _refuse("FailedPrecondition",
                          f"case {self.case.case_number} is being decided; try again")
        if "window_clerk" not in withdrawal.actor.roles:
            raise _refuse("PermissionDenied",
                          "a withdrawal is taken by a window clerk, for the applicant")

    # ---- the clock: special procedures, extension, recomputation ---------------------

    @workflow.update(name=START_SPECIAL_PROCEDURE)
    async def start_special_procedure(self, change: SpecialProcedureChange) -> ChangeReceipt:
        self._check_open()
        if self._paused_now():
            raise _refuse("FailedPrecondition", "the clock is already paused")
        # Taken before any await, so a second start handled alongside sees the pause.
        self.paused.append(PausedSpan(change.procedure, self._today()))
        await workflow.wait_condition(lambda: self.started)
        if workflow.patched(SLA_SHOWN_ON_EVERY_CHANGE):
            await self._apply_sla(SlaState.PAUSED)
        else:
            self.sla_state = SlaState.PAUSED
        self.deadline_version += 1
        await self._event("clock.paused", stage=self.stage,
                          official_id=change.actor.official_id,
                          details={"procedure": change.procedure}, sla_state=self.sla_state)
        await self._notify("special_procedure_started", {"procedure": change.procedure})
        self._show()
        return self._receipt()

    @start_special_procedure.validator
    def _validate_start(self, change: SpecialProcedureChange) -> None:
        self._check_open()
        self._check_procedure_actor(change.actor)
        if change.procedure not in self.case.special_procedures:
            raise _refuse("FailedPrecondition",
                          f"item {self.case.item_code} does not allow {change.procedure}")
        if self._paused_now():
            raise _refuse("FailedPrecondition",
                          f"the clock is already paused for {self.paused[-1].procedure}")

    @workflow.update(name=END_SPECIAL_PROCEDURE)
    async def end_special_procedure(self, change: SpecialProcedureChange) -> ChangeReceipt:
        if not self._paused_now():
            raise _refuse("FailedPrecondition", "the clock is not paused")
        self.paused[-1].end_on = self._today()
        await self._compute_deadlines("special procedure ended")
        await self._event("clock.resumed", stage=self.stage,
                          official_id=change.actor.official_id,
                          details={"procedure": change.procedure})
        await self._notify("special_procedure_ended", {"procedure": change.procedure})
        self._show()
        return self._receipt()

    @end_special_procedure.validator
    def _validate_end(self, change: SpecialProcedureChange) -> None:
        self._check_open()
        self._check_procedure_actor(change.actor)
        if not self._paused_now():
            raise _refuse("FailedPrecondition", "the clock is not paused")
        if self.paused[-1].procedure != change.procedure:
            raise _refuse("FailedPrecondition",
                          f"the clock is paused for {self.paused[-1].procedure}, "
                          f"not {change.procedure}")

    def _check_procedure_actor(self, actor: Actor) -> None:
        if not {"reviewer", "leader"} & set(actor.roles):
            raise _refuse("PermissionDenied",
                          "special procedures are started and ended by the deciding division")
        if actor.department_code != self.case.department_code:
            raise _refuse("PermissionDenied",
                          f"case {self.case.case_number} belongs to {self.case.department_code}")

    @workflow.update(name=EXTEND_TIME_LIMIT)
    async def extend_time_limit(self, extension: Extension) -> ChangeReceipt:
        if self.extension_days:
            raise _refuse("FailedPrecondition", "the legal limit was extended already")
        self.extension_days = extension.days
        await workflow.wait_condition(lambda: self.started)
        actor = extension.actor
        now = workflow.now()
        await workflow.execute_activity(
            RECORD_DECISION,
            DecisionRecord(self.case.case_number, "extension", f"extend_{extension.days}",
                           actor.official_id, actor.system, now, extension.reason, "",
                           actor.on_behalf_of, actor.delegation_id),
            task_queue=REVIEW_QUEUE, start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RECORDING, summary="record the extension")
        await self._compute_deadlines("legal limit extended")
        await self._event("time_limit.extended", stage=self.stage, official_id=actor.official_id,
                          details={"days": str(extension.days)})
        await self._notify("time_limit_extended", {"days": str(extension.days)})
        self._show()
        return self._receipt()

    @extend_time_limit.validator
    def _validate_extend(self, extension: Extension) -> None:
        self._check_open()
        self._check_actor_role(extension.actor, "leader", self.case.department_code)
        if self.extension_days:
            raise _refuse("FailedPrecondition",
                          f"the legal limit of case {self.case.case_number} was extended already")
        if not 1 <= extension.days <= MAX_EXTENSION_DAYS:
            raise _refuse("InvalidArgument",
                          f"an extension is 1 to {MAX_EXTENSION_DAYS} working days")
        if not extension.reason.strip():
            raise _refuse("InvalidArgument", "an extension needs a reason")

    def _check_actor_role(self, actor: Actor, role: str, department: str) -> None:
        if role not in actor.roles:
            raise _refuse("PermissionDenied", f"official {actor.official_id} is not a {role}")
        if actor.department_code != department:
            raise _refuse("PermissionDenied",
                          f"case {self.case.case_number} belongs to {department}")

    @workflow.signal(name=RECOMPUTE_DEADLINES)
    async def recompute_deadlines(self, request: Recompute) -> None:
        # A JSON null (or any other shape) is dropped: raising would wedge the workflow.
        if not isinstance(request, Recompute) or not isinstance(request.reason, str):
            workflow.logger.warning("recompute_deadlines: dropped a malformed signal")
            return
        await workflow.wait_condition(lambda: self.started)
        if self.stage in TERMINAL:
            return
        await self._compute_deadlines(request.reason or "recomputed")
        self._show()

    @workflow.query(name=STATUS)
    def status(self) -> ApprovalStatus:
        return ApprovalStatus(
            case_number=self.case.case_number, item_code=self.case.item_code,
            department_code=self.case.department_code, stage=self.stage,
            sla_state=self.sla_state, deadlines=self.deadlines, decisions=list(self.decisions),
            waiting_for=self._waiting_for(),
            paused_for=self.paused[-1].procedure if self._paused_now() else "",
            extension_days=self.extension_days, certificate_number=self.certificate_number,
            outcome=self.outcome,
            calendar_gap_year=self.deadlines.unknown_year if self.deadlines else 0)

    # ---- deadlines ------------------------------------------------------------------

    def _paused_now(self) -> bool:
        return bool(self.paused) and not self.paused[-1].end_on

    def _today(self) -> str:
        # Working days are China's: the date is taken in China's time zone (UTC+8).
        return (workflow.now() + timedelta(hours=8)).date().isoformat()

    async def _compute_deadlines(self, reason: str) -> None:
        self.deadlines = await workflow.execute_activity(
            CASE_DEADLINES,
            CaseDeadlinesInput(self.case.accepted_on, self.case.promised_limit_days,
                               self.case.legal_limit_days, self.extension_days,
                               list(self.paused)),
            task_queue=REVIEW_QUEUE, result_type=Deadlines,
            start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RECORDING,
            summary=f"compute deadlines ({reason})")
        self.deadline_version += 1
        details = {"reason": reason}
        if self.deadlines.unknown_year:
            details["calendar_gap_year"] = str(self.deadlines.unknown_year)
        if workflow.patched(SLA_SHOWN_ON_EVERY_CHANGE):
            workflow.upsert_search_attributes([
                DUE_TIME.value_set(self.deadlines.promised_due_at)])
            await self._event("deadlines.computed", stage=self.stage, details=details,
                              deadlines=self.deadlines, sla_state=self.sla_state)
            # A new deadline can make the case yellow or red (or green again) at once.
            await self._apply_sla(self._sla_now())
        else:
            self.sla_state = self._sla_now()
            workflow.upsert_search_attributes([
                DUE_TIME.value_set(self.deadlines.promised_due_at),
                SLA_STATE.value_set(self.sla_state),
            ])
            await self._event("deadlines.computed", stage=self.stage, details=details,
                              deadlines=self.deadlines, sla_state=self.sla_state)
        if self.task_opened and self.task_opened == self.stage:
            await self._open_task(self.stage)  # the inbox orders by the new due time

    def _sla_now(self) -> SlaState:
        if self._paused_now():
            return SlaState.PAUSED
        assert self.deadlines is not None
        now = workflow.now()
        if now >= self.deadlines.promised_due_at:
            return SlaState.BREACHED
        if now >= self.deadlines.warning_at:
            return SlaState.WARNING
        return SlaState.ON_TIME

    async def _watch_deadlines(self) -> None:
        """Turn the case yellow, then red (escalating), then escalate the legal limit."""
        while self.stage not in TERMINAL:
            await self._apply_sla(self._sla_now())
            marks = [] if self._paused_now() or self.deadlines is None else [
                m for m in (self.deadlines.warning_at, self.deadlines.promised_due_at,
                            self.deadlines.legal_due_at) if m > workflow.now()]
            version = self.deadline_version

            def changed(version: int = version) -> bool:
                return self.stage in TERMINAL or self.deadline_version != version

            if not marks:
                await workflow.wait_condition(changed)
                continue
            wait = min(marks) - workflow.now()
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    changed, timeout=wait,
                    timeout_summary=f"until {min(marks).isoformat()} (next deadline mark)")

    async def _apply_sla(self, state: SlaState) -> None:
        assert self.deadlines is not None
        if state != self.sla_state:
            self.sla_state = state
            workflow.upsert_search_attributes([SLA_STATE.value_set(state)])
            await self._event(f"sla.{state}", stage=self.stage, sla_state=state)
            self._show()
        if state == SlaState.BREACHED:
            await self._escalate("promised_breach", self.deadlines.promised_due_at)
        if not self._paused_now() and workflow.now() >= self.deadlines.legal_due_at:
            await self._escalate("legal_breach", self.deadlines.legal_due_at)

    async def _escalate(self, kind: str, due: Any) -> None:
        if kind in self.escalated:
            return
        self.escalated.add(kind)
        await workflow.execute_activity(
            OPEN_ESCALATION,
            EscalationOpening(self.case.case_number, self.case.department_code, self.stage,
                              kind, due),
            task_queue=REVIEW_QUEUE, start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RECORDING, summary=f"escalate to the supervision desk ({kind})")
        await self._event("escalated", stage=self.stage, details={"kind": kind})

    # ---- the timeline and the UI ----------------------------------------------------

    async def _event(self, kind: str, *, stage: str = "", official_id: str = "",
                     details: dict[str, str] | None = None, deadlines: Deadlines | None = None,
                     status: str = "", sla_state: str = "") -> None:
        self.event_count += 1
        await workflow.execute_activity(
            RECORD_CASE_EVENT,
            CaseEvent(self.case.case_number, f"wf-{self.event_count:04d}", kind, workflow.now(),
                      stage, official_id, details or {}, deadlines, status, sla_state),
            task_queue=INTAKE_QUEUE, start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RECORDING, summary=f"timeline: {kind}")

    async def _notify(self, template: str, details: dict[str, str]) -> None:
        self.event_count += 1
        await workflow.execute_activity(
            NOTIFY_APPLICANT,
            ApplicantNotice(self.case.case_number, f"wf-{self.event_count:04d}", template,
                            workflow.now(), details),
            task_queue=INTAKE_QUEUE, start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RECORDING, summary=f"notify the applicant: {template}")

    def _receipt(self) -> ChangeReceipt:
        assert self.deadlines is not None
        return ChangeReceipt(self.case.case_number, self.stage, self.sla_state, self.deadlines)

    def _waiting_for(self) -> str:
        if self.stage in TERMINAL:
            return "nobody: the case is finished"
        if self._paused_now():
            return f"the special procedure {self.paused[-1].procedure} to end"
        role = STAGE_ROLE[Stage(self.stage)]
        return f"a {role.replace('_', ' ')} of {self._deciding_department(self.stage)}"

    def _show(self) -> None:
        """Stage, whom the case waits for and its deadlines, for the Temporal UI."""
        if self.shown_stage != self.stage or not workflow.patched(UPSERT_ONLY_CHANGES):
            workflow.upsert_search_attributes([STAGE.value_set(self.stage)])
            self.shown_stage = self.stage
        lines = [f"**Stage:** {self.stage}", f"**Waiting for:** {self._waiting_for()}",
                 f"**SLA:** {self.sla_state}"]
        if self.deadlines is not None:
            if self.stage in STAGE_ROLE:
                lines.append(f"**This stage due:** {self._stage_due(self.stage).isoformat()}")
            lines += [f"**Yellow from:** {self.deadlines.warning_at.isoformat()}",
                      f"**Promised deadline:** {self.deadlines.promised_due_at.isoformat()}",
                      f"**Legal deadline:** {self.deadlines.legal_due_at.isoformat()}"
                      + (f" (extended {self.extension_days} working days)"
                         if self.extension_days else "")]
            if self.deadlines.unknown_year:
                lines.append(f"**Calendar:** no holiday schedule for "
                             f"{self.deadlines.unknown_year}; deadlines there are provisional")
        if self.certificate_number:
            lines.append(f"**Certificate:** {self.certificate_number}")
        workflow.set_current_details("\n".join(lines))
