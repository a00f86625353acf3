"""What the complaints service does for the complaint workflow: one use case per activity.

Each use case verifies the signed statement it acts on with the service's
trusted keys before it writes anything (the workflow is a transport: whoever
reaches Temporal could call these activities from a workflow of their own);
a statement that does not verify is recorded as a violation in the audit log
and refused (PermissionDenied, not retried). It then applies the handling
rule (services/complaints/domain/handling.py, authoritative) in ONE
transaction: the case's columns, its events (codes only), replies,
co-handlers, extensions, returns, the audit entry and the platform events.

Each is idempotent: the act is kept under the SHA-256 of its signature
(``complaint_acts``) with the answer it gave, so a retried activity finds it
and answers the same, recording nothing twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from kernel.audit import Actor
from kernel.calendar import WorkingCalendar
from kernel.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from kernel.fieldcipher import FieldCipher
from kernel.signing import BadSignature, ServiceSigner, TrustedKeys
from services.complaints.app.cases import open_complainant
from services.complaints.app.platform_events import (
    REPLIED,
    STATUS_CHANGED,
    emit_platform_event,
)
from services.complaints.db.repository import (
    CaseHandling,
    ComplaintsUnitOfWork,
    Extension,
    Reply,
)
from services.complaints.domain import handling as rules
from services.complaints.domain import policy as clock
from services.complaints.domain.cases import ComplaintEvent, ComplaintStatus
from services.complaints.domain.handling import CaseState, Change
from services.complaints.domain.policy import DeadlinePolicy
from workflows.complaint_contract import CENTER_DEPARTMENT as CENTER
from workflows.complaint_contract import (
    DISPATCHER_ROLE,
    HANDLER_ROLE,
    ActRecord,
    ActRecorded,
    CaseClock,
    Closing,
    ComplaintFacts,
    Escalated,
    OpenCase,
    Overdue,
    SignedStatement,
    StatementKind,
    as_statement,
    complaint_statement_body,
    iso_instant,
    statement_json,
    texts_match,
    verified_complaint_facts,
)

UnitOfWorkFactory = Callable[[], ComplaintsUnitOfWork]

#: Who records in the audit log what the workflow asked for.
WORKFLOWS = "govhall-workflows"
#: The system named in a RECEIVED statement: the complaints service took the case in.
COMPLAINTS_SYSTEM = "govhall-complaints"


def received_statement(signer: ServiceSigner, case: CaseHandling) -> SignedStatement:
    """The RECEIVED statement of a committed case: the workflow's input.

    Built from the stored case only, and Ed25519 signatures are
    deterministic, so the same case always gets the same statement: a run
    holding the case's workflow id is the case's own exactly when it was
    started with an equal one.
    """
    return as_statement(signer.sign(complaint_statement_body(
        kind=StatementKind.RECEIVED, case_number=case.case_number,
        official_id=case.platform_id, department_code=case.department_code, roles=[],
        system=COMPLAINTS_SYSTEM, issued_at=case.received_at, platform_id=case.platform_id,
        complaint_kind=case.kind, urgent=case.urgent, category_code=case.category_code,
        deadline_class=case.deadline_class, received_at=iso_instant(case.received_at))))


def record_violation(*, uow: ComplaintsUnitOfWork, case_number: str, what: str, reason: str,
                     now: datetime) -> None:
    """Keep, in the audit log, an act refused because nobody with authority made it."""
    with uow:
        uow.audit.append(actor=Actor(WORKFLOWS), action="violation.refused_statement",
                         subject=f"complaint/{case_number or 'unknown'}", at=now,
                         details={"what": what, "reason": reason[:200]})
        uow.commit()


def verified(*, keys: TrustedKeys, statement: SignedStatement, kind: StatementKind,
             violations: UnitOfWorkFactory, now: datetime) -> ComplaintFacts:
    """The statement's facts if the complaints service signed it; a recorded violation if not."""
    raw_number = statement.body.get("case_number", "") if isinstance(statement.body,
                                                                      dict) else ""
    case_number = raw_number if isinstance(raw_number, str) and len(raw_number) <= 40 else ""
    try:
        return verified_complaint_facts(keys, statement, kind)
    except (BadSignature, ComplaintFacts.Malformed) as error:
        record_violation(uow=violations(), case_number=case_number, what=str(kind),
                         reason=str(error), now=now)
        raise PermissionDenied(
            f"the {kind} for case {case_number} is not one the complaints service made: "
            "refused and recorded") from error


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


