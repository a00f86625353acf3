"""Projects, tenders and sealed bids: the use cases, one function each, on a unit of work.

Who may do what:

- registering a project, announcing a tender, recording a direct award and
  every official's act on a tender need a trading officer, spoken for by a
  system the registry lets speak for one (the trading platform, the operator
  console);
- a sealed bid is taken only from the calling system the bidders directory
  names for the bidder: a bidder's system cannot bid for another bidder,
  and no officer's system can bid at all.

The catalogue is enforced here: a project the catalogue makes enter the venue
(by its estimated value, or by the amount a direct award would record) is
refused by ``record_direct_award`` with the rule's code and threshold; the
only way to trade it is ``announce_tender``.

Officials' acts are signed here (``tender_statement_body``) and sent to the
tender's workflow by the API layer; the recording itself happens in the
trading activities (services/trading/app/tender_steps.py), so a refused act
leaves nothing behind. Audit entries and messages name officials and bidders
by id only; no bid content is ever logged or audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from kernel.audit import Actor
from kernel.calendar import UnknownYearError, WorkingCalendar
from kernel.chinatime import china_date
from kernel.directory import Official, read_sample, require_official
from kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from kernel.identity import Caller
from kernel.numbering import day_number
from kernel.signing import ServiceSigner, Signed
from services.trading.app.request_ids import Asked, act_asked_again, answer_again
from services.trading.db.repository import TradingUnitOfWork
from services.trading.domain.evaluation import (
    DEFAULT_METHOD,
    DEFAULT_WEIGHTS,
    Method,
    Weights,
    check_weights,
)
from services.trading.domain.model import act_key, entry_requiring_venue, require_category
from services.trading.domain.monitoring import BidSeen, alerts_on_bid
from services.trading.domain.sealed_bids import check_key, check_submission
from services.trading.domain.tenders import (
    FUNDING_SOURCES,
    Bidder,
    Project,
    SealedBid,
    Tender,
    TenderStage,
    check_amount,
    check_sealed_bid,
    refuse_outside_venue,
)
from workflows import tender_rules as rules
from workflows.approval_contract import as_statement, content_digest, iso_instant
from workflows.approval_rules import RuleBroken
from workflows.tender_contract import (
    ObjectionTarget,
    OfficialAct,
    StatementKind,
    TenderFacts,
    parse_instant,
    tender_statement_body,
)

TRADING_OFFICER = "trading_officer"
#: Who acts in the audit log when the service itself acts.
TRADING_SYSTEM = "govhall-trading"


def _broken(rule: RuleBroken) -> Exception:
    kinds: dict[str, type[Exception]] = {"FailedPrecondition": FailedPrecondition,
                                         "InvalidArgument": InvalidArgument,
                                         "PermissionDenied": PermissionDenied}
    return kinds.get(rule.status, FailedPrecondition)(rule.message)


def _actor(caller: Caller, official: Official) -> Actor:
    return Actor(caller.system, official.id)


# ---- projects and the catalogue --------------------------------------------------------------

def register_project(*, uow: TradingUnitOfWork, caller: Caller, request_id: str,
                     category: str, title: str, estimated_value_fen: int, funding_source: str,
                     department_code: str, now: datetime) -> Project:
    """Register a project; the catalogue's entry that makes it enter, if any, goes with it.

    The same ``request_id`` again returns the project it registered when it is the same
    request again (the same system, the same terms); otherwise ALREADY_EXISTS
    (``request_ids.answer_again``).
    """
    require_category(category)
    check_amount(estimated_value_fen, field="estimated_value_fen")
    if funding_source not in FUNDING_SOURCES:
        raise InvalidArgument(f"funding_source must be one of {', '.join(FUNDING_SOURCES)}",
                              violations=[FieldViolation("funding_source", "unknown")])
    if not title.strip():
        raise InvalidArgument("title must not be blank",
                              violations=[FieldViolation("title", "must not be blank")])
    asked = _project_asked(caller.system, category=category, title=title.strip(),
                           estimated_value_fen=estimated_value_fen,
                           funding_source=funding_source, department_code=department_code)
    try:
        with uow:
            official = require_official(uow.staff, caller, role=TRADING_OFFICER)
            existing = uow.projects.by_request(request_id)
            if existing is not None:
                return _the_same_project(uow, existing, request_id=request_id, asked=asked)
            if uow.departments.get(department_code) is None:
                raise NotFound(f"department {department_code} is not in the directory")
            entry = entry_requiring_venue(uow.catalogue.list(category=category),
                                          category=category,
                                          estimated_value_fen=estimated_value_fen)
            day = china_date(now)  # numbered by the day in China, as cases are
            number = day_number("PJ", day, uow.sequences.next(f"PJ-{day:%Y%m%d}"),
                                what="project")
            project = Project(number, category, title.strip(), estimated_value_fen,
                              funding_source, department_code, entry, now)
            uow.projects.add(project, request_id=request_id, registered_by=official.id,
                             system=caller.system)
            uow.audit.append(actor=_actor(caller, official), action="project.registered",
                             subject=f"project/{number}", at=now,
                             details={"category": category,
                                      "estimated_value_fen": estimated_value_fen,
                                      "funding_source": funding_source,
                                      "entry_code": entry.code if entry else ""})
            uow.commit()
            return project
    except IntegrityError:
        # The same request id raced (PostgreSQL lets both look before either inserts): the
        # first one's project is the answer, to that request only.
        with uow:
            raced = uow.projects.by_request(request_id)
            if raced is None:
                raise
            return _the_same_project(uow, raced, request_id=request_id, asked=asked)


def _project_asked(system: str, **terms: object) -> Asked:
    """A registration as ``request_ids.answer_again`` compares it: the system, the
    department the project is for, and every term of the project."""
    return Asked(system, str(terms["department_code"]), terms)


def _the_same_project(uow: TradingUnitOfWork, project: Project, *, request_id: str,
                      asked: Asked) -> Project:
    """The project registered under ``request_id`` when this is that request again."""
    first = _project_asked(
        uow.projects.registering_system(project.project_no),
        category=project.category, title=project.title,
        estimated_value_fen=project.estimated_value_fen,
        funding_source=project.funding_source, department_code=project.department_code)
    return answer_again(project, request_id=request_id, what="project", first=first,
                        now=asked)


@dataclass(frozen=True)
class DirectAward:
    project_no: str
    amount_fen: int
    recorded_at: datetime


def record_direct_award(*, uow: TradingUnitOfWork, caller: Caller, request_id: str,
                        project_no: str, supplier_code: str, amount_fen: int,
                        now: datetime) -> DirectAward:
    """Record a project awarded outside the venue, which only the catalogue may allow.

    Refused with FAILED_PRECONDITION naming the rule when the catalogue makes
    the project enter the venue at its estimated value or at ``amount_fen``,
    and when a tender for it was announced; ALREADY_EXISTS for a second award.
    The same ``request_id`` again returns the award when it is the same request again (the
    same system, project, supplier and amount); otherwise ALREADY_EXISTS
    (``request_ids.answer_again``).
    """
    check_amount(amount_fen, field="amount_fen")
    asked = Asked(caller.system, project_no,
                  {"supplier_code": supplier_code, "amount_fen": amount_fen})
    try:
        with uow:
            official = require_official(uow.staff, caller, role=TRADING_OFFICER)
            earlier = uow.projects.direct_award_by_request(request_id)
            if earlier is not None:
                return _the_same_award(earlier, request_id=request_id, asked=asked)
            project = uow.projects.get(project_no, lock=True)
            if project is None:
                raise NotFound(f"project {project_no} is not registered")
            by_amount = entry_requiring_venue(uow.catalogue.list(category=project.category),
                                              category=project.category,
                                              estimated_value_fen=amount_fen)
            refuse_outside_venue(project, amount_fen=amount_fen, entry=by_amount)
            tender_no = uow.tenders.of_project(project_no)
            if tender_no is not None:
                raise FailedPrecondition(f"project {project_no} is tendered in the venue "
                                         f"({tender_no}): it cannot be awarded directly")
            if uow.projects.direct_award(project_no) is not None:
                # The same request may have recorded it since it was looked for (PostgreSQL
                # reads each statement's committed rows): then that is the answer.
                raced = uow.projects.direct_award_by_request(request_id)
                if raced is not None:
                    return _the_same_award(raced, request_id=request_id, asked=asked)
                raise AlreadyExists(f"project {project_no} has a direct award already")
            uow.projects.add_direct_award(project_no, request_id=request_id,
                                          supplier_code=supplier_code, amount_fen=amount_fen,
                                          recorded_by=official.id, at=now,
                                          system=caller.system)
            uow.audit.append(actor=_actor(caller, official), action="project.awarded_directly",
                             subject=f"project/{project_no}", at=now,
                             details={"amount_fen": amount_fen,
                                      "supplier_code": supplier_code})
            uow.commit()
            return DirectAward(project_no, amount_fen, now)
    except IntegrityError:
        # The same request id, or the same project, raced (PostgreSQL lets both look before
        # either inserts): the first one's award is the answer, to that request only.
        with uow:
            raced = uow.projects.direct_award_by_request(request_id)
            if raced is not None:
                return _the_same_award(raced, request_id=request_id, asked=asked)
            if uow.projects.direct_award(project_no) is None:
                raise
        raise AlreadyExists(f"project {project_no} has a direct award already") from None


def _the_same_award(award: Any, *, request_id: str, asked: Asked) -> DirectAward:
    """The award recorded under ``request_id`` (its row) when this is that request again."""
    first = Asked(award.system, award.project_no,
                  {"supplier_code": award.supplier_code, "amount_fen": award.amount_fen})
    return answer_again(DirectAward(award.project_no, award.amount_fen, award.recorded_at),
                        request_id=request_id, what="direct award", first=first, now=asked)


# ---- tenders -------------------------------------------------------------------------------

def announce_tender(*, uow: TradingUnitOfWork, signer: ServiceSigner,
                    calendar: WorkingCalendar, caller: Caller, request_id: str,
                    project_no: str, bid_deadline: datetime, documents_until: datetime | None,
                    decryption_window: timedelta | None, now: datetime,
                    evaluation_method: Method | None = None,
                    weights: Weights | None = None) -> Tender:
    """Announce a tender for a registered project: checked against the timing rules, the
    signed announcement kept as the outbox entry of its workflow (started by the caller).

    The same ``request_id`` again returns the tender it announced when it is the same
    request again (the same system, the same project, the same terms); otherwise
    ALREADY_EXISTS (``request_ids.answer_again``).
    """
    window = decryption_window or rules.DEFAULT_DECRYPTION_WINDOW
    method = evaluation_method or DEFAULT_METHOD
    if method == Method.COMPREHENSIVE:
        weights = weights or DEFAULT_WEIGHTS
        check_weights(weights)
    elif weights is not None:
        raise InvalidArgument("weights are for comprehensive scoring only",
                              violations=[FieldViolation("weights", "only for comprehensive "
                                                         "scoring")])
    try:
        rules.check_decryption_window(window)
    except RuleBroken as broken:
        raise _broken(broken) from broken
    asked = Asked(caller.system, project_no, dict(
        bid_deadline=iso_instant(bid_deadline),
        documents_until=iso_instant(documents_until) if documents_until else "",
        decryption_window_seconds=int(window.total_seconds()), evaluation_method=str(method),
        weights=[weights.price, weights.technical, weights.business] if weights else []))
    try:
        return _announce(uow=uow, signer=signer, calendar=calendar, caller=caller,
                         request_id=request_id, project_no=project_no,
                         bid_deadline=bid_deadline, documents_until=documents_until,
                         window=window, method=method, weights=weights, asked=asked, now=now)
    except IntegrityError:
        # The same request id, or the same project, raced (PostgreSQL lets both look before
        # either inserts): the first one's tender is the answer, to that request only.
        with uow:
            raced = uow.tenders.by_request(request_id)
            if raced is not None:
                return _the_same_tender(uow, raced, request_id=request_id, asked=asked)
            if uow.tenders.of_project(project_no) is None:
                raise
        raise AlreadyExists(f"project {project_no} has a tender already") from None


#: The categories a tender takes; land and property rights are traded by listing.
_TENDERED = (rules.GOVERNMENT_PROCUREMENT, "construction")


def _the_same_tender(uow: TradingUnitOfWork, tender: Tender, *, request_id: str,
                     asked: Asked) -> Tender:
    """The tender announced under ``request_id`` when this is that request again (the same
    system, the same project, the same terms)."""
    facts = TenderFacts.read(uow.tenders.announcement(tender.tender_no)["body"])
    first = Asked(facts.system, facts.project_no, dict(
        bid_deadline=facts.bid_deadline, documents_until=facts.documents_until,
        decryption_window_seconds=facts.decryption_window_seconds,
        evaluation_method=facts.evaluation_method, weights=list(facts.weights)))
    return answer_again(tender, request_id=request_id, what="tender", first=first, now=asked)


def _announce(*, uow: TradingUnitOfWork, signer: ServiceSigner, calendar: WorkingCalendar,
              caller: Caller, request_id: str, project_no: str, bid_deadline: datetime,
              documents_until: datetime | None, window: timedelta, method: Method,
              weights: Weights | None, asked: Asked, now: datetime) -> Tender:
    with uow:
        official = require_official(uow.staff, caller, role=TRADING_OFFICER)
        existing = uow.tenders.by_request(request_id)
        if existing is not None:
            return _the_same_tender(uow, existing, request_id=request_id, asked=asked)
        # The rules that read the clock, for a new tender only: a retry after a lost answer
        # is answered above, however close the deadline has come since.
        try:
            rules.check_bid_period(announced_at=now, deadline=bid_deadline)
        except RuleBroken as broken:
            raise _broken(broken) from broken
        project = uow.projects.get(project_no, lock=True)
        if project is None:
            raise NotFound(f"project {project_no} is not registered")
        if project.category not in _TENDERED:
            raise FailedPrecondition(
                f"project {project_no} is of the {project.category} category: a tender takes "
                "government procurement and construction projects (land is listed, property "
                "rights are disclosed: DESIGN.md §2)")
        if uow.tenders.of_project(project_no) is not None:
            # The same request may have announced it since it was looked for (PostgreSQL
            # reads each statement's committed rows): then that is the answer.
            raced = uow.tenders.by_request(request_id)
            if raced is not None:
                return _the_same_tender(uow, raced, request_id=request_id, asked=asked)
            raise AlreadyExists(f"project {project_no} has a tender already")
        if uow.projects.direct_award(project_no) is not None:
            raise FailedPrecondition(f"project {project_no} was awarded directly")
        objections_until: datetime | None = None
        if project.category == rules.GOVERNMENT_PROCUREMENT:
            if documents_until is None:
                raise InvalidArgument(
                    "a government procurement tender says until when its documents are "
                    "available", violations=[FieldViolation("documents_until", "required")])
            try:
                rules.check_documents_period(calendar, announced_at=now,
                                             documents_until=documents_until,
                                             deadline=bid_deadline)
                objections_until = rules.procurement_objections_until(calendar,
                                                                      documents_until)
            except RuleBroken as broken:
                raise _broken(broken) from broken
            except UnknownYearError as error:
                raise FailedPrecondition(str(error)) from error
        elif documents_until is not None:
            raise InvalidArgument(
                "documents_until is for government procurement only",
                violations=[FieldViolation("documents_until", "only for procurement")])
        day = china_date(now)  # numbered by the day in China, as cases are
        tender_no = day_number("TD", day, uow.sequences.next(f"TD-{day:%Y%m%d}"),
                               what="tender")
        announcement = signer.sign(tender_statement_body(
            kind=StatementKind.ANNOUNCEMENT, tender_no=tender_no, official_id=official.id,
            department_code=official.department_code, roles=sorted(official.roles),
            system=caller.system, issued_at=now, request_id=request_id,
            project_no=project_no, category=project.category,
            entry_code=project.entry.code if project.entry else "",
            tenderer_department=project.department_code, bid_deadline=bid_deadline,
            documents_until=documents_until, objections_until=objections_until,
            decryption_window_seconds=int(window.total_seconds()),
            evaluation_method=str(method),
            weights=[weights.price, weights.technical, weights.business] if weights else []))
        tender = Tender(tender_no, project_no, project.category, TenderStage.BIDDING, now,
                        bid_deadline, documents_until, objections_until,
                        int(window.total_seconds()), False, False, "",
                        project.entry.code if project.entry else "")
        uow.tenders.add(tender, request_id=request_id, announcement=announcement.as_dict())
        uow.audit.append(actor=_actor(caller, official), action="tender.announced",
                         subject=f"tender/{tender_no}", at=now,
                         details={"project_no": project_no, "category": project.category,
                                  "bid_deadline": bid_deadline.isoformat()})
        uow.commit()
        return tender


def get_tender(*, uow: TradingUnitOfWork, tender_no: str) -> Tender:
    with uow:
        tender = uow.tenders.get(tender_no)
    if tender is None:
        raise NotFound(f"tender {tender_no} is not known")
    return tender


@dataclass(frozen=True)
class TenderLink:
    """What a complaint naming a tender is counted for: codes only, no bidder or bid."""

    category: str
    #: The tenderer's department (the project's).
    department_code: str
    stage: TenderStage


def check_tender_link(*, uow: TradingUnitOfWork, tender_no: str) -> TenderLink | None:
    """The category, tenderer's department and stage of ``tender_no``; None when unknown."""
    with uow:
        tender = uow.tenders.get(tender_no)
        if tender is None:
            return None
        project = uow.projects.get(tender.project_no)
    return TenderLink(tender.category, project.department_code if project else "",
                      tender.stage)


