"""What review does for the approval workflow: one use case per activity, each in one transaction.

Every use case verifies the signed statements it acts on with review's own
trusted keys before it writes anything: the workflow is a transport, and
whoever reaches Temporal could call these activities from a workflow of
their own. A statement that does not verify is recorded as a violation in
the audit log and refused (PermissionDenied, not retried).

Each use case is idempotent: the workflow may run an activity again after a
crash, and a repeat records nothing new.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime

from sqlalchemy.exc import IntegrityError

from kernel.audit import Actor
from kernel.calendar import WorkingCalendar
from kernel.chinatime import china_date
from kernel.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from kernel.handled_requests import HandledRequest
from kernel.signing import BadSignature, TrustedKeys
from services.review.app.handlers import WORKFLOWS
from services.review.db.audit import DECISIONS
from services.review.db.repository import ReviewUnitOfWork
from services.review.domain import deadlines as rules
from services.review.domain.deadlines import CaseDeadlines, Pause
from services.review.domain.progress import CaseProgress, ChainEvent
from services.review.domain.tasks import ESCALATION_KINDS, Escalation, RecordedDecision, Task
from workflows.approval_contract import (
    STAGE_ROLE,
    CaseClosing,
    Deadlines,
    DeadlinesRequest,
    SignedStatement,
    SlaMark,
    SlaState,
    Stage,
    StatementFacts,
    StatementKind,
    Transition,
    check_case_number,
    content_digest,
    statement_json,
    verified_facts,
)
from workflows.approval_rules import deciding_department, next_stage

UnitOfWorkFactory = Callable[[], ReviewUnitOfWork]


def _subject(case_number: str) -> str:
    return f"case/{case_number}"


def record_violation(*, uow: ReviewUnitOfWork, case_number: str, what: str, reason: str,
                     now: datetime) -> None:
    """Keep, in the audit log, an act refused because nobody with authority made it."""
    with uow:
        uow.audit.append(actor=Actor(WORKFLOWS), action="violation.refused_statement",
                         subject=_subject(case_number or "unknown"), at=now,
                         details={"what": what, "reason": reason[:200]})
        uow.commit()


#: The audit action of an act a workflow refused for want of authority (RecordRefusedAct).
REFUSED_ACT = "violation.forged_update"
#: Reports kept per case: enough to show an attack on it, not enough to flood the audit log.
REFUSED_ACTS_PER_CASE = 20


def record_refused_act(*, uow: ReviewUnitOfWork, system: str, case_number: str, report_id: str,
                       update_name: str, reason: str, refused_at: datetime,
                       now: datetime) -> bool:
    """Keep an act the case's workflow refused (reported by the workflows worker), once.

    False when the same report (``system``, ``report_id``) was kept before, or
    when the case already holds REFUSED_ACTS_PER_CASE of them (a flood of forged
    updates: the worker logs the rest). NotFound for a case review never
    opened. The report is the worker's word: kept as an attempt someone made,
    never as a fact about the case (its timeline and progress do not change).
    """
    with uow:
        if uow.progress.get(case_number) is None:
            raise NotFound(f"case {case_number} is not in review's record")
        if uow.requests.get(system, report_id) is not None:
            return False
        if uow.requests.count_for_case(system, case_number) >= REFUSED_ACTS_PER_CASE:
            return False
        try:
            uow.requests.add(HandledRequest(system, report_id, report_id, case_number, "{}"),
                             received_at=now)
            uow.audit.append(actor=Actor(system), action=REFUSED_ACT,
                             subject=_subject(case_number), at=now,
                             details={"what": update_name, "reason": reason,
                                      "refused_at": refused_at.isoformat(),
                                      "report_id": report_id})
            uow.commit()
        except IntegrityError:
            # The same report, kept by a concurrent call since the check (rolled back).
            return False
    return True


def verified(*, keys: TrustedKeys, statement: SignedStatement, kind: StatementKind,
             case_number: str, violations: UnitOfWorkFactory, now: datetime) -> StatementFacts:
    """The statement's facts if it is what it claims; a recorded violation otherwise."""
    try:
        facts = verified_facts(keys, statement, kind)
        if facts.case_number != case_number:
            raise BadSignature(f"the statement is about case {facts.case_number}")
    except (BadSignature, StatementFacts.Malformed) as error:
        record_violation(uow=violations(), case_number=case_number, what=str(kind),
                         reason=str(error), now=now)
        raise PermissionDenied(
            f"the {kind} for case {case_number} is not one its signer made: refused and "
            "recorded") from error
    return facts


