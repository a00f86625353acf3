"""ComplaintWorkflow on the time-skipping test server, its activities faked by name.

The fakes (complaint_fakes.py) answer as the complaints service would, with
deadlines computed on a working calendar that has holidays loaded, so a
test skips to the instant a deadline falls (``env.sleep``) and sees the
escalation land then and only then. Each test has its own task queues
(``t<uuid>-workflows`` and ``-complaints``). The client's data converter
carries the payload codec, as every govhall process's does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from google.protobuf import json_format
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.chinatime import CHINA, china_date
from kernel.signing import service_signer
from kernel.temporal import CASE_KIND, ITEM_CODE, SLA_STATE, STAGE
from tests.day_setups import first_working_day_after, holidays_until_the_weekend
from tests.history_text import decoded_history_text
from tests.integration.workflows.complaint_fakes import (
    CO_HANDLER,
    DISPATCHER,
    HANDLER,
    OTHER_HANDLER,
    PLATFORM,
    ComplaintSigners,
    FakeComplaints,
    Person,
)
from workflows import complaint_contract as c
from workflows import refused_acts
from workflows.complaint import ComplaintWorkflow

K = c.StatementKind
T = TypeVar("T")
PHONE = "13912345678"


@pytest.fixture
def signers(tmp_path: Path) -> ComplaintSigners:
    return ComplaintSigners(tmp_path / "pki")


@pytest.fixture
def refusals() -> Iterator[list[refused_acts.RefusedAct]]:
    """What the workflows report of the acts they refused for want of authority."""
    reported: list[refused_acts.RefusedAct] = []
    refused_acts.listen(reported.append)
    yield reported
    refused_acts.listen(None)


async def until(probe: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    for _ in range(400):
        found = probe()
        if done(found):
            return found
        await asyncio.sleep(0.025)
    raise AssertionError(f"never: {what}; last {found!r}")


@dataclass
class Case:
    number: str
    handle: WorkflowHandle[ComplaintWorkflow, c.ComplaintResult]
    fake: FakeComplaints
    env: WorkflowEnvironment
    signers: ComplaintSigners

    async def act(self, update: str, kind: c.StatementKind, who: Person, *,
                  texts: dict[str, str] | None = None, **facts: Any) -> c.ActReceipt:
        receipt: c.ActReceipt = await self.handle.execute_update(
            update, self.signers.act(kind, self.number, who, texts=texts, **facts),
            result_type=c.ActReceipt)
        return receipt

    async def refused(self, update: str, act: c.Act) -> ApplicationError:
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await self.handle.execute_update(update, act)
        assert isinstance(failure.value.cause, ApplicationError)
        return failure.value.cause

    async def status(self) -> c.ComplaintStatusView:
        status: c.ComplaintStatusView = await self.handle.query(
            c.STATUS, result_type=c.ComplaintStatusView)
        return status

    async def until_status(self, check: Callable[[c.ComplaintStatusView], bool],
                           what: str) -> c.ComplaintStatusView:
        for _ in range(400):
            status = await self.status()
            if check(status):
                return status
            await asyncio.sleep(0.025)
        raise AssertionError(f"never: {what}; last {status}")

    async def skip_to(self, moment: datetime) -> None:
        await self.env.sleep(moment - await self.env.get_current_time())

    async def sign_for_and_reply(self, reply: str = "已办理") -> c.ActReceipt:
        await self.act(c.SIGN_FOR, K.SIGN_FOR, HANDLER)
        return await self.act(c.REPLY, K.REPLY, HANDLER, texts={"reply": reply})

    async def result(self) -> c.ComplaintResult:
        result: c.ComplaintResult = await self.handle.result()
        return result

    async def scheduled(self, activity_name: str) -> int:
        history = await self.handle.fetch_history()
        return sum(1 for e in history.events
                   if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                   and e.activity_task_scheduled_event_attributes.activity_type.name
                   == activity_name)


@asynccontextmanager
async def cases(env: WorkflowEnvironment, signers: ComplaintSigners, *,
                fake: FakeComplaints | None = None,
                ) -> AsyncIterator[Callable[..., Awaitable[Case]]]:
    """Workers on this test's queues; yields a starter of cases."""
    fake = fake or FakeComplaints(signers.keys)
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    async with (
        Worker(env.client, task_queue=f"{prefix}workflows", workflows=[ComplaintWorkflow]),
        Worker(env.client, task_queue=f"{prefix}complaints", activities=fake.activities()),
    ):
        async def start(deadline_class: str = "complaint", number: str = "") -> Case:
            number = number or f"CP-{uuid.uuid4().hex[:8]}"
            received = signers.received(number, at=await env.get_current_time(),
                                        deadline_class=deadline_class)
            handle = await env.client.start_workflow(
                ComplaintWorkflow.run, c.ComplaintInput(received), id=c.workflow_id(number),
                task_queue=f"{prefix}workflows")
            case = Case(number, handle, fake, env, signers)
            await case.until_status(lambda s: bool(s.sign_for_due), "the case opened")
            return case

        yield start