def unstarted_tenders(*, uow: TradingUnitOfWork) -> list[str]:
    with uow:
        return uow.tenders.unstarted()


def announcement_of(*, uow: TradingUnitOfWork, tender_no: str) -> dict[str, object]:
    with uow:
        return uow.tenders.announcement(tender_no)


def mark_workflow_started(*, uow: TradingUnitOfWork, tender_no: str, at: datetime) -> None:
    with uow:
        if uow.tenders.mark_started(tender_no):
            uow.audit.append(actor=Actor(TRADING_SYSTEM), action="tender.workflow_started",
                             subject=f"tender/{tender_no}", at=at, details={})
        uow.commit()


@dataclass(frozen=True)
class PreparedAct:
    """An official's act, signed, ready for the tender's workflow."""

    act: OfficialAct
    tender: Tender
    objection_id: str = ""
    answer_due: datetime | None = None


#: The department code a bidder's own act is signed under (a bidder is no official).
BIDDER_AUTHOR = "bidder"


def _objecting_bidder(uow: TradingUnitOfWork, caller: Caller, tender: Tender | None,
                      bidder_id: str, target: str) -> tuple[str, str, list[str]]:
    """The author of a bidder's objection, through the bidder's own system only: to the
    documents any registered bidder, to the candidates only one that bid in the tender.

    Another bidder's system: PERMISSION_DENIED; a bidder not in the directory: NOT_FOUND.
    """
    bidder = uow.bidders.get(bidder_id)
    if bidder is None:
        raise NotFound(f"bidder {bidder_id} is not in the bidders directory")
    if bidder.system != caller.system:
        raise PermissionDenied(f"system {caller.system} may not object for bidder "
                               f"{bidder_id}: only the bidder's own system may")
    if tender is not None and target == ObjectionTarget.CANDIDATES and \
            uow.tenders.bid(tender.tender_no, bidder_id) is None:
        raise PermissionDenied(f"bidder {bidder_id} did not bid in tender {tender.tender_no}: "
                               "only its bidders may object to its candidates")
    return bidder_id, BIDDER_AUTHOR, []


