"""The tender workflow's order and clock, its trading activities faked by name.

On the time-skipping test server: every timing rule is reached by skipping
time (``env.sleep``), each test with its own task queues. The fakes record
what the trading service was asked to record; the real activities are tested
in tests/integration/trading.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.chinatime import china_date
from kernel.signing import (
    ServiceSigner,
    TrustedKeys,
    public_keys_dir,
    service_signer,
    trust_in_workflows,
)
from tests.day_setups import plain_calendar, weekdays_after
from workflows import refused_acts
from workflows import tender_contract as t
from workflows import tender_rules as r
from workflows.approval_contract import as_statement, content_digest
from workflows.tender import TenderWorkflow

K = t.StatementKind
OFFICER = {"official_id": "ZWFWZX-007", "department_code": "ZWFWZX",
           "roles": ["trading_officer"], "system": "trading-platform"}


class TradingSigner:
    """Statements as the trading service signs them, with keys the validators trust."""

    def __init__(self, pki_dir: Path) -> None:
        self.trading: ServiceSigner = service_signer(pki_dir, "trading")
        self.forger: ServiceSigner = service_signer(pki_dir / "forger", "trading")
        trust_in_workflows(TrustedKeys.load(public_keys_dir(pki_dir)))

    def sign(self, kind: t.StatementKind, tender_no: str, at: datetime, *,
             forged: bool = False, text: str = "", **facts: Any) -> t.OfficialAct:
        digest = content_digest(text=text) if text else ""
        body = t.tender_statement_body(kind=kind, tender_no=tender_no, issued_at=at,
                                       request_id=str(uuid.uuid4()), content_sha256=digest,
                                       **(OFFICER | facts))
        signer = self.forger if forged else self.trading
        return t.OfficialAct(as_statement(signer.sign(body)), text)


@dataclass
class Trading:
    """The fake trading service: what it was asked to record."""

    bids: int = 3
    #: The bids found valid when the decryption window closes.
    valid: int = 3
    steps: list[t.TenderStep] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    sequence: int = 0

    def _published(self) -> int:
        self.sequence += 1
        return self.sequence

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name=t.OPEN_TENDER)
        async def open_tender(step: t.TenderStep) -> t.StepReceipt:
            self.steps.append(step)
            assert step.bid_deadline is not None
            return t.StepReceipt(step.tender_no, "bidding", step.bid_deadline,
                                 self._published())

        @activity.defn(name=t.RECORD_TENDER_STEP)
        async def record(step: t.TenderStep) -> t.StepReceipt:
            self.steps.append(step)
            assert step.bid_deadline is not None
            return t.StepReceipt(step.tender_no, "", step.bid_deadline, self._published())

        @activity.defn(name=t.CLOSE_BIDDING)
        async def close_bidding(step: t.TenderStep) -> t.BiddingClosed:
            self.steps.append(step)
            return t.BiddingClosed(step.tender_no, self.bids, r.opens(self.bids),
                                   self._published())

        @activity.defn(name=t.CLOSE_DECRYPTION)
        async def close_decryption(step: t.TenderStep) -> t.StepReceipt:
            self.steps.append(step)
            assert step.bid_deadline is not None
            if not r.evaluates(self.valid):
                return t.StepReceipt(step.tender_no, "failed", step.bid_deadline,
                                     self._published())
            return t.StepReceipt(step.tender_no, "evaluation", step.bid_deadline)

        @activity.defn(name=t.MARK_TENDER_LATE)
        async def mark_late(step: t.TenderStep) -> t.StepReceipt:
            self.steps.append(step)
            self.late.append(step.step)
            assert step.bid_deadline is not None
            return t.StepReceipt(step.tender_no, "", step.bid_deadline)

        return [open_tender, record, close_bidding, close_decryption, mark_late]

    def step_names(self) -> list[str]:
        return [s.step for s in self.steps]


@dataclass
class Tender:
    number: str
    handle: WorkflowHandle[TenderWorkflow, t.TenderResult]
    env: WorkflowEnvironment
    signer: TradingSigner
    trading: Trading
    announced_at: datetime

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def act(self, update: str, kind: t.StatementKind, **facts: Any) -> t.ActReceipt:
        receipt: t.ActReceipt = await self.handle.execute_update(
            update, self.signer.sign(kind, self.number, await self.now(), **facts),
            result_type=t.ActReceipt)
        return receipt

    async def refused(self, update: str, kind: t.StatementKind, **facts: Any
                      ) -> ApplicationError:
        forged = facts.pop("forged", False)
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await self.handle.execute_update(
                update, self.signer.sign(kind, self.number, await self.now(), forged=forged,
                                         **facts))
        assert isinstance(failure.value.cause, ApplicationError)
        return failure.value.cause

    async def status(self) -> t.TenderStatus:
        status: t.TenderStatus = await self.handle.query(t.STATUS, result_type=t.TenderStatus)
        return status

    async def until(self, check: Callable[[t.TenderStatus], bool],
                    what: str) -> t.TenderStatus:
        for _ in range(400):
            status = await self.status()
            if check(status):
                return status
            await asyncio.sleep(0.025)
        raise AssertionError(f"never: {what}; last {status}")

    async def skip_to(self, moment: datetime) -> None:
        """Skip the test server's clock to ``moment``."""
        gap = moment - await self.now()
        if gap > timedelta(0):
            await self.env.sleep(gap)