#: The working calendar the use case running counts with: the activity sets it (the
#: built-in schedules and those operators loaded in review, kernel/holiday_schedules.py) for
#: its own task, and the worker thread of the use case inherits it.
WORKING_CALENDAR: ContextVar[WorkingCalendar | None] = ContextVar(
    "complaints_working_calendar", default=None)


def _calendar() -> WorkingCalendar:
    # Unset: the built-in schedules. A year without a schedule is taken as Monday to Friday
    # and flagged on the case (unknown_year), see services/complaints/domain/policy.py.
    return WORKING_CALENDAR.get() or WorkingCalendar()


def _policy(unit: ComplaintsUnitOfWork, case: CaseHandling) -> DeadlinePolicy:
    if case.policy_version is not None:
        stored = unit.policies.get(case.policy_version)
        if stored is not None:
            return stored.policy
    return unit.policies.in_force().policy


def _flag(case: CaseHandling, due: clock.Due) -> int:
    """The case's flag once ``due`` is computed: the first year any deadline guessed."""
    return min([y for y in (case.unknown_year, due.unknown_year) if y], default=0)


def _next_sequence(unit: ComplaintsUnitOfWork, case_number: str) -> int:
    return unit.events.last_sequence(case_number) + 1


def _event(unit: ComplaintsUnitOfWork, case_number: str, code: str, at: datetime,
           details: dict[str, str]) -> None:
    unit.events.add([ComplaintEvent(case_number, _next_sequence(unit, case_number), code, at,
                                    details)])


def _state(unit: ComplaintsUnitOfWork, case: CaseHandling) -> CaseState:
    pending = unit.extensions.pending(case.case_number)
    return CaseState(
        number=case.case_number, stage=case.status, department_code=case.department_code,
        platform_id=case.platform_id,
        co_handlers={c.department_code: c.contributed_at is not None
                     for c in unit.co_handlers.of_case(case.case_number)},
        reopened=case.reopened,
        extension_pending_days=pending.requested_days if pending else 0,
        extended_days=case.extended_days, returned_by=case.returned_by,
        merged_into=case.merged_into)


def _recorded(case: CaseHandling, events: list[str],
              closed: list[str] | None = None) -> ActRecorded:
    """The answer to the workflow: the case's clocks that run now."""
    sign_for = case.sign_for_due if case.status == ComplaintStatus.ROUTED else None
    reply = case.reply_due if case.status in (ComplaintStatus.ROUTED, ComplaintStatus.HANDLING,
                                              ComplaintStatus.RETURNED) else None
    closes = case.rating_closes if case.status == ComplaintStatus.REPLIED else None
    return ActRecorded(stage=str(case.status), department_code=case.department_code,
                       sign_for_due=sign_for, reply_due=reply, rating_closes=closes,
                       platform_events=[e for e in events if e], closed_cases=closed or [])


def _result_json(result: ActRecorded) -> str:
    def default(value: object) -> str:
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(type(value).__name__)
    return json.dumps(asdict(result), default=default, sort_keys=True)


def _result_from(text: str) -> ActRecorded:
    data: dict[str, Any] = json.loads(text)
    for name in ("sign_for_due", "reply_due", "rating_closes"):
        if data.get(name):
            data[name] = datetime.fromisoformat(data[name])
    return ActRecorded(**data)


def act_id(statement: SignedStatement) -> str:
    return hashlib.sha256(statement.signature.encode("ascii", errors="replace")).hexdigest()


def _status_event(unit: ComplaintsUnitOfWork, case: CaseHandling, at: datetime) -> str:
    return emit_platform_event(
        unit, platform_id=case.platform_id, case_number=case.case_number,
        event_type=STATUS_CHANGED,
        data={"status": str(case.status), "department_code": case.department_code}, at=at)


# ---- opening ----------------------------------------------------------------------------

