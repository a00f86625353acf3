"""ComplaintWorkflow: one complaint case, from routing to closing.

The complaints service commits a pushed case and starts this workflow with
its signed RECEIVED statement (the outbox starter). The workflow opens the
case (deadlines by the policy in force), then follows it: a department signs
for it or returns it, the center's dispatcher reassigns or sends it back,
co-handlers contribute, the lead department replies, the platform rates.
Every act arrives as an update carrying a statement the complaints service
signed; the validator checks the signature, the case, the texts' digest and
the rules (workflows/complaint_rules.py) and refuses a wrong act before it
reaches the history.

The workflow reads as three parts:

- **run**: verify and open the case, then keep its clock: a sign-for or
  reply deadline that passes is escalated (督办) once per deadline; once
  replied, the rating window that lapses closes the case;
- **handlers**: each accepted act is recorded by ONE complaints activity,
  which re-verifies it and answers with the case as the service now has it
  (stage, department, deadlines); the platform events it emitted are
  delivered in the background (the case never waits for a platform);
- **what the UI shows**: search attributes, the current details.

No personal data reaches the workflow: the service signs codes and ids; free
texts (a reply, a basis) travel inside update payloads, which the payload
codec encrypts, and are bound to their statement by a digest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

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
    from workflows.acts import (
        check_signature,
        read_statement,
        refuse,
        refused_by_activity,
        shaped,
        stuck,
    )

    # The statement's own module, passed through too: the data converter resolves the
    # dataclass's fields by the module that defines it.
    from workflows.approval_contract import SignedStatement, activity_queue
    from workflows.arguments import well_typed
    from workflows.complaint_contract import (
        CASE_KIND as KIND_COMPLAINT,
    )
    from workflows.complaint_contract import (
        CASE_NUMBER_SHAPE,
        CHECK_LINK,
        CLOSE_CASE,
        COMPLAINTS,
        CONTRIBUTE,
        DEADLINES_CHANGED,
        DECIDE_EXTENSION,
        DELIVER_PLATFORM_EVENT,
        DELIVERY_RETRY,
        DISPATCH,
        MARK_OVERDUE,
        MERGE,
        MERGED_CASE,
        OPEN_CASE,
        RATE,
        READ_DUES,
        RECORD_ACT,
        REPLY,
        REQUEST_EXTENSION,
        RETURN_CASE,
        SET_CO_HANDLERS,
        SIGN_FOR,
        STATEMENT_SIGNER,
        STATUS,
        TERMINAL,
        WORKFLOW_NAME,
        Act,
        ActReceipt,
        ActRecord,
        ActRecorded,
        CaseClock,
        CloseReason,
        Closing,
        ComplaintFacts,
        ComplaintInput,
        ComplaintResult,
        ComplaintStatusView,
        DeadlinesChanged,
        DeliveryResult,
        DuesRequest,
        Escalated,
        LinkCheck,
        LinkChecked,
        MergedCase,
        OpenCase,
        Overdue,
        OverdueWhat,
        PlatformDelivery,
        SlaState,
        Stage,
        StatementKind,
        iso_instant,
        texts_match,
        workflow_id,
    )
    from workflows.complaint_rules import (
        ComplaintState,
        RuleBroken,
        Texts,
        check_co_handlers,
        check_contribution,
        check_dispatch,
        check_extension_decision,
        check_extension_request,
        check_merge,
        check_rating,
        check_reply,
        check_return,
        check_sign_for,
    )

    # By the module's full name, so the sandbox hands over the worker's own module (its
    # listener), not a copy made for the workflow.
    from workflows.refused_acts import RefusedAct, printable, report, report_id

#: Recording activities must land: retried until they do, unless the input is wrong.
RECORDING = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                        maximum_interval=timedelta(seconds=30),
                        non_retryable_error_types=["NotFound", "InvalidArgument",
                                                   "PermissionDenied", "FailedPrecondition"])
#: The link check is a side note: a few tries, then the case goes on without it.
LINK_CHECK_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
ACTIVITY_TIMEOUT = timedelta(seconds=30)
#: One webhook POST (the platform's answer), each attempt.
DELIVERY_TIMEOUT = timedelta(seconds=30)

Rule = Callable[[ComplaintState, ComplaintFacts, Texts], None]


def _facts(statement: SignedStatement, kind: StatementKind) -> ComplaintFacts:
    """The statement's facts, if the complaints service signed it; refused otherwise."""
    facts = read_statement(statement, kind, read=ComplaintFacts.read,
                           malformed=ComplaintFacts.Malformed)
    check_signature(statement, kind, signer=STATEMENT_SIGNER)
    return facts