def _one_objection_per_stage(uow: TradingUnitOfWork, tender_no: str, bidder_id: str,
                             target: str) -> None:
    """A supplier raises its objections to one stage at once (Ministry of Finance Order 94,
    art. 10): a second one would pause the tender again and again (FAILED_PRECONDITION)."""
    earlier = _objection_of(uow, tender_no, bidder_id, target)
    if earlier:
        raise FailedPrecondition(
            f"bidder {bidder_id} objected to the {target} of tender {tender_no} "
            f"already ({earlier}): all objections to one stage are raised at once")


def _objection_of(uow: TradingUnitOfWork, tender_no: str, bidder_id: str, target: str) -> str:
    """The id of the objection the bidder made to ``target`` in the tender, or ''."""
    for step in uow.tenders.steps(tender_no):
        if step.step != "objected":
            continue
        body = json.loads(step.statement).get("body", {})
        if body.get("department_code") == BIDDER_AUTHOR and \
                body.get("official_id") == bidder_id and body.get("target") == target:
            return str(body.get("objection_id", ""))
    return ""


@dataclass(frozen=True)
class RecordedAct:
    """The act the calling system recorded under the request id already, as it was
    prepared then, and its feed entry (0: none): the same request again (a retry whose
    answer was lost), answered from the record and never sent again."""

    prepared: PreparedAct
    feed_sequence: int