async def test_sign_for_is_escalated_after_four_working_hours_past_the_holiday(
        time_skipping: WorkflowEnvironment, signers: ComplaintSigners) -> None:
    env = time_skipping
    today = china_date(await env.get_current_time())
    # Every weekday up to the weekend is a holiday, so the case is received on a day off
    # whatever the day and hour (tests/unit/test_day_setups.py checks every day of a span).
    holidays = holidays_until_the_weekend(today)
    fake = FakeComplaints(signers.keys, holidays=holidays)
    # The first working day after the holidays: not a weekend day, not a holiday.
    first = first_working_day_after(today, holidays)
    # 09:00–12:00 is three hours; the fourth is 13:30–14:30.
    expected = datetime.combine(first, time(14, 30), CHINA).astimezone(UTC)
    async with cases(env, signers, fake=fake) as start:
        case = await start()
        opened = await case.status()
        assert opened.sign_for_due == c.iso_instant(expected)
        assert first.weekday() == 0  # after the holidays and a weekend
        assert expected - await env.get_current_time() > timedelta(days=2)
        await case.skip_to(expected - timedelta(minutes=1))
        before = fake.overdue_kinds(case.number)
        await case.skip_to(expected + timedelta(minutes=1))
        await until(lambda: fake.overdue_kinds(case.number), bool, "the sign-for escalated")
        late = await case.until_status(lambda s: s.escalations == 1, "the escalation shown")
        await case.skip_to(expected + timedelta(hours=5))
        later = await case.status()
        description = await case.handle.describe()
        await case.handle.terminate("test over")
    assert before == []
    assert fake.overdue_kinds(case.number) == ["sign_for"]
    assert fake.overdue[0].due == expected
    assert late.sla_state == c.SlaState.BREACHED and late.stage == c.Stage.ROUTED
    assert later.escalations == 1
    attributes = description.typed_search_attributes
    assert attributes.get(CASE_KIND) == "complaint"
    assert attributes.get(ITEM_CODE) == "SC-01"
    assert attributes.get(STAGE) == "routed"
    assert attributes.get(SLA_STATE) == "breached"


async def test_the_reply_deadline_is_escalated_once_and_moves_with_a_granted_extension(
        time_skipping: WorkflowEnvironment, signers: ComplaintSigners) -> None:
    env = time_skipping
    async with cases(env, signers) as start:
        case = await start("consultation")
        signed = await case.act(c.SIGN_FOR, K.SIGN_FOR, HANDLER)
        assert signed.stage == c.Stage.HANDLING and signed.sign_for_due == ""
        first_due = datetime.fromisoformat(signed.reply_due)
        await case.act(c.REQUEST_EXTENSION, K.EXTENSION_REQUEST, HANDLER, days=3,
                       texts={"basis": "需要现场核查"})
        granted = await case.act(c.DECIDE_EXTENSION, K.EXTENSION_DECISION, DISPATCHER,
                                 outcome="granted", days=3)
        new_due = datetime.fromisoformat(granted.reply_due)
        assert new_due - first_due >= timedelta(days=3)
        # The old deadline passes: nothing; the new one: one escalation.
        await case.skip_to(first_due + timedelta(minutes=1))
        at_old = list(case.fake.overdue)
        await case.skip_to(new_due + timedelta(minutes=1))
        await until(lambda: case.fake.overdue_kinds(case.number), bool, "the reply escalated")
        await case.skip_to(new_due + timedelta(days=2))
        status = await case.status()
        await case.handle.terminate("test over")
    assert at_old == []
    assert case.fake.overdue_kinds(case.number) == ["reply"]
    assert case.fake.overdue[0].due == new_due
    assert status.escalations == 1 and not status.extension_pending


