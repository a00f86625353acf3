"""ApprovalWorkflowV2: the four-single chain for one accepted case.

One window accepts (intake starts this workflow with its signed acceptance),
one division reviews, one leader signs, one seal completes. Every act
arrives as an update carrying a statement signed by the service that
authenticated the official; the validator checks the signature and the
chain's rules (workflows/approval_rules.py) and refuses a wrong act before
anything is recorded.

The workflow reads as three parts:

- **run**: open the case (deadlines, first task), then record each decided
  stage with one review activity, in order, until the case ends;
- **handlers**: decide, withdraw, special procedures and extension take
  their act into the workflow's state and answer at once; only the seal
  waits for intake to seal the document, because its answer is the
  certificate number;
- **clock**: a watcher turns the case yellow before the promised deadline,
  red after it (escalating to the supervision desk) and escalates the legal
  limit; deadline computations run one at a time, each on the state as it
  stands when it begins, so none is lost to a slower one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from kernel.chinatime import china_date
    from kernel.temporal import (
        CASE_KIND,
        CASE_NUMBER,
        DEPARTMENT,
        DUE_TIME,
        ITEM_CODE,
        SLA_STATE,
        STAGE,
    )
    from workflows.acts import (
        check_signature,
        read_statement,
        refuse,
        refused_by_activity,
        shaped,
        stuck,
    )
    from workflows.approval_contract import (
        CASE_KIND as KIND_APPROVAL,
    )
    from workflows.approval_contract import (
        CLOSE_CASE,
        DECIDE,
        END_SPECIAL_PROCEDURE,
        EXTEND_TIME_LIMIT,
        INTAKE,
        MARK_SLA,
        NOTIFY_APPLICANT,
        OPEN_CASE,
        RECOMPUTE_CASE_DEADLINES,
        RECOMPUTE_DEADLINES,
        RECORD_TRANSITION,
        RECORD_WITHDRAWAL,
        REVIEW,
        SEAL_DECISION,
        STAGE_ROLE,
        START_SPECIAL_PROCEDURE,
        STATEMENT_SIGNER,
        STATUS,
        TERMINAL,
        WITHDRAW,
        WORKFLOW_NAME,
        ApplicantNotice,
        ApprovalInput,
        ApprovalResult,
        ApprovalStatus,
        CaseClosing,
        ChangeReceipt,
        ClockChange,
        Deadlines,
        DeadlinesRequest,
        Decision,
        DecisionReceipt,
        DecisionTaken,
        PausedSpan,
        Recompute,
        SealReceipt,
        SealRequest,
        SignedStatement,
        SlaMark,
        SlaState,
        Stage,
        StatementFacts,
        StatementKind,
        Transition,
        Withdrawal,
        WithdrawalRecord,
        activity_queue,
        content_digest,
    )
    from workflows.approval_rules import (
        ChainState,
        RuleBroken,
        check_decision,
        check_extension,
        check_procedure_end,
        check_procedure_start,
        check_withdrawal,
        deciding_department,
        next_stage,
        sla_state,
    )
    from workflows.arguments import well_typed

    # By the module's full name, so the sandbox hands over the worker's own module (its
    # listener), not a copy made for the workflow.
    from workflows.refused_acts import RefusedAct, printable, report, report_id

#: Recording activities must land: retried until they do, unless the input is wrong.
RECORDING = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                        maximum_interval=timedelta(seconds=30),
                        non_retryable_error_types=["NotFound", "InvalidArgument",
                                                   "PermissionDenied", "FailedPrecondition"])
ACTIVITY_TIMEOUT = timedelta(seconds=30)
#: Patch: the seal counts only with intake's signed receipt (histories before it took the
#: receipt's plain fields).
SEAL_RECEIPT_SIGNED = "seal-receipt-signed"
#: Patch: a special procedure's start is recorded with its statement even when the deadline
#: watcher showed the pause first.
PAUSE_RECORDED_WITH_STATEMENT = "pause-recorded-with-its-statement"


def _facts(statement: SignedStatement, kind: StatementKind) -> StatementFacts:
    """The statement's facts, if its signer signed it; refused otherwise."""
    facts = read_statement(statement, kind, read=StatementFacts.read,
                           malformed=StatementFacts.Malformed)
    check_signature(statement, kind, signer=STATEMENT_SIGNER[kind])
    return facts


