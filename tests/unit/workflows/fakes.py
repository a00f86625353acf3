"""The one set of stand-ins for the activities the approval workflow calls, by name.

For tests of the workflow's rules and clock only: the real activities are
tested in the services' integration tests and end to end. ``Center`` keeps
what the fake services saw; ``Signers`` makes statements the way intake and
review sign them, with keys the workflow's validators are told to trust.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from kernel.calendar import UnknownYearError, WorkingCalendar, YearSchedule
from kernel.chinatime import CHINA, china_date
from kernel.signing import (
    ServiceSigner,
    TrustedKeys,
    public_keys_dir,
    service_signer,
    trust_in_workflows,
)
from workflows import approval_contract as c


def end_of_china_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=CHINA).astimezone(UTC)


@dataclass(frozen=True)
class Official:
    official_id: str
    department_code: str
    roles: tuple[str, ...]
    system: str = "test-system"
    on_behalf_of: str = ""
    delegation_id: str = ""


CLERK = Official("SCJGJ-001", "SCJGJ", ("window_clerk",))
REVIEWER = Official("SCJGJ-003", "SCJGJ", ("reviewer",))
OTHER_REVIEWER = Official("SCJGJ-004", "SCJGJ", ("reviewer",))
LEADER = Official("SCJGJ-006", "SCJGJ", ("leader",))
DEPUTY = Official("SCJGJ-007", "SCJGJ", ("leader",), on_behalf_of="SCJGJ-006",
                  delegation_id="1")
FOREIGN_REVIEWER = Official("FGW-003", "FGW", ("reviewer",))
SEALER = Official("ZWFWZX-001", "ZWFWZX", ("seal_custodian",))


class Signers:
    """Intake's and review's signing keys for a test, trusted by the workflow's validators."""

    def __init__(self, pki_dir: Path) -> None:
        self.intake: ServiceSigner = service_signer(pki_dir, "intake")
        self.review: ServiceSigner = service_signer(pki_dir, "review")
        self.keys = TrustedKeys.load(public_keys_dir(pki_dir))
        trust_in_workflows(self.keys)

    def acceptance(self, case_number: str, *, accepted_at: datetime, promised: int = 5,
                   legal: int = 20, procedures: list[str] | None = None,
                   accepted_on: date | None = None) -> c.SignedStatement:
        return c.as_statement(self.intake.sign(c.statement_body(
            kind=c.StatementKind.ACCEPTANCE, case_number=case_number,
            official_id=CLERK.official_id, department_code="SCJGJ", roles=["window_clerk"],
            system="hall-window-system", issued_at=accepted_at, item_code="012101000001000",
            item_version=1, item_name="食品经营许可",
            accepted_on=(accepted_on or china_date(accepted_at)).isoformat(),
            promised_limit_days=promised, legal_limit_days=legal,
            special_procedures=procedures if procedures is not None else ["expert_review"])))

    def statement(self, kind: c.StatementKind, case_number: str, who: Official, *,
                  signer: ServiceSigner | None = None, at: datetime | None = None,
                  **facts: Any) -> c.SignedStatement:
        chosen = signer or (self.intake if c.STATEMENT_SIGNER[kind] == "intake"
                            else self.review)
        return c.as_statement(chosen.sign(c.statement_body(
            kind=kind, case_number=case_number, official_id=who.official_id,
            department_code=who.department_code, roles=list(who.roles), system=who.system,
            issued_at=at or datetime.now(UTC), on_behalf_of=who.on_behalf_of,
            delegation_id=who.delegation_id, **facts)))

    def decision(self, case_number: str, who: Official, stage: str, outcome: str, *,
                 opinion: str = "意见", legal_basis: str = "依据",
                 signer: ServiceSigner | None = None) -> c.Decision:
        statement = self.statement(
            c.StatementKind.DECISION, case_number, who, signer=signer, stage=stage,
            outcome=outcome,
            content_sha256=c.content_digest(opinion=opinion, legal_basis=legal_basis))
        return c.Decision(statement, opinion, legal_basis)

    def clock(self, kind: c.StatementKind, case_number: str, who: Official, *,
              procedure: str = "", days: int = 0, reason: str = "",
              at: datetime | None = None) -> c.ClockChange:
        digest = c.content_digest(reason=reason) if kind == c.StatementKind.EXTENSION else ""
        return c.ClockChange(self.statement(kind, case_number, who, at=at, procedure=procedure,
                                            days=days, content_sha256=digest), reason)

    def sealed(self, case_number: str, certificate_number: str, outcome: str,
               document_sha256: str = "0" * 64) -> c.SignedStatement:
        """Intake's signed word that it sealed the case, as its seal activity gives it."""
        return c.as_statement(self.intake.sign(c.statement_body(
            kind=c.StatementKind.SEALED, case_number=case_number,
            official_id=SEALER.official_id, department_code="ZWFWZX",
            roles=["seal_custodian"], system="govhall-intake", issued_at=datetime.now(UTC),
            certificate_number=certificate_number, outcome=outcome,
            content_sha256=document_sha256)))

    def withdrawal(self, case_number: str, who: Official = CLERK) -> c.Withdrawal:
        return c.Withdrawal(self.statement(c.StatementKind.WITHDRAWAL, case_number, who))


