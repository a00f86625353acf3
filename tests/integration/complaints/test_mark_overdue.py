"""complaints.mark_overdue marks only the case's own recorded deadline, once it passed.

Anyone who reaches Temporal can run a workflow of their own that calls the activity
(attack8's RogueOverdue escalated a case three times with made-up deadlines): any other
``due`` is kept in the audit log as a violation and changes nothing else.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from temporalio.testing import ActivityEnvironment

from kernel.calendar import WorkingCalendar, YearSchedule
from kernel.errors import Unavailable
from services.complaints.app.deadlines import recompute_case
from services.complaints.db import tables
from services.complaints.db.repository import ComplaintsUnitOfWork
from tests.integration.complaints.test_handling_activities import Bench, bench  # noqa: F401
from workflows.complaint_contract import Escalated, Overdue


def _audit(bench: Bench, number: str) -> list[Any]:  # noqa: F811
    with bench.service.running.engine.connect() as connection:
        return [row.action for row in connection.execute(sa.select(tables.audit_log).where(
            tables.audit_log.c.subject == f"complaint/{number}"))]


async def _mark(bench: Bench, number: str, what: str, due: Any) -> Escalated:  # noqa: F811
    result: Escalated = await ActivityEnvironment().run(
        bench.activities.mark_overdue, Overdue(number, what, due))
    return result


async def test_a_made_up_deadline_is_a_violation_and_changes_nothing(
        bench: Bench) -> None:  # noqa: F811
    number = await bench.submit("OD-1")
    due = bench.case(number).sign_for_due
    assert due is not None
    bench.clock[0] = due + timedelta(days=400)
    forged = [await _mark(bench, number, "sign_for", due + timedelta(minutes=i))
              for i in (1, 2, 3)]
    # The reply deadline of a case not signed for yet: there is none.
    no_reply_due = await _mark(bench, number, "reply", due)
    case = bench.case(number)
    actions = _audit(bench, number)
    assert [e.escalations for e in forged] == [0, 0, 0] and no_reply_due.escalations == 0
    assert case.escalations == 0 and case.sla_state != "overdue"
    assert actions.count("violation.refused_overdue") == 4
    assert "escalation.opened" not in actions
    assert "complaint.escalated" not in [
        row.code for row in bench.rows(tables.complaint_events, number)]


async def test_the_recorded_deadline_before_it_passed_is_refused(
        bench: Bench) -> None:  # noqa: F811
    number = await bench.submit("OD-2")
    due = bench.case(number).sign_for_due
    assert due is not None
    # Far ahead: not the case's workflow asking.
    bench.clock[0] = due - timedelta(days=1)
    ahead = await _mark(bench, number, "sign_for", due)
    # A moment ahead (the service's clock behind Temporal's): retried, nothing recorded.
    bench.clock[0] = due - timedelta(seconds=2)
    with pytest.raises(Unavailable):
        await _mark(bench, number, "sign_for", due)
    before = bench.case(number)
    # Once it passed: marked, once.
    bench.clock[0] = due + timedelta(seconds=1)
    marked = await _mark(bench, number, "sign_for", due)
    actions = _audit(bench, number)
    assert ahead.escalations == 0 and before.escalations == 0
    assert marked.escalations == 1 and bench.case(number).sla_state == "overdue"
    assert actions.count("violation.refused_overdue") == 1
    assert actions.count("escalation.opened") == 1


async def test_an_old_timer_of_a_recomputed_deadline_records_nothing_until_the_new_one_passed(
        bench: Bench) -> None:  # noqa: F811
    """The recompute vs the old timer: received Wednesday 16 December 2026, the reply due
    guessed 6 January 2027 (1 January taken as working); 2027 loaded with 1 January off
    moves it to the 7th. The workflow's timer on the 6th fires before it reads the new
    due: no violation, no escalation; the new due, once passed, is marked once."""
    number = await bench.submit("OD-3", received_at=datetime(2026, 12, 16, 2, 0, tzinfo=UTC))
    old = bench.case(number).reply_due
    assert old == datetime(2027, 1, 6, 9, 30, tzinfo=UTC)
    known = WorkingCalendar.with_schedules([YearSchedule(
        2027, frozenset({date(2027, 1, 1)}), frozenset())])
    engine = bench.service.running.engine
    assert recompute_case(uow=lambda: ComplaintsUnitOfWork(engine), case_number=number,
                          calendar=known, known={2027}, now=old - timedelta(hours=1))
    new = bench.case(number).reply_due
    assert new == datetime(2027, 1, 7, 9, 30, tzinfo=UTC)
    bench.clock[0] = old + timedelta(seconds=5)
    stale = await _mark(bench, number, "reply", old)
    assert stale.escalations == 0 and bench.case(number).escalations == 0
    # Both passed (the workflow never told): the recomputed due is the one marked.
    bench.clock[0] = new + timedelta(seconds=5)
    late = await _mark(bench, number, "reply", old)
    again = await _mark(bench, number, "reply", new)
    actions = _audit(bench, number)
    assert "violation.refused_overdue" not in actions
    assert (late.escalations, again.escalations) == (1, 1)
    assert actions.count("escalation.opened") == 1
    escalated = [row.details for row in bench.rows(tables.complaint_events, number)
                 if row.code == "complaint.escalated"]
    assert len(escalated) == 1 and new.isoformat() in escalated[0]
    # A made-up due is still a violation.
    await _mark(bench, number, "reply", new - timedelta(minutes=3))
    assert _audit(bench, number).count("violation.refused_overdue") == 1