async def test_recomputed_deadlines_re_arm_the_escalation_at_the_new_reply_due(
        time_skipping: WorkflowEnvironment, signers: ComplaintSigners) -> None:
    env = time_skipping
    async with cases(env, signers) as start:
        case = await start("consultation")
        signed = await case.act(c.SIGN_FOR, K.SIGN_FOR, HANDLER)
        old_due = datetime.fromisoformat(signed.reply_due)
        # The service recomputes the reply due (a holiday schedule loaded: two days later).
        new_due = old_due + timedelta(days=2)
        case.fake.cases[case.number].reply_due = new_due
        # A signal for another case, or not a DeadlinesChanged, is dropped unread.
        await case.handle.signal(c.DEADLINES_CHANGED, c.DeadlinesChanged("CP-someother"))
        await case.handle.signal(c.DEADLINES_CHANGED, None)
        assert (await case.status()).reply_due == c.iso_instant(old_due)
        await case.handle.signal(c.DEADLINES_CHANGED, c.DeadlinesChanged(case.number))
        moved = await case.until_status(lambda s: s.reply_due == c.iso_instant(new_due),
                                        "the recomputed reply due taken")
        await case.skip_to(old_due + timedelta(minutes=1))
        at_old = list(case.fake.overdue)
        await case.skip_to(new_due + timedelta(minutes=1))
        await until(lambda: case.fake.overdue_kinds(case.number), bool, "the reply escalated")
        late = await case.until_status(lambda s: s.escalations == 1, "the escalation shown")
        description = await case.handle.describe()
        await case.handle.terminate("test over")
    assert case.fake.dues_read == [case.number]
    assert moved.stage == c.Stage.HANDLING
    assert at_old == []
    assert case.fake.overdue_kinds(case.number) == ["reply"]
    assert case.fake.overdue[0].due == new_due
    assert late.sla_state == c.SlaState.BREACHED
    assert description.typed_search_attributes.get(SLA_STATE) == "breached"


async def test_a_deadlines_signal_never_moves_a_due_the_service_did_not_move(
        time_skipping: WorkflowEnvironment, signers: ComplaintSigners) -> None:
    # Anyone who reaches Temporal can signal: the dues come from the service only.
    env = time_skipping
    async with cases(env, signers) as start:
        case = await start("consultation")
        opened = await case.status()
        for _ in range(3):
            await case.handle.signal(c.DEADLINES_CHANGED, c.DeadlinesChanged(case.number))
        await until(lambda: case.fake.dues_read, bool, "the dues read")
        due = datetime.fromisoformat(opened.reply_due)
        await case.skip_to(due + timedelta(minutes=1))
        await until(lambda: case.fake.overdue_kinds(case.number), bool, "the reply escalated")
        after = await case.status()
        await case.handle.terminate("test over")
    assert (after.reply_due, after.sign_for_due) == (opened.reply_due, opened.sign_for_due)
    assert 1 <= len(case.fake.dues_read) <= 3
    assert case.fake.overdue_kinds(case.number) == ["sign_for", "reply"]
    assert case.fake.overdue[-1].due == due