def _activity_name(function: Callable[..., Any]) -> str:
    definition = activity._Definition.from_callable(function)
    assert definition is not None and definition.name is not None
    return definition.name


@dataclass
class Center:
    """What the fake services saw, for the tests to assert on."""

    schedules: list[YearSchedule] = field(default_factory=list)
    opened: list[c.DeadlinesRequest] = field(default_factory=list)
    transitions: list[c.Transition] = field(default_factory=list)
    closings: list[c.CaseClosing] = field(default_factory=list)
    marks: list[c.SlaMark] = field(default_factory=list)
    recomputes: list[c.DeadlinesRequest] = field(default_factory=list)
    notices: list[c.ApplicantNotice] = field(default_factory=list)
    seals: dict[str, c.SealRequest] = field(default_factory=dict)
    withdrawals: list[c.WithdrawalRecord] = field(default_factory=list)
    #: Who signs the seal receipts (intake's key); without it the fake seal signs nothing
    #: and the workflow refuses its receipt.
    signers: Signers | None = None
    #: When set, the first recomputation waits for it; later ones answer at once (a test
    #: holds one back to race another, which nothing else holds).
    hold_recompute: asyncio.Event | None = None
    #: When set, opening the case waits for it.
    hold_open: asyncio.Event | None = None
    #: When set, marking an SLA change waits for it (an escalation still in flight).
    hold_mark: asyncio.Event | None = None
    #: When set, recording the seal's transition waits for it: the case has ended, its
    #: workflow is still open.
    hold_seal_record: asyncio.Event | None = None
    recompute_started: asyncio.Event = field(default_factory=asyncio.Event)
    mark_started: asyncio.Event = field(default_factory=asyncio.Event)
    seal_record_started: asyncio.Event = field(default_factory=asyncio.Event)
    #: When set, marking an SLA change fails for good with this message.
    mark_fails: str = ""
    #: When set, recording a decided stage fails for good with this message.
    transition_fails: str = ""

    def deadlines(self, request: c.DeadlinesRequest) -> c.Deadlines:
        """Working days from acceptance, plus paused days and the extension."""
        facts = c.StatementFacts.read(request.acceptance.body)
        calendar = WorkingCalendar.with_schedules(self.schedules)
        accepted = date.fromisoformat(facts.accepted_on)
        paused = 0
        pauses = [c.StatementFacts.read(s.body) for s in request.pauses]
        for start, end in zip(pauses[::2], pauses[1::2], strict=False):
            paused += calendar.working_days_between(
                date.fromisoformat(start.issued_at[:10]), date.fromisoformat(end.issued_at[:10]))
        extension = c.StatementFacts.read(request.extension.body).days \
            if request.extension else 0
        unknown = 0
        try:
            promised = calendar.add_working_days(accepted, facts.promised_limit_days + paused)
            warning = calendar.add_working_days(accepted, facts.promised_limit_days + paused - 1)
            legal = calendar.add_working_days(
                accepted, facts.legal_limit_days + extension + paused)
        except UnknownYearError as error:
            unknown = error.year
            weekdays = WorkingCalendar.with_schedules(
                [YearSchedule(error.year, frozenset(), frozenset())])
            promised = weekdays.add_working_days(accepted, facts.promised_limit_days + paused)
            warning = promised - timedelta(days=1)
            legal = weekdays.add_working_days(
                accepted, facts.legal_limit_days + extension + paused)
        # Stage limits one day apart, so a test can tell which one a task got.
        stage_due = {stage: end_of_china_day(promised) - timedelta(days=back)
                     for stage, back in (("review", 2), ("sign", 1), ("seal", 0))}
        return c.Deadlines(end_of_china_day(warning), end_of_china_day(promised),
                           end_of_china_day(legal), unknown, stage_due)

    def activities(self) -> dict[str, Callable[..., Any]]:
        center = self

        @activity.defn(name=c.OPEN_CASE)
        async def open_case(request: c.DeadlinesRequest) -> c.Deadlines:
            if center.hold_open is not None:
                await center.hold_open.wait()
            center.opened.append(request)
            return center.deadlines(request)

        @activity.defn(name=c.RECOMPUTE_CASE_DEADLINES)
        async def recompute(request: c.DeadlinesRequest) -> c.Deadlines:
            first = not center.recompute_started.is_set()
            center.recompute_started.set()
            if first and center.hold_recompute is not None:
                await center.hold_recompute.wait()
            center.recomputes.append(request)
            return center.deadlines(request)

        @activity.defn(name=c.RECORD_TRANSITION)
        async def record_transition(transition: c.Transition) -> None:
            if center.transition_fails:
                raise ApplicationError(center.transition_fails, type="FailedPrecondition",
                                       non_retryable=True)
            if transition.decision.stage == c.Stage.SEAL:
                center.seal_record_started.set()
                if center.hold_seal_record is not None:
                    await center.hold_seal_record.wait()
            if not any(t.decision.stage == transition.decision.stage
                       for t in center.transitions):
                center.transitions.append(transition)

        @activity.defn(name=c.MARK_SLA)
        async def mark_sla(mark: c.SlaMark) -> None:
            center.mark_started.set()
            if center.hold_mark is not None:
                await center.hold_mark.wait()
            if center.mark_fails:
                raise ApplicationError(center.mark_fails, type="InvalidArgument",
                                       non_retryable=True)
            center.marks.append(mark)

        @activity.defn(name=c.CLOSE_CASE)
        async def close_case(closing: c.CaseClosing) -> None:
            center.closings.append(closing)

        @activity.defn(name=c.SEAL_DECISION)
        async def seal(request: c.SealRequest) -> c.SealReceipt:
            center.seals[request.case_number] = request
            signed = [d.outcome for d in request.decisions if d.stage == c.Stage.SIGN]
            number = f"SY-2026-{len(center.seals):06d}"
            outcome = "approved" if signed == ["approve"] else "refused"
            statement = center.signers.sealed(request.case_number, number, outcome) \
                if center.signers is not None else None
            return c.SealReceipt(number, "k1", "0" * 64, outcome, statement)

        @activity.defn(name=c.RECORD_WITHDRAWAL)
        async def record_withdrawal(record: c.WithdrawalRecord) -> None:
            center.withdrawals.append(record)

        @activity.defn(name=c.NOTIFY_APPLICANT)
        async def notify_applicant(notice: c.ApplicantNotice) -> None:
            center.notices.append(notice)

        hosted: list[Callable[..., Any]] = [
            open_case, recompute, record_transition, mark_sla, close_case, seal,
            record_withdrawal, notify_applicant]
        return {_activity_name(a): a for a in hosted}

    def of(self, service: str) -> list[Callable[..., Any]]:
        return [a for name, a in self.activities().items() if name.startswith(f"{service}.")]

    def mark_kinds(self) -> list[str]:
        return [m.sla_state for m in self.marks]
