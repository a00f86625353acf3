"""TenderWorkflow: one tender, from its announcement to the contract (DESIGN.md §2).

The trading service starts it (``tender/<tender no>``) with its signed
announcement, through an outbox. The workflow holds the timetable and the
order of the steps; the rules are workflows/tender_rules.py; every step is
recorded, and published where the public must see it, by one trading activity:

- **bidding**: until the deadline. Amendments less than 15 days before it
  push it; an objection to the documents pauses the tender until answered
  (the deadline moves by the pause; a late answer is escalated);
- **deadline**: trading counts the bids; fewer than 3 and the tender fails
  publicly with nothing opened; otherwise the commitments are published as
  the opening record;
- **decryption**: the window in which bidders reveal their keys; fewer than 3
  valid bids when it closes and trading fails the tender publicly;
- **evaluation**: until the evaluation's ranked candidates arrive (an update);
- **candidates**: published 3 days at least, objections possible (pausing);
- **award**, then the **contract** within 30 days (escalated once when late).

Every official's act arrives as an update carrying a statement the trading
service signed; the validator checks the signature and the rules and refuses
a wrong act before anything is recorded. A statement no service signed is
reported to review's audit log (workflows/refused_acts.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from kernel.temporal import CASE_KIND, CASE_NUMBER, DEPARTMENT, DUE_TIME, SLA_STATE, STAGE
    from workflows.acts import (
        authored,
        refuse,
        refused_by_activity,
        stuck,
    )
    from workflows.approval_contract import SignedStatement, activity_queue, content_digest
    from workflows.approval_rules import PERMISSION_DENIED, RuleBroken
    from workflows.request_terms import request_key, taken_under
    from workflows.tender_contract import (
        AMEND,
        ANSWER_OBJECTION,
        AWARD,
        CLOSE_BIDDING,
        CLOSE_DECRYPTION,
        EVALUATE,
        MARK_TENDER_LATE,
        OBJECT,
        OPEN_TENDER,
        RECORD_CONTRACT,
        RECORD_TENDER_STEP,
        SCORE,
        SEAT_COMMITTEE,
        SIGNER,
        STATUS,
        TERMINAL,
        TRADING,
        WORKFLOW_NAME,
        ActReceipt,
        BiddingClosed,
        ObjectionTarget,
        OfficialAct,
        OpenObjection,
        Stage,
        StatementKind,
        StepReceipt,
        TenderFacts,
        TenderInput,
        TenderResult,
        TenderStatus,
        TenderStep,
        parse_instant,
    )
    from workflows.tender_contract import CASE_KIND as KIND_TENDER
    from workflows.tender_rules import (
        DEFAULT_DECRYPTION_WINDOW,
        check_amendment,
        check_award,
        check_objection,
        contract_due,
        deadline_after_amendment,
        deadline_after_pause,
        earliest_award,
    )

RECORDING = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                        maximum_interval=timedelta(seconds=30),
                        non_retryable_error_types=["NotFound", "InvalidArgument",
                                                   "PermissionDenied", "FailedPrecondition",
                                                   "AlreadyExists"])
ACTIVITY_TIMEOUT = timedelta(seconds=30)
#: One act per request: an act under a request id the run took an act under already is
#: refused before the rules when it asks other terms (ALREADY_EXISTS: two contents sent at
#: once are two updates, the loser is told so, not "busy"), answered again when it asks the
#: same (s17, LOW 5).
ONE_ACT_PER_REQUEST = "tender-one-act-per-request"


@workflow.defn(name=WORKFLOW_NAME)
class TenderWorkflow:
    @workflow.init
    def __init__(self, tender: TenderInput) -> None:
        self.announcement = tender.announcement
        self.tender = TenderFacts.read(tender.announcement.body)
        self.stage = Stage.BIDDING
        self.deadline = self._instant(self.tender.bid_deadline)
        self.objections_until = (self._instant(self.tender.objections_until)
                                 if self.tender.objections_until else None)
        self.window = (timedelta(seconds=self.tender.decryption_window_seconds)
                       if self.tender.decryption_window_seconds else DEFAULT_DECRYPTION_WINDOW)
        #: Bumped whenever a date the clock waits for changes.
        self.version = 0
        self.objection: OpenObjection | None = None
        self.objection_statement: SignedStatement | None = None
        self.escalated: set[str] = set()
        self.bids = 0
        self.decryption_ends_at: datetime | None = None
        self.candidates: tuple[str, ...] = ()
        #: The evaluation committee, in seat order, once seated from its expert draw.
        self.committee: tuple[str, ...] = ()
        #: The score sheets recorded ("member/bidder"): one each, never replaced.
        self.scored: set[str] = set()
        self.candidates_published_at: datetime | None = None
        #: Time the candidates' publication stood paused by objections to them.
        self.candidates_paused = timedelta(0)
        self.winner = ""
        self.awarded_at: datetime | None = None
        self.contracted = False
        self.amendments = 0
        self.objections = 0
        self.feed_sequences: list[int] = []
        self.started = False
        #: One record at a time, in the order the acts were taken.
        self.recording = asyncio.Lock()
        #: An act is being taken; the next of the same stage waits (refused meanwhile).
        self.acting = False
        #: The acts taken by request (``request_terms.request_key``): the signed body of
        #: each, and trading's receipt once recorded (None while it is being recorded).
        self.requests: dict[str, tuple[dict[str, Any], StepReceipt | None]] = {}
        self.shown_stage = ""
        self.shown_sla = ""

    @staticmethod
    def _instant(text: str) -> datetime:
        return parse_instant(text)

    # ---- run ---------------------------------------------------------------------------------

    @workflow.run
    async def run(self, tender: TenderInput) -> TenderResult:
        self._upsert_identity()
        opened = await self._step(OPEN_TENDER, TenderStep(
            self.tender.tender_no, self.announcement, workflow.now(), "announced",
            self.deadline), "record and publish the announcement")
        self.deadline = opened.bid_deadline
        self.started = True
        self._show()
        await self._bidding()
        closed = await self._close_bidding()
        self.bids = closed.bids
        if not closed.opened:
            self.stage = Stage.FAILED
            self._show()
            await workflow.wait_condition(workflow.all_handlers_finished)
            return TenderResult(self.tender.tender_no, "failed", workflow.now(), bids=self.bids)
        self.stage = Stage.DECRYPTION
        self.decryption_ends_at = workflow.now() + self.window
        self._show()
        await workflow.sleep(self.window, summary="the decryption window: bidders reveal keys")
        decrypted = await self._step(CLOSE_DECRYPTION, self._clock_step("decryption_closed"),
                                     "close the decryption window")
        if decrypted.stage == Stage.FAILED:
            # Fewer than 3 valid bids once the keys were due: trading failed the tender
            # publicly. No new command: a recorded history replays as before.
            self.stage = Stage.FAILED
            self._show()
            await workflow.wait_condition(workflow.all_handlers_finished)
            return TenderResult(self.tender.tender_no, "failed", workflow.now(), bids=self.bids)
        self.stage = Stage.EVALUATION
        self._show()
        await workflow.wait_condition(lambda: self.stage != Stage.EVALUATION)
        if self.stage == Stage.FAILED:
            self._show()
            await workflow.wait_condition(workflow.all_handlers_finished)
            return TenderResult(self.tender.tender_no, "failed", workflow.now(), bids=self.bids)
        await self._publication()
        await self._contract()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._show()
        return TenderResult(self.tender.tender_no, "contracted", workflow.now(),
                            winner=self.winner, bids=self.bids)

    def _upsert_identity(self) -> None:
        wanted = [CASE_NUMBER.value_set(self.tender.tender_no),
                  DEPARTMENT.value_set(self.tender.tenderer_department
                                       or self.tender.department_code),
                  CASE_KIND.value_set(KIND_TENDER)]
        present = workflow.info().typed_search_attributes
        missing = [u for u in wanted if present.get(u.key) is None]
        if missing:
            workflow.upsert_search_attributes(missing)

    async def _bidding(self) -> None:
        """Until the deadline has come while the tender is not paused."""
        while True:
            if self.objection is not None:
                await self._paused()
                continue
            now = workflow.now()
            if now >= self.deadline:
                return
            version = self.version
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    self._moved(version), timeout=self.deadline - now,
                    timeout_summary=f"until the bid deadline {self.deadline.isoformat()}")

    async def _paused(self) -> None:
        """While an objection waits for its answer; escalated once when the answer is late."""
        objection = self.objection
        assert objection is not None
        now = workflow.now()
        if now < objection.answer_due:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self.objection is not objection,
                    timeout=objection.answer_due - now,
                    timeout_summary=f"the answer to objection {objection.objection_id} is due "
                                    f"{objection.answer_due.isoformat()}")
            return
        key = f"answer_late/{objection.objection_id}"
        if key not in self.escalated:
            self.escalated.add(key)
            assert self.objection_statement is not None
            await self._step(MARK_TENDER_LATE, TenderStep(
                self.tender.tender_no, self.objection_statement, workflow.now(),
                "objection_answer_late", self.deadline), "escalate: the answer is late")
            self._show()
        await workflow.wait_condition(lambda: self.objection is not objection)

    async def _close_bidding(self) -> BiddingClosed:
        try:
            async with self.recording:
                closed: BiddingClosed = await workflow.execute_activity(
                    CLOSE_BIDDING, self._clock_step("deadline"), task_queue=self._queue(),
                    result_type=BiddingClosed, start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=RECORDING,
                    summary="the deadline: count the bids, publish the opening or the failure")
        except ActivityError as error:
            raise stuck("tender", "could not close its bidding", error) from error
        if closed.feed_sequence:
            self.feed_sequences.append(closed.feed_sequence)
        return closed

    async def _publication(self) -> None:
        """The candidates stay published 3 days at least (plus any pause) until the award."""
        while self.winner == "":
            if self.objection is not None:
                await self._paused()
                continue
            assert self.candidates_published_at is not None
            version = self.version
            until = earliest_award(self.candidates_published_at, paused=self.candidates_paused)
            now = workflow.now()
            if now < until:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        self._moved(version),
                        timeout=until - now,
                        timeout_summary=f"the candidates' publication ends {until.isoformat()}")
                self._show()
            else:
                await workflow.wait_condition(self._moved(version))

    async def _contract(self) -> None:
        assert self.awarded_at is not None
        due = contract_due(self.awarded_at)
        now = workflow.now()
        if now < due:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self.contracted, timeout=due - now,
                    timeout_summary=f"the contract is due {due.isoformat()}")
        if not self.contracted:
            self.escalated.add("contract_late")
            await self._step(MARK_TENDER_LATE, self._clock_step("contract_late"),
                             "escalate: the contract is late")
            self._show()
            await workflow.wait_condition(lambda: self.contracted)

    def _moved(self, version: int) -> Callable[[], bool]:
        """Whether anything the clock waits for changed since ``version``."""
        return lambda: self.version != version

    def _clock_step(self, step: str) -> TenderStep:
        return TenderStep(self.tender.tender_no, self.announcement, workflow.now(), step,
                          self.deadline)

    async def _step(self, activity: str, step: TenderStep, summary: str) -> StepReceipt:
        """Record a step the tender cannot do without (the clock's own)."""
        try:
            async with self.recording:
                receipt: StepReceipt = await workflow.execute_activity(
                    activity, step, task_queue=self._queue(), result_type=StepReceipt,
                    start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RECORDING,
                    summary=summary)
        except ActivityError as error:
            raise stuck("tender", f"could not record its step {step.step}", error) from error
        if receipt.feed_sequence:
            self.feed_sequences.append(receipt.feed_sequence)
        return receipt

    async def _record_act(self, step: TenderStep, summary: str) -> StepReceipt:
        """Record an official's act; its refusal by trading refuses the update."""
        key = request_key(step.statement.body)
        if key:
            self.requests[key] = (step.statement.body, None)
        try:
            async with self.recording:
                receipt: StepReceipt = await workflow.execute_activity(
                    RECORD_TENDER_STEP, step, task_queue=self._queue(),
                    result_type=StepReceipt, start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=RECORDING, summary=summary)
        except ActivityError as error:
            if key:
                del self.requests[key]  # never recorded: the request id is free again
            raise refused_by_activity(error, service="trading service") from error
        if key:
            self.requests[key] = (step.statement.body, receipt)
        if receipt.feed_sequence:
            self.feed_sequences.append(receipt.feed_sequence)
        return receipt

    def _queue(self) -> str:
        return activity_queue(workflow.info().task_queue, TRADING)

    # ---- statements --------------------------------------------------------------------------

    def _authored(self, update: str, act: OfficialAct, kind: StatementKind) -> TenderFacts:
        """The statement's facts if trading signed it, for this tender; refused otherwise,
        and reported (nothing but a forger sends anything else)."""
        def signed_text(facts: TenderFacts) -> None:
            if (facts.content_sha256 or act.text) and \
                    content_digest(text=act.text) != facts.content_sha256:
                raise refuse("InvalidArgument", "the text is not the one trading signed")

        facts = authored(update, act, shape=OfficialAct, kind=kind, read=TenderFacts.read,
                         malformed=TenderFacts.Malformed, signer=SIGNER, subject="tender",
                         own_number=self.tender.tender_no,
                         number_of=lambda facts: facts.tender_no, also=signed_text)
        # Another content under a request taken already is refused at once (validators
        # run on new updates only, never on replay).
        self._request_taken(act)
        return facts

    def _request_taken(self, act: OfficialAct) -> StepReceipt | None:
        """Trading's receipt of the act this run took under ``act``'s request, when ``act``
        asks the same terms (None while that act is being recorded, or when the run took
        none under it); refused (ALREADY_EXISTS, naming the terms that differ) when it asks
        others."""
        refused, answer = taken_under(self.requests, act.statement.body)
        if refused:
            raise refuse("AlreadyExists", refused)
        return answer

    def _again(self, act: OfficialAct) -> ActReceipt | None:
        """The answer to an act under a request this run took an act under already: the
        receipt again for the same terms, refused for others; None for a new request."""
        if not workflow.patched(ONE_ACT_PER_REQUEST):
            return None
        taken = self._request_taken(act)
        return self._receipt(taken) if taken is not None else None

    def _check(self, rule: Callable[[], None]) -> None:
        try:
            rule()
        except RuleBroken as broken:
            raise refuse(broken.status, broken.message) from broken

    def _require(self, condition: bool, message: str, status: str = "FailedPrecondition"
                 ) -> None:
        if not condition:
            raise refuse(status, message)

    def _receipt(self, receipt: StepReceipt) -> ActReceipt:
        return ActReceipt(self.tender.tender_no, self.stage, self.deadline,
                          self.objection is not None, receipt.feed_sequence)

    # ---- amendments --------------------------------------------------------------------------

    def _amend_rules(self, facts: TenderFacts) -> None:
        self._require(self.started and self.stage == Stage.BIDDING and not self.acting,
                      f"tender {self.tender.tender_no} is at {self.stage}: the documents can "
                      "be amended only while bids are taken")
        self._check(lambda: check_amendment(now=facts.issued, deadline=self.deadline))

    @workflow.update(name=AMEND)
    async def amend(self, act: OfficialAct) -> ActReceipt:
        if (again := self._again(act)) is not None:
            return again
        facts = TenderFacts.read(act.statement.body)
        self._amend_rules(facts)
        before = self.deadline
        self.deadline = deadline_after_amendment(deadline=before, amended_at=facts.issued)
        self.acting = True
        try:
            receipt = await self._record_act(TenderStep(
                self.tender.tender_no, act.statement, workflow.now(), "amended",
                self.deadline, text=act.text), "record and publish the amendment")
        except ApplicationError:
            self.deadline = before
            raise
        finally:
            self.acting = False
        self.deadline = receipt.bid_deadline
        self.amendments += 1
        self.version += 1
        self._show()
        return self._receipt(receipt)

    @amend.validator
    def _validate_amend(self, act: OfficialAct) -> None:
        self._amend_rules(self._authored(AMEND, act, StatementKind.AMENDMENT))

    # ---- objections --------------------------------------------------------------------------

    def _object_rules(self, facts: TenderFacts) -> None:
        self._require(self.started and not self.acting, "the tender is busy; try again")
        self._require(bool(facts.objection_id) and facts.answer_due != "",
                      "an objection names its id and when its answer is due",
                      "InvalidArgument")
        if facts.target == ObjectionTarget.DOCUMENTS:
            self._require(self.stage == Stage.BIDDING,
                          f"objections to the documents are taken while bids are; tender "
                          f"{self.tender.tender_no} is at {self.stage}")
            self._check(lambda: check_objection(
                category=self.tender.category, now=facts.issued, deadline=self.deadline,
                objections_until=self.objections_until, paused=self.objection is not None))
        elif facts.target == ObjectionTarget.CANDIDATES:
            self._require(self.stage == Stage.CANDIDATES and self.winner == "",
                          f"objections to the candidates are taken while they are published; "
                          f"tender {self.tender.tender_no} is at {self.stage}")
            assert self.candidates_published_at is not None
            until = earliest_award(self.candidates_published_at, paused=self.candidates_paused)
            self._require(facts.issued < until,
                          f"the candidates' publication ended {until.isoformat()}")
            self._require(self.objection is None,
                          "an objection is waiting for its answer: a further objection waits "
                          "until it is answered")
        else:
            raise refuse("InvalidArgument", "an objection is to the documents or the candidates")

    @workflow.update(name=OBJECT)
    async def object_to(self, act: OfficialAct) -> ActReceipt:
        if (again := self._again(act)) is not None:
            return again
        facts = TenderFacts.read(act.statement.body)
        self._object_rules(facts)
        answer_due = facts.instant("answer_due")
        assert answer_due is not None
        self.objection = OpenObjection(facts.objection_id, facts.target, facts.issued,
                                       answer_due)
        self.objection_statement = act.statement
        self.acting = True
        try:
            receipt = await self._record_act(TenderStep(
                self.tender.tender_no, act.statement, workflow.now(), "objected",
                self.deadline, text=act.text), "record the objection: the tender pauses")
        except ApplicationError:
            self.objection = None
            self.objection_statement = None
            raise
        finally:
            self.acting = False
        self.objections += 1
        self.version += 1
        self._show()
        return self._receipt(receipt)

    @object_to.validator
    def _validate_object(self, act: OfficialAct) -> None:
        self._object_rules(self._authored(OBJECT, act, StatementKind.OBJECTION))

    def _answer_rules(self, facts: TenderFacts) -> None:
        self._require(self.started and not self.acting, "the tender is busy; try again")
        self._require(self.objection is not None
                      and self.objection.objection_id == facts.objection_id,
                      f"objection {facts.objection_id} is not waiting for an answer")

    @workflow.update(name=ANSWER_OBJECTION)
    async def answer_objection(self, act: OfficialAct) -> ActReceipt:
        if (again := self._again(act)) is not None:
            return again
        facts = TenderFacts.read(act.statement.body)
        self._answer_rules(facts)
        objection = self.objection
        assert objection is not None and self.objection_statement is not None
        before = self.deadline
        resumed_at = max(facts.issued, objection.objected_at)
        if objection.target == ObjectionTarget.DOCUMENTS:
            self.deadline = deadline_after_pause(deadline=before, paused_at=objection.objected_at,
                                                 resumed_at=resumed_at)
        self.acting = True
        try:
            receipt = await self._record_act(TenderStep(
                self.tender.tender_no, act.statement, workflow.now(), "objection_answered",
                self.deadline, objection=self.objection_statement, text=act.text),
                "record the answer: the tender resumes")
        except ApplicationError:
            self.deadline = before
            raise
        finally:
            self.acting = False
        if objection.target == ObjectionTarget.DOCUMENTS:
            self.deadline = receipt.bid_deadline
        else:
            self.candidates_paused += resumed_at - objection.objected_at
        self.objection = None
        self.objection_statement = None
        self.version += 1
        self._show()
        return self._receipt(receipt)

    @answer_objection.validator
    def _validate_answer(self, act: OfficialAct) -> None:
        self._answer_rules(self._authored(ANSWER_OBJECTION, act,
                                          StatementKind.OBJECTION_ANSWER))

    # ---- evaluation, award, contract ----------------------------------------------------------

    def _evaluate_rules(self, facts: TenderFacts) -> None:
        self._require(self.stage == Stage.EVALUATION and not self.acting,
                      f"tender {self.tender.tender_no} is at {self.stage}, not evaluation")
        self._require(1 <= len(facts.candidates) <= self.bids
                      and len(set(facts.candidates)) == len(facts.candidates),
                      f"the candidates are 1 to {self.bids} different bidders",
                      "InvalidArgument")

    @workflow.update(name=EVALUATE)
    async def evaluate(self, act: OfficialAct) -> ActReceipt:
        if (again := self._again(act)) is not None:
            return again
        facts = TenderFacts.read(act.statement.body)
        self._evaluate_rules(facts)
        self.acting = True
        try:
            receipt = await self._record_act(TenderStep(
                self.tender.tender_no, act.statement, workflow.now(), "candidates_published",
                self.deadline), "record and publish the candidates")
        finally:
            self.acting = False
        self.candidates = facts.candidates
        self.candidates_published_at = workflow.now()
        self.stage = Stage.CANDIDATES
        self.version += 1
        self._show()
        return self._receipt(receipt)

    @evaluate.validator
    def _validate_evaluate(self, act: OfficialAct) -> None:
        self._evaluate_rules(self._authored(EVALUATE, act, StatementKind.EVALUATION))

    def _committee_rules(self, facts: TenderFacts) -> None:
        self._require(self.stage == Stage.EVALUATION and not self.acting,
                      f"tender {self.tender.tender_no} is at {self.stage}, not evaluation")
        self._require(not self.committee, f"tender {self.tender.tender_no} has its "
                      "committee seated already", "AlreadyExists")
        self._require(len(facts.members) >= 5 and len(facts.members) % 2 == 1
                      and len(set(facts.members)) == len(facts.members),
                      "a committee is an odd number of 5 or more different members",
                      "InvalidArgument")

    @workflow.update(name=SEAT_COMMITTEE)
    async def seat_committee(self, act: OfficialAct) -> ActReceipt:
        if (again := self._again(act)) is not None:
            return again
        facts = TenderFacts.read(act.statement.body)
        self._committee_rules(facts)
        self.acting = True
        try:
            receipt = await self._record_act(TenderStep(
                self.tender.tender_no, act.statement, workflow.now(), "committee_seated",
                self.deadline), "record and publish the committee drawn")
        finally:
            self.acting = False
        self.committee = facts.members
        self.version += 1
        self._show()
        return self._receipt(receipt)

    @seat_committee.validator
    def _validate_seat_committee(self, act: OfficialAct) -> None:
        self._committee_rules(self._authored(SEAT_COMMITTEE, act, StatementKind.COMMITTEE))

    def _score_rules(self, facts: TenderFacts) -> None:
        # Members score at once: sheets are not held back by one another (``acting``); the
        # recording lock keeps them in order and trading refuses one after the ranking.
        self._require(self.stage == Stage.EVALUATION,
                      f"tender {self.tender.tender_no} is at {self.stage}, not evaluation")
        self._require(bool(self.committee), f"tender {self.tender.tender_no} has no "
                      "committee seated yet")
        self._require(facts.member_id in self.committee,
                      f"{facts.member_id} is not on the committee of tender "
                      f"{self.tender.tender_no}", PERMISSION_DENIED)
        self._require(f"{facts.member_id}/{facts.bidder_id}" not in self.scored,
                      f"{facts.member_id} has scored {facts.bidder_id} already: a score "
                      "sheet is not replaced", "AlreadyExists")

    @workflow.update(name=SCORE)
    async def score(self, act: OfficialAct) -> ActReceipt:
        if (again := self._again(act)) is not None:
            return again
        facts = TenderFacts.read(act.statement.body)
        self._score_rules(facts)
        sheet = f"{facts.member_id}/{facts.bidder_id}"
        # Taken before it is recorded, so the same sheet sent again meanwhile is refused.
        self.scored.add(sheet)
        try:
            receipt = await self._record_act(TenderStep(
                self.tender.tender_no, act.statement, workflow.now(), "scored",
                self.deadline), "record the score sheet; rank when the last is in")
        except ApplicationError:
            self.scored.discard(sheet)
            raise
        if receipt.stage == Stage.CANDIDATES:
            self.candidates = tuple(receipt.candidates)
            self.candidates_published_at = workflow.now()
            self.stage = Stage.CANDIDATES
        elif receipt.stage == Stage.FAILED:
            # No bid qualified: the tender failed publicly.
            self.stage = Stage.FAILED
        self.version += 1
        self._show()
        return self._receipt(receipt)

    @score.validator
    def _validate_score(self, act: OfficialAct) -> None:
        self._score_rules(self._authored(SCORE, act, StatementKind.SCORE_SHEET))

    def _award_rules(self, facts: TenderFacts) -> None:
        self._require(self.stage == Stage.CANDIDATES and not self.acting,
                      f"tender {self.tender.tender_no} is at {self.stage}, not at the award")
        self._require(facts.amount_fen > 0, "the award names a positive amount",
                      "InvalidArgument")
        self._check(lambda: check_award(
            now=workflow.now(), candidates_published_at=self.candidates_published_at,
            paused_for=self.candidates_paused, objection_open=self.objection is not None,
            winner=facts.winner, candidates=self.candidates))

    @workflow.update(name=AWARD)
    async def award(self, act: OfficialAct) -> ActReceipt:
        if (again := self._again(act)) is not None:
            return again
        facts = TenderFacts.read(act.statement.body)
        self._award_rules(facts)
        self.acting = True
        try:
            receipt = await self._record_act(TenderStep(
                self.tender.tender_no, act.statement, workflow.now(), "awarded",
                self.deadline), "record and publish the award")
        finally:
            self.acting = False
        self.winner = facts.winner
        self.awarded_at = workflow.now()
        self.stage = Stage.AWARDED
        self.version += 1
        self._show()
        return self._receipt(receipt)

    @award.validator
    def _validate_award(self, act: OfficialAct) -> None:
        self._award_rules(self._authored(AWARD, act, StatementKind.AWARD))

    def _contract_rules(self, facts: TenderFacts) -> None:
        self._require(self.stage == Stage.AWARDED and not self.acting,
                      f"tender {self.tender.tender_no} is at {self.stage}: a contract follows "
                      "the award")
        self._require(facts.winner == self.winner,
                      f"the contract is signed with the winner {self.winner}")
        self._require(facts.amount_fen > 0 and bool(facts.contract_no),
                      "a contract names its number and a positive amount", "InvalidArgument")

    @workflow.update(name=RECORD_CONTRACT)
    async def record_contract(self, act: OfficialAct) -> ActReceipt:
        if (again := self._again(act)) is not None:
            return again
        facts = TenderFacts.read(act.statement.body)
        self._contract_rules(facts)
        self.acting = True
        try:
            receipt = await self._record_act(TenderStep(
                self.tender.tender_no, act.statement, workflow.now(), "contracted",
                self.deadline), "record and publish the contract")
        finally:
            self.acting = False
        self.contracted = True
        self.stage = Stage.CONTRACTED
        self.version += 1
        self._show()
        return self._receipt(receipt)

    @record_contract.validator
    def _validate_contract(self, act: OfficialAct) -> None:
        self._contract_rules(self._authored(RECORD_CONTRACT, act, StatementKind.CONTRACT))

    # ---- what the Temporal UI shows -------------------------------------------------------

    @workflow.query(name=STATUS)
    def status(self) -> TenderStatus:
        return TenderStatus(
            tender_no=self.tender.tender_no, project_no=self.tender.project_no,
            category=self.tender.category,
            department_code=self.tender.tenderer_department or self.tender.department_code,
            stage=self.stage, bid_deadline=self.deadline, waiting_for=self._waiting_for(),
            objection=self.objection, bids=self.bids,
            decryption_ends_at=self.decryption_ends_at, candidates=list(self.candidates),
            candidates_published_at=self.candidates_published_at,
            award_from=self._award_from(), winner=self.winner,
            contract_due=contract_due(self.awarded_at) if self.awarded_at else None,
            contract_late="contract_late" in self.escalated, amendments=self.amendments,
            objections=self.objections, feed_sequences=list(self.feed_sequences))

    def _award_from(self) -> datetime | None:
        if self.candidates_published_at is None:
            return None
        return earliest_award(self.candidates_published_at, paused=self.candidates_paused)

    def _due(self) -> datetime | None:
        """The next instant the tender waits for, for the DueTime search attribute."""
        if self.objection is not None:
            return self.objection.answer_due
        if self.stage == Stage.BIDDING:
            return self.deadline
        if self.stage == Stage.DECRYPTION:
            return self.decryption_ends_at
        if self.stage == Stage.CANDIDATES:
            return self._award_from()
        if self.stage == Stage.AWARDED and self.awarded_at is not None:
            return contract_due(self.awarded_at)
        return None

    def _waiting_for(self) -> str:
        if self.stage in TERMINAL:
            return "nobody: the tender is finished"
        if self.objection is not None:
            return (f"the answer to objection {self.objection.objection_id} (to the "
                    f"{self.objection.target}), due {self.objection.answer_due.isoformat()}")
        return {
            Stage.BIDDING: f"bids, until the deadline {self.deadline.isoformat()}",
            Stage.DECRYPTION: "the bidders to reveal their keys",
            Stage.EVALUATION: ("the committee's score sheets" if self.committee
                               else "the evaluation committee to be drawn and seated"),
            Stage.CANDIDATES: "the candidates' publication to end, then the award",
            Stage.AWARDED: "the contract with the winner",
        }.get(self.stage, "")

    def _sla(self) -> str:
        if self.escalated and (self.stage == Stage.AWARDED or self.objection is not None):
            return "breached"
        if self.objection is not None:
            return "paused"
        return "on_time"

    def _show(self) -> None:
        """Stage, whom the tender waits for and its dates, for the Temporal UI."""
        updates: list[SearchAttributeUpdate[Any]] = []
        if self.shown_stage != self.stage:
            updates.append(STAGE.value_set(str(self.stage)))
            self.shown_stage = self.stage
        sla = self._sla()
        if self.shown_sla != sla:
            updates.append(SLA_STATE.value_set(sla))
            self.shown_sla = sla
        due = self._due()
        updates.append(DUE_TIME.value_set(due) if due is not None else DUE_TIME.value_unset())
        workflow.upsert_search_attributes(updates)
        lines = [f"**Stage:** {self.stage}", f"**Waiting for:** {self._waiting_for()}",
                 f"**Bid deadline:** {self.deadline.isoformat()}"]
        if self.objections_until is not None:
            lines.append(f"**Objections to the documents until:** "
                         f"{self.objections_until.isoformat()}")
        if self.stage != Stage.BIDDING:
            lines.append(f"**Bids at the deadline:** {self.bids}")
        if self.decryption_ends_at is not None and self.stage == Stage.DECRYPTION:
            lines.append(f"**Decryption window ends:** {self.decryption_ends_at.isoformat()}")
        award_from = self._award_from()
        if award_from is not None and self.stage == Stage.CANDIDATES:
            lines.append(f"**Candidates:** {', '.join(self.candidates)}")
            lines.append(f"**Award from:** {award_from.isoformat()}")
        if self.awarded_at is not None:
            lines.append(f"**Winner:** {self.winner}")
            lines.append(f"**Contract due:** {contract_due(self.awarded_at).isoformat()}")
        if self.escalated:
            lines.append(f"**Escalated:** {', '.join(sorted(self.escalated))}")
        workflow.set_current_details("\n".join(lines))
