"""Deadline marks of a real case, by time skipping, with the review service's own activities.

The review database holds a loaded holiday schedule with a holiday on the
second and third weekdays ahead and the Saturday after them worked instead
(the first weekday stays a working day, so the promised limit is at least
two days whatever weekday the test runs on); the workflow
must turn yellow and red at the ends of the right working days, and review
must keep each change on the case's timeline and open one escalation for
the supervision desk. The intake side is the workflow tests' stand-in.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.chinatime import china_date
from kernel.db import make_engine
from kernel.service import prepare
from services.review.app import handlers
from services.review.db import tables
from services.review.db.repository import ReviewUnitOfWork
from services.review.main import DEFINITION as REVIEW
from tests.day_setups import approval_deadline_days
from tests.support import fresh_database_url, sample_caller
from tests.unit.workflows.fakes import Center, Signers, end_of_china_day
from workflows import approval_contract as c
from workflows.approval import ApprovalWorkflow

T = TypeVar("T")

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


async def _until(probe: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    """Probe (in a thread: it reads the database) until done, for at most ten seconds."""
    for _ in range(200):
        found = await asyncio.to_thread(probe)
        if done(found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}; last {found!r}")


async def test_yellow_and_red_fall_at_the_end_of_the_right_working_days(
        time_skipping: WorkflowEnvironment, backend: str, tmp_path: Path,
        pki_dir: Path) -> None:
    env = time_skipping
    signers = Signers(pki_dir)  # before review loads the keys it trusts
    today = china_date(await env.get_current_time())
    # Chosen from today so the property holds whatever day the test runs
    # (tests/unit/test_day_setups.py checks them on every day of a span).
    days = approval_deadline_days(today)
    holidays, saturday, promised, expected = (
        set(days.holidays), days.saturday, days.promised, list(days.expected))

    settings = REVIEW.settings_type(port=0, pki_dir=pki_dir, run_activity_worker=False,
                                    database_url=fresh_database_url(backend, "review", tmp_path))
    prepare(REVIEW, settings)
    engine = make_engine(settings.resolved_database_url())
    for year, (year_holidays, year_makeup) in days.by_year().items():
        handlers.load_holiday_schedule(uow=ReviewUnitOfWork(engine), caller=OPERATOR,
                                       year=year, holidays=year_holidays,
                                       makeup_workdays=year_makeup, now=datetime.now(UTC))
    # The promised limit is chosen so that its last day is the make-up Saturday.
    assert expected == _working_days_after(today, promised, holidays, {saturday})

    case_number = f"AP-{uuid.uuid4().hex[:8]}"
    acceptance = signers.acceptance(case_number, accepted_at=await env.get_current_time(),
                                    promised=promised, legal=20, accepted_on=today)
    prefix = f"t{uuid.uuid4().hex[:10]}-"

    def rows(table: Any) -> list[Any]:
        with engine.connect() as connection:
            return list(connection.execute(
                select(table).where(table.c.case_number == case_number)))

    def kinds() -> list[str]:
        return [e.kind for e in sorted(rows(tables.case_events), key=lambda e: e.sequence)]

    async with (
        Worker(env.client, task_queue=f"{prefix}workflows", workflows=[ApprovalWorkflow]),
        Worker(env.client, task_queue=f"{prefix}review",
               activities=list(REVIEW.activities(engine, settings))),
        Worker(env.client, task_queue=f"{prefix}intake",
               activities=Center(signers=signers).of("intake")),
    ):
        handle = await env.client.start_workflow(
            ApprovalWorkflow.run, c.ApprovalInput(acceptance), id=c.workflow_id(case_number),
            task_queue=f"{prefix}workflows")

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
        yellow_kinds = await _until(kinds, lambda k: "sla.warning" in k, "yellow recorded")
        before_red = await at(deadlines.promised_due_at - timedelta(minutes=1))
        red = await at(deadlines.promised_due_at + timedelta(minutes=1))
        red_kinds = await _until(kinds, lambda k: "escalated" in k, "escalation recorded")
        # A day later the case is still red, and still escalated once.
        await at(deadlines.promised_due_at + timedelta(days=1))
        later = await status()
        await handle.terminate("test over")
    escalations = rows(tables.escalations)
    [progress] = rows(tables.case_progress)
    final_kinds = kinds()
    with engine.connect() as connection:
        opened = [r for r in connection.execute(select(tables.audit_log))
                  if r.action == "escalation.opened"]
    engine.dispose()

    assert deadlines.unknown_year == 0
    assert promised >= 2
    assert deadlines.promised_due_at == end_of_china_day(saturday)
    assert deadlines.warning_at == end_of_china_day(expected[-2])
    assert not holidays & set(expected)
    assert (before_yellow.sla_state, yellow.sla_state) == (c.SlaState.ON_TIME, c.SlaState.WARNING)
    assert (before_red.sla_state, red.sla_state) == (c.SlaState.WARNING, c.SlaState.BREACHED)
    assert later.sla_state == c.SlaState.BREACHED
    assert "sla.breached" not in yellow_kinds
    assert red_kinds[:2] == ["chain.started", "deadlines.computed"]
    assert [k for k in final_kinds if k.startswith("sla.") or k == "escalated"] == [
        "sla.warning", "escalated", "sla.breached"]
    assert [(e.kind, e.stage, e.department_code, e.due_at, e.closed_at)
            for e in escalations] == [
        ("promised_breach", "review", "SCJGJ", deadlines.promised_due_at, None)]
    assert (progress.sla_state, progress.stage) == ("breached", "review")
    assert len(opened) == 1
