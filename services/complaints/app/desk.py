"""Officials' (and platforms') acts on complaint cases: authenticated, signed, sent to the workflow.

Each act

1. takes the request id: a repeat of the same request gets the first answer;
   the same id with another request is ALREADY_EXISTS (``handled_requests``);
2. checks the calling system AND the official it speaks for, in the role and
   department the act needs (kernel.directory; the registry's speaks-for
   entries): a department's complaint handler for its own cases, the
   center's complaint dispatcher for returns, extensions and merges, the
   origin platform's system for a rating;
3. applies the handling rule (services/complaints/domain/handling.py) to the
   case as recorded, so a wrong act is refused here with a clear status
   and nothing changed;
4. signs a statement of exactly what was checked (the free texts by
   digest) with the complaints service's key and sends it to the case's
   workflow as an update whose id is made of the request id; the workflow's
   recording activity verifies it again and applies the rule in the database.

A refusal leaves nothing behind: the request id is released. An outage
(UNAVAILABLE) keeps it, because the act may have been taken; the caller
sends the same request again, which goes through again with the same update
id, so Temporal answers it with the first result (as review's take_request).
If the act was recorded already, the case has moved on and step 3 would
refuse it: the repeat is not checked again but sends the recorded statement
under the same update id (as review's decision_capacity lets a decision
recorded under the same request id through). The retry is checked before the
state: a repeat whose act is recorded on a case that has ended since (closed,
merged) is answered from the record (``_answer_of``) without the workflow,
which ended with the case (Temporal answers an update id on an ended workflow
only while its history is kept); a new request on such a case is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from pydantic import TypeAdapter

from kernel.audit import Actor
from kernel.directory import Official, acting_official, require_official
from kernel.errors import (
    AlreadyExists,
    GovhallError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from kernel.fieldcipher import FieldCipher
from kernel.handled_requests import UPDATE_IDS, HandledRequest, fingerprint, update_id
from kernel.identity import Caller
from kernel.paging import after_text, page_size, rows_to_fetch, take_page
from kernel.signing import ServiceSigner
from kernel.workflow_gateway import WorkflowGateway
from services.complaints.app.cases import ComplaintView, open_complainant
from services.complaints.db.repository import (
    CaseHandling,
    CoHandler,
    ComplaintsUnitOfWork,
    Reply,
    RequestAct,
    StoredPolicy,
)
from services.complaints.domain import handling as rules
from services.complaints.domain.cases import ComplaintStatus
from services.complaints.domain.handling import CaseState
from services.complaints.domain.policy import DeadlinePolicy
from workflows.complaint_contract import (
    CENTER_DEPARTMENT,
    CONTRIBUTE,
    DECIDE_EXTENSION,
    DISPATCH,
    DISPATCHER_ROLE,
    HANDLER_ROLE,
    MERGE,
    RATE,
    REPLY,
    REQUEST_EXTENSION,
    RETURN_CASE,
    SET_CO_HANDLERS,
    SIGN_FOR,
    Act,
    ActReceipt,
    ActRecorded,
    SignedStatement,
    StatementKind,
    as_statement,
    complaint_statement_body,
    content_digest,
    iso_instant,
    workflow_id,
)

OPERATOR_ROLE = "operator"


@dataclass(frozen=True)
class Desk:
    """What the acts need: the database, the service's signing key, the workflows."""

    reading: Callable[[], ComplaintsUnitOfWork]
    writing: Callable[[], ComplaintsUnitOfWork]
    signer: ServiceSigner
    gateway: WorkflowGateway
    cipher: FieldCipher


@dataclass(frozen=True)
class HandlingView:
    """A case's handling record with its co-handlers, replies and pending requests."""

    case: CaseHandling
    co_handlers: list[CoHandler] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    extension_pending_days: int = 0
    return_basis: str = ""


@dataclass(frozen=True)
class _Taken:
    """The request id claimed: ``seen`` when this request came before, with its answer
    (``response``) if it was given."""

    seen: bool = False
    response: str = ""