def _iso(moment: datetime | None) -> str:
    return iso_instant(moment) if moment is not None else ""


@workflow.defn(name=WORKFLOW_NAME)
class ComplaintWorkflow:
    @workflow.init
    def __init__(self, case: ComplaintInput) -> None:
        self.received = case.received
        #: Read leniently here (the run refuses a statement it cannot read or verify).
        try:
            self.case = ComplaintFacts.read(case.received.body)
        except ComplaintFacts.Malformed:
            self.case = ComplaintFacts(kind="", case_number="", official_id="",
                                       department_code="", roles=(), system="", issued_at="")
        self.stage = Stage.ROUTED
        self.department = self.case.department_code
        self.sign_for_due: datetime | None = None
        self.reply_due: datetime | None = None
        self.rating_closes: datetime | None = None
        self.co_handlers: list[str] = []
        self.contributed: set[str] = set()
        self.extension_pending_days = 0
        self.reopened = False
        self.rating = 0
        self.escalations = 0
        #: The deadlines already escalated, as (what, due): once per deadline.
        self.escalated: set[tuple[str, str]] = set()
        self.sla_state = SlaState.ON_TIME
        self.merged_cases: list[str] = []
        self.merged_into = ""
        self.end_reason = ""
        #: An act is being taken; the next is refused until it is recorded.
        self.acting = False
        #: One record at a time: an act, an escalation, a closing.
        self.recording = asyncio.Lock()
        self.started = False
        self.deliveries: list[asyncio.Task[None]] = []
        self.shown_stage = ""
        self.shown_sla = ""
        self.shown_department = ""
        self.shown_due: datetime | None = None
        #: The service said the dues changed: read them (again) once the reader is free.
        self.dues_wanted = False
        self.reading_dues = False

    # ---- run: verify and open the case, keep its clock -------------------------------------

    @workflow.run
    async def run(self, case: ComplaintInput) -> ComplaintResult:
        try:
            self.case = _facts(case.received, StatementKind.RECEIVED)
        except ApplicationError as refused:
            # Only the complaints service starts these: whoever started this went around it.
            workflow.logger.warning(f"violation.forged_start: {refused.message}")
            raise
        self._upsert_identity()
        link = asyncio.create_task(self._check_link())
        try:
            clock: CaseClock = await workflow.execute_activity(
                OPEN_CASE, OpenCase(self.received), task_queue=self._queue(),
                result_type=CaseClock, start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RECORDING, summary="open the case: its deadlines")
        except ActivityError as error:
            raise stuck("case", "could not be opened", error) from error
        self.sign_for_due, self.reply_due = clock.sign_for_due, clock.reply_due
        self._deliver(clock.platform_events)
        self.started = True
        self._show()
        while self.stage not in TERMINAL:
            mark = self._next_mark()

            def moved(mark: tuple[str, datetime] | None = mark) -> bool:
                # An act that leaves the next deadline where it was keeps its timer.
                return self.stage in TERMINAL or self._next_mark() != mark

            if mark is None:
                await workflow.wait_condition(moved)
                continue
            what, due = mark
            if due > workflow.now():
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        moved, timeout=due - workflow.now(),
                        timeout_summary=f"until {due.isoformat()} ({what})")
            async with self.recording:
                await self._marks_due()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await link
        for delivery in self.deliveries:
            await delivery
        self._show()
        return ComplaintResult(self.case.case_number, self.stage, workflow.now(),
                               self.end_reason, self.rating, self.reopened, self.escalations)

    def _queue(self) -> str:
        return activity_queue(workflow.info().task_queue, COMPLAINTS)

    def _upsert_identity(self) -> None:
        """The identifying search attributes the starter did not set already."""
        wanted = [CASE_NUMBER.value_set(self.case.case_number),
                  ITEM_CODE.value_set(self.case.category_code),
                  DEPARTMENT.value_set(self.department),
                  CASE_KIND.value_set(KIND_COMPLAINT)]
        self.shown_department = self.department
        present = workflow.info().typed_search_attributes
        missing = [u for u in wanted if present.get(u.key) is None]
        if missing:
            workflow.upsert_search_attributes(missing)

    async def _check_link(self) -> None:
        """The approval case or tender the complaint names, looked up once; never blocks."""
        try:
            await workflow.execute_activity(
                CHECK_LINK, LinkCheck(self.case.case_number), task_queue=self._queue(),
                result_type=LinkChecked, start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=LINK_CHECK_RETRY, summary="check the linked case or tender")
        except ActivityError as error:
            workflow.logger.warning(f"link check failed: {type(error.cause).__name__}")

    def _running_dues(self) -> list[tuple[str, datetime]]:
        """The deadlines that run now and were not escalated yet; the rating window's end."""
        dues: list[tuple[str, datetime]] = []
        if self.stage == Stage.ROUTED and self.sign_for_due is not None:
            dues.append((OverdueWhat.SIGN_FOR, self.sign_for_due))
        if self.stage in (Stage.ROUTED, Stage.HANDLING, Stage.RETURNED) \
                and self.reply_due is not None:
            dues.append((OverdueWhat.REPLY, self.reply_due))
        return [(what, due) for what, due in dues
                if (what, iso_instant(due)) not in self.escalated]

    def _next_mark(self) -> tuple[str, datetime] | None:
        marks = self._running_dues()
        if self.stage == Stage.REPLIED and self.rating_closes is not None:
            marks.append(("rating window", self.rating_closes))
        return min(marks, key=lambda mark: mark[1]) if marks else None

    async def _marks_due(self) -> None:
        """Escalate each deadline that passed (once), close a lapsed rating window."""
        now = workflow.now()
        for what, due in self._running_dues():
            if due <= now:
                self.escalated.add((what, iso_instant(due)))
                await self._escalate(what, due)
        if self.stage == Stage.REPLIED and self.rating_closes is not None \
                and self.rating_closes <= now:
            try:
                recorded: ActRecorded = await workflow.execute_activity(
                    CLOSE_CASE, Closing(self.case.case_number, CloseReason.RATING_WINDOW_LAPSED),
                    task_queue=self._queue(), result_type=ActRecorded,
                    start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RECORDING,
                    summary="close the case: the rating window lapsed")
            except ActivityError as error:
                raise stuck("case", "could not be closed", error) from error
            self.end_reason = CloseReason.RATING_WINDOW_LAPSED
            self._take_recorded(recorded)
            self._show()

    async def _escalate(self, what: str, due: datetime) -> None:
        try:
            escalated: Escalated = await workflow.execute_activity(
                MARK_OVERDUE, Overdue(self.case.case_number, what, due),
                task_queue=self._queue(), result_type=Escalated,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RECORDING,
                summary=f"escalate (督办): {what} overdue")
        except ActivityError as error:
            raise stuck("case", f"could not escalate its {what} deadline", error) from error
        self.escalations = escalated.escalations
        self._deliver(escalated.platform_events)
        self._show()

    def _deliver(self, event_ids: list[str]) -> None:
        """Each event to its platform in the background; the case never waits for it."""
        for event_id in event_ids:
            if event_id:
                self.deliveries.append(asyncio.create_task(self._deliver_one(event_id)))

    async def _deliver_one(self, event_id: str) -> None:
        try:
            await workflow.execute_activity(
                DELIVER_PLATFORM_EVENT, PlatformDelivery(event_id), task_queue=self._queue(),
                result_type=DeliveryResult, start_to_close_timeout=DELIVERY_TIMEOUT,
                retry_policy=DELIVERY_RETRY, summary=f"deliver {event_id} to the platform")
        except ActivityError as error:
            # Given up for good (the service said so): the event stays pullable.
            workflow.logger.warning(f"delivery of {event_id} given up: "
                                    f"{type(error.cause).__name__}")

    # ---- handlers: acts ----------------------------------------------------------------------

    def _state(self, *, busy: bool | None = None) -> ComplaintState:
        return ComplaintState(
            case_number=self.case.case_number, stage=self.stage,
            department_code=self.department, platform_id=self.case.platform_id,
            co_handlers=tuple(self.co_handlers), contributed=frozenset(self.contributed),
            extension_pending_days=self.extension_pending_days, reopened=self.reopened,
            busy=self.acting if busy is None else busy)

    def _check(self, rule: Rule, facts: ComplaintFacts, texts: Texts,
               busy: bool | None = None) -> None:
        try:
            rule(self._state(busy=busy), facts, texts)
        except RuleBroken as broken:
            raise refuse(broken.status, broken.message) from broken

    def _authored(self, update: str, act: Act, kind: StatementKind) -> ComplaintFacts:
        """The statement's facts if the complaints service made it, for this case and these
        texts (by their digest); refused otherwise, and reported.

        No service sends anything else: whoever sent it went around the service, so
        the refusal goes to review's audit log too (workflows/refused_acts.py; the
        workflows worker reports it). A genuine statement the rules refuse (a wrong
        role, department or stage) is an official's mistake, answered but not
        reported. Validators do not run on replay.
        """
        try:
            shaped(update, act, Act, called="an act")
            facts = _facts(act.statement, kind)
            if facts.case_number != self.case.case_number:
                raise refuse("PermissionDenied", f"the statement is about case "
                              f"{facts.case_number}, not {self.case.case_number}")
            if not texts_match(kind, facts.content_sha256, act.texts):
                raise refuse("InvalidArgument",
                              f"the texts are not the ones the {STATEMENT_SIGNER} service signed")
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

    def _validate(self, update: str, act: Act, kind: StatementKind, rule: Rule) -> None:
        self._check(rule, self._authored(update, act, kind), act.texts)

    async def _act(self, act: Act, rule: Rule) -> ActReceipt:
        """Take a validated act: ONE record by the service, then the case as it answers."""
        facts = ComplaintFacts.read(act.statement.body)
        # The state may have moved since the validator ran (two acts in one task).
        self._check(rule, facts, act.texts)
        self.acting = True
        try:
            await workflow.wait_condition(lambda: self.started)
            async with self.recording:
                # The clock may have moved the case meanwhile (the rating window closed).
                self._check(rule, facts, act.texts, busy=False)
                try:
                    recorded: ActRecorded = await workflow.execute_activity(
                        RECORD_ACT, ActRecord(act.statement, dict(act.texts)),
                        task_queue=self._queue(), result_type=ActRecorded,
                        start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RECORDING,
                        summary=f"record {facts.kind} by {facts.official_id}")
                except ActivityError as error:
                    raise refused_by_activity(error) from error
                self._take_act(facts, recorded)
        finally:
            self.acting = False
        if self.stage == Stage.MERGED and self.merged_into:
            await self._tell_primary()
        self._show()
        return self._receipt()

    def _take_act(self, facts: ComplaintFacts, recorded: ActRecorded) -> None:
        kind = StatementKind(facts.kind)
        before = self.stage
        if kind == StatementKind.CO_HANDLERS:
            self.co_handlers = list(facts.co_handlers)
        elif kind == StatementKind.CONTRIBUTION:
            self.contributed.add(facts.department_code)
        elif kind == StatementKind.EXTENSION_REQUEST:
            self.extension_pending_days = facts.days
        elif kind == StatementKind.EXTENSION_DECISION:
            self.extension_pending_days = 0
        elif kind == StatementKind.RETURN:
            # As the service records a return: the co-handling ends and an extension asked
            # is withdrawn; whoever gets the case next starts its handling afresh.
            self.co_handlers, self.contributed = [], set()
            self.extension_pending_days = 0
        elif kind == StatementKind.RATING:
            self.rating = facts.level
            if before == Stage.REPLIED and recorded.stage == Stage.HANDLING:
                self.reopened = True
            elif recorded.stage == Stage.CLOSED:
                self.end_reason = "rated"
        elif kind == StatementKind.MERGE:
            self.merged_into = facts.primary_case_number
            self.end_reason = "merged"
        self._take_recorded(recorded)
        if recorded.department_code in self.co_handlers:
            # Reassigned to a co-handler: it leads now.
            self.co_handlers.remove(recorded.department_code)
        for number in recorded.closed_cases:
            if number not in self.merged_cases:
                self.merged_cases.append(number)

    def _take_recorded(self, recorded: ActRecorded) -> None:
        """The case as the service recorded it: stage, department, deadlines."""
        self.stage = Stage(recorded.stage)
        self.department = recorded.department_code or self.department
        self.sign_for_due = recorded.sign_for_due
        self.reply_due = recorded.reply_due
        self.rating_closes = recorded.rating_closes
        self._deliver(recorded.platform_events)

    async def _tell_primary(self) -> None:
        """Show the primary case this duplicate; it may have ended meanwhile (no harm)."""
        try:
            await workflow.get_external_workflow_handle(workflow_id(self.merged_into)).signal(
                MERGED_CASE, MergedCase(self.case.case_number))
        except FailureError as error:
            workflow.logger.info(f"primary {self.merged_into} not told: {error.message}")

    @workflow.update(name=SIGN_FOR)
    async def sign_for(self, act: Act) -> ActReceipt:
        return await self._act(act, check_sign_for)

    @sign_for.validator
    def _validate_sign_for(self, act: Act) -> None:
        self._validate(SIGN_FOR, act, StatementKind.SIGN_FOR, check_sign_for)

    @workflow.update(name=RETURN_CASE)
    async def return_case(self, act: Act) -> ActReceipt:
        return await self._act(act, check_return)

    @return_case.validator
    def _validate_return_case(self, act: Act) -> None:
        self._validate(RETURN_CASE, act, StatementKind.RETURN, check_return)

    @workflow.update(name=DISPATCH)
    async def dispatch(self, act: Act) -> ActReceipt:
        return await self._act(act, check_dispatch)

    @dispatch.validator
    def _validate_dispatch(self, act: Act) -> None:
        self._validate(DISPATCH, act, StatementKind.DISPATCH, check_dispatch)

    @workflow.update(name=SET_CO_HANDLERS)
    async def set_co_handlers(self, act: Act) -> ActReceipt:
        return await self._act(act, check_co_handlers)

    @set_co_handlers.validator
    def _validate_set_co_handlers(self, act: Act) -> None:
        self._validate(SET_CO_HANDLERS, act, StatementKind.CO_HANDLERS, check_co_handlers)

    @workflow.update(name=CONTRIBUTE)
    async def contribute(self, act: Act) -> ActReceipt:
        return await self._act(act, check_contribution)

    @contribute.validator
    def _validate_contribute(self, act: Act) -> None:
        self._validate(CONTRIBUTE, act, StatementKind.CONTRIBUTION, check_contribution)

    @workflow.update(name=REPLY)
    async def reply(self, act: Act) -> ActReceipt:
        return await self._act(act, check_reply)

    @reply.validator
    def _validate_reply(self, act: Act) -> None:
        self._validate(REPLY, act, StatementKind.REPLY, check_reply)

    @workflow.update(name=REQUEST_EXTENSION)
    async def request_extension(self, act: Act) -> ActReceipt:
        return await self._act(act, check_extension_request)

    @request_extension.validator
    def _validate_request_extension(self, act: Act) -> None:
        self._validate(REQUEST_EXTENSION, act, StatementKind.EXTENSION_REQUEST,
                       check_extension_request)

    @workflow.update(name=DECIDE_EXTENSION)
    async def decide_extension(self, act: Act) -> ActReceipt:
        return await self._act(act, check_extension_decision)

    @decide_extension.validator
    def _validate_decide_extension(self, act: Act) -> None:
        self._validate(DECIDE_EXTENSION, act, StatementKind.EXTENSION_DECISION,
                       check_extension_decision)

    @workflow.update(name=MERGE)
    async def merge(self, act: Act) -> ActReceipt:
        return await self._act(act, check_merge)

    @merge.validator
    def _validate_merge(self, act: Act) -> None:
        self._validate(MERGE, act, StatementKind.MERGE, check_merge)

    @workflow.update(name=RATE)
    async def rate(self, act: Act) -> ActReceipt:
        return await self._act(act, check_rating)

    @rate.validator
    def _validate_rate(self, act: Act) -> None:
        self._validate(RATE, act, StatementKind.RATING, check_rating)

    @workflow.signal(name=MERGED_CASE)
    def merged_case(self, merged: MergedCase) -> None:
        """A duplicate merged into this case: shown only (a signal carries no authority).
        Anything but a MergedCase (a JSON null from a bare client) is dropped: a signal
        handler that raised would fail the workflow task on every retry."""
        if not well_typed(merged, MergedCase):
            workflow.logger.warning("merged_case: dropped a signal that is not a MergedCase")
            return
        number = merged.case_number
        if CASE_NUMBER_SHAPE.fullmatch(number) and number != self.case.case_number \
                and number not in self.merged_cases and len(self.merged_cases) < 100:
            self.merged_cases.append(number)
            self._show()

    @workflow.signal(name=DEADLINES_CHANGED)
    async def deadlines_changed(self, notice: DeadlinesChanged) -> None:
        """The service recomputed the case's deadlines (a holiday schedule was loaded).

        The signal carries no authority, only a wake-up: the dues are read from the
        service (READ_DUES) and the clock re-arms on them (the run loop sees the next
        mark move). Several signals while a read runs make one more read. Anything but
        a DeadlinesChanged for this case is dropped (a handler that raised would fail
        the workflow task on every retry).
        """
        if not well_typed(notice, DeadlinesChanged) \
                or notice.case_number != self.case.case_number:
            workflow.logger.warning("deadlines_changed: dropped a signal that is not a "
                                    "DeadlinesChanged for this case")
            return
        self.dues_wanted = True
        if self.reading_dues:
            return
        self.reading_dues = True
        try:
            await workflow.wait_condition(lambda: self.started)
            while self.dues_wanted and self.stage not in TERMINAL:
                self.dues_wanted = False
                await self._read_dues()
        finally:
            self.reading_dues = False

    async def _read_dues(self) -> None:
        async with self.recording:
            if self.stage in TERMINAL:
                return
            try:
                dues: ActRecorded = await workflow.execute_activity(
                    READ_DUES, DuesRequest(self.case.case_number), task_queue=self._queue(),
                    result_type=ActRecorded, start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=RECORDING, summary="read the recomputed deadlines")
            except ActivityError as error:
                workflow.logger.warning(f"deadlines not read: {type(error.cause).__name__}")
                return
            if dues.stage != self.stage:
                # Not the stage this workflow is at: its own acts carry their dues.
                workflow.logger.warning(f"deadlines not taken: the service has the case at "
                                        f"{dues.stage}, the workflow at {self.stage}")
                return
            self.sign_for_due = dues.sign_for_due
            self.reply_due = dues.reply_due
            self.rating_closes = dues.rating_closes
        self._show()

    @workflow.query(name=STATUS)
    def status(self) -> ComplaintStatusView:
        return ComplaintStatusView(
            case_number=self.case.case_number, stage=self.stage,
            department_code=self.department, co_handlers=list(self.co_handlers),
            contributions_pending=list(self._state().contributions_pending),
            sla_state=self.sla_state, sign_for_due=_iso(self.sign_for_due),
            reply_due=_iso(self.reply_due), reopened=self.reopened,
            extension_pending=bool(self.extension_pending_days),
            escalations=self.escalations, merged_cases=list(self.merged_cases),
            category_code=self.case.category_code, complaint_kind=self.case.complaint_kind,
            urgent=self.case.urgent, rating=self.rating,
            rating_closes=_iso(self.rating_closes), merged_into=self.merged_into)

    # ---- what the Temporal UI shows -------------------------------------------------------

    def _receipt(self) -> ActReceipt:
        return ActReceipt(self.case.case_number, self.stage, self.department,
                          _iso(self.sign_for_due if self.stage == Stage.ROUTED else None),
                          _iso(self.reply_due), self.reopened)

    def _sla_now(self) -> SlaState:
        """Red while a running deadline has passed; a reply or close keeps the last state."""
        if self.stage not in (Stage.ROUTED, Stage.HANDLING, Stage.RETURNED):
            return self.sla_state
        now = workflow.now()
        dues = [self.reply_due]
        if self.stage == Stage.ROUTED:
            dues.append(self.sign_for_due)
        late = any(due is not None and due <= now for due in dues)
        return SlaState.BREACHED if late else SlaState.ON_TIME

    def _current_due(self) -> datetime | None:
        if self.stage == Stage.ROUTED:
            return self.sign_for_due
        if self.stage in (Stage.HANDLING, Stage.RETURNED):
            return self.reply_due
        if self.stage == Stage.REPLIED:
            return self.rating_closes
        return None

    def _waiting_for(self) -> str:
        if self.stage in TERMINAL:
            return "nobody: the case is finished"
        if self.stage == Stage.ROUTED:
            return f"a complaint handler of {self.department} to sign for it"
        if self.stage == Stage.RETURNED:
            return "a complaint dispatcher of the center"
        if self.stage == Stage.REPLIED:
            return "the platform's rating"
        pending = self._state().contributions_pending
        if pending:
            return f"the contributions of {', '.join(pending)}"
        return f"the reply of {self.department}"

    def _show(self) -> None:
        """Stage, SLA, due time and the details, for the Temporal UI: codes and times only."""
        updates: list[SearchAttributeUpdate[Any]] = []
        if self.shown_stage != self.stage:
            updates.append(STAGE.value_set(self.stage))
            self.shown_stage = self.stage
        self.sla_state = self._sla_now()
        if self.shown_sla != self.sla_state:
            updates.append(SLA_STATE.value_set(self.sla_state))
            self.shown_sla = self.sla_state
        due = self._current_due()
        if due is not None and due != self.shown_due:
            updates.append(DUE_TIME.value_set(due))
            self.shown_due = due
        if self.department and self.department != self.shown_department:
            updates.append(DEPARTMENT.value_set(self.department))
            self.shown_department = self.department
        if updates:
            workflow.upsert_search_attributes(updates)
        lines = [f"**Stage:** {self.stage}", f"**Department:** {self.department}",
                 f"**Waiting for:** {self._waiting_for()}", f"**SLA:** {self.sla_state}"]
        if self.stage == Stage.ROUTED and self.sign_for_due is not None:
            lines.append(f"**Sign for by:** {self.sign_for_due.isoformat()}")
        if self.stage in (Stage.ROUTED, Stage.HANDLING, Stage.RETURNED) \
                and self.reply_due is not None:
            lines.append(f"**Reply by:** {self.reply_due.isoformat()}")
        if self.stage == Stage.REPLIED and self.rating_closes is not None:
            lines.append(f"**Rating window closes:** {self.rating_closes.isoformat()}")
        if self.co_handlers:
            lines.append(f"**Co-handlers:** {', '.join(self.co_handlers)}")
        if self.extension_pending_days:
            lines.append(f"**Extension asked:** {self.extension_pending_days} working days")
        if self.escalations:
            lines.append(f"**Escalations (督办):** {self.escalations}")
        if self.reopened:
            lines.append("**Reopened** after an unsatisfied rating")
        if self.rating:
            lines.append(f"**Rating:** {self.rating}")
        if self.merged_into:
            lines.append(f"**Merged into:** {self.merged_into}")
        if self.merged_cases:
            lines.append(f"**Duplicates merged in:** {', '.join(self.merged_cases)}")
        workflow.set_current_details("\n".join(lines))
