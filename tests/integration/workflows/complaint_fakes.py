"""Stand-ins for the complaints service's activities, under their real names, for
ComplaintWorkflow's tests and its recorded history.

The real activities (the service's database, policy and webhooks) are
tested in the complaints service's own tests; these record what the
workflow asked and answer as the service would, with deadlines computed
from a real working calendar (holidays and make-up days loaded), working
hours 09:00–12:00 and 13:30–17:30 in China. ``ComplaintSigners`` signs
statements as the complaints service does, with a key the workflow's
validators are told to trust.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity

from kernel.calendar import WorkingCalendar, YearSchedule
from kernel.chinatime import CHINA, china_date
from kernel.signing import (
    ServiceSigner,
    TrustedKeys,
    public_keys_dir,
    service_signer,
    trust_in_workflows,
)
from workflows import complaint_contract as c

K = c.StatementKind
WORKING_PERIODS = ((time(9), time(12)), (time(13, 30), time(17, 30)))
SIGN_FOR_HOURS = 4
REPLY_DAYS = {"consultation": 2, "request": 10, "complaint": 15}
RATING_DAYS = 5
REOPEN_DAYS = 15


def add_working_hours(calendar: WorkingCalendar, start: datetime, hours: float) -> datetime:
    """``hours`` of working time after ``start``, counted in the working periods only."""
    remaining = timedelta(hours=hours)
    moment = start.astimezone(CHINA)
    day = moment.date()
    while True:
        if calendar.is_working_day(day):
            for opens, closes in WORKING_PERIODS:
                begin = max(datetime.combine(day, opens, CHINA), moment)
                end = datetime.combine(day, closes, CHINA)
                if begin >= end:
                    continue
                if end - begin >= remaining:
                    return (begin + remaining).astimezone(UTC)
                remaining -= end - begin
        day += timedelta(days=1)
        moment = datetime.combine(day, time(0), CHINA)


def end_of_working_day(day: date) -> datetime:
    return datetime.combine(day, WORKING_PERIODS[-1][1], CHINA).astimezone(UTC)


@dataclass(frozen=True)
class Person:
    official_id: str
    department_code: str
    roles: tuple[str, ...]
    system: str = "dept-system"


HANDLER = Person("SJJ-010", "SJJ", (c.HANDLER_ROLE,))
OTHER_HANDLER = Person("FGW-010", "FGW", (c.HANDLER_ROLE,))
CO_HANDLER = Person("ZJJ-010", "ZJJ", (c.HANDLER_ROLE,))
DISPATCHER = Person("ZWFWZX-020", "ZWFWZX", (c.DISPATCHER_ROLE,))
PLATFORM_ID = "portal-1"
PLATFORM = Person(PLATFORM_ID, "", (), "provincial-portal")


class ComplaintSigners:
    """The complaints service's signing key for a test, trusted by the workflow's validators."""

    def __init__(self, pki_dir: Path) -> None:
        self.pki_dir = pki_dir
        self.complaints: ServiceSigner = service_signer(pki_dir, "complaints")
        self.keys = TrustedKeys.load(public_keys_dir(pki_dir))
        trust_in_workflows(self.keys)

    def received(self, case_number: str, *, at: datetime, kind: str = "complaint",
                 deadline_class: str = "complaint", urgent: bool = False,
                 signer: ServiceSigner | None = None) -> c.SignedStatement:
        return c.as_statement((signer or self.complaints).sign(c.complaint_statement_body(
            kind=K.RECEIVED, case_number=case_number, official_id=PLATFORM_ID,
            department_code="SJJ", roles=[], system="provincial-portal", issued_at=at,
            platform_id=PLATFORM_ID, complaint_kind=kind, urgent=urgent,
            category_code="SC-01", deadline_class=deadline_class,
            received_at=c.iso_instant(at))))

    def act(self, kind: c.StatementKind, case_number: str, who: Person, *,
            texts: dict[str, str] | None = None, signer: ServiceSigner | None = None,
            **facts: Any) -> c.Act:
        texts = dict(texts or {})
        if who == PLATFORM:
            facts["platform_id"] = PLATFORM_ID
        digest = c.content_digest(**texts) if texts else ""
        statement = c.as_statement((signer or self.complaints).sign(c.complaint_statement_body(
            kind=kind, case_number=case_number, official_id=who.official_id,
            department_code=who.department_code, roles=list(who.roles), system=who.system,
            issued_at=datetime.now(UTC), content_sha256=digest, **facts)))
        return c.Act(statement, texts)


def _activity_name(function: Callable[..., Any]) -> str:
    definition = activity._Definition.from_callable(function)
    assert definition is not None and definition.name is not None
    return definition.name


@dataclass
class CaseRecord:
    stage: str
    department_code: str
    platform_id: str
    sign_for_due: datetime | None
    reply_due: datetime | None
    rating_closes: datetime | None = None
    reopened: bool = False
    duplicates: list[str] = field(default_factory=list)
    escalations: int = 0


@dataclass
class FakeComplaints:
    """The complaints service as the workflow sees it; what it was asked, kept for asserts."""

    keys: TrustedKeys
    holidays: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()
    cases: dict[str, CaseRecord] = field(default_factory=dict)
    opened: list[str] = field(default_factory=list)
    acts: list[tuple[str, str]] = field(default_factory=list)
    texts: list[dict[str, str]] = field(default_factory=list)
    overdue: list[c.Overdue] = field(default_factory=list)
    closings: list[c.Closing] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    #: Every delivery attempt, by event id; and the events delivered (a 2xx).
    attempts: dict[str, int] = field(default_factory=dict)
    delivered: list[str] = field(default_factory=list)
    #: How many times the delivery of each event fails before the platform takes it.
    failures_before_success: int = 0
    #: When set, the link check fails (it must never stop the case).
    link_check_fails: bool = False
    events: int = 0
    #: The cases whose dues the workflow read (READ_DUES), in order.
    dues_read: list[str] = field(default_factory=list)

    def calendar(self) -> WorkingCalendar:
        years = {datetime.now(UTC).year + n for n in range(-1, 3)}
        return WorkingCalendar.with_schedules(
            YearSchedule(year, frozenset(d for d in self.holidays if d.year == year),
                         frozenset(d for d in self.makeup_workdays if d.year == year))
            for year in years)

    def working_days(self, start: datetime, days: int) -> datetime:
        return end_of_working_day(self.calendar().add_working_days(china_date(start), days))

    def sign_for_due(self, start: datetime) -> datetime:
        return add_working_hours(self.calendar(), start, SIGN_FOR_HOURS)

    def _event(self, case_number: str, what: str) -> str:
        self.events += 1
        return f"msg_{case_number}_{what}_{self.events}"

    def _recorded(self, case_number: str, events: list[str],
                  closed: list[str] | None = None) -> c.ActRecorded:
        case = self.cases[case_number]
        return c.ActRecorded(case.stage, case.department_code,
                             case.sign_for_due if case.stage == c.Stage.ROUTED else None,
                             case.reply_due if case.stage in (
                                 c.Stage.ROUTED, c.Stage.HANDLING, c.Stage.RETURNED) else None,
                             case.rating_closes if case.stage == c.Stage.REPLIED else None,
                             events, closed or [])

    def activities(self) -> list[Callable[..., Any]]:
        fake = self

        @activity.defn(name=c.OPEN_CASE)
        async def open_case(request: c.OpenCase) -> c.CaseClock:
            facts = c.verified_complaint_facts(fake.keys, request.statement, K.RECEIVED)
            received = datetime.fromisoformat(facts.received_at)
            number = facts.case_number
            if number not in fake.cases:
                fake.opened.append(number)
                fake.cases[number] = CaseRecord(
                    c.Stage.ROUTED, facts.department_code, facts.platform_id,
                    fake.sign_for_due(received),
                    fake.working_days(received, REPLY_DAYS[facts.deadline_class]))
            case = fake.cases[number]
            assert case.sign_for_due is not None and case.reply_due is not None
            return c.CaseClock(case.sign_for_due, case.reply_due, 1,
                               [fake._event(number, "routed")])

        @activity.defn(name=c.RECORD_ACT)
        async def record_act(record: c.ActRecord) -> c.ActRecorded:
            kind = K(record.statement.body["kind"])
            facts = c.verified_complaint_facts(fake.keys, record.statement, kind)
            assert c.texts_match(kind, facts.content_sha256, record.texts)
            number = facts.case_number
            case = fake.cases[number]
            # The server's time (skipped in tests), when the act was scheduled.
            now = activity.info().current_attempt_scheduled_time
            fake.acts.append((number, kind))
            fake.texts.append(dict(record.texts))
            before = case.stage
            closed: list[str] = []
            events: list[str] = []
            if kind == K.SIGN_FOR:
                case.stage = c.Stage.HANDLING
            elif kind == K.RETURN:
                case.stage = c.Stage.RETURNED
            elif kind == K.DISPATCH:
                case.stage = c.Stage.ROUTED
                if facts.outcome == c.DispatchOutcome.REASSIGN:
                    case.department_code = facts.target_department
                case.sign_for_due = fake.sign_for_due(now)
            elif kind == K.EXTENSION_DECISION and facts.outcome == c.ExtensionOutcome.GRANTED:
                assert case.reply_due is not None
                case.reply_due = fake.working_days(case.reply_due, facts.days)
            elif kind == K.MERGE:
                case.stage = c.Stage.MERGED
                fake.cases[facts.primary_case_number].duplicates.append(number)
            elif kind == K.REPLY:
                case.stage = c.Stage.REPLIED
                case.rating_closes = fake.working_days(now, RATING_DAYS)
                for duplicate in case.duplicates:
                    events.append(fake._event(duplicate, "replied"))
                    closed.append(duplicate)
                events.append(fake._event(number, "replied"))
            elif kind == K.RATING:
                if facts.level <= c.UNSATISFIED_AT and not case.reopened:
                    case.reopened = True
                    case.stage = c.Stage.HANDLING
                    case.reply_due = fake.working_days(now, REOPEN_DAYS)
                else:
                    case.stage = c.Stage.CLOSED
            if case.stage != before:
                events.insert(0, fake._event(number, str(case.stage)))
            return fake._recorded(number, events, closed)

        @activity.defn(name=c.MARK_OVERDUE)
        async def mark_overdue(overdue: c.Overdue) -> c.Escalated:
            fake.overdue.append(overdue)
            case = fake.cases[overdue.case_number]
            case.escalations += 1
            return c.Escalated(case.escalations, [])

        @activity.defn(name=c.CLOSE_CASE)
        async def close_case(closing: c.Closing) -> c.ActRecorded:
            fake.closings.append(closing)
            fake.cases[closing.case_number].stage = c.Stage.CLOSED
            return fake._recorded(closing.case_number,
                                  [fake._event(closing.case_number, "closed")])

        @activity.defn(name=c.DELIVER_PLATFORM_EVENT)
        async def deliver(delivery: c.PlatformDelivery) -> c.DeliveryResult:
            attempt = fake.attempts.get(delivery.event_id, 0) + 1
            fake.attempts[delivery.event_id] = attempt
            if attempt <= fake.failures_before_success:
                raise RuntimeError(f"the platform answered 503 (attempt {attempt})")
            if delivery.event_id not in fake.delivered:
                fake.delivered.append(delivery.event_id)
            return c.DeliveryResult(True, 204)

        @activity.defn(name=c.CHECK_LINK)
        async def check_link(check: c.LinkCheck) -> c.LinkChecked:
            fake.links.append(check.case_number)
            if fake.link_check_fails:
                raise RuntimeError("intake cannot be reached")
            return c.LinkChecked("", False)

        @activity.defn(name=c.READ_DUES)
        async def read_dues(request: c.DuesRequest) -> c.ActRecorded:
            fake.dues_read.append(request.case_number)
            return fake._recorded(request.case_number, [])

        return [open_case, record_act, mark_overdue, close_case, deliver, check_link,
                read_dues]

    def names(self) -> list[str]:
        return [_activity_name(a) for a in self.activities()]

    def overdue_kinds(self, case_number: str) -> list[str]:
        return [o.what for o in self.overdue if o.case_number == case_number]