@pytest.fixture
def signer(tmp_path: Path) -> TradingSigner:
    return TradingSigner(tmp_path / "pki")


@asynccontextmanager
async def tender(env: WorkflowEnvironment, signer: TradingSigner, *, bids: int = 3,
                 valid: int = 3,
                 category: str = "construction", period: timedelta = timedelta(days=20),
                 objections_until: datetime | None = None,
                 window: timedelta = timedelta(hours=2)) -> AsyncIterator[Tender]:
    trading = Trading(bids=bids, valid=valid)
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    number = f"TD-20260101-{uuid.uuid4().int % 1_000_000:06d}"
    now = await env.get_current_time()
    announcement = signer.sign(
        K.ANNOUNCEMENT, number, now, project_no="PJ-20260101-000001", category=category,
        entry_code="CE-01", tenderer_department="JYJ", bid_deadline=now + period,
        objections_until=objections_until,
        decryption_window_seconds=int(window.total_seconds()))
    async with (
        Worker(env.client, task_queue=f"{prefix}workflows", workflows=[TenderWorkflow]),
        Worker(env.client, task_queue=f"{prefix}trading", activities=trading.activities()),
    ):
        handle = await env.client.start_workflow(
            TenderWorkflow.run, t.TenderInput(announcement.statement),
            id=t.workflow_id(number), task_queue=f"{prefix}workflows")
        case = Tender(number, handle, env, signer, trading, now)
        await case.until(lambda s: s.feed_sequences == [1], "the tender opened")
        yield case


async def _through_to_candidates(case: Tender) -> None:
    await case.skip_to(case.announced_at + timedelta(days=20, hours=2, minutes=1))
    await case.until(lambda s: s.stage == t.Stage.EVALUATION, "evaluation")
    await case.act(t.EVALUATE, K.EVALUATION, candidates=["BD-0002", "BD-0001"])


async def test_the_deadline_closes_bidding_not_before_and_three_bids_open(
        time_skipping: WorkflowEnvironment, signer: TradingSigner) -> None:
    async with tender(time_skipping, signer, bids=3) as case:
        deadline = case.announced_at + timedelta(days=20)
        await case.skip_to(deadline - timedelta(minutes=1))
        assert (await case.status()).stage == t.Stage.BIDDING
        assert "deadline" not in case.trading.step_names()
        await case.skip_to(deadline + timedelta(seconds=1))
        status = await case.until(lambda s: s.stage == t.Stage.DECRYPTION, "decryption")
        assert status.bids == 3
        assert status.decryption_ends_at is not None
        assert status.decryption_ends_at - deadline <= timedelta(hours=2, seconds=5)
        # The decryption window: evaluation only once it ends.
        await case.skip_to(status.decryption_ends_at - timedelta(minutes=1))
        assert (await case.status()).stage == t.Stage.DECRYPTION
        await case.skip_to(status.decryption_ends_at + timedelta(seconds=1))
        await case.until(lambda s: s.stage == t.Stage.EVALUATION, "evaluation")
    assert case.trading.step_names() == ["announced", "deadline", "decryption_closed"]