# ---- deadlines --------------------------------------------------------------------------

def _pauses(facts: Sequence[StatementFacts]) -> list[Pause]:
    """The spans the clock stood still, from the start and end statements in order.

    A span runs from the day in China its start was signed to the day its end was.
    """
    spans: list[Pause] = []
    for item in facts:
        day = china_date(datetime.fromisoformat(item.issued_at.replace("Z", "+00:00")))
        if item.kind == StatementKind.PROCEDURE_START:
            if spans and spans[-1].end_on is None:
                raise InvalidArgument("two special procedures started without one ending")
            spans.append(Pause(item.procedure, day))
        else:
            if not spans or spans[-1].end_on is not None or spans[-1].procedure != item.procedure:
                raise InvalidArgument(f"the end of {item.procedure} matches no start")
            spans[-1] = replace(spans[-1], end_on=day)
    return spans


def _deadlines_of(uow: ReviewUnitOfWork, acceptance: StatementFacts,
                  pauses: Sequence[StatementFacts], extension_days: int,
                  today: date) -> CaseDeadlines:
    spans = _pauses(pauses)
    # The unit of work is open already: read the loaded schedules in its transaction.
    calendar = WorkingCalendar.with_schedules(
        loaded.schedule for loaded in uow.holiday_schedules.all())
    return rules.case_deadlines(
        calendar, accepted_on=date.fromisoformat(acceptance.accepted_on),
        promised_limit_days=acceptance.promised_limit_days,
        legal_limit_days=acceptance.legal_limit_days, extension_days=extension_days,
        pauses=spans, today=today)


def as_contract(found: CaseDeadlines) -> Deadlines:
    return Deadlines(found.warning_at, found.promised_due_at, found.legal_due_at,
                     found.unknown_year, dict(found.stage_due_at))


def _event(uow: ReviewUnitOfWork, case_number: str, event: ChainEvent, now: datetime) -> None:
    if not uow.events.has(case_number, event.event_id):
        uow.events.add(case_number, event, recorded_at=now)


def _deadline_details(found: CaseDeadlines, reason: str) -> dict[str, str]:
    details = {"reason": reason, "warning_at": found.warning_at.isoformat(),
               "promised_due_at": found.promised_due_at.isoformat(),
               "legal_due_at": found.legal_due_at.isoformat()}
    if found.unknown_year:
        details["calendar_gap_year"] = str(found.unknown_year)
    return details


def _redue(uow: ReviewUnitOfWork, case_number: str, stage: str, found: CaseDeadlines) -> None:
    """The stage's open task follows the stage's new due time."""
    if stage not in STAGE_ROLE:
        return
    task = uow.tasks.get(case_number, stage, for_update=True)
    due = found.stage_due_at.get(stage, found.promised_due_at)
    if task is not None and task.is_open and task.due_at != due:
        uow.tasks.save(replace(task, due_at=due))


def _open_task(uow: ReviewUnitOfWork, task: Task, now: datetime) -> None:
    existing = uow.tasks.get(task.case_number, task.stage, for_update=True)
    if existing is None:
        uow.tasks.add(task)
    elif existing.is_open and existing.due_at != task.due_at:
        uow.tasks.save(replace(existing, due_at=task.due_at))


