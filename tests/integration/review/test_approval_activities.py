"""The approval chain's review activities, on the service's real database.

Each is called as Temporal calls it (ActivityEnvironment), including twice
with the same input, as a retry would.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from govhall.review.v1 import review_pb2 as pb
from govhall.review.v1 import review_pb2_grpc
from services.review.activities import ReviewActivities
from services.review.db import tables
from services.review.domain.deadlines import end_of_day
from tests.support import SAMPLE_AUDIT_ENTRIES, ServiceUnderTest, as_official
from workflows import approval_contract as c

OPERATOR = "ZWFWZX-004"
NOW = datetime(2026, 10, 14, 3, 0, tzinfo=UTC)
DUE = datetime(2026, 10, 20, 15, 59, 59, tzinfo=UTC)


def _activities(review: ServiceUnderTest, now: datetime = NOW) -> ReviewActivities:
    return ReviewActivities(review.running.engine, clock=lambda: now)


def _rows(review: ServiceUnderTest, table: Any) -> list[dict[str, Any]]:
    with review.running.engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(select(table))]


def _actions(review: ServiceUnderTest) -> list[str]:
    # After the sample load.
    return [row["action"] for row in _rows(review, tables.audit_log)][SAMPLE_AUDIT_ENTRIES:]


async def test_deadlines_across_national_day_with_a_pause_and_an_extension(
        review: ServiceUnderTest) -> None:
    hosted = _activities(review)
    run = ActivityEnvironment().run
    plain = await run(hosted.case_deadlines, c.CaseDeadlinesInput("2026-09-29", 5, 20))
    paused = await run(hosted.case_deadlines, c.CaseDeadlinesInput(
        "2026-09-29", 5, 20, 10, [c.PausedSpan("expert_review", "2026-10-08", "2026-10-10")]))
    running = await run(hosted.case_deadlines, c.CaseDeadlinesInput(
        "2026-09-29", 5, 20, 0, [c.PausedSpan("appraisal", "2026-10-12")]))
    # Review by the 9th (3 working days), signature by the make-up Saturday, seal the 12th.
    assert plain == c.Deadlines(end_of_day(date(2026, 10, 10)), end_of_day(date(2026, 10, 12)),
                                end_of_day(date(2026, 11, 2)), 0,
                                {"review": end_of_day(date(2026, 10, 9)),
                                 "sign": end_of_day(date(2026, 10, 10)),
                                 "seal": end_of_day(date(2026, 10, 12))})
    assert paused.promised_due_at == end_of_day(date(2026, 10, 14))
    assert paused.legal_due_at == end_of_day(date(2026, 11, 18))
    # Open since the 12th, "today" the 14th (China): the 13th and 14th stood still.
    assert running.promised_due_at == end_of_day(date(2026, 10, 14))


async def test_a_year_without_schedule_is_flagged_then_known_once_loaded(
        review: ServiceUnderTest) -> None:
    hosted = _activities(review)
    run = ActivityEnvironment().run
    year_end = c.CaseDeadlinesInput("2026-12-28", 5, 20)
    provisional = await run(hosted.case_deadlines, year_end)
    async with review.channel() as channel:
        loaded = await review_pb2_grpc.ReviewServiceStub(channel).LoadHolidaySchedule(
            pb.LoadHolidayScheduleRequest(year=2027, holidays=["2027-01-01"]),
            metadata=as_official(OPERATOR))
    known = await run(hosted.case_deadlines, year_end)
    assert provisional.unknown_year == 2027
    assert provisional.promised_due_at == end_of_day(date(2027, 1, 4))
    assert loaded.schedule.year == 2027
    assert known.unknown_year == 0
    assert known.promised_due_at == end_of_day(date(2027, 1, 5))


@pytest.mark.parametrize("wrong", [
    c.CaseDeadlinesInput("2026-13-01", 5, 20),
    c.CaseDeadlinesInput("2026-09-29", 0, 20),
    c.CaseDeadlinesInput("2026-09-29", 5, 20, 0, [c.PausedSpan("hearing", "2026-09-01")]),
])
async def test_impossible_deadline_inputs_fail_for_good(
        review: ServiceUnderTest, wrong: c.CaseDeadlinesInput) -> None:
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(_activities(review).case_deadlines, wrong)
    assert failed.value.non_retryable
    assert failed.value.type == "InvalidArgument"


async def test_a_task_is_opened_once_and_its_due_time_follows_the_deadlines(
        review: ServiceUnderTest) -> None:
    hosted = _activities(review)
    run = ActivityEnvironment().run
    opening = c.TaskOpening("AP-1", "review", "SCJGJ", "reviewer", "012101000001000", DUE)
    await run(hosted.open_task, opening)
    await run(hosted.open_task, opening)
    later = DUE + timedelta(days=2)
    await run(hosted.open_task, c.TaskOpening("AP-1", "review", "SCJGJ", "reviewer",
                                              "012101000001000", later))
    [task] = _rows(review, tables.tasks)
    assert (task["case_number"], task["stage"], task["department_code"]) == (
        "AP-1", "review", "SCJGJ")
    assert task["due_at"] == later
    assert task["closed_at"] is None
    assert _actions(review) == ["task.opened", "task.due_changed"]


async def test_a_task_is_closed_once_and_takes_the_decider_as_claimant(
        review: ServiceUnderTest) -> None:
    hosted = _activities(review)
    run = ActivityEnvironment().run
    await run(hosted.open_task, c.TaskOpening("AP-2", "review", "SCJGJ", "reviewer",
                                              "012101000001000", DUE))
    closing = c.TaskClosing("AP-2", "review", "SCJGJ-003", "approve")
    await run(hosted.close_task, closing)
    await _activities(review, NOW + timedelta(hours=1)).close_task(closing)
    [task] = _rows(review, tables.tasks)
    assert (task["closed_by"], task["claimed_by"], task["outcome"]) == (
        "SCJGJ-003", "SCJGJ-003", "approve")
    assert task["closed_at"] == NOW
    assert _actions(review) == ["task.opened", "task.closed"]


async def test_a_task_closed_before_it_was_opened_stays_closed(
        review: ServiceUnderTest) -> None:
    hosted = _activities(review)
    run = ActivityEnvironment().run
    await run(hosted.close_task, c.TaskClosing("AP-3", "review", "SCJGJ-001", "withdrawn"))
    await run(hosted.open_task, c.TaskOpening("AP-3", "review", "SCJGJ", "reviewer",
                                              "012101000001000", DUE))
    [task] = _rows(review, tables.tasks)
    assert task["closed_at"] == NOW
    assert task["outcome"] == "withdrawn"


async def test_a_decision_is_recorded_once_with_one_audit_entry(
        review: ServiceUnderTest) -> None:
    hosted = _activities(review)
    run = ActivityEnvironment().run
    record = c.DecisionRecord("AP-4", "sign", "approve", "SCJGJ-007",
                              "department-system-scjgj", NOW, "同意", "《行政许可法》第三十八条",
                              on_behalf_of="SCJGJ-006", delegation_id="12")
    await run(hosted.record_decision, record)
    await run(hosted.record_decision, record)
    extension = c.DecisionRecord("AP-4", "extension", "extend_5", "SCJGJ-006",
                                 "department-system-scjgj", NOW, "需现场核查")
    await run(hosted.record_decision, extension)
    decisions = _rows(review, tables.decisions)
    audit = _rows(review, tables.audit_log)[SAMPLE_AUDIT_ENTRIES:]
    assert [(d["stage"], d["official_id"], d["on_behalf_of"], d["delegation_id"])
            for d in decisions] == [("sign", "SCJGJ-007", "SCJGJ-006", "12"),
                                    ("extension", "SCJGJ-006", "", "")]
    assert decisions[0]["opinion"] == "同意"
    assert [(a["action"], a["official_id"], a["system"]) for a in audit] == [
        ("decision.recorded", "SCJGJ-007", "department-system-scjgj"),
        ("decision.recorded", "SCJGJ-006", "department-system-scjgj")]
    # Ids and codes only: the opinion's free text stays out of the audit log; the
    # decision's row is there only as a digest (kernel.authority).
    details = json.loads(audit[0]["details"])
    [(row, digest)] = details.pop("authority_rows").items()
    assert row == f"decisions/{decisions[0]['id']}"
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert details == {
        "case": "AP-4", "stage": "sign", "outcome": "approve", "on_behalf_of": "SCJGJ-006",
        "delegation": "12"}


async def test_an_escalation_is_opened_once_and_closed_by_the_seal(
        review: ServiceUnderTest) -> None:
    hosted = _activities(review)
    run = ActivityEnvironment().run
    breach = c.EscalationOpening("AP-5", "SCJGJ", "sign", "promised_breach", DUE)
    await run(hosted.open_escalation, breach)
    await run(hosted.open_escalation, breach)
    await run(hosted.open_escalation,
              c.EscalationOpening("AP-5", "SCJGJ", "sign", "legal_breach", DUE))
    open_before = [e["closed_at"] for e in _rows(review, tables.escalations)]
    await run(hosted.close_task, c.TaskClosing("AP-5", "sign", "SCJGJ-006", "approve"))
    still_open = [e["closed_at"] for e in _rows(review, tables.escalations)]
    await run(hosted.close_task, c.TaskClosing("AP-5", "seal", "ZWFWZX-001", "seal"))
    closed = [e["closed_at"] for e in _rows(review, tables.escalations)]
    assert open_before == still_open == [None, None]
    assert closed == [NOW, NOW]
    assert _actions(review) == ["escalation.opened", "escalation.opened", "task.closed",
                                "task.closed", "escalation.closed", "escalation.closed"]


async def test_an_unknown_escalation_kind_fails_for_good(review: ServiceUnderTest) -> None:
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(
            _activities(review).open_escalation,
            c.EscalationOpening("AP-6", "SCJGJ", "sign", "late", DUE))
    assert failed.value.non_retryable
    assert _rows(review, tables.escalations) == []