def _take_request(*, uow: ComplaintsUnitOfWork, caller: Caller, request_id: str,
                  print_: str, case_number: str, now: datetime) -> _Taken:
    with uow:
        earlier = uow.requests.get(caller.system, request_id)
        if earlier is not None:
            if earlier.fingerprint != print_:
                raise AlreadyExists(
                    f"request_id {request_id} was used for another request: use a new "
                    "request_id for a new request")
            # Not answered yet (an outage, or a twin in flight): it goes through again
            # with the same update id, and Temporal answers with the first result.
            return _Taken(seen=True, response=earlier.response)
        uow.requests.add(HandledRequest(caller.system, request_id, print_, case_number, ""),
                         received_at=now)
        uow.commit()
        return _Taken()


def _answer(*, uow: ComplaintsUnitOfWork, caller: Caller, request_id: str,
            response: str) -> None:
    with uow:
        uow.requests.answer(caller.system, request_id, response)
        uow.commit()


def _release(*, uow: ComplaintsUnitOfWork, caller: Caller, request_id: str) -> None:
    with uow:
        uow.requests.remove(caller.system, request_id)
        uow.commit()


_RECEIPTS = TypeAdapter(ActReceipt)
_RECORDED = TypeAdapter(ActRecorded)


def _state_of(uow: ComplaintsUnitOfWork, case: CaseHandling) -> CaseState:
    pending = uow.extensions.pending(case.case_number)
    return CaseState(
        number=case.case_number, stage=case.status, department_code=case.department_code,
        platform_id=case.platform_id,
        co_handlers={c.department_code: c.contributed_at is not None
                     for c in uow.co_handlers.of_case(case.case_number)},
        reopened=case.reopened,
        extension_pending_days=pending.requested_days if pending else 0,
        extended_days=case.extended_days, returned_by=case.returned_by,
        merged_into=case.merged_into)


@dataclass(frozen=True)
class _Checked:
    """Who acts (as the statement will say) and the case as recorded."""

    official_id: str
    department_code: str
    roles: list[str]
    case: CaseHandling
    #: Facts for the statement found with the case.
    extra: dict[str, str | int | bool | list[str]] = field(default_factory=dict)
    #: Free texts as they are signed and sent, where they differ from the request's (masked).
    texts: dict[str, str] = field(default_factory=dict)
    #: The statement this very request was recorded under already (a repeat whose first
    #: answer was lost): sent again as it was, so Temporal answers with the first result.
    recorded: SignedStatement | None = None
    #: The first answer, as recorded, for a repeat whose case has ended since (its workflow
    #: ended with it): given without asking the workflow.
    answered: ActReceipt | None = None


Check = Callable[[ComplaintsUnitOfWork, Caller, CaseHandling, CaseState], _Checked]


def _official(official: Official, case: CaseHandling) -> _Checked:
    return _Checked(official.id, official.department_code, sorted(official.roles), case)


def _recorded(uow: ComplaintsUnitOfWork, cipher: FieldCipher, caller: Caller,
              case: CaseHandling, request_id: str, texts: dict[str, str]) -> _Checked | None:
    """The act of this request as recorded already, if it was: the case has moved on since
    (that act moved it), so its rule would refuse the request it answered."""
    act = uow.acts.of_request(case.case_number, system=caller.system, request_id=request_id)
    if act is None:
        return None
    document = act.statement
    statement = SignedStatement(document["body"], document["signer"], document["key_id"],
                                document["signature"])
    body = statement.body
    answered = _answer_of(uow, case, act) if case.status in rules.TERMINAL else None
    return _Checked(str(body.get("official_id", "")), str(body.get("department_code", "")),
                    list(body.get("roles", [])), case,
                    texts={name: _masked(uow, cipher, case, text)
                           for name, text in texts.items()},
                    recorded=statement, answered=answered)