def open_case(*, uow: UnitOfWorkFactory, keys: TrustedKeys, request: OpenCase,
              now: datetime) -> CaseClock:
    """The case opened for handling: its deadlines by the policy in force. Once."""
    facts = verified(keys=keys, statement=request.statement, kind=StatementKind.RECEIVED,
                     violations=uow, now=now)
    with uow() as unit:
        case = unit.handling.get(facts.case_number, for_update=True)
        if case is None:
            raise NotFound(f"complaint case {facts.case_number} is not in the complaints "
                           "database")
        if (facts.platform_id, facts.category_code) != (case.platform_id, case.category_code):
            raise PermissionDenied(f"the statement does not describe case {case.case_number}")
        if case.policy_version is not None and case.sign_for_due and case.reply_due:
            return CaseClock(case.sign_for_due, case.reply_due, case.policy_version)
        stored = unit.policies.in_force()
        found = clock.opening_clock(stored.policy, _calendar(),
                                    deadline_class=case.deadline_class,
                                    received_at=case.received_at)
        opened = replace(case, sign_for_due=found.sign_for_due, reply_due=found.reply_due,
                         policy_version=stored.policy.version, unknown_year=found.unknown_year)
        unit.handling.save(opened)
        details = {"policy_version": str(stored.policy.version),
                   "sign_for_due": found.sign_for_due.isoformat(),
                   "reply_due": found.reply_due.isoformat()}
        if found.unknown_year:
            details["calendar_gap_year"] = str(found.unknown_year)
        _event(unit, case.case_number, "complaint.deadlines_set", now, details)
        event = _status_event(unit, opened, now)
        unit.audit.append(actor=Actor(WORKFLOWS), action="complaint.opened",
                          subject=f"complaint/{case.case_number}", at=now,
                          details={"department": case.department_code,
                                   "policy_version": stored.policy.version})
        unit.commit()
        return CaseClock(found.sign_for_due, found.reply_due, stored.policy.version,
                         [event] if event else [])


# ---- acts -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Actor:
    """Who acted, as the statement says, in what capacity."""

    facts: ComplaintFacts

    def handler(self) -> str:
        if HANDLER_ROLE not in self.facts.roles:
            raise PermissionDenied(f"official {self.facts.official_id} acted without the "
                                   f"role {HANDLER_ROLE}")
        return self.facts.department_code

    def dispatcher(self) -> None:
        if DISPATCHER_ROLE not in self.facts.roles or self.facts.department_code != CENTER:
            raise PermissionDenied(f"official {self.facts.official_id} is not a "
                                   f"{DISPATCHER_ROLE} of {CENTER}")


def _kind_of(statement: SignedStatement) -> StatementKind:
    kind = statement.body.get("kind") if isinstance(statement.body, dict) else None
    if kind not in set(StatementKind) or kind == StatementKind.RECEIVED:
        raise InvalidArgument("the act's statement is not of a kind of complaint act")
    return StatementKind(str(kind))


def record_act(*, uow: UnitOfWorkFactory, keys: TrustedKeys, cipher: FieldCipher,
               act: ActRecord, now: datetime) -> ActRecorded:
    """One accepted act recorded with the rule applied, in one transaction; once."""
    kind = _kind_of(act.statement)
    facts = verified(keys=keys, statement=act.statement, kind=kind, violations=uow, now=now)
    if not texts_match(kind, facts.content_sha256, act.texts):
        record_violation(uow=uow(), case_number=facts.case_number, what=str(kind),
                         reason="texts do not match the signed digest", now=now)
        raise PermissionDenied(f"the texts of the {kind} for case {facts.case_number} are "
                               "not the ones the complaints service signed")
    identifier = act_id(act.statement)
    at = _instant(facts.issued_at)
    with uow() as unit:
        earlier = unit.acts.get(identifier)
        if earlier is not None:
            return _result_from(earlier.result)
        case = unit.handling.get(facts.case_number, for_update=True)
        if case is None:
            raise NotFound(f"complaint case {facts.case_number} is not in the complaints "
                           "database")
        recorder = _RECORDERS[kind]
        result = recorder(unit, cipher, case, facts, act.texts, at)
        unit.audit.append(actor=Actor(facts.system, facts.official_id),
                          action=f"complaint.{kind.removeprefix('complaint_')}",
                          subject=f"complaint/{case.case_number}", at=now,
                          details={"stage": result.stage, "department": result.department_code,
                                   "act": identifier[:16]})
        try:
            unit.acts.add(act_id=identifier, case_number=case.case_number, kind=str(kind),
                          official_id=facts.official_id, system=facts.system,
                          statement=json.dumps(statement_json(act.statement), sort_keys=True,
                                               ensure_ascii=False),
                          result=_result_json(result), at=now)
            unit.commit()
        except IntegrityError:
            # The same act recorded by a concurrent attempt since the check: its answer.
            unit.connection.rollback()
            with uow() as again:
                stored = again.acts.get(identifier)
                if stored is None:
                    raise
                return _result_from(stored.result)
    return result