async def test_the_rating_window_lapses_and_closes_the_case_even_when_the_link_check_fails(
        time_skipping: WorkflowEnvironment, signers: ComplaintSigners) -> None:
    fake = FakeComplaints(signers.keys, link_check_fails=True)
    async with cases(time_skipping, signers, fake=fake) as start:
        case = await start()
        replied = await case.sign_for_and_reply()
        status = await case.status()
        assert replied.stage == c.Stage.REPLIED and status.rating_closes
        closes = datetime.fromisoformat(status.rating_closes)
        await case.skip_to(closes - timedelta(minutes=1))
        assert fake.closings == []
        await case.skip_to(closes + timedelta(minutes=1))
        result = await case.result()
        checks = await case.scheduled(c.CHECK_LINK)
    assert result.stage == c.Stage.CLOSED and result.reason == "rating_window_lapsed"
    assert [x.reason for x in fake.closings] == ["rating_window_lapsed"]
    assert fake.links and checks == 1


async def test_an_unsatisfied_rating_reopens_once_and_only_once(
        time_skipping: WorkflowEnvironment, signers: ComplaintSigners) -> None:
    async with cases(time_skipping, signers) as start:
        case = await start()
        await case.sign_for_and_reply()
        reopened = await case.act(c.RATE, K.RATING, PLATFORM, level=1,
                                  texts={"comment": "没解决"})
        again = await case.act(c.REPLY, K.REPLY, HANDLER, texts={"reply": "再次答复"})
        closed = await case.act(c.RATE, K.RATING, PLATFORM, level=2, texts={"comment": ""})
        result = await case.result()
    assert (reopened.stage, reopened.reopened) == (c.Stage.HANDLING, True)
    assert reopened.reply_due
    assert again.stage == c.Stage.REPLIED
    assert (closed.stage, closed.reopened) == (c.Stage.CLOSED, True)
    assert (result.stage, result.reason, result.rating, result.reopened) == (
        c.Stage.CLOSED, "rated", 2, True)


async def test_a_return_is_reassigned_with_a_new_sign_for_clock(
        time_skipping: WorkflowEnvironment, signers: ComplaintSigners) -> None:
    async with cases(time_skipping, signers) as start:
        case = await start()
        returned = await case.act(c.RETURN_CASE, K.RETURN, HANDLER, texts={"basis": "非本部门"})
        # The returning department no longer holds it; the dispatcher decides.
        late_sign = await case.refused(c.SIGN_FOR, case.signers.act(
            K.SIGN_FOR, case.number, HANDLER))
        await case.env.sleep(timedelta(hours=2))
        reassigned = await case.act(c.DISPATCH, K.DISPATCH, DISPATCHER, outcome="reassign",
                                    target_department="FGW", texts={"basis": "改派发改委"})
        wrong = await case.refused(c.SIGN_FOR, case.signers.act(K.SIGN_FOR, case.number,
                                                                HANDLER))
        signed = await case.act(c.SIGN_FOR, K.SIGN_FOR, OTHER_HANDLER)
        await case.handle.terminate("test over")
    assert returned.stage == c.Stage.RETURNED and late_sign.type == "FailedPrecondition"
    assert (reassigned.stage, reassigned.department_code) == (c.Stage.ROUTED, "FGW")
    assert reassigned.sign_for_due and reassigned.sign_for_due != returned.sign_for_due
    assert wrong.type == "PermissionDenied"
    assert (signed.stage, signed.department_code) == (c.Stage.HANDLING, "FGW")


async def test_co_handlers_contribute_before_the_lead_replies(
        time_skipping: WorkflowEnvironment, signers: ComplaintSigners) -> None:
    async with cases(time_skipping, signers) as start:
        case = await start()
        await case.act(c.SIGN_FOR, K.SIGN_FOR, HANDLER)
        await case.act(c.SET_CO_HANDLERS, K.CO_HANDLERS, DISPATCHER, co_handlers=["ZJJ"])
        early = await case.refused(c.REPLY, case.signers.act(
            K.REPLY, case.number, HANDLER, texts={"reply": "答复"}))
        pending = await case.status()
        await case.act(c.CONTRIBUTE, K.CONTRIBUTION, CO_HANDLER,
                       texts={"contribution": "会办意见"})
        replied = await case.act(c.REPLY, K.REPLY, HANDLER, texts={"reply": "答复"})
        await case.handle.terminate("test over")
    assert early.type == "FailedPrecondition"
    assert pending.contributions_pending == ["ZJJ"]
    assert replied.stage == c.Stage.REPLIED