async def test_two_bids_at_the_deadline_fail_the_tender_without_an_opening(
        time_skipping: WorkflowEnvironment, signer: TradingSigner) -> None:
    async with tender(time_skipping, signer, bids=2) as case:
        await case.skip_to(case.announced_at + timedelta(days=20, seconds=1))
        result = await case.handle.result()
        status = await case.status()
    assert result.outcome == "failed" and result.bids == 2
    assert status.stage == t.Stage.FAILED
    assert status.decryption_ends_at is None
    assert case.trading.step_names() == ["announced", "deadline"]
    # The failure is published (the deadline step's feed entry).
    assert status.feed_sequences == [1, 2]


async def test_fewer_than_three_valid_bids_after_decryption_fail_the_tender_unevaluated(
        time_skipping: WorkflowEnvironment, signer: TradingSigner) -> None:
    async with tender(time_skipping, signer, bids=4, valid=2) as case:
        await case.skip_to(case.announced_at + timedelta(days=20, seconds=1))
        status = await case.until(lambda s: s.stage == t.Stage.DECRYPTION, "decryption")
        assert status.decryption_ends_at is not None
        await case.skip_to(status.decryption_ends_at + timedelta(seconds=1))
        status = await case.until(lambda s: s.stage == t.Stage.FAILED, "failed")
        result = await case.handle.result()
    assert result.outcome == "failed" and result.bids == 4
    assert status.stage == t.Stage.FAILED and not status.candidates
    assert case.trading.step_names() == ["announced", "deadline", "decryption_closed"]
    # The failure is published (the decryption step's feed entry).
    assert status.feed_sequences == [1, 2, 3]


async def test_an_amendment_late_in_the_bid_period_pushes_the_deadline(
        time_skipping: WorkflowEnvironment, signer: TradingSigner) -> None:
    async with tender(time_skipping, signer) as case:
        original = case.announced_at + timedelta(days=20)
        # 16 days before the deadline: it stands.
        await case.skip_to(original - timedelta(days=16))
        early = await case.act(t.AMEND, K.AMENDMENT, text="第一次澄清")
        assert early.bid_deadline == original
        # 5 days before the deadline: pushed to 15 days after the amendment.
        await case.skip_to(original - timedelta(days=5))
        amended_at = await case.now()
        late = await case.act(t.AMEND, K.AMENDMENT, text="第二次澄清")
        assert abs(late.bid_deadline - (amended_at + timedelta(days=15))) < timedelta(seconds=1)
        await case.skip_to(original + timedelta(hours=1))
        assert (await case.status()).stage == t.Stage.BIDDING
        await case.skip_to(late.bid_deadline + timedelta(seconds=1))
        await case.until(lambda s: s.stage == t.Stage.DECRYPTION, "the pushed deadline came")
    assert case.trading.step_names()[:3] == ["announced", "amended", "amended"]


async def test_an_objection_pauses_the_tender_and_the_deadline_moves_by_the_pause(
        time_skipping: WorkflowEnvironment, signer: TradingSigner) -> None:
    async with tender(time_skipping, signer) as case:
        original = case.announced_at + timedelta(days=20)
        await case.skip_to(original - timedelta(days=11))
        objected_at = await case.now()
        due = objected_at + timedelta(days=3)
        paused = await case.act(t.OBJECT, K.OBJECTION, objection_id="OB-1",
                                target="documents", answer_due=due)
        assert paused.paused
        second = await case.refused(t.OBJECT, K.OBJECTION, objection_id="OB-2",
                                    target="documents", answer_due=due)
        assert second.type == "FailedPrecondition"
        # The answer is late: escalated once, the tender still paused.
        await case.skip_to(due + timedelta(hours=1))
        await case.until(lambda s: s.objection is not None and "objection_answer_late"
                         in case.trading.late, "the late answer escalated")
        # Past the original deadline: still paused, nothing closed.
        await case.skip_to(original + timedelta(hours=1))
        assert (await case.status()).stage == t.Stage.BIDDING
        answered_at = await case.now()
        answer = await case.act(t.ANSWER_OBJECTION, K.OBJECTION_ANSWER, objection_id="OB-1",
                                text="答复：文件无误")
        assert not answer.paused
        moved = original + (answered_at - objected_at)
        assert abs(answer.bid_deadline - moved) < timedelta(seconds=2)
        # Objections end 10 days before the (moved) deadline.
        await case.skip_to(answer.bid_deadline - timedelta(days=10) + timedelta(minutes=1))
        too_late = await case.refused(t.OBJECT, K.OBJECTION, objection_id="OB-3",
                                      target="documents", answer_due=due)
        assert "10 days" in too_late.message
        await case.skip_to(answer.bid_deadline + timedelta(seconds=1))
        await case.until(lambda s: s.stage == t.Stage.DECRYPTION, "the moved deadline")
    assert case.trading.late == ["objection_answer_late"]