def _answer_of(uow: ComplaintsUnitOfWork, case: CaseHandling, act: RequestAct) -> ActReceipt:
    """The receipt the case's workflow gave for ``act`` (ComplaintWorkflow._receipt over the
    recording's answer), rebuilt from the record: the case has ended, and its workflow with
    it (Temporal keeps an ended workflow's update results only for the namespace's
    retention)."""
    recorded = _RECORDED.validate_json(act.result)
    reopened_at = uow.acts.reopened_at(case.case_number) if case.reopened else None
    reopened = reopened_at is not None and act.recorded_at >= reopened_at
    sign_for = recorded.sign_for_due if recorded.stage == ComplaintStatus.ROUTED else None
    return ActReceipt(case.case_number, recorded.stage,
                      recorded.department_code or case.department_code,
                      iso_instant(sign_for) if sign_for is not None else "",
                      iso_instant(recorded.reply_due) if recorded.reply_due is not None else "",
                      reopened)


def _checked(*, uow: ComplaintsUnitOfWork, caller: Caller, case_number: str,
             check: Check, repeat: tuple[FieldCipher, str, dict[str, str]] | None = None,
             ) -> _Checked:
    """The act checked against the case as recorded. ``repeat`` (the cipher, the request
    id and the texts) for a request seen before and not answered: found recorded, it is
    not checked again."""
    with uow:
        if caller.official_id:
            # Who may speak for whom is settled before anything is said about the case.
            acting_official(uow.staff, caller)
        case = uow.handling.get(case_number)
        if case is None:
            raise NotFound(f"complaint case {case_number} does not exist")
        found = _recorded(uow, repeat[0], caller, case, repeat[1], repeat[2]) \
            if repeat is not None else None
        checked = found or check(uow, caller, case, _state_of(uow, case))
    if checked.answered is not None:
        return checked
    if not case.workflow_started:
        raise Unavailable(f"the workflow of case {case_number} is being started: try again "
                          "in a moment")
    return checked


async def _act(desk: Desk, *, caller: Caller, case_number: str, request_id: str,
               update: str, kind: StatementKind, check: Check, now: datetime,
               texts: dict[str, str] | None = None,
               **facts: str | int | bool | list[str]) -> ActReceipt:
    """Check, sign and send one act, once per request id."""
    texts = texts or {}
    print_ = fingerprint(update, official=caller.official_id, case=case_number,
                         texts=texts, **facts)
    facts.pop("requested_department", None)
    taken = await asyncio.to_thread(
        _take_request, uow=desk.writing(), caller=caller, request_id=request_id,
        print_=print_, case_number=case_number, now=now)
    if taken.response:
        return _RECEIPTS.validate_json(taken.response)
    try:
        checked = await asyncio.to_thread(
            _checked, uow=desk.reading(), caller=caller, case_number=case_number, check=check,
            repeat=(desk.cipher, request_id, texts) if taken.seen else None)
        if checked.answered is not None:
            # A repeat of an act recorded on a case that has ended: the first answer.
            receipt = checked.answered
            await asyncio.to_thread(_answer, uow=desk.writing(), caller=caller,
                                    request_id=request_id,
                                    response=_RECEIPTS.dump_json(receipt).decode("utf-8"))
            return receipt
        texts = texts | checked.texts
        digest = content_digest(**texts) if texts else ""
        statement = checked.recorded or as_statement(desk.signer.sign(complaint_statement_body(
            kind=kind, case_number=case_number, official_id=checked.official_id,
            department_code=checked.department_code, roles=checked.roles,
            system=caller.system, issued_at=now, request_id=request_id,
            content_sha256=digest, **(facts | checked.extra))))
        receipt = await desk.gateway.update(
            workflow_id(case_number), update, Act(statement, texts),
            update_id=update_id(update, request_id, print_,
                                key=desk.signer.derived_key(UPDATE_IDS)),
            result_type=ActReceipt)
    except Unavailable:
        raise  # it may have been taken: the same request must find its id again
    except GovhallError:
        await asyncio.to_thread(_release, uow=desk.writing(), caller=caller,
                                request_id=request_id)
        raise
    await asyncio.to_thread(_answer, uow=desk.writing(), caller=caller, request_id=request_id,
                            response=_RECEIPTS.dump_json(receipt).decode("utf-8"))
    return receipt