async def test_a_merged_duplicate_ends_and_is_answered_with_its_primary(
        time_skipping: WorkflowEnvironment, signers: ComplaintSigners) -> None:
    async with cases(time_skipping, signers) as start:
        primary = await start()
        duplicate = await start()
        merged = await duplicate.act(c.MERGE, K.MERGE, DISPATCHER,
                                     primary_case_number=primary.number)
        ended = await duplicate.result()
        shown = await primary.until_status(lambda s: s.merged_cases != [],
                                           "the primary shows its duplicate")
        await primary.sign_for_and_reply()
        fake = primary.fake
        answered = await until(lambda: [e for e in fake.delivered
                                        if e.startswith(f"msg_{duplicate.number}_replied")],
                               bool, "the duplicate's platform got the reply")
        await primary.handle.terminate("test over")
    assert merged.stage == c.Stage.MERGED
    assert (ended.stage, ended.reason) == (c.Stage.MERGED, "merged")
    assert shown.merged_cases == [duplicate.number]
    assert len(answered) == 1


async def test_forged_statements_are_refused_at_once_and_reported(
        time_skipping: WorkflowEnvironment, signers: ComplaintSigners, tmp_path: Path,
        refusals: list[refused_acts.RefusedAct]) -> None:
    outsider = service_signer(tmp_path / "outsider", "complaints")
    review = service_signer(signers.pki_dir, "review")
    async with cases(time_skipping, signers) as start:
        case = await start()
        n = case.number
        await case.act(c.SIGN_FOR, K.SIGN_FOR, HANDLER)
        reply = {"reply": f"已回电 {PHONE}"}
        wrong_key = await case.refused(c.REPLY, signers.act(K.REPLY, n, HANDLER, texts=reply,
                                                            signer=outsider))
        wrong_signer = await case.refused(c.REPLY, signers.act(K.REPLY, n, HANDLER,
                                                               texts=reply, signer=review))
        genuine = signers.act(K.REPLY, n, HANDLER, texts=reply)
        other_texts = await case.refused(c.REPLY, replace(genuine, texts={"reply": "别的"}))
        altered = await case.refused(c.REPLY, replace(genuine, statement=replace(
            genuine.statement, body={**genuine.statement.body, "department_code": "FGW"})))
        other_case = await case.refused(c.REPLY, signers.act(
            K.REPLY, "CP-elsewhere", HANDLER, texts=reply))
        # A genuine statement the rules refuse: an official's mistake, not reported.
        not_theirs = await case.refused(c.REPLY, signers.act(K.REPLY, n, OTHER_HANDLER,
                                                             texts=reply))
        status = await case.status()
        await case.handle.terminate("test over")
    assert (wrong_key.type, wrong_signer.type, altered.type) == ("PermissionDenied",) * 3
    assert other_texts.type == "InvalidArgument" and other_case.type == "PermissionDenied"
    assert not_theirs.type == "PermissionDenied"
    assert status.stage == c.Stage.HANDLING
    assert case.fake.acts == [(n, K.SIGN_FOR)]
    assert [(r.case_number, r.update_name, r.reason) for r in refusals] == [
        (n, c.REPLY, refusal.message)
        for refusal in (wrong_key, wrong_signer, other_texts, altered, other_case)]


async def test_a_forged_start_fails_the_run_and_opens_nothing(
        time_skipping: WorkflowEnvironment, signers: ComplaintSigners, tmp_path: Path) -> None:
    env = time_skipping
    outsider = service_signer(tmp_path / "outsider", "complaints")
    fake = FakeComplaints(signers.keys)
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    number = f"CP-{uuid.uuid4().hex[:8]}"
    async with (
        Worker(env.client, task_queue=f"{prefix}workflows", workflows=[ComplaintWorkflow]),
        Worker(env.client, task_queue=f"{prefix}complaints", activities=fake.activities()),
    ):
        handle = await env.client.start_workflow(
            ComplaintWorkflow.run, c.ComplaintInput(signers.received(
                number, at=await env.get_current_time(), signer=outsider)),
            id=c.workflow_id(number), task_queue=f"{prefix}workflows")
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "PermissionDenied"
    assert fake.opened == []


