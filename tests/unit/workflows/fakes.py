"""In-memory stand-ins for the activities ApprovalWorkflow calls, by name.

Unit tests of the workflow's rules only: the real activities are tested in
the services' integration tests and end to end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from temporalio import activity

from kernel.calendar import UnknownYearError, WorkingCalendar, YearSchedule
from workflows import approval_contract as c

CHINA = timedelta(hours=8)


def end_of_china_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC) - CHINA


@dataclass
class Center:
    """What the fake services saw, for the tests to assert on."""

    schedules: list[YearSchedule] = field(default_factory=list)
    decisions: list[c.DecisionRecord] = field(default_factory=list)
    events: list[c.CaseEvent] = field(default_factory=list)
    notices: list[c.ApplicantNotice] = field(default_factory=list)
    open_tasks: dict[tuple[str, str], c.TaskOpening] = field(default_factory=dict)
    closed_tasks: list[c.TaskClosing] = field(default_factory=list)
    escalations: list[c.EscalationOpening] = field(default_factory=list)
    seals: dict[str, c.SealRequest] = field(default_factory=dict)
    #: Seconds from now to the warning, promised and legal deadlines, instead of working
    #: days: lets a test on a real-time server see the deadlines pass.
    fast_deadlines: tuple[float, float, float] | None = None
    deadline_requests: list[c.CaseDeadlinesInput] = field(default_factory=list)

    def event_kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def activities(self) -> dict[str, Callable[..., Any]]:
        center = self

        @activity.defn(name=c.CASE_DEADLINES)
        async def case_deadlines(request: c.CaseDeadlinesInput) -> c.Deadlines:
            center.deadline_requests.append(request)
            if center.fast_deadlines is not None:
                now = datetime.now(UTC)
                warning_s, promised_s, legal_s = center.fast_deadlines
                return c.Deadlines(now + timedelta(seconds=warning_s),
                                   now + timedelta(seconds=promised_s),
                                   now + timedelta(seconds=legal_s))
            calendar = WorkingCalendar.with_schedules(center.schedules)
            accepted = date.fromisoformat(request.accepted_on)
            paused = 0
            for span in request.paused:
                end = date.fromisoformat(span.end_on) if span.end_on else None
                if end is not None:
                    paused += calendar.working_days_between(date.fromisoformat(span.start_on),
                                                            end)
            unknown = 0
            try:
                promised = calendar.add_working_days(
                    accepted, request.promised_limit_days + paused)
                warning = calendar.add_working_days(
                    accepted, request.promised_limit_days + paused - 1)
                legal = calendar.add_working_days(
                    accepted, request.legal_limit_days + request.extension_days + paused)
            except UnknownYearError as error:
                unknown = error.year
                weekdays = WorkingCalendar.with_schedules(
                    [YearSchedule(error.year, frozenset(), frozenset())])
                promised = weekdays.add_working_days(accepted,
                                                     request.promised_limit_days + paused)
                warning = promised - timedelta(days=1)
                legal = weekdays.add_working_days(
                    accepted, request.legal_limit_days + request.extension_days + paused)
            # Stage limits one day apart, so a test can tell which one a task got.
            stage_due = {stage: end_of_china_day(promised) - timedelta(days=back)
                         for stage, back in (("review", 2), ("sign", 1), ("seal", 0))}
            return c.Deadlines(end_of_china_day(warning), end_of_china_day(promised),
                               end_of_china_day(legal), unknown, stage_due)

        @activity.defn(name=c.OPEN_TASK)
        async def open_task(task: c.TaskOpening) -> None:
            center.open_tasks[(task.case_number, task.stage)] = task

        @activity.defn(name=c.CLOSE_TASK)
        async def close_task(task: c.TaskClosing) -> None:
            center.open_tasks.pop((task.case_number, task.stage), None)
            center.closed_tasks.append(task)

        @activity.defn(name=c.RECORD_DECISION)
        async def record_decision(record: c.DecisionRecord) -> None:
            center.decisions.append(record)

        @activity.defn(name=c.OPEN_ESCALATION)
        async def open_escalation(escalation: c.EscalationOpening) -> None:
            center.escalations.append(escalation)

        @activity.defn(name=c.RECORD_CASE_EVENT)
        async def record_case_event(event: c.CaseEvent) -> None:
            center.events.append(event)

        @activity.defn(name=c.NOTIFY_APPLICANT)
        async def notify_applicant(notice: c.ApplicantNotice) -> None:
            center.notices.append(notice)

        @activity.defn(name=c.SEAL_DECISION)
        async def seal_decision(request: c.SealRequest) -> c.SealReceipt:
            center.seals[request.case_number] = request
            return c.SealReceipt(f"SY-2026-{len(center.seals):06d}", "k1", "0" * 64)

        return {c.CASE_DEADLINES: case_deadlines, c.OPEN_TASK: open_task,
                c.CLOSE_TASK: close_task, c.RECORD_DECISION: record_decision,
                c.OPEN_ESCALATION: open_escalation, c.RECORD_CASE_EVENT: record_case_event,
                c.NOTIFY_APPLICANT: notify_applicant, c.SEAL_DECISION: seal_decision}

    @property
    def review_activities(self) -> list[Callable[..., Any]]:
        return [a for name, a in self.activities().items() if name.startswith("review.")]

    @property
    def intake_activities(self) -> list[Callable[..., Any]]:
        return [a for name, a in self.activities().items() if name.startswith("intake.")]