# ---- who may act ----------------------------------------------------------------------------

def _lead_handler(uow: ComplaintsUnitOfWork, caller: Caller, case: CaseHandling) -> Official:
    return require_official(uow.staff, caller, role=HANDLER_ROLE,
                            department_code=case.department_code)


def _dispatcher(uow: ComplaintsUnitOfWork, caller: Caller) -> Official:
    return require_official(uow.staff, caller, role=DISPATCHER_ROLE,
                            department_code=CENTER_DEPARTMENT)


async def sign_for(desk: Desk, *, caller: Caller, case_number: str, request_id: str,
                   now: datetime) -> ActReceipt:
    def check(uow: ComplaintsUnitOfWork, caller: Caller, case: CaseHandling,
              state: CaseState) -> _Checked:
        official = _lead_handler(uow, caller, case)
        rules.sign_for(state, department_code=official.department_code)
        return _official(official, case)
    return await _act(desk, caller=caller, case_number=case_number, request_id=request_id,
                      update=SIGN_FOR, kind=StatementKind.SIGN_FOR, check=check, now=now)


async def return_case(desk: Desk, *, caller: Caller, case_number: str, request_id: str,
                      basis: str, now: datetime) -> ActReceipt:
    def check(uow: ComplaintsUnitOfWork, caller: Caller, case: CaseHandling,
              state: CaseState) -> _Checked:
        official = _lead_handler(uow, caller, case)
        rules.return_case(state, department_code=official.department_code, basis=basis)
        return replace(_official(official, case),
                       texts={"basis": _masked(uow, desk.cipher, case, basis)})
    return await _act(desk, caller=caller, case_number=case_number, request_id=request_id,
                      update=RETURN_CASE, kind=StatementKind.RETURN, check=check, now=now,
                      texts={"basis": basis})


async def dispatch(desk: Desk, *, caller: Caller, case_number: str, request_id: str,
                   outcome: str, department_code: str, basis: str,
                   now: datetime) -> ActReceipt:
    def check(uow: ComplaintsUnitOfWork, caller: Caller, case: CaseHandling,
              state: CaseState) -> _Checked:
        official = _dispatcher(uow, caller)
        if outcome == rules.Outcome.REASSIGN and uow.departments.get(department_code) is None:
            raise InvalidArgument(f"department {department_code} is not in the directory")
        change = rules.dispatch(state, outcome=outcome, target_department=department_code,
                                basis=basis)
        # The statement names the department the case goes to (for send_back: the one
        # that returned it), known once the case is read.
        return replace(_official(official, case),
                       extra={"target_department": change.state.department_code},
                       texts={"basis": _masked(uow, desk.cipher, case, basis)})
    return await _act(desk, caller=caller, case_number=case_number, request_id=request_id,
                      update=DISPATCH, kind=StatementKind.DISPATCH, check=check, now=now,
                      texts={"basis": basis}, outcome=outcome,
                      requested_department=department_code)


async def set_co_handlers(desk: Desk, *, caller: Caller, case_number: str, request_id: str,
                          departments: list[str], now: datetime) -> ActReceipt:
    def check(uow: ComplaintsUnitOfWork, caller: Caller, case: CaseHandling,
              state: CaseState) -> _Checked:
        official = _dispatcher(uow, caller)
        unknown = [code for code in departments if uow.departments.get(code) is None]
        if unknown:
            raise InvalidArgument(f"departments {', '.join(unknown)} are not in the directory")
        rules.set_co_handlers(state, co_handlers=departments)
        return _official(official, case)
    return await _act(desk, caller=caller, case_number=case_number, request_id=request_id,
                      update=SET_CO_HANDLERS, kind=StatementKind.CO_HANDLERS, check=check,
                      now=now, co_handlers=list(departments))