def _apply(unit: ComplaintsUnitOfWork, case: CaseHandling, change: Change, at: datetime,
           details: dict[str, str], **columns: Any) -> tuple[CaseHandling, list[str]]:
    """Write the change: the case's columns, the event, and a status platform event."""
    state = change.state
    after = replace(case, status=state.stage, department_code=state.department_code,
                    reopened=state.reopened, returned_by=state.returned_by,
                    merged_into=state.merged_into, extended_days=state.extended_days,
                    **columns)
    unit.handling.save(after)
    _event(unit, case.case_number, change.event, at,
           {"stage": str(after.status), "department": after.department_code, **details})
    events = [_status_event(unit, after, at)] if change.stage_changed else []
    return after, events


def _sign_for(unit: ComplaintsUnitOfWork, _cipher: FieldCipher, case: CaseHandling,
              facts: ComplaintFacts, _texts: dict[str, str], at: datetime) -> ActRecorded:
    department = _Actor(facts).handler()
    change = rules.sign_for(_state(unit, case), department_code=department)
    after, events = _apply(unit, case, change, at, {"official": facts.official_id},
                           signed_for_at=at)
    return _recorded(after, events)


def _return(unit: ComplaintsUnitOfWork, _cipher: FieldCipher, case: CaseHandling,
            facts: ComplaintFacts, texts: dict[str, str], at: datetime) -> ActRecorded:
    department = _Actor(facts).handler()
    change = rules.return_case(_state(unit, case), department_code=department,
                               basis=texts["basis"])
    unit.co_handlers.set(case.case_number, [])
    pending = unit.extensions.pending(case.case_number)
    if pending is not None:
        unit.extensions.decide(case.case_number, outcome="withdrawn", granted_days=0,
                               decided_by=facts.official_id, at=at)
    unit.returns.add(case_number=case.case_number, department_code=department,
                     official_id=facts.official_id, basis=texts["basis"], at=at)
    after, events = _apply(unit, case, change, at, {"official": facts.official_id})
    return _recorded(after, events)


def _dispatch(unit: ComplaintsUnitOfWork, _cipher: FieldCipher, case: CaseHandling,
              facts: ComplaintFacts, texts: dict[str, str], at: datetime) -> ActRecorded:
    _Actor(facts).dispatcher()
    target = facts.target_department
    if facts.outcome == rules.Outcome.REASSIGN and unit.departments.get(target) is None:
        raise InvalidArgument(f"department {target} is not in the directory")
    if facts.outcome == rules.Outcome.SEND_BACK and target == case.returned_by:
        target = ""
    change = rules.dispatch(_state(unit, case), outcome=facts.outcome,
                            target_department=target, basis=texts["basis"])
    unit.returns.decide(case.case_number, outcome=facts.outcome,
                        target_department=change.state.department_code, basis=texts["basis"],
                        decided_by=facts.official_id, at=at)
    due = clock.sign_for_due(_policy(unit, case), _calendar(), urgent=case.urgent,
                             routed_at=at)
    after, events = _apply(unit, case, change, at,
                           {"official": facts.official_id, "outcome": facts.outcome},
                           sign_for_due=due.at, signed_for_at=None,
                           unknown_year=_flag(case, due))
    return _recorded(after, events)


def _co_handlers(unit: ComplaintsUnitOfWork, _cipher: FieldCipher, case: CaseHandling,
                 facts: ComplaintFacts, _texts: dict[str, str], at: datetime) -> ActRecorded:
    _Actor(facts).dispatcher()
    unknown = [code for code in facts.co_handlers if unit.departments.get(code) is None]
    if unknown:
        raise InvalidArgument(f"departments {', '.join(unknown)} are not in the directory")
    change = rules.set_co_handlers(_state(unit, case), co_handlers=list(facts.co_handlers))
    unit.co_handlers.set(case.case_number, change.state.co_handlers)
    after, events = _apply(unit, case, change, at,
                           {"official": facts.official_id,
                            "co_handlers": ",".join(sorted(change.state.co_handlers))})
    return _recorded(after, events)