def open_case(*, uow: UnitOfWorkFactory, keys: TrustedKeys, request: DeadlinesRequest,
              event_key: str, now: datetime) -> Deadlines:
    """A newly accepted case: its deadlines, its progress record and its review task."""
    case_number = str(request.acceptance.body.get("case_number", ""))
    acceptance = verified(keys=keys, statement=request.acceptance,
                          kind=StatementKind.ACCEPTANCE, case_number=case_number,
                          violations=uow, now=now)
    at = request.at or now
    with uow() as unit:
        existing = unit.progress.get(case_number, for_update=True)
        found = _deadlines_of(unit, acceptance, [], 0, china_date(at))
        if existing is not None:
            # The case's workflow started again (an operator restarted it, or a retry):
            # the deadlines follow its acceptance, the case stays where it stands.
            if existing.stage not in (Stage.COMPLETED, Stage.WITHDRAWN):
                unit.progress.save(replace(
                    existing, warning_at=found.warning_at,
                    promised_due_at=found.promised_due_at, legal_due_at=found.legal_due_at,
                    unknown_year=found.unknown_year, stage_due_at=dict(found.stage_due_at),
                    updated_at=now))
                _redue(unit, case_number, existing.stage, found)
                _event(unit, case_number, ChainEvent(
                    f"{event_key}/deadlines", "deadlines.computed", at, existing.stage, "",
                    _deadline_details(found, "workflow started again"),
                    existing.sla_state), now)
                unit.commit()
                return as_contract(found)
            return Deadlines(existing.warning_at, existing.promised_due_at,
                             existing.legal_due_at, existing.unknown_year,
                             dict(existing.stage_due_at))
        unit.progress.add(CaseProgress(
            case_number=case_number, item_code=acceptance.item_code,
            department_code=acceptance.department_code, stage=Stage.REVIEW,
            sla_state=SlaState.ON_TIME, warning_at=found.warning_at,
            promised_due_at=found.promised_due_at, legal_due_at=found.legal_due_at,
            opened_at=at, updated_at=now, unknown_year=found.unknown_year,
            stage_due_at=dict(found.stage_due_at)))
        due = found.stage_due_at.get(Stage.REVIEW, found.promised_due_at)
        _open_task(unit, Task(case_number=case_number, stage=Stage.REVIEW,
                              department_code=acceptance.department_code,
                              role=STAGE_ROLE[Stage.REVIEW], item_code=acceptance.item_code,
                              due_at=due, opened_at=now), now)
        _event(unit, case_number, ChainEvent(
            f"{event_key}/started", "chain.started", at, Stage.REVIEW,
            acceptance.official_id, {"status": "under_review"}, SlaState.ON_TIME), now)
        _event(unit, case_number, ChainEvent(
            f"{event_key}/deadlines", "deadlines.computed", at, Stage.REVIEW, "",
            _deadline_details(found, request.reason or "accepted"), SlaState.ON_TIME), now)
        unit.audit.append(actor=Actor(WORKFLOWS, acceptance.official_id), action="case.opened",
                          subject=_subject(case_number), at=now,
                          details={"item": acceptance.item_code,
                                   "department": acceptance.department_code,
                                   "review_due_at": due.isoformat()})
        unit.commit()
        return as_contract(found)