@workflow.defn(name=WORKFLOW_NAME)
class ApprovalWorkflow:
    @workflow.init
    def __init__(self, case: ApprovalInput) -> None:
        self.acceptance = case.acceptance
        self.case = StatementFacts.read(case.acceptance.body)
        self.stage = Stage.REVIEW
        self.sla_state = SlaState.ON_TIME
        self.deadlines: Deadlines | None = None
        #: Bumped when deadlines change, so the watcher looks again.
        self.deadline_version = 0
        self.deadline_lock = asyncio.Lock()
        self.decisions: list[DecisionTaken] = []
        self.acted: set[str] = set(self.case.people)
        #: A decision or withdrawal is being taken; the next waits for it.
        self.deciding = False
        self.paused: list[PausedSpan] = []
        self.pause_statements: list[SignedStatement] = []
        self.extension: ClockChange | None = None
        self.outcome = ""
        self.certificate_number = ""
        self.escalated: set[str] = set()
        #: Decided stages and closings not yet recorded by review, in order.
        self.to_record: list[Transition | CaseClosing] = []
        self.notices = 0
        self.shown_stage = ""
        #: Set once the case is open (deadlines known, first task opened).
        self.started = False
        #: Which patched behaviours this run has (set first thing in run).
        self.receipts_signed = False
        self.pauses_recorded = False

    # ---- run: open the case, record each step ------------------------------------------

    @workflow.run
    async def run(self, case: ApprovalInput) -> ApprovalResult:
        # Patches are asked for here, first thing: a patch marker written inside an update
        # handler does not replay.
        self.receipts_signed = workflow.patched(SEAL_RECEIPT_SIGNED)
        self.pauses_recorded = workflow.patched(PAUSE_RECORDED_WITH_STATEMENT)
        self._upsert_identity()
        try:
            self.deadlines = await workflow.execute_activity(
                OPEN_CASE, DeadlinesRequest(self.acceptance, stage=Stage.REVIEW,
                                            reason="accepted", at=workflow.now(),
                                            sla_state=self.sla_state),
                task_queue=self._queue(REVIEW), result_type=Deadlines,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RECORDING,
                summary="open the case: deadlines and the review task")
        except ActivityError as error:
            raise stuck("case", "could not be opened in review", error) from error
        workflow.upsert_search_attributes([DUE_TIME.value_set(self.deadlines.promised_due_at)])
        self.started = True
        self._show()
        watcher = asyncio.create_task(self._watch_deadlines())
        while True:
            await workflow.wait_condition(
                lambda: bool(self.to_record) or watcher.done() or (
                    self.stage in TERMINAL and workflow.all_handlers_finished()))
            while self.to_record:
                await self._record(self.to_record[0])
                self.to_record.pop(0)
            if watcher.done() or (self.stage in TERMINAL and workflow.all_handlers_finished()):
                break
        try:
            await watcher
        except Exception as error:
            # Not a business outcome: fail the workflow task (shown in the UI, retried after
            # a fix) rather than the case.
            raise RuntimeError(f"the deadline watcher of case {self.case.case_number} "
                               f"failed: {error}") from error
        self._show()
        return ApprovalResult(self.case.case_number, self.outcome, workflow.now(),
                              self.sla_state, self.certificate_number)

    def _upsert_identity(self) -> None:
        """The identifying search attributes the starter did not set already."""
        wanted = [CASE_NUMBER.value_set(self.case.case_number),
                  ITEM_CODE.value_set(self.case.item_code),
                  DEPARTMENT.value_set(self.case.department_code),
                  CASE_KIND.value_set(KIND_APPROVAL)]
        present = workflow.info().typed_search_attributes
        missing = [u for u in wanted if present.get(u.key) is None]
        if missing:
            workflow.upsert_search_attributes(missing)

    async def _record(self, step: Transition | CaseClosing) -> None:
        try:
            await self._record_once(step)
        except ActivityError as error:
            raise stuck("case", "could not record its last step", error) from error

    async def _record_once(self, step: Transition | CaseClosing) -> None:
        if isinstance(step, Transition):
            await workflow.execute_activity(
                RECORD_TRANSITION, step, task_queue=self._queue(REVIEW),
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RECORDING,
                summary=f"record the {step.decision.stage} decision, open {step.next_stage}")
        else:
            await workflow.execute_activity(
                CLOSE_CASE, step, task_queue=self._queue(REVIEW),
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RECORDING,
                summary=f"close the case ({step.outcome})")

    def _queue(self, service: str) -> str:
        return activity_queue(workflow.info().task_queue, service)

    def _state(self) -> ChainState:
        return ChainState(
            case_number=self.case.case_number, department_code=self.case.department_code,
            stage=self.stage, acted=frozenset(self.acted),
            special_procedures=self.case.special_procedures, paused_for=self._paused_for(),
            extended=self.extension is not None, deciding=self.deciding)

    def _check(self, rule: Callable[[ChainState, StatementFacts], None],
               facts: StatementFacts) -> None:
        try:
            rule(self._state(), facts)
        except RuleBroken as broken:
            raise refuse(broken.status, broken.message) from broken

    def _authored(self, update: str, statement: SignedStatement, kind: StatementKind, *,
                  texts: dict[str, str] | None = None,
                  texts_refusal: str = "") -> StatementFacts:
        """The statement's facts if its service made it, for this case (and, when given, for
        these texts by their digest); refused otherwise, and reported.

        No service sends anything else: whoever sent it went around the services, so
        the refusal goes to review's audit log too (workflows/refused_acts.py; the
        workflows worker reports it). A genuine statement the chain's rules refuse
        (a wrong role, department or stage, a second act) is an official's mistake,
        answered but not reported. Validators do not run on replay.
        """
        try:
            facts = _facts(statement, kind)
            if facts.case_number != self.case.case_number:
                raise refuse("PermissionDenied", f"the statement is about case "
                              f"{facts.case_number}, not {self.case.case_number}")
            if texts is not None and content_digest(**texts) != facts.content_sha256:
                raise refuse("InvalidArgument", texts_refusal)
        except ApplicationError as refused:
            info = workflow.info()
            update_info = workflow.current_update_info()
            report(RefusedAct(
                case_number=self.case.case_number,
                report_id=report_id(info.workflow_id, info.run_id,
                                    update_info.id if update_info else ""),
                update_name=update, reason=printable(refused.message),
                refused_at=workflow.now()))
            raise
        return facts

    def _stage_due(self, stage: str) -> datetime:
        assert self.deadlines is not None
        return self.deadlines.stage_due_at.get(stage, self.deadlines.promised_due_at)

    # ---- handlers: decisions ---------------------------------------------------------------

    @workflow.update(name=DECIDE)
    async def decide(self, decision: Decision) -> DecisionReceipt:
        facts = StatementFacts.read(decision.statement.body)
        # The state may have moved since the validator ran (two decisions in one task).
        self._check(check_decision, facts)
        self.deciding = True
        try:
            await workflow.wait_condition(lambda: self.started)
            return await self._take(decision, facts)
        finally:
            self.deciding = False

    @decide.validator
    def _validate_decide(self, decision: Decision) -> None:
        shaped(DECIDE, decision, Decision)
        facts = self._authored(
            DECIDE, decision.statement, StatementKind.DECISION,
            texts={"opinion": decision.opinion, "legal_basis": decision.legal_basis},
            texts_refusal="the opinion and legal basis are not the ones review signed")
        self._check(check_decision, facts)

    async def _take(self, decision: Decision, facts: StatementFacts) -> DecisionReceipt:
        stage = Stage(facts.stage)
        now = workflow.now()
        record = DecisionTaken(stage, facts.outcome, facts.official_id, facts.on_behalf_of,
                                  facts.delegation_id, facts.system, now, decision.statement,
                                  decision.opinion, decision.legal_basis)
        following = next_stage(stage)
        sealed: SignedStatement | None = None
        if stage == Stage.SEAL:
            receipt: SealReceipt = await workflow.execute_activity(
                SEAL_DECISION, SealRequest(self.case.case_number, [*self.decisions, record]),
                task_queue=self._queue(INTAKE), result_type=SealReceipt,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RECORDING,
                summary="seal the decision document")
            if self.receipts_signed:
                # Only intake's signed word counts: whoever reaches Temporal could answer
                # the seal activity with a receipt of their own.
                sealed_facts = self._sealed(receipt)
                sealed = receipt.statement
                self.certificate_number = sealed_facts.certificate_number
                self.outcome = sealed_facts.outcome
            else:
                self.certificate_number = receipt.certificate_number
                self.outcome = receipt.decision
        self.decisions.append(record)
        self.acted |= facts.people
        self.stage = following
        department = deciding_department(following, self.case.department_code)
        self.to_record.append(Transition(
            self.case.case_number, record, following,
            next_department=department if following in STAGE_ROLE else "",
            next_role=STAGE_ROLE.get(following, ""),
            next_due_at=self._stage_due(following) if following in STAGE_ROLE else None,
            item_code=self.case.item_code, certificate_number=self.certificate_number,
            outcome=self.outcome, sla_state=self.sla_state, sealed=sealed))
        self._show()
        return DecisionReceipt(self.case.case_number, stage, facts.outcome, now, following,
                               self.certificate_number, sealed)

    def _sealed(self, receipt: SealReceipt) -> StatementFacts:
        """The facts of intake's seal receipt for this case.

        Its signature is checked where it counts, by review before it records the case
        as completed and before it answers the seal custodian; not here, because an
        update handler runs again on replay, where the worker's keys may differ.
        """
        if receipt.statement is None:
            raise refuse("PermissionDenied", "the seal came back without intake's signature")
        try:
            facts = StatementFacts.read(receipt.statement.body)
        except StatementFacts.Malformed as error:
            raise refuse("PermissionDenied", f"the seal came back unreadable: {error}") \
                from error
        if facts.kind != StatementKind.SEALED or facts.case_number != self.case.case_number \
                or not facts.certificate_number:
            raise refuse("PermissionDenied",
                          f"the seal came back for case {facts.case_number}, not this one")
        return facts

    # ---- handlers: withdrawal ------------------------------------------------------------

    @workflow.update(name=WITHDRAW)
    async def withdraw(self, withdrawal: Withdrawal) -> ChangeReceipt:
        facts = StatementFacts.read(withdrawal.statement.body)
        self._check(check_withdrawal, facts)
        self.deciding = True
        try:
            await workflow.wait_condition(lambda: self.started)
            stage = self.stage
            now = workflow.now()
            await workflow.execute_activity(
                RECORD_WITHDRAWAL,
                WithdrawalRecord(self.case.case_number, stage, now, withdrawal.statement),
                task_queue=self._queue(INTAKE), start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RECORDING, summary="close the case in intake (withdrawn)")
            self.stage = Stage.WITHDRAWN
            self.outcome = "withdrawn"
            self.to_record.append(CaseClosing(self.case.case_number, stage, "withdrawn", now,
                                              withdrawal.statement))
        finally:
            self.deciding = False
        self._show()
        return self._receipt()

    @withdraw.validator
    def _validate_withdraw(self, withdrawal: Withdrawal) -> None:
        shaped(WITHDRAW, withdrawal, Withdrawal)
        self._check(check_withdrawal,
                    self._authored(WITHDRAW, withdrawal.statement, StatementKind.WITHDRAWAL))

    # ---- handlers: the clock ---------------------------------------------------------------

    @workflow.update(name=START_SPECIAL_PROCEDURE)
    async def start_special_procedure(self, change: ClockChange) -> ChangeReceipt:
        facts = StatementFacts.read(change.statement.body)
        self._check(check_procedure_start, facts)
        # Taken before any await, so a second start handled alongside sees the pause.
        self.paused.append(PausedSpan(facts.procedure, self._today()))
        self.pause_statements.append(change.statement)
        self.deadline_version += 1
        await workflow.wait_condition(lambda: self.started)
        await self._apply_sla(SlaState.PAUSED, change.statement)
        await self._notify("special_procedure_started", {"procedure": facts.procedure},
                           change.statement)
        self._show()
        return self._receipt()

    @start_special_procedure.validator
    def _validate_start(self, change: ClockChange) -> None:
        shaped(START_SPECIAL_PROCEDURE, change, ClockChange)
        self._check(check_procedure_start, self._authored(
            START_SPECIAL_PROCEDURE, change.statement, StatementKind.PROCEDURE_START))

    @workflow.update(name=END_SPECIAL_PROCEDURE)
    async def end_special_procedure(self, change: ClockChange) -> ChangeReceipt:
        facts = StatementFacts.read(change.statement.body)
        self._check(check_procedure_end, facts)
        self.paused[-1].end_on = self._today()
        self.pause_statements.append(change.statement)
        await workflow.wait_condition(lambda: self.started)
        try:
            await self._recompute("special procedure ended", cause="procedure_ended")
        except ActivityError as error:
            self.paused[-1].end_on = ""
            self.pause_statements.pop()
            raise refused_by_activity(error) from error
        await self._notify("special_procedure_ended", {"procedure": facts.procedure},
                           change.statement)
        self._show()
        return self._receipt()

    @end_special_procedure.validator
    def _validate_end(self, change: ClockChange) -> None:
        shaped(END_SPECIAL_PROCEDURE, change, ClockChange)
        self._check(check_procedure_end, self._authored(
            END_SPECIAL_PROCEDURE, change.statement, StatementKind.PROCEDURE_END))

    @workflow.update(name=EXTEND_TIME_LIMIT)
    async def extend_time_limit(self, change: ClockChange) -> ChangeReceipt:
        facts = StatementFacts.read(change.statement.body)
        self._check(check_extension, facts)
        # Taken before any await, so a second extension handled alongside is refused.
        self.extension = change
        await workflow.wait_condition(lambda: self.started)
        try:
            await self._recompute("legal limit extended", cause="extended")
        except ActivityError as error:
            self.extension = None
            raise refused_by_activity(error) from error
        await self._notify("time_limit_extended", {"days": str(facts.days)}, change.statement)
        self._show()
        return self._receipt()

    @extend_time_limit.validator
    def _validate_extend(self, change: ClockChange) -> None:
        shaped(EXTEND_TIME_LIMIT, change, ClockChange)
        facts = self._authored(EXTEND_TIME_LIMIT, change.statement, StatementKind.EXTENSION,
                               texts={"reason": change.reason},
                               texts_refusal="the reason is not the one review signed")
        self._check(check_extension, facts)

    @workflow.signal(name=RECOMPUTE_DEADLINES)
    async def recompute_deadlines(self, request: Recompute) -> None:
        # Anything but a Recompute (a JSON null from a bare client) is dropped: a signal
        # handler that raised would fail the workflow task on every retry.
        if not well_typed(request, Recompute):
            workflow.logger.warning("recompute_deadlines: dropped a signal that is not a "
                                    "Recompute")
            return
        await workflow.wait_condition(lambda: self.started)
        if self.stage not in TERMINAL:
            try:
                await self._recompute((request.reason or "recomputed")[:120])
            except ActivityError as error:
                # A signal carries no authority and gets no answer: the deadlines stay.
                workflow.logger.warning(f"recompute refused: {error.cause}")
            self._show()

    @workflow.query(name=STATUS)
    def status(self) -> ApprovalStatus:
        return ApprovalStatus(
            case_number=self.case.case_number, item_code=self.case.item_code,
            department_code=self.case.department_code, stage=self.stage,
            sla_state=self.sla_state, deadlines=self.deadlines,
            decisions=list(self.decisions), waiting_for=self._waiting_for(),
            paused_for=self._paused_for(), extension_days=self._extension_days(),
            certificate_number=self.certificate_number, outcome=self.outcome,
            calendar_gap_year=self.deadlines.unknown_year if self.deadlines else 0)

    # ---- clock -------------------------------------------------------------------------------

    def _paused_for(self) -> str:
        return self.paused[-1].procedure if self.paused and not self.paused[-1].end_on else ""

    def _extension_days(self) -> int:
        if self.extension is None:
            return 0
        return StatementFacts.read(self.extension.statement.body).days

    def _today(self) -> str:
        return china_date(workflow.now()).isoformat()

    async def _recompute(self, reason: str, *, cause: str = "recomputed") -> None:
        """New deadlines from the state as it stands once the computation before is done."""
        async with self.deadline_lock:
            extension = self.extension
            self.deadlines = await workflow.execute_activity(
                RECOMPUTE_CASE_DEADLINES,
                DeadlinesRequest(
                    self.acceptance, pauses=list(self.pause_statements),
                    extension=extension.statement if extension else None,
                    extension_reason=extension.reason if extension else "",
                    stage=self.stage if self.stage in STAGE_ROLE else "", reason=reason,
                    at=workflow.now(), sla_state=self.sla_state, cause=cause),
                task_queue=self._queue(REVIEW), result_type=Deadlines,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RECORDING,
                summary=f"compute deadlines ({reason})")
            self.deadline_version += 1
            workflow.upsert_search_attributes([
                DUE_TIME.value_set(self.deadlines.promised_due_at)])
            # A new deadline can make the case yellow or red (or green again) at once.
            await self._apply_sla(self._sla_now())

    def _sla_now(self) -> SlaState:
        assert self.deadlines is not None
        return sla_state(now=workflow.now(), warning_at=self.deadlines.warning_at,
                         promised_due_at=self.deadlines.promised_due_at,
                         paused=bool(self._paused_for()))

    async def _watch_deadlines(self) -> None:
        """Yellow, then red (escalating), then the legal limit; until the case ends."""
        while self.stage not in TERMINAL:
            await self._apply_sla(self._sla_now())
            assert self.deadlines is not None
            marks = [] if self._paused_for() else [
                m for m in (self.deadlines.warning_at, self.deadlines.promised_due_at,
                            self.deadlines.legal_due_at) if m > workflow.now()]
            version = self.deadline_version

            def changed(version: int = version) -> bool:
                return self.stage in TERMINAL or self.deadline_version != version

            if not marks:
                await workflow.wait_condition(changed)
                continue
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    changed, timeout=min(marks) - workflow.now(),
                    timeout_summary=f"until {min(marks).isoformat()} (next deadline mark)")

    async def _apply_sla(self, state: SlaState,
                         statement: SignedStatement | None = None) -> None:
        """Show a new SLA state, and escalate each breach once."""
        assert self.deadlines is not None
        changed = state != self.sla_state
        escalations = []
        if state == SlaState.BREACHED and "promised_breach" not in self.escalated:
            escalations.append("promised_breach")
        if (not self._paused_for() and workflow.now() >= self.deadlines.legal_due_at
                and "legal_breach" not in self.escalated):
            escalations.append("legal_breach")
        # A special procedure's start is recorded with its statement even when the watcher
        # showed the pause first (patched: histories before it skipped it then).
        recording = statement is not None and self.pauses_recorded
        if not changed and not escalations and not recording:
            return
        self.sla_state = state
        self.escalated.update(escalations)
        if changed:
            workflow.upsert_search_attributes([SLA_STATE.value_set(state)])
            self._show()
        await workflow.execute_activity(
            MARK_SLA,
            SlaMark(self.case.case_number, self.case.department_code, self.stage, state,
                    workflow.now(), escalations, self.deadlines.promised_due_at,
                    self.deadlines.legal_due_at, statement),
            task_queue=self._queue(REVIEW), start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RECORDING,
            summary=f"SLA {state}" + (f", escalate {', '.join(escalations)}"
                                      if escalations else ""))

    async def _notify(self, template: str, details: dict[str, str],
                      statement: SignedStatement) -> None:
        self.notices += 1
        await workflow.execute_activity(
            NOTIFY_APPLICANT,
            ApplicantNotice(self.case.case_number, f"wf-{self.notices:04d}", template,
                            workflow.now(), details, statement),
            task_queue=self._queue(INTAKE), start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RECORDING, summary=f"notify the applicant: {template}")

    # ---- what the Temporal UI shows -------------------------------------------------------

    def _receipt(self) -> ChangeReceipt:
        assert self.deadlines is not None
        return ChangeReceipt(self.case.case_number, self.stage, self.sla_state, self.deadlines)

    def _waiting_for(self) -> str:
        if self.stage in TERMINAL:
            return "nobody: the case is finished"
        if self._paused_for():
            return f"the special procedure {self._paused_for()} to end"
        role = STAGE_ROLE[Stage(self.stage)]
        department = deciding_department(self.stage, self.case.department_code)
        return f"a {role.replace('_', ' ')} of {department}"

    def _show(self) -> None:
        """Stage, whom the case waits for and its deadlines, for the Temporal UI."""
        if self.shown_stage != self.stage:
            workflow.upsert_search_attributes([STAGE.value_set(self.stage)])
            self.shown_stage = self.stage
        lines = [f"**Stage:** {self.stage}", f"**Waiting for:** {self._waiting_for()}",
                 f"**SLA:** {self.sla_state}"]
        if self.deadlines is not None:
            if self.stage in STAGE_ROLE:
                lines.append(f"**This stage due:** {self._stage_due(self.stage).isoformat()}")
            extended = self._extension_days()
            lines += [f"**Yellow from:** {self.deadlines.warning_at.isoformat()}",
                      f"**Promised deadline:** {self.deadlines.promised_due_at.isoformat()}",
                      f"**Legal deadline:** {self.deadlines.legal_due_at.isoformat()}"
                      + (f" (extended {extended} working days)" if extended else "")]
            if self.deadlines.unknown_year:
                lines.append(f"**Calendar:** no holiday schedule for "
                             f"{self.deadlines.unknown_year}; deadlines there are provisional")
        if self.certificate_number:
            lines.append(f"**Certificate:** {self.certificate_number}")
        workflow.set_current_details("\n".join(lines))