def _masked(uow: ComplaintsUnitOfWork, cipher: FieldCipher, case: CaseHandling,
            text: str) -> str:
    """``text`` with the complainants of ``case`` and of every duplicate merged into it
    masked, and any phone or ID card shaped number: what an official (or a platform's
    rating comment) writes about a case leaves the complaints service's encrypted field
    only in this form (workflow, replies, bases, platform events, webhooks)."""
    names: list[str] = []
    numbers: list[str] = []
    for number in [case.case_number,
                   *(d.case_number for d in uow.handling.merged_into(case.case_number))]:
        stored = uow.cases.get(number)
        if stored is None:
            continue
        complainant = open_complainant(cipher, stored.sealed_complainant, number=number)
        names.append(complainant.name)
        numbers.append(complainant.phone)
    return rules.anonymised(text, names=names, numbers=numbers)


async def contribute(desk: Desk, *, caller: Caller, case_number: str, request_id: str,
                     text: str, now: datetime) -> ActReceipt:
    def check(uow: ComplaintsUnitOfWork, caller: Caller, case: CaseHandling,
              state: CaseState) -> _Checked:
        official = require_official(uow.staff, caller, role=HANDLER_ROLE)
        rules.contribute(state, department_code=official.department_code, text=text)
        return replace(_official(official, case),
                       texts={"contribution": _masked(uow, desk.cipher, case, text)})
    return await _act(desk, caller=caller, case_number=case_number, request_id=request_id,
                      update=CONTRIBUTE, kind=StatementKind.CONTRIBUTION, check=check, now=now,
                      texts={"contribution": text})


async def reply(desk: Desk, *, caller: Caller, case_number: str, request_id: str, text: str,
                now: datetime) -> ActReceipt:
    def check(uow: ComplaintsUnitOfWork, caller: Caller, case: CaseHandling,
              state: CaseState) -> _Checked:
        official = _lead_handler(uow, caller, case)
        rules.reply(state, department_code=official.department_code, text=text)
        return replace(_official(official, case),
                       texts={"reply": _masked(uow, desk.cipher, case, text)})
    return await _act(desk, caller=caller, case_number=case_number, request_id=request_id,
                      update=REPLY, kind=StatementKind.REPLY, check=check, now=now,
                      texts={"reply": text})


async def request_extension(desk: Desk, *, caller: Caller, case_number: str, request_id: str,
                            days: int, basis: str, now: datetime) -> ActReceipt:
    def check(uow: ComplaintsUnitOfWork, caller: Caller, case: CaseHandling,
              state: CaseState) -> _Checked:
        official = _lead_handler(uow, caller, case)
        policy = (uow.policies.get(case.policy_version) if case.policy_version else None) \
            or uow.policies.in_force()
        rules.request_extension(state, department_code=official.department_code, days=days,
                                basis=basis, max_days=policy.policy.max_extension_days)
        return replace(_official(official, case),
                       texts={"basis": _masked(uow, desk.cipher, case, basis)})
    return await _act(desk, caller=caller, case_number=case_number, request_id=request_id,
                      update=REQUEST_EXTENSION, kind=StatementKind.EXTENSION_REQUEST,
                      check=check, now=now, texts={"basis": basis}, days=days)


async def decide_extension(desk: Desk, *, caller: Caller, case_number: str, request_id: str,
                           outcome: str, days: int, now: datetime) -> ActReceipt:
    def check(uow: ComplaintsUnitOfWork, caller: Caller, case: CaseHandling,
              state: CaseState) -> _Checked:
        official = _dispatcher(uow, caller)
        rules.decide_extension(state, outcome=outcome, days=days)
        return _official(official, case)
    return await _act(desk, caller=caller, case_number=case_number, request_id=request_id,
                      update=DECIDE_EXTENSION, kind=StatementKind.EXTENSION_DECISION,
                      check=check, now=now, outcome=outcome,
                      days=days if outcome == rules.Outcome.GRANTED else 0)