def prepare_act(*, uow: TradingUnitOfWork, signer: ServiceSigner, calendar: WorkingCalendar,
                caller: Caller, kind: StatementKind, tender_no: str, request_id: str,
                now: datetime, text: str = "", target: str = "", objection_id: str = "",
                candidates: list[str] | None = None, winner: str = "", amount_fen: int = 0,
                contract_no: str = "", bidder_id: str = "") -> PreparedAct | RecordedAct:
    """Check the official and the tender, and sign the act; nothing is written.

    With ``bidder_id`` (an objection only), the act is the bidder's, from its own
    system instead of an official's (``_objecting_bidder``).

    The request is looked up once the caller may act, before the tender's state is
    checked (s17 attack LOW 1): the act the system recorded under it already is answered
    again (``RecordedAct``) when asked the same, even once the tender moved on or finished;
    another content under it is ALREADY_EXISTS naming the terms that differ.

    The workflow checks the act against the tender's rules and state, and the
    trading activity records it: a refused act leaves nothing behind.
    """
    if amount_fen:
        check_amount(amount_fen, field="amount_fen")
    if bidder_id and kind != StatementKind.OBJECTION:
        raise InvalidArgument("only an objection is a bidder's act")
    with uow:
        tender = uow.tenders.get(tender_no)
        if bidder_id:
            author = _objecting_bidder(uow, caller, tender, bidder_id, target)
        else:
            official = require_official(uow.staff, caller, role=TRADING_OFFICER)
            author = (official.id, official.department_code, sorted(official.roles))
        if tender is None:
            raise NotFound(f"tender {tender_no} is not known")
        official_id, department_code, roles = author

        def body(objection_id: str, answer_due: datetime | None) -> dict[str, Any]:
            return tender_statement_body(
                kind=kind, tender_no=tender_no, official_id=official_id,
                department_code=department_code, roles=roles,
                system=caller.system, issued_at=now, request_id=request_id,
                content_sha256=content_digest(text=text) if text else "", target=target,
                objection_id=objection_id, answer_due=answer_due,
                candidates=list(candidates or []), winner=winner, amount_fen=amount_fen,
                contract_no=contract_no, bidder_id=bidder_id)

        again = _recorded_again(uow, caller, tender, body(objection_id, None), text)
        if again is not None:
            return again
        if bidder_id:
            _one_objection_per_stage(uow, tender_no, bidder_id, target)
        answer_due: datetime | None = None
        if kind == StatementKind.OBJECTION:
            taken = sum(1 for s in uow.tenders.steps(tender_no) if s.step == "objected")
            objection_id = f"OB-{taken + 1}"
            try:
                answer_due = rules.answer_due(calendar, category=tender.category,
                                              objected_at=now)
            except UnknownYearError as error:
                raise FailedPrecondition(str(error)) from error
        if kind == StatementKind.EVALUATION:
            valid = set(uow.tenders.valid_prices(tender_no))
            strangers = [c for c in candidates or [] if c not in valid]
            if strangers:
                raise FailedPrecondition(
                    f"{', '.join(strangers)} has no valid bid in tender {tender_no}")
    if tender.stage in (TenderStage.CONTRACTED, TenderStage.FAILED):
        raise FailedPrecondition(f"tender {tender_no} is finished ({tender.stage})")
    return PreparedAct(OfficialAct(as_statement(signer.sign(body(objection_id, answer_due))),
                                   text), tender, objection_id, answer_due)