async def test_a_delivery_is_retried_until_the_platform_takes_it(
        time_skipping: WorkflowEnvironment, signers: ComplaintSigners) -> None:
    fake = FakeComplaints(signers.keys, failures_before_success=3)
    async with cases(time_skipping, signers, fake=fake) as start:
        case = await start()
        routed = await until(lambda: fake.delivered, bool, "the routed event delivered")
        await case.handle.terminate("test over")
    (event,) = routed
    assert fake.attempts[event] == 4
    assert fake.delivered == [event]


def _without_act_texts(events: Iterable[HistoryEvent]) -> list[HistoryEvent]:
    """The events without the updates' arguments and the activities' inputs."""
    copies: list[HistoryEvent] = []
    for event in events:
        copy = HistoryEvent()
        copy.CopyFrom(event)
        if copy.HasField("workflow_execution_update_accepted_event_attributes"):
            accepted = copy.workflow_execution_update_accepted_event_attributes
            accepted.accepted_request.input.ClearField("args")
        if copy.HasField("workflow_execution_update_admitted_event_attributes"):
            copy.workflow_execution_update_admitted_event_attributes.request.input.ClearField(
                "args")
        if copy.HasField("activity_task_scheduled_event_attributes"):
            copy.activity_task_scheduled_event_attributes.ClearField("input")
        copies.append(copy)
    return copies


async def test_no_personal_data_reaches_the_history_or_the_ui(
        time_skipping: WorkflowEnvironment, signers: ComplaintSigners) -> None:
    async with cases(time_skipping, signers) as start:
        case = await start()
        await case.act(c.RETURN_CASE, K.RETURN, HANDLER,
                       texts={"basis": f"投诉人电话 {PHONE} 所述事项不属本部门"})
        await case.act(c.DISPATCH, K.DISPATCH, DISPATCHER, outcome="send_back",
                       texts={"basis": f"请联系 {PHONE}"})
        await case.sign_for_and_reply(f"已电话联系 {PHONE} 并办结")
        await case.act(c.RATE, K.RATING, PLATFORM, level=5, texts={"comment": f"{PHONE} 满意"})
        result = await case.result()
        history = await case.handle.fetch_history()
        description = await case.handle.describe()
        metadata: WorkflowMetadata = await case.handle.query(
            "__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert result.stage == c.Stage.CLOSED
    # The texts did reach the service, through the encrypted payloads.
    assert any(PHONE in text for texts in case.fake.texts for text in texts.values())
    # Every event as Temporal stores it (its payloads encrypted): the raw bytes.
    raw = History(events=history.events).SerializeToString()
    assert PHONE.encode() not in raw
    assert "投诉人".encode() not in raw
    # Decoded through the client's codec: the acts' texts travel (encrypted) as the update's
    # arguments and the recording activity's input, the service's own channel; nothing
    # else — summaries, details, memo, search attributes, results, failures — holds them.
    decoded = await decoded_history_text(time_skipping.client, history.events)
    assert PHONE in decoded and "投诉人" in decoded  # the decoding works
    elsewhere = await decoded_history_text(time_skipping.client, _without_act_texts(
        history.events))
    assert "record complaint_sign_for by" in elsewhere  # the activities' summaries, decoded
    assert PHONE not in elsewhere and "投诉人" not in elsewhere
    assert description.status == WorkflowExecutionStatus.COMPLETED
    assert PHONE not in json_format.MessageToJson(description.raw_description)
    memo = await description.memo()
    assert PHONE not in str(memo) and PHONE not in str(description.search_attributes)
    details = metadata.current_details
    assert "**Stage:** closed" in details and PHONE not in details