async def merge(desk: Desk, *, caller: Caller, case_number: str, request_id: str,
                primary_case_number: str, now: datetime) -> ActReceipt:
    def check(uow: ComplaintsUnitOfWork, caller: Caller, case: CaseHandling,
              state: CaseState) -> _Checked:
        official = _dispatcher(uow, caller)
        primary = uow.handling.get(primary_case_number)
        if primary is None:
            raise NotFound(f"complaint case {primary_case_number} does not exist")
        rules.merge(state, _state_of(uow, primary))
        return _official(official, case)
    return await _act(desk, caller=caller, case_number=case_number, request_id=request_id,
                      update=MERGE, kind=StatementKind.MERGE, check=check, now=now,
                      primary_case_number=primary_case_number)


async def rate(desk: Desk, *, caller: Caller, case_number: str, request_id: str, level: int,
               comment: str, now: datetime) -> ActReceipt:
    def check(uow: ComplaintsUnitOfWork, caller: Caller, case: CaseHandling,
              state: CaseState) -> _Checked:
        platform = uow.platforms.of_system(caller.system)
        if platform is None:
            raise PermissionDenied(f"system {caller.system} is not a complaint platform's "
                                   "system: only the origin platform rates a case")
        if platform.id != case.platform_id:
            # The same answer as for a case that does not exist (as GetComplaint).
            raise NotFound(f"platform {platform.id} has no complaint case {case.case_number}")
        rules.rate(state, platform_id=platform.id, level=level, at=now,
                   rating_closes=case.rating_closes)
        return _Checked(platform.id, "", [], case, {"platform_id": platform.id},
                        texts={"comment": _masked(uow, desk.cipher, case, comment)})
    return await _act(desk, caller=caller, case_number=case_number, request_id=request_id,
                      update=RATE, kind=StatementKind.RATING, check=check, now=now,
                      texts={"comment": comment}, level=level)


# ---- reads ----------------------------------------------------------------------------------

def _handling_view(uow: ComplaintsUnitOfWork, case: CaseHandling) -> HandlingView:
    pending = uow.extensions.pending(case.case_number)
    return HandlingView(
        case, uow.co_handlers.of_case(case.case_number), uow.replies.of_case(case.case_number),
        pending.requested_days if pending else 0,
        uow.returns.pending_basis(case.case_number)
        if case.status == ComplaintStatus.RETURNED else "")


@dataclass(frozen=True)
class InboxItem:
    reason: str
    view: HandlingView


@dataclass(frozen=True)
class InboxPage:
    items: list[InboxItem]
    next_page_token: str


#: Stages a department acts on as lead, and as co-handler.
_LEAD_STAGES = (ComplaintStatus.ROUTED, ComplaintStatus.HANDLING)


def list_inbox(*, uow: ComplaintsUnitOfWork, caller: Caller, requested_size: int,
               page_token: str) -> InboxPage:
    """The acting official's inbox: by case number, one reason per case."""
    size = page_size(requested_size)
    after = after_text(page_token)
    fetch = rows_to_fetch(size)
    with uow:
        official = acting_official(uow.staff, caller)
        found: dict[str, InboxItem] = {}

        def add(reason: str, cases: list[CaseHandling]) -> None:
            for case in cases:
                found.setdefault(case.case_number, InboxItem(reason, _handling_view(uow, case)))

        roles = official.roles
        if HANDLER_ROLE in roles:
            department = official.department_code
            add("lead", uow.handling.of_departments([department], _LEAD_STAGES, after=after,
                                                    limit=fetch))
            add("co_handler", uow.handling.in_status(
                [ComplaintStatus.HANDLING], after=after, limit=fetch,
                numbers=uow.co_handlers.cases_of(department)))
        if DISPATCHER_ROLE in roles and official.department_code == CENTER_DEPARTMENT:
            add("returned", uow.handling.in_status([ComplaintStatus.RETURNED], after=after,
                                                   limit=fetch))
            add("extension", uow.handling.in_status(
                [ComplaintStatus.HANDLING], after=after, limit=fetch,
                numbers=uow.extensions.pending_cases()))
        if not roles & {HANDLER_ROLE, DISPATCHER_ROLE}:
            raise PermissionDenied(
                f"official {official.id} holds neither {HANDLER_ROLE} nor {DISPATCHER_ROLE}")
        items = [found[number] for number in sorted(found)]
        page = take_page(items, size, key=lambda item: (item.view.case.case_number,))
    return InboxPage(page.items, page.next_page_token)