async def test_procurement_objections_close_at_the_working_day_limit_across_a_holiday(
        time_skipping: WorkflowEnvironment, signer: TradingSigner) -> None:
    env = time_skipping
    # One reading of the clock: a day taken from an earlier one could be the day before
    # (China's midnight between), and its first holiday then the announcement's own day.
    now = await env.get_current_time()
    start = china_date(now)
    # A made-up holiday on the next three weekdays, this year and the next loaded.
    # (tests/unit/test_day_setups.py checks these limits on every day and hour of a span.)
    weekdays = weekdays_after(start, 3)
    years = {start.year, start.year + 1}
    calendar = plain_calendar(years, frozenset(weekdays))
    documents_until = r.earliest_documents_until(calendar, now)
    until = r.procurement_objections_until(calendar, documents_until)
    plain = r.procurement_objections_until(
        plain_calendar(years), r.earliest_documents_until(plain_calendar(years), now))
    assert until - plain >= timedelta(days=3)  # the holiday counts
    async with tender(env, signer, category="government_procurement",
                      period=timedelta(days=40), objections_until=until) as case:
        await case.skip_to(until - timedelta(minutes=1))
        taken = await case.act(t.OBJECT, K.OBJECTION, objection_id="OB-1", target="documents",
                               answer_due=r.answer_due(calendar, category=r.GOVERNMENT_PROCUREMENT,
                                                       objected_at=await case.now()))
        assert taken.paused
        await case.act(t.ANSWER_OBJECTION, K.OBJECTION_ANSWER, objection_id="OB-1")
        await case.skip_to(until + timedelta(minutes=1))
        refused = await case.refused(t.OBJECT, K.OBJECTION, objection_id="OB-2",
                                     target="documents", answer_due=until + timedelta(days=9))
    assert "7 working days" in refused.message


async def test_the_candidates_stay_published_three_days_then_award_and_contract(
        time_skipping: WorkflowEnvironment, signer: TradingSigner) -> None:
    async with tender(time_skipping, signer) as case:
        await _through_to_candidates(case)
        status = await case.until(lambda s: s.stage == t.Stage.CANDIDATES, "candidates")
        assert status.award_from is not None and status.candidates_published_at is not None
        too_early = await case.refused(t.AWARD, K.AWARD, winner="BD-0002", amount_fen=1000)
        assert "3 days" in too_early.message
        await case.skip_to(status.award_from + timedelta(seconds=1))
        not_a_candidate = await case.refused(t.AWARD, K.AWARD, winner="BD-0009",
                                             amount_fen=1000)
        await case.act(t.AWARD, K.AWARD, winner="BD-0002", amount_fen=1000)
        await case.act(t.RECORD_CONTRACT, K.CONTRACT, winner="BD-0002", amount_fen=1000,
                       contract_no="HT-0001")
        result = await case.handle.result()
    assert not_a_candidate.type == "FailedPrecondition"
    assert result.outcome == "contracted" and result.winner == "BD-0002"
    assert case.trading.late == []
    assert case.trading.step_names()[-3:] == ["candidates_published", "awarded", "contracted"]


async def test_an_objection_to_the_candidates_lengthens_their_publication(
        time_skipping: WorkflowEnvironment, signer: TradingSigner) -> None:
    async with tender(time_skipping, signer) as case:
        await _through_to_candidates(case)
        status = await case.until(lambda s: s.stage == t.Stage.CANDIDATES, "candidates")
        assert status.award_from is not None
        objected = await case.now()
        await case.act(t.OBJECT, K.OBJECTION, objection_id="OB-1", target="candidates",
                       answer_due=objected + timedelta(days=3))
        # A second past the day: the objection itself was signed a moment after ``objected``,
        # so the pause (answer's instant minus objection's) is a whole day at least.
        await case.skip_to(objected + timedelta(days=1, seconds=1))
        await case.act(t.ANSWER_OBJECTION, K.OBJECTION_ANSWER, objection_id="OB-1")
        later = await case.status()
        assert later.award_from is not None
        assert later.award_from - status.award_from >= timedelta(days=1)
        await case.skip_to(status.award_from + timedelta(minutes=1))
        refused = await case.refused(t.AWARD, K.AWARD, winner="BD-0001", amount_fen=1000)
        assert "3 days" in refused.message