def recompute_deadlines(*, uow: UnitOfWorkFactory, keys: TrustedKeys,
                        request: DeadlinesRequest, event_key: str, now: datetime) -> Deadlines:
    """New deadlines from the signed acts they follow from; the open task follows them."""
    case_number = str(request.acceptance.body.get("case_number", ""))

    def check(statement: SignedStatement, kind: StatementKind) -> StatementFacts:
        return verified(keys=keys, statement=statement, kind=kind, case_number=case_number,
                        violations=uow, now=now)

    acceptance = check(request.acceptance, StatementKind.ACCEPTANCE)
    clock_kinds = {str(k): k for k in (StatementKind.PROCEDURE_START,
                                       StatementKind.PROCEDURE_END)}
    pauses = [check(s, clock_kinds.get(str(s.body.get("kind")), StatementKind.PROCEDURE_START))
              for s in request.pauses]
    extension = (check(request.extension, StatementKind.EXTENSION)
                 if request.extension is not None else None)
    if extension is not None and content_digest(
            reason=request.extension_reason) != extension.content_sha256:
        raise InvalidArgument("the extension's reason is not the one review signed")
    at = request.at or now
    with uow() as unit:
        progress = unit.progress.get(case_number, for_update=True)
        if progress is None:
            raise NotFound(f"case {case_number} was never opened in review")
        # An extension review recorded stays, whatever a later request leaves out: a
        # replayed older request cannot take a signed act back.
        kept = unit.decisions.get(case_number, "extension")
        extension_days = extension.days if extension else (
            int(kept.outcome.removeprefix("extend_")) if kept else 0)
        found = _deadlines_of(unit, acceptance, pauses, extension_days, china_date(at))
        if request.extension is not None and extension is not None and \
                unit.decisions.get(case_number, "extension") is None:
            decision_id = unit.decisions.add(RecordedDecision(
                case_number=case_number, stage="extension",
                outcome=f"extend_{extension.days}", official_id=extension.official_id,
                system=extension.system, decided_at=at, opinion=request.extension_reason,
                on_behalf_of=extension.on_behalf_of, delegation_id=extension.delegation_id,
                statement=json.dumps(statement_json(request.extension), sort_keys=True)),
                recorded_at=now)
            unit.authority.record(DECISIONS, decision_id,
                                  actor=Actor(extension.system, extension.official_id),
                                  action="decision.recorded", subject=f"decision/{decision_id}",
                                  at=now, details={"case": case_number, "stage": "extension",
                                                   "outcome": f"extend_{extension.days}"})
        paused_for = (pauses[-1].procedure if pauses
                      and pauses[-1].kind == StatementKind.PROCEDURE_START else "")
        unit.progress.save(replace(
            progress, warning_at=found.warning_at, promised_due_at=found.promised_due_at,
            legal_due_at=found.legal_due_at, unknown_year=found.unknown_year,
            stage_due_at=dict(found.stage_due_at), paused_for=paused_for,
            extension_days=extension_days, updated_at=now))
        if request.stage in STAGE_ROLE:
            _redue(unit, case_number, request.stage, found)
        # What happened is read from the signed acts, never from the request's words.
        kind, event_id, official = "deadlines.computed", event_key, ""
        ended = pauses[-1] if pauses and pauses[-1].kind == StatementKind.PROCEDURE_END \
            else None
        if request.cause == "procedure_ended" and ended is not None:
            # Once per signed end, however often the computation is asked for again.
            kind, official = "clock.resumed", ended.official_id
            event_id = f"procedure-ended/{ended.issued_at}"
            if not unit.events.has(case_number, event_id):
                unit.audit.append(actor=Actor(ended.system, ended.official_id),
                                  action="case.special_procedure_ended",
                                  subject=_subject(case_number), at=now,
                                  details={"procedure": ended.procedure})
        elif request.cause == "extended" and extension is not None:
            kind, official = "time_limit.extended", extension.official_id
        note = "".join(ch for ch in request.reason if ch.isprintable())[:120]
        details = _deadline_details(found, note or "recomputed")
        if extension is not None:
            details["extension_days"] = str(extension.days)
        _event(unit, case_number, ChainEvent(event_id, kind, at, progress.stage, official,
                                             details, request.sla_state), now)
        unit.commit()
        return as_contract(found)


# ---- decisions ---------------------------------------------------------------------------