def _contribute(unit: ComplaintsUnitOfWork, _cipher: FieldCipher, case: CaseHandling,
                facts: ComplaintFacts, texts: dict[str, str], at: datetime) -> ActRecorded:
    department = _Actor(facts).handler()
    change = rules.contribute(_state(unit, case), department_code=department,
                              text=texts["contribution"])
    unit.co_handlers.contribute(case.case_number, department, text=texts["contribution"],
                                official_id=facts.official_id, at=at)
    after, events = _apply(unit, case, change, at,
                           {"official": facts.official_id, "co_handler": department})
    return _recorded(after, events)


def joined_reply(lead: str, contributions: list[tuple[str, str]]) -> str:
    """The lead's reply with each co-handling department's contribution joined after it."""
    parts = [lead.strip()]
    parts.extend(f"【协办单位 {department}】{text.strip()}" for department, text in contributions)
    return "\n\n".join(parts)


def _reply(unit: ComplaintsUnitOfWork, cipher: FieldCipher, case: CaseHandling,
           facts: ComplaintFacts, texts: dict[str, str], at: datetime) -> ActRecorded:
    department = _Actor(facts).handler()
    change = rules.reply(_state(unit, case), department_code=department, text=texts["reply"])
    contributions = [(c.department_code, c.contribution or "")
                     for c in unit.co_handlers.of_case(case.case_number)
                     if c.contribution is not None]
    text = joined_reply(texts["reply"], contributions)
    policy = _policy(unit, case)
    closes = clock.rating_closes(policy, _calendar(), replied_at=at)
    stored = unit.cases.get(case.case_number)
    assert stored is not None
    events: list[str] = []

    def record_reply(target: CaseHandling, sealed: str, answered_by: str) -> None:
        complainant = open_complainant(cipher, sealed, number=target.case_number)
        published = rules.anonymised(text, names=[complainant.name],
                                     numbers=[complainant.phone])
        unit.replies.add(Reply(target.case_number, 0, department, facts.official_id, text,
                               published, at, answered_by))
        events.append(emit_platform_event(
            unit, platform_id=target.platform_id, case_number=target.case_number,
            event_type=REPLIED, data={"reply": text, "replied_at": at.isoformat(),
                                      "department_code": department}, at=at))

    record_reply(case, stored.sealed_complainant, "")
    after, status_events = _apply(
        unit, case, change, at, {"official": facts.official_id,
                                 "co_handlers": ",".join(d for d, _ in contributions)},
        replied_at=at, first_replied_at=case.first_replied_at or at, rating_closes=closes.at,
        unknown_year=_flag(case, closes))
    events.extend(status_events)
    answered: list[str] = []
    for duplicate in unit.handling.merged_into(case.case_number):
        sealed = unit.cases.get(duplicate.case_number)
        assert sealed is not None
        record_reply(duplicate, sealed.sealed_complainant, case.case_number)
        unit.handling.save(replace(duplicate, replied_at=at,
                                   first_replied_at=duplicate.first_replied_at or at))
        _event(unit, duplicate.case_number, "complaint.replied_by_primary", at,
               {"primary": case.case_number, "department": department})
        answered.append(duplicate.case_number)
    return _recorded(after, events, answered)


def _request_extension(unit: ComplaintsUnitOfWork, _cipher: FieldCipher, case: CaseHandling,
                       facts: ComplaintFacts, texts: dict[str, str],
                       at: datetime) -> ActRecorded:
    department = _Actor(facts).handler()
    change = rules.request_extension(_state(unit, case), department_code=department,
                                     days=facts.days, basis=texts["basis"],
                                     max_days=_policy(unit, case).max_extension_days)
    unit.extensions.add(Extension(case.case_number, 0, department, facts.days, texts["basis"],
                                  facts.official_id, at))
    after, events = _apply(unit, case, change, at,
                           {"official": facts.official_id, "days": str(facts.days)})
    return _recorded(after, events)


def _decide_extension(unit: ComplaintsUnitOfWork, _cipher: FieldCipher, case: CaseHandling,
                      facts: ComplaintFacts, _texts: dict[str, str],
                      at: datetime) -> ActRecorded:
    _Actor(facts).dispatcher()
    change = rules.decide_extension(_state(unit, case), outcome=facts.outcome,
                                    days=facts.days)
    granted = change.state.extended_days - case.extended_days
    unit.extensions.decide(case.case_number, outcome=facts.outcome, granted_days=granted,
                           decided_by=facts.official_id, at=at)
    columns: dict[str, Any] = {}
    if granted and case.reply_due is not None:
        extended = clock.extended_reply_due(_calendar(), reply_due=case.reply_due, days=granted)
        columns["reply_due"] = extended.at
        columns["unknown_year"] = _flag(case, extended)
    after, events = _apply(unit, case, change, at,
                           {"official": facts.official_id, "outcome": facts.outcome,
                            "days": str(granted)}, **columns)
    return _recorded(after, events)