#: The step each official's act is recorded as (services/trading/app/tender_steps.py).
ACT_STEPS = {StatementKind.AMENDMENT: "amended", StatementKind.OBJECTION: "objected",
             StatementKind.OBJECTION_ANSWER: "objection_answered",
             StatementKind.EVALUATION: "candidates_published", StatementKind.AWARD: "awarded",
             StatementKind.CONTRACT: "contracted"}


def _recorded_again(uow: TradingUnitOfWork, caller: Caller, tender: Tender,
                    body: dict[str, Any], text: str) -> RecordedAct | None:
    """The act the calling system recorded under the request id of the act asked in
    ``body`` (unsigned), when it asks the same terms (the retry of a call whose answer was
    lost: answered from the record, not sent again); ALREADY_EXISTS naming the terms that
    differ when it asks others; None when the system recorded no such act."""
    request_id = str(body.get("request_id") or "")
    step = ACT_STEPS.get(StatementKind(body["kind"]))
    if not request_id or step is None:
        return None
    done = uow.tenders.step(tender.tender_no, act_key(step, caller.system, request_id))
    if done is None:
        return None
    statement = json.loads(done.statement)
    first = statement["body"]
    act_asked_again(None, request_id=request_id, first=first, now=body)
    facts = TenderFacts.read(first)
    recorded = PreparedAct(OfficialAct(as_statement(Signed.from_dict(statement)),
                                       done.content), tender, facts.objection_id,
                           parse_instant(facts.answer_due) if facts.answer_due else None)
    return RecordedAct(recorded, int(done.feed_sequence))