def record_transition(*, uow: UnitOfWorkFactory, keys: TrustedKeys, transition: Transition,
                      now: datetime) -> bool:
    """A decided stage: the decision kept, its task closed, the next one opened. True if new."""
    decision = transition.decision
    case_number = transition.case_number
    check_case_number(case_number)
    facts = verified(keys=keys, statement=decision.statement, kind=StatementKind.DECISION,
                     case_number=case_number, violations=uow, now=now)
    if facts.stage != decision.stage or facts.outcome != decision.outcome or \
            facts.official_id != decision.official_id:
        raise InvalidArgument("the decision does not match the statement review signed")
    if content_digest(opinion=decision.opinion,
                      legal_basis=decision.legal_basis) != facts.content_sha256:
        raise InvalidArgument("the opinion and legal basis are not the ones review signed")
    following = next_stage(facts.stage)
    sealed = None
    if following == Stage.COMPLETED:
        # The case is done only on intake's signed word that it sealed it.
        if transition.sealed is None:
            record_violation(uow=uow(), case_number=case_number, what="sealed",
                             reason="a completion without intake's seal", now=now)
            raise PermissionDenied(f"case {case_number} is not recorded as sealed: intake's "
                                   "signed receipt is missing")
        sealed = verified(keys=keys, statement=transition.sealed, kind=StatementKind.SEALED,
                          case_number=case_number, violations=uow, now=now)
    with uow() as unit:
        recorded = unit.decisions.get(case_number, facts.stage)
        if recorded is not None:
            if recorded.statement == json.dumps(statement_json(decision.statement),
                                                sort_keys=True):
                return False  # the same decision again: a retried activity
            unit.connection.rollback()
            record_violation(uow=uow(), case_number=case_number, what="second decision",
                             reason=f"{facts.stage} was decided already", now=now)
            raise PermissionDenied(f"the {facts.stage} of case {case_number} was decided "
                                   "already: a second decision is not recorded")
        progress = unit.progress.get(case_number, for_update=True)
        if progress is None:
            raise NotFound(f"case {case_number} was never opened in review")
        if progress.stage != facts.stage:
            raise FailedPrecondition(
                f"case {case_number} is at {progress.stage} in review, not at {facts.stage}")
        decision_id = unit.decisions.add(RecordedDecision(
            case_number=case_number, stage=facts.stage, outcome=facts.outcome,
            official_id=facts.official_id, system=facts.system, decided_at=decision.decided_at,
            opinion=decision.opinion, legal_basis=decision.legal_basis,
            on_behalf_of=facts.on_behalf_of, delegation_id=facts.delegation_id,
            statement=json.dumps(statement_json(decision.statement), sort_keys=True)),
            recorded_at=now)
        task = unit.tasks.get(case_number, facts.stage, for_update=True)
        if task is not None and task.is_open:
            unit.tasks.save(replace(task, claimed_by=task.claimed_by or facts.official_id,
                                    claimed_at=task.claimed_at or now, closed_at=now,
                                    closed_by=facts.official_id, outcome=facts.outcome))
        # The next task follows from the chain's rules and review's own record of the case.
        if following in STAGE_ROLE:
            _open_task(unit, Task(
                case_number=case_number, stage=following,
                department_code=deciding_department(following, progress.department_code),
                role=STAGE_ROLE[following], item_code=progress.item_code,
                due_at=progress.stage_due_at.get(following, progress.promised_due_at),
                opened_at=now), now)
        completed = sealed is not None
        certificate = sealed.certificate_number if sealed else progress.certificate_number
        outcome = sealed.outcome if sealed else progress.outcome
        if completed:
            unit.escalations.close_of_case(case_number, now=now)
        unit.progress.save(replace(progress, stage=following, updated_at=now,
                                   certificate_number=certificate, outcome=outcome))
        details = {"outcome": facts.outcome, "next_stage": following}
        if facts.on_behalf_of:
            details |= {"on_behalf_of": facts.on_behalf_of, "delegation": facts.delegation_id}
        if completed:
            details |= {"decision": outcome, "certificate_number": certificate}
        _event(unit, case_number, ChainEvent(
            f"{facts.stage}.decided", f"{facts.stage}.decided", decision.decided_at,
            facts.stage, facts.official_id, details, transition.sla_state), now)
        # The decision's row is tied to this entry by its digest (kernel.authority).
        unit.authority.record(DECISIONS, decision_id, actor=Actor(facts.system, facts.official_id),
                              action="decision.recorded", subject=f"decision/{decision_id}",
                              at=now, details={"case": case_number, "stage": facts.stage,
                                               "outcome": facts.outcome, "next_stage": following,
                                               **({"on_behalf_of": facts.on_behalf_of,
                                                   "delegation": facts.delegation_id}
                                                  if facts.on_behalf_of else {})})
        unit.commit()
        return True


