"""Deadline marks of a real case, by time skipping, with the review service's own activities.

The review database holds a loaded holiday schedule with a holiday on the
next two weekdays and the Saturday after them worked instead; the workflow
must turn yellow and red at the ends of the right working days and open an
escalation for the supervision desk.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.db import make_engine
from kernel.service import prepare
from services.review.app import handlers
from services.review.db.repository import ReviewUnitOfWork
from services.review.main import DEFINITION as REVIEW
from tests.support import sample_caller
from tests.unit.workflows.fakes import CHINA, Center, end_of_china_day
from workflows import approval_contract as c
from workflows.approval import ApprovalWorkflow

OPERATOR = sample_caller("operator", "ZWFWZX-004")


def _working_days_after(start: date, count: int, holidays: set[date],
                        makeup: set[date]) -> list[date]:
    days: list[date] = []
    current = start
    while len(days) < count:
        current += timedelta(days=1)
        if current in makeup or (current.weekday() < 5 and current not in holidays):
            days.append(current)
    return days


async def test_yellow_and_red_fall_at_the_end_of_the_right_working_days(
        time_skipping: WorkflowEnvironment, tmp_path: Path, pki_dir: Path) -> None:
    env = time_skipping
    today = (await env.get_current_time() + CHINA).date()
    weekdays = [today + timedelta(n) for n in range(1, 15)
                if (today + timedelta(n)).weekday() < 5]
    holidays = {weekdays[0], weekdays[1]}
    saturday = next(weekdays[1] + timedelta(n) for n in range(1, 8)
                    if (weekdays[1] + timedelta(n)).weekday() == 5)
    by_year: dict[int, tuple[list[date], list[date]]] = defaultdict(lambda: ([], []))
    for day in holidays:
        by_year[day.year][0].append(day)
    by_year[saturday.year][1].append(saturday)
    by_year[today.year]  # the acceptance year is loaded too, so no year is unknown

    settings = REVIEW.settings_type(port=0, database_url=f"sqlite:///{tmp_path / 'r.db'}",
                                    pki_dir=pki_dir, run_activity_worker=False)
    prepare(REVIEW, settings)
    engine = make_engine(settings.resolved_database_url())
    for year, (year_holidays, year_makeup) in by_year.items():
        handlers.load_holiday_schedule(uow=ReviewUnitOfWork(engine), caller=OPERATOR,
                                       year=year, holidays=year_holidays,
                                       makeup_workdays=year_makeup, now=datetime.now(UTC))
    # The promised limit is chosen so that its last day is the make-up Saturday.
    promised = next(n for n in range(1, 15)
                    if _working_days_after(today, n, holidays, {saturday})[-1] == saturday)
    expected = _working_days_after(today, promised, holidays, {saturday})

    center = Center()
    case_number = f"AP-{uuid.uuid4().hex[:8]}"
    case = c.ApprovalInput(
        case_number=case_number, item_code="012101000001000", item_version=1,
        item_name="食品经营许可", department_code="SCJGJ", accepted_on=today.isoformat(),
        accepted_at=await env.get_current_time(), clerk_id="SCJGJ-001",
        promised_limit_days=promised, legal_limit_days=20)
    queue = f"workflows-{uuid.uuid4()}"
    async with (
        Worker(env.client, task_queue=queue, workflows=[ApprovalWorkflow]),
        Worker(env.client, task_queue=c.REVIEW_QUEUE,
               activities=list(REVIEW.activities(engine, settings))),
        Worker(env.client, task_queue=c.INTAKE_QUEUE, activities=center.intake_activities),
    ):
        handle = await env.client.start_workflow(
            ApprovalWorkflow.run, case, id=c.workflow_id(case_number), task_queue=queue)

        async def status() -> c.ApprovalStatus:
            result: c.ApprovalStatus = await handle.query(c.STATUS, result_type=c.ApprovalStatus)
            return result

        for _ in range(200):
            if (first := await status()).deadlines is not None:
                break
            await asyncio.sleep(0.05)
        assert first.deadlines is not None
        deadlines = first.deadlines

        async def at(moment: datetime) -> c.ApprovalStatus:
            await env.sleep(moment - await env.get_current_time())
            return await status()

        before_yellow = await at(deadlines.warning_at - timedelta(minutes=1))
        yellow = await at(deadlines.warning_at + timedelta(minutes=1))
        before_red = await at(deadlines.promised_due_at - timedelta(minutes=1))
        red = await at(deadlines.promised_due_at + timedelta(minutes=1))
        for _ in range(100):
            if "escalated" in center.event_kinds():
                break
            await asyncio.sleep(0.05)
        await handle.terminate("test over")
    with engine.connect() as connection:
        escalations = connection.execute(text(
            "SELECT case_number, kind FROM escalations")).all()
    engine.dispose()

    assert deadlines.unknown_year == 0
    assert promised >= 2
    assert deadlines.promised_due_at == end_of_china_day(saturday)
    assert deadlines.warning_at == end_of_china_day(expected[-2])
    assert not holidays & set(expected)
    assert (before_yellow.sla_state, yellow.sla_state) == (c.SlaState.ON_TIME, c.SlaState.WARNING)
    assert (before_red.sla_state, red.sla_state) == (c.SlaState.WARNING, c.SlaState.BREACHED)
    assert [tuple(row) for row in escalations] == [(case_number, "promised_breach")]