# ---- sealed bids ------------------------------------------------------------------------------

def submit_sealed_bid(*, uow: TradingUnitOfWork, caller: Caller, tender_no: str,
                      bidder_id: str, ciphertext: bytes, ciphertext_sha256: str,
                      key_commitment: str, now: datetime, origin: str = "") -> SealedBid:
    """Take a bidder's sealed bid before the deadline, from the bidder's own system only.

    ``origin`` is the network origin the bid came from (the caller's IP address,
    ``monitoring.network_origin``): kept with the bid, and compared by the monitoring
    rules with the other bids' (``same_origin``), as is the envelope's SHA-256.

    One bid per bidder and tender: a second is ALREADY_EXISTS (the same bid
    sent again is answered with the first: a retry). No replacement: a bidder
    who must change its bid withdraws from the tender instead (not offered
    yet), so a bid cannot be swapped after others' commitments are seen.
    """
    check_sealed_bid(ciphertext=ciphertext, ciphertext_sha256=ciphertext_sha256,
                     key_commitment=key_commitment)
    # The envelope is well formed (govhall-bid/1) and is the one committed to; the key
    # stays with the bidder (services/trading/domain/sealed_bids.py).
    check_submission(ciphertext, tender_number=tender_no, bidder_id=bidder_id,
                     ciphertext_sha256=ciphertext_sha256, key_commitment=key_commitment)
    try:
        with uow:
            bidder = uow.bidders.get(bidder_id)
            if bidder is None:
                raise NotFound(f"bidder {bidder_id} is not in the bidders directory")
            if bidder.system != caller.system:
                raise PermissionDenied(f"system {caller.system} may not bid for bidder "
                                       f"{bidder_id}: only the bidder's own system may")
            tender = uow.tenders.get(tender_no, for_update=True)
            if tender is None:
                raise NotFound(f"tender {tender_no} is not known")
            if tender.stage != TenderStage.BIDDING or now >= tender.bid_deadline:
                raise FailedPrecondition(
                    f"tender {tender_no} takes no more bids: its deadline was "
                    f"{tender.bid_deadline.isoformat()}")
            existing = uow.tenders.bid(tender_no, bidder_id)
            if existing is not None:
                if (existing.ciphertext_sha256, existing.key_commitment) == (
                        ciphertext_sha256, key_commitment):
                    return existing
                raise AlreadyExists(f"bidder {bidder_id} has a bid in tender {tender_no} "
                                    "already: one bid per bidder, not replaced")
            bid = SealedBid(tender_no, bidder_id, ciphertext, ciphertext_sha256,
                            key_commitment, caller.system, now, origin=origin)
            alerts = alerts_on_bid(BidSeen(bidder_id, origin, ciphertext_sha256),
                                   uow.tenders.bids_seen(tender_no))
            uow.tenders.add_bid(bid, alerts=alerts)
            uow.audit.append(actor=Actor(caller.system), action="tender.bid_submitted",
                             subject=f"tender/{tender_no}", at=now,
                             details={"bidder_id": bidder_id,
                                      "ciphertext_sha256": ciphertext_sha256,
                                      "key_commitment": key_commitment,
                                      "bytes": len(ciphertext)})
            uow.commit()
            return bid
    except IntegrityError:
        with uow:
            raced = uow.tenders.bid(tender_no, bidder_id)
        if raced is None:
            raise
        if (raced.ciphertext_sha256, raced.key_commitment) == (ciphertext_sha256,
                                                               key_commitment):
            return raced
        raise AlreadyExists(f"bidder {bidder_id} has a bid in tender {tender_no} already: "
                            "one bid per bidder, not replaced") from None