def close_case(*, uow: UnitOfWorkFactory, keys: TrustedKeys, closing: CaseClosing,
               now: datetime) -> bool:
    """A case withdrawn through the window: its task and escalations closed. True if new."""
    case_number = closing.case_number
    check_case_number(case_number)
    if closing.statement is None:
        raise InvalidArgument("a withdrawal is closed only with the window's statement")
    facts = verified(keys=keys, statement=closing.statement, kind=StatementKind.WITHDRAWAL,
                     case_number=case_number, violations=uow, now=now)
    with uow() as unit:
        progress = unit.progress.get(case_number, for_update=True)
        if progress is None:
            raise NotFound(f"case {case_number} was never opened in review")
        if progress.stage == Stage.WITHDRAWN:
            return False
        if progress.stage == Stage.COMPLETED:
            raise FailedPrecondition(f"case {case_number} was completed before the withdrawal")
        task = unit.tasks.get(case_number, progress.stage, for_update=True)
        if task is not None and task.is_open:
            unit.tasks.save(replace(task, closed_at=now, closed_by=facts.official_id,
                                    outcome="withdrawn"))
        unit.escalations.close_of_case(case_number, now=now)
        unit.progress.save(replace(progress, stage=Stage.WITHDRAWN, outcome="withdrawn",
                                   updated_at=now))
        _event(unit, case_number, ChainEvent(
            "withdrawn", "withdrawn", closing.at, progress.stage, facts.official_id,
            {"status": "withdrawn"}, progress.sla_state), now)
        unit.audit.append(actor=Actor(facts.system, facts.official_id), action="case.withdrawn",
                          subject=_subject(case_number), at=now,
                          details={"stage": progress.stage})
        unit.commit()
        return True


# ---- the clock ------------------------------------------------------------------------

def mark_sla(*, uow: UnitOfWorkFactory, keys: TrustedKeys, mark: SlaMark, event_key: str,
             now: datetime) -> list[Escalation]:
    """A new SLA state on the record, and each breach escalated once to the supervision desk."""
    case_number = mark.case_number
    check_case_number(case_number)
    unknown = set(mark.escalations) - set(ESCALATION_KINDS)
    if unknown or mark.sla_state not in set(SlaState):
        raise InvalidArgument(f"not an SLA state or escalation: {mark.sla_state} {unknown}")
    procedure = ""
    official = ""
    if mark.statement is not None:
        started = verified(keys=keys, statement=mark.statement,
                           kind=StatementKind.PROCEDURE_START, case_number=case_number,
                           violations=uow, now=now)
        procedure, official = started.procedure, started.official_id
    opened: list[Escalation] = []
    with uow() as unit:
        progress = unit.progress.get(case_number, for_update=True)
        if progress is None:
            raise NotFound(f"case {case_number} was never opened in review")
        dues = {"promised_breach": mark.promised_due_at or progress.promised_due_at,
                "legal_breach": mark.legal_due_at or progress.legal_due_at}
        for kind in mark.escalations:
            if unit.escalations.get(case_number, kind) is not None:
                continue
            escalation = Escalation(case_number=case_number,
                                    department_code=progress.department_code,
                                    stage=mark.stage, kind=kind, due_at=dues[kind],
                                    opened_at=now)
            escalation = replace(escalation, id=unit.escalations.add(escalation))
            opened.append(escalation)
            unit.audit.append(actor=Actor(WORKFLOWS), action="escalation.opened",
                              subject=f"escalation/{escalation.id}", at=now,
                              details={"case": case_number, "kind": kind,
                                       "department": progress.department_code,
                                       "stage": mark.stage})
            _event(unit, case_number, ChainEvent(
                f"{event_key}/{kind}", "escalated", mark.at, mark.stage, "",
                {"kind": kind}, mark.sla_state), now)
        paused_for = procedure if mark.sla_state == SlaState.PAUSED else progress.paused_for
        if progress.sla_state != mark.sla_state or paused_for != progress.paused_for:
            unit.progress.save(replace(progress, sla_state=mark.sla_state,
                                       paused_for=paused_for, updated_at=now))
            kind = "clock.paused" if procedure else f"sla.{mark.sla_state}"
            if procedure:
                unit.audit.append(actor=Actor(WORKFLOWS, official),
                                  action="case.special_procedure_started",
                                  subject=_subject(case_number), at=now,
                                  details={"procedure": procedure})
            _event(unit, case_number, ChainEvent(
                f"{event_key}/sla", kind, mark.at, mark.stage, official,
                {"procedure": procedure} if procedure else {}, mark.sla_state), now)
        unit.commit()
    return opened