async def test_a_late_contract_is_escalated_once(
        time_skipping: WorkflowEnvironment, signer: TradingSigner) -> None:
    async with tender(time_skipping, signer) as case:
        await _through_to_candidates(case)
        status = await case.until(lambda s: s.stage == t.Stage.CANDIDATES, "candidates")
        assert status.award_from is not None
        await case.skip_to(status.award_from + timedelta(seconds=1))
        await case.act(t.AWARD, K.AWARD, winner="BD-0001", amount_fen=1000)
        awarded = await case.status()
        assert awarded.contract_due is not None
        await case.skip_to(awarded.contract_due - timedelta(minutes=1))
        assert not (await case.status()).contract_late
        await case.skip_to(awarded.contract_due + timedelta(minutes=1))
        await case.until(lambda s: s.contract_late, "the late contract escalated")
        await case.skip_to(awarded.contract_due + timedelta(days=10))
        await case.act(t.RECORD_CONTRACT, K.CONTRACT, winner="BD-0001", amount_fen=1000,
                       contract_no="HT-0002")
        await case.handle.result()
    assert case.trading.late == ["contract_late"]


async def test_a_forged_or_foreign_statement_is_refused_and_reported(
        time_skipping: WorkflowEnvironment, signer: TradingSigner) -> None:
    reports: list[refused_acts.RefusedAct] = []
    refused_acts.listen(reports.append)
    try:
        async with tender(time_skipping, signer) as case:
            forged = await case.refused(t.AMEND, K.AMENDMENT, forged=True)
            wrong_kind = await case.refused(t.AMEND, K.AWARD, winner="BD-0001",
                                            amount_fen=1)
            evaluation_too_early = await case.refused(t.EVALUATE, K.EVALUATION,
                                                      candidates=["BD-0001"])
    finally:
        refused_acts.listen(None)
    assert forged.type == "PermissionDenied"
    assert wrong_kind.type == "InvalidArgument"
    assert evaluation_too_early.type == "FailedPrecondition"
    # Only the two statements no honest service sends are reported, as the tender's.
    assert [(a.case_number, a.update_name) for a in reports] == [
        (case.number, t.AMEND), (case.number, t.AMEND)]
    assert case.trading.step_names() == ["announced"]


async def test_a_statement_about_another_tender_is_refused(
        time_skipping: WorkflowEnvironment, signer: TradingSigner) -> None:
    async with tender(time_skipping, signer) as case:
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await case.handle.execute_update(
                t.AMEND, signer.sign(K.AMENDMENT, "TD-20260101-999999", await case.now()))
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "PermissionDenied"
    assert case.trading.step_names() == ["announced"]


async def test_an_act_whose_text_is_not_the_one_signed_is_refused_by_the_validator(
        time_skipping: WorkflowEnvironment, signer: TradingSigner) -> None:
    """The text an act carries must be the one whose digest trading signed in its statement:
    another text, no text for a signed digest, or a text where none was signed is refused
    before the update is accepted (nothing in the history, nothing recorded)."""
    async with tender(time_skipping, signer) as case:
        signed = signer.sign(K.AMENDMENT, case.number, await case.now(), text="第一次澄清")
        unsigned = signer.sign(K.AMENDMENT, case.number, await case.now())
        causes = []
        for act in (t.OfficialAct(signed.statement, "第一次澄清（改）"),
                    t.OfficialAct(signed.statement, ""),
                    t.OfficialAct(unsigned.statement, "未签的澄清")):
            with pytest.raises(WorkflowUpdateFailedError) as failure:
                await case.handle.execute_update(t.AMEND, act, result_type=t.ActReceipt)
            causes.append(failure.value.cause)
        status = await case.status()
        history = await case.handle.fetch_history()
        # The act with its own text is accepted (and so would be in the history).
        await case.handle.execute_update(t.AMEND, signed, result_type=t.ActReceipt)
        after = await case.handle.fetch_history()
    assert [(c.type, c.message) for c in causes if isinstance(c, ApplicationError)] == [
        ("InvalidArgument", "the text is not the one trading signed")] * 3
    accepted = [e for e in history.events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert accepted == []
    assert status.feed_sequences == [1]
    assert case.trading.step_names() == ["announced", "amended"]
    assert [e.event_type for e in after.events].count(
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) == 1