def _merge(unit: ComplaintsUnitOfWork, _cipher: FieldCipher, case: CaseHandling,
           facts: ComplaintFacts, _texts: dict[str, str], at: datetime) -> ActRecorded:
    _Actor(facts).dispatcher()
    primary = unit.handling.get(facts.primary_case_number, for_update=True)
    if primary is None:
        raise NotFound(f"complaint case {facts.primary_case_number} does not exist")
    change = rules.merge(_state(unit, case), _state(unit, primary))
    unit.co_handlers.set(case.case_number, [])
    if unit.extensions.pending(case.case_number) is not None:
        unit.extensions.decide(case.case_number, outcome="withdrawn", granted_days=0,
                               decided_by=facts.official_id, at=at)
    after, events = _apply(unit, case, change, at,
                           {"official": facts.official_id, "primary": primary.case_number},
                           closed_at=at)
    _event(unit, primary.case_number, "complaint.duplicate_merged", at,
           {"duplicate": case.case_number, "official": facts.official_id})
    return _recorded(after, events)


def _rate(unit: ComplaintsUnitOfWork, _cipher: FieldCipher, case: CaseHandling,
          facts: ComplaintFacts, _texts: dict[str, str], at: datetime) -> ActRecorded:
    change = rules.rate(_state(unit, case), platform_id=facts.platform_id, level=facts.level,
                        at=at, rating_closes=case.rating_closes)
    columns: dict[str, Any] = {"rating": facts.level, "rated_at": at}
    if change.state.stage == ComplaintStatus.HANDLING:
        reopened = clock.reopened_reply_due(_policy(unit, case), _calendar(), rated_at=at)
        columns["reply_due"] = reopened.at
        columns["unknown_year"] = _flag(case, reopened)
        columns["rating_closes"] = None
    else:
        columns["closed_at"] = at
    after, events = _apply(unit, case, change, at,
                           {"level": str(facts.level), "platform": facts.platform_id},
                           **columns)
    return _recorded(after, events)


_Recorder = Callable[[ComplaintsUnitOfWork, FieldCipher, CaseHandling, ComplaintFacts,
                      dict[str, str], datetime], ActRecorded]
_RECORDERS: dict[StatementKind, _Recorder] = {
    StatementKind.SIGN_FOR: _sign_for,
    StatementKind.RETURN: _return,
    StatementKind.DISPATCH: _dispatch,
    StatementKind.CO_HANDLERS: _co_handlers,
    StatementKind.CONTRIBUTION: _contribute,
    StatementKind.REPLY: _reply,
    StatementKind.EXTENSION_REQUEST: _request_extension,
    StatementKind.EXTENSION_DECISION: _decide_extension,
    StatementKind.MERGE: _merge,
    StatementKind.RATING: _rate,
}


# ---- the clock --------------------------------------------------------------------------

#: How far ahead of this service's clock a deadline Temporal says has passed may be: asked
#: within it, the mark is retried; beyond it (or for a deadline the case does not have) it
#: is refused and kept in the audit log as a violation.
OVERDUE_CLOCK_SKEW = timedelta(minutes=1)


#: The case event (and audit action) of a deadline recompute (services/complaints/app/deadlines.py).
DEADLINES_RECOMPUTED = "complaint.deadlines_recomputed"


def _superseded(unit: ComplaintsUnitOfWork, case_number: str, what: str,
                due: datetime) -> bool:
    """Whether ``due`` was the case's ``what`` deadline until a recompute moved it."""
    was = f"{what}_due_was"
    for event in unit.events.list(case_number, after_sequence=0, limit=10_000):
        if event.code == DEADLINES_RECOMPUTED and event.details.get(was):
            with contextlib.suppress(ValueError):
                if datetime.fromisoformat(str(event.details[was])) == due:
                    return True
    return False