def reveal_bid_key(*, uow: TradingUnitOfWork, caller: Caller, tender_no: str,
                   bidder_id: str, key: bytes, now: datetime) -> SealedBid:
    """Take a bidder's key in the decryption window, from the bidder's own system, if it is
    the committed one (HMAC key commitment: no second key can open the bid).

    A key that does not match is INVALID_ARGUMENT and nothing is kept; the same key again
    is answered as the first time. Before the deadline (keys then would unseal bids
    early) and after the window, FAILED_PRECONDITION.
    """
    with uow:
        bidder = uow.bidders.get(bidder_id)
        if bidder is None:
            raise NotFound(f"bidder {bidder_id} is not in the bidders directory")
        if bidder.system != caller.system:
            raise PermissionDenied(f"system {caller.system} may not reveal the key of bidder "
                                   f"{bidder_id}: only the bidder's own system may")
        tender = uow.tenders.get(tender_no, for_update=True)
        if tender is None:
            raise NotFound(f"tender {tender_no} is not known")
        bid = uow.tenders.bid(tender_no, bidder_id)
        if bid is None:
            raise NotFound(f"bidder {bidder_id} has no bid in tender {tender_no}")
        if tender.stage != TenderStage.DECRYPTION:
            raise FailedPrecondition(
                f"keys are revealed in the decryption window after the deadline; tender "
                f"{tender_no} is at {tender.stage}")
        check_key(key, tender_number=tender_no, bidder_id=bidder_id,
                  ciphertext_sha256=bid.ciphertext_sha256, key_commitment=bid.key_commitment)
        if bid.revealed_key is not None:
            return bid
        uow.tenders.reveal(tender_no, bidder_id, key, at=now)
        # The key itself is never audited or logged.
        uow.audit.append(actor=Actor(caller.system), action="tender.key_revealed",
                         subject=f"tender/{tender_no}", at=now,
                         details={"bidder_id": bidder_id})
        uow.commit()
        revealed = uow.tenders.bid(tender_no, bidder_id)
        assert revealed is not None
        return revealed


def load_sample_bidders(*, uow: TradingUnitOfWork, sample_dir: Path) -> bool:
    """Load the sample bidders directory, and the experts' own systems, each into an empty
    one, once."""
    with uow:
        sample = read_sample(sample_dir, "trading.json")
        loaded = False
        if not uow.bidders.count():
            for record in sample.get("bidders", []):
                uow.bidders.add(Bidder(record["id"], record["name"], record["system"]))
            uow.audit.append(actor=Actor("govhall-runner"), action="bidders.loaded",
                             subject="bidders_directory",
                             details={"bidders": len(sample.get("bidders", []))})
            loaded = True
        if not uow.evaluations.expert_systems() and sample.get("expert_systems"):
            for record in sample.get("expert_systems", []):
                uow.evaluations.add_expert_system(record["expert_id"], record["system"])
            uow.audit.append(actor=Actor("govhall-runner"), action="expert_systems.loaded",
                             subject="expert_systems",
                             details={"systems": len(sample.get("expert_systems", []))})
            loaded = True
        uow.commit()
        return loaded