@dataclass(frozen=True)
class OfficialView:
    """A case as an official sees it; ``view.complaint.complainant`` None unless they may."""

    view: ComplaintView
    handling: HandlingView


def official_view(*, uow: ComplaintsUnitOfWork, cipher: FieldCipher, caller: Caller,
                  case_number: str) -> OfficialView:
    """A case for an official: the handling departments' handlers see the complainant,
    the center's dispatcher the case without them; anyone else is refused."""
    with uow:
        official = acting_official(uow.staff, caller)
        stored = uow.cases.get(case_number)
        case = uow.handling.get(case_number)
        if stored is None or case is None:
            raise NotFound(f"complaint case {case_number} does not exist")
        co_handling = {c.department_code for c in uow.co_handlers.of_case(case_number)}
        handling = official.department_code in ({case.department_code} | co_handling)
        if HANDLER_ROLE in official.roles and handling:
            complainant = open_complainant(cipher, stored.sealed_complainant,
                                           number=case_number)
            shown = replace(stored.complaint, complainant=complainant)
        elif DISPATCHER_ROLE in official.roles and \
                official.department_code == CENTER_DEPARTMENT:
            shown = replace(stored.complaint, complainant=None)
        else:
            raise PermissionDenied(
                f"official {official.id} of {official.department_code} neither handles case "
                f"{case_number} nor dispatches complaints")
        department = uow.departments.get(case.department_code)
        return OfficialView(ComplaintView(replace(shown, status=case.status,
                                                  department_code=case.department_code),
                                          department.name if department else ""),
                            _handling_view(uow, case))


def handling_of(*, uow: ComplaintsUnitOfWork, case_number: str) -> HandlingView:
    with uow:
        case = uow.handling.get(case_number)
        if case is None:
            raise NotFound(f"complaint case {case_number} does not exist")
        return _handling_view(uow, case)


# ---- the deadline policy ---------------------------------------------------------------------

def get_deadline_policy(*, uow: ComplaintsUnitOfWork, version: int) -> StoredPolicy:
    with uow:
        if not version:
            return uow.policies.in_force()
        stored = uow.policies.get(version)
    if stored is None:
        raise NotFound(f"deadline policy version {version} does not exist")
    return stored


def set_deadline_policy(*, uow: ComplaintsUnitOfWork, caller: Caller, policy: DeadlinePolicy,
                        basis: str, now: datetime) -> StoredPolicy:
    """A new version in force from now; running cases keep the version they were opened under."""
    if not basis.strip() or len(basis) > 500:
        raise InvalidArgument("basis must be 1 to 500 characters, not only spaces")
    with uow:
        official = require_official(uow.staff, caller, role=OPERATOR_ROLE,
                                    department_code=CENTER_DEPARTMENT)
        current = uow.policies.in_force(for_update=True)
        new = replace(policy, version=current.policy.version + 1)
        uow.policies.replace_in_force(new, basis=basis, set_by_official_id=official.id, at=now,
                                      superseded=current.policy.version)
        uow.audit.append(actor=Actor(caller.system, official.id), action="deadline_policy.set",
                         subject=f"deadline_policy/{new.version}", at=now,
                         details={"version": new.version, "basis": basis[:200]})
        uow.commit()
    return StoredPolicy(new, basis, official.id, now, None)