def mark_overdue(*, uow: UnitOfWorkFactory, request: Overdue, now: datetime) -> Escalated:
    """A deadline passed (督办): the escalation recorded once, the case marked overdue.

    Only the case's own recorded sign-for or reply deadline, once passed, is marked; any
    other ``due`` (a rogue workflow calling the activity) is recorded as a violation and
    changes nothing else. A case that no longer owes what the deadline was set for
    (signed for, replied meanwhile) is left as it is.

    The dues are checked as recomputed: a ``due`` the case had until a recompute moved it
    (``complaint.deadlines_recomputed``, services/complaints/app/deadlines.py) is the
    workflow's old timer firing before it read the new dues. Nothing is recorded for it
    while the recomputed due has not passed (the workflow re-arms on that one once told);
    once that one has passed too, it is the one marked.
    """
    if request.what not in ("sign_for", "reply"):
        raise InvalidArgument(f"{request.what!r} is not a deadline")
    with uow() as unit:
        case = unit.handling.get(request.case_number, for_update=True)
        if case is None:
            raise NotFound(f"complaint case {request.case_number} is not in the complaints "
                           "database")
        recorded = case.sign_for_due if request.what == "sign_for" else case.reply_due
        due = request.due
        if recorded is not None and due != recorded \
                and _superseded(unit, case.case_number, request.what, due):
            if recorded > now:
                return Escalated(case.escalations)
            due = recorded
        identifier = hashlib.sha256(
            f"overdue/{request.case_number}/{request.what}/{due.isoformat()}"
            .encode()).hexdigest()
        if unit.acts.get(identifier) is not None:
            return Escalated(case.escalations)
        if recorded is None or due != recorded or due - now > OVERDUE_CLOCK_SKEW:
            # Not the case's own deadline, or one still far ahead: not the case's workflow
            # asking (anyone who reaches Temporal can call this activity). Kept, not done.
            unit.audit.append(actor=Actor(WORKFLOWS), action="violation.refused_overdue",
                              subject=f"complaint/{case.case_number}", at=now,
                              details={"what": request.what, "due": request.due.isoformat()})
            unit.commit()
            return Escalated(case.escalations)
        if due > now:
            # A moment early (the service's clock behind Temporal's): retried, not refused.
            raise Unavailable(f"the {request.what} deadline of case {case.case_number} has "
                              "not passed yet on this service's clock: try again")
        try:
            rules.overdue(_state(unit, case), what=request.what)
        except FailedPrecondition:
            return Escalated(case.escalations)
        after = replace(case, escalations=case.escalations + 1, sla_state="overdue")
        unit.handling.save(after)
        _event(unit, case.case_number, "complaint.escalated", now,
               {"what": request.what, "due": due.isoformat(),
                "department": case.department_code})
        unit.audit.append(actor=Actor(WORKFLOWS), action="escalation.opened",
                          subject=f"complaint/{case.case_number}", at=now,
                          details={"what": request.what, "department": case.department_code,
                                   "due": due.isoformat()})
        unit.acts.add(act_id=identifier, case_number=case.case_number, kind="overdue",
                      official_id="", system=WORKFLOWS, statement="{}",
                      result=json.dumps({"escalations": after.escalations}), at=now)
        unit.commit()
        return Escalated(after.escalations)


def close_case(*, uow: UnitOfWorkFactory, closing: Closing, now: datetime) -> ActRecorded:
    """The rating window lapsed without a rating: the case closes (again: nothing new)."""
    if closing.reason != "rating_window_lapsed":
        raise InvalidArgument(f"{closing.reason!r} is not a reason to close a case")
    with uow() as unit:
        case = unit.handling.get(closing.case_number, for_update=True)
        if case is None:
            raise NotFound(f"complaint case {closing.case_number} is not in the complaints "
                           "database")
        if case.status == ComplaintStatus.CLOSED:
            return _recorded(case, [])
        if case.rating_closes is not None and now < case.rating_closes:
            # The workflow asks only once its timer passed the end, so this clock is behind
            # Temporal's: retryable, Temporal asks again until this clock is there too. A
            # refusal for good would leave the case's workflow stuck.
            raise Unavailable(
                f"the rating window of case {case.case_number} is open until "
                f"{case.rating_closes.isoformat()} by the complaints service's clock")
        change = rules.close_lapsed(_state(unit, case))
        after, events = _apply(unit, case, change, now, {"reason": closing.reason},
                               closed_at=now)
        unit.audit.append(actor=Actor(WORKFLOWS), action="complaint.closed",
                          subject=f"complaint/{case.case_number}", at=now,
                          details={"reason": closing.reason})
        unit.commit()
        return _recorded(after, events)
