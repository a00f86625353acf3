"""Decisions and changes to a case's clock: authenticated here, signed here, sent to the chain.

Each use case

1. takes the request id: a repeat of the same request gets the first answer;
   the same id with another request is ALREADY_EXISTS (``handled_requests``);
2. finds the acting official's capacity in review's staff directory (their
   own roles, or a leader's under a delegation in force);
3. signs a statement of exactly what was checked (who, in which capacity,
   what, about which case, when; the free texts by digest) with review's key;
4. sends it to the case's workflow as an update whose id is the request id,
   so Temporal too answers a repeat with the first result.

A refusal by the workflow leaves nothing behind: the request id is released.
An outage (UNAVAILABLE) keeps it, because the act may have been taken; the
caller sends the same request again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar, cast

from pydantic import TypeAdapter

from kernel.errors import AlreadyExists, FailedPrecondition, GovhallError, Unavailable
from kernel.handled_requests import UPDATE_IDS, HandledRequest, fingerprint, update_id
from kernel.identity import Caller
from kernel.signing import BadSignature, ServiceSigner, TrustedKeys
from kernel.workflow_gateway import WorkflowGateway
from services.review.app import handlers
from services.review.db.repository import ReviewUnitOfWork
from services.review.domain.tasks import Capacity
from workflows.approval_contract import (
    DECIDE,
    END_SPECIAL_PROCEDURE,
    EXTEND_TIME_LIMIT,
    STAGE_ROLE,
    START_SPECIAL_PROCEDURE,
    WORKFLOW_NAME,
    ChangeReceipt,
    ClockChange,
    Decision,
    DecisionReceipt,
    Recompute,
    SignedStatement,
    Stage,
    StatementFacts,
    StatementKind,
    as_statement,
    content_digest,
    statement_body,
    verified_facts,
    workflow_id,
)
from workflows.approval_contract import RECOMPUTE_DEADLINES as RECOMPUTE

T = TypeVar("T")

RUNNING_APPROVALS = f"WorkflowType = '{WORKFLOW_NAME}' AND ExecutionStatus = 'Running'"


@dataclass(frozen=True)
class Chain:
    """What the use cases need: the database, review's signing key, the workflows."""

    reading: Callable[[], ReviewUnitOfWork]
    writing: Callable[[], ReviewUnitOfWork]
    signer: ServiceSigner
    gateway: WorkflowGateway
    #: The services' public keys: a seal is confirmed only by intake's signature.
    keys: TrustedKeys | None = None


def take_request(*, uow: ReviewUnitOfWork, caller: Caller, request_id: str, fingerprint: str,
                 case_number: str, now: datetime) -> str | None:
    """Claim the request id; the earlier answer if this request was answered already."""
    with uow:
        earlier = uow.requests.get(caller.system, request_id)
        if earlier is not None:
            if earlier.fingerprint != fingerprint:
                raise AlreadyExists(
                    f"request_id {request_id} was used for another request: use a new "
                    "request_id for a new request")
            return earlier.response or None
        uow.requests.add(HandledRequest(caller.system, request_id, fingerprint, case_number, ""),
                         received_at=now)
        uow.commit()
        return None


def answer_request(*, uow: ReviewUnitOfWork, caller: Caller, request_id: str,
                   response: str) -> None:
    with uow:
        uow.requests.answer(caller.system, request_id, response)
        uow.commit()


def release_request(*, uow: ReviewUnitOfWork, caller: Caller, request_id: str) -> None:
    with uow:
        uow.requests.remove(caller.system, request_id)
        uow.commit()


#: One adapter per answer type: building one costs more than the rest of a request.
_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(result_type: type[T]) -> TypeAdapter[T]:
    adapter = _ADAPTERS.get(result_type)
    if adapter is None:
        adapter = _ADAPTERS[result_type] = TypeAdapter(result_type)
    return cast("TypeAdapter[T]", adapter)


async def _once(chain: Chain, *, caller: Caller, request_id: str, print_: str,
                case_number: str, now: datetime, result_type: type[T],
                send: Callable[[], Any]) -> T:
    """Run ``send`` once per request id; a repeat is answered as the first time."""
    adapter = _adapter(result_type)
    earlier = await asyncio.to_thread(
        take_request, uow=chain.writing(), caller=caller, request_id=request_id,
        fingerprint=print_, case_number=case_number, now=now)
    if earlier is not None:
        return adapter.validate_json(earlier)
    try:
        result: T = await send()
    except Unavailable:
        raise  # it may have been taken: the same request must find its id again
    except GovhallError:
        await asyncio.to_thread(release_request, uow=chain.writing(), caller=caller,
                                request_id=request_id)
        raise
    await asyncio.to_thread(answer_request, uow=chain.writing(), caller=caller,
                            request_id=request_id,
                            response=adapter.dump_json(result).decode("utf-8"))
    return result


def _sign(chain: Chain, capacity: Capacity, caller: Caller, *, kind: StatementKind,
          case_number: str, request_id: str, now: datetime,
          **facts: str | int) -> SignedStatement:
    body = statement_body(
        kind=kind, case_number=case_number, official_id=capacity.official.id,
        department_code=capacity.department_code, roles=sorted(capacity.roles),
        system=caller.system, issued_at=now, request_id=request_id,
        on_behalf_of=capacity.on_behalf_of,
        delegation_id=str(capacity.delegation_id) if capacity.delegation_id else "", **facts)
    return as_statement(chain.signer.sign(body))


async def decide_case(chain: Chain, *, caller: Caller, case_number: str, stage: str,
                      outcome: str, opinion: str, legal_basis: str, request_id: str,
                      now: datetime) -> DecisionReceipt:
    """An official's decision at a stage of a case (review, sign or seal).

    A stage review decided already, on its record or by a request it answered,
    takes no second decision: not even if someone rewound the case's workflow
    in Temporal. A seal is answered only with intake's signed word for it.
    """
    digest = content_digest(opinion=opinion, legal_basis=legal_basis)
    print_ = fingerprint("DecideCase", official=caller.official_id, case=case_number,
                         stage=stage, outcome=outcome, content=digest)

    async def send() -> DecisionReceipt:
        capacity = await asyncio.to_thread(
            handlers.decision_capacity, uow=chain.reading(), caller=caller,
            case_number=case_number, stage=stage, now=now, request_id=request_id)
        statement = _sign(chain, capacity, caller, kind=StatementKind.DECISION,
                          case_number=case_number, request_id=request_id, now=now,
                          stage=stage, outcome=outcome, content_sha256=digest)
        receipt = await chain.gateway.update(
            workflow_id(case_number), DECIDE, Decision(statement, opinion, legal_basis),
            update_id=update_id(DECIDE, request_id, print_,
                                key=chain.signer.derived_key(UPDATE_IDS)),
            result_type=DecisionReceipt)
        if receipt.next_stage == Stage.COMPLETED:
            _confirm_sealed(chain, receipt)
        return receipt

    return await _once(chain, caller=caller, request_id=request_id, print_=print_,
                       case_number=case_number, now=now, result_type=DecisionReceipt,
                       send=send)


def _confirm_sealed(chain: Chain, receipt: DecisionReceipt) -> None:
    """The receipt of a seal holds intake's signature over this very certificate."""
    try:
        if chain.keys is None or receipt.sealed is None:
            raise BadSignature("no signed receipt")
        facts = verified_facts(chain.keys, receipt.sealed, StatementKind.SEALED)
        if (facts.case_number, facts.certificate_number) != (
                receipt.case_number, receipt.certificate_number):
            raise BadSignature("the receipt names another case or certificate")
    except (BadSignature, StatementFacts.Malformed) as error:
        raise FailedPrecondition(
            f"intake has not confirmed the seal of case {receipt.case_number}: ask the "
            "operators to look at its workflow") from error


_CLOCK = {
    START_SPECIAL_PROCEDURE: (StatementKind.PROCEDURE_START, STAGE_ROLE[Stage.REVIEW]),
    END_SPECIAL_PROCEDURE: (StatementKind.PROCEDURE_END, STAGE_ROLE[Stage.REVIEW]),
    EXTEND_TIME_LIMIT: (StatementKind.EXTENSION, STAGE_ROLE[Stage.SIGN]),
}


async def change_clock(chain: Chain, *, caller: Caller, case_number: str, update: str,
                       request_id: str, now: datetime, procedure: str = "", days: int = 0,
                       reason: str = "") -> ChangeReceipt:
    """A special procedure started or ended, or the legal limit extended."""
    kind, role = _CLOCK[update]
    capacity = await asyncio.to_thread(
        handlers.acting_capacity, uow=chain.reading(), caller=caller, role=role, now=now)
    digest = content_digest(reason=reason) if kind == StatementKind.EXTENSION else ""
    print_ = fingerprint(update, official=caller.official_id, case=case_number,
                         procedure=procedure, days=days, reason=reason)

    async def send() -> ChangeReceipt:
        statement = _sign(chain, capacity, caller, kind=kind, case_number=case_number,
                          request_id=request_id, now=now, procedure=procedure, days=days,
                          content_sha256=digest)
        return await chain.gateway.update(
            workflow_id(case_number), update, ClockChange(statement, reason),
            update_id=update_id(update, request_id, print_,
                                key=chain.signer.derived_key(UPDATE_IDS)),
            result_type=ChangeReceipt)

    return await _once(chain, caller=caller, request_id=request_id, print_=print_,
                       case_number=case_number, now=now, result_type=ChangeReceipt, send=send)


async def recompute_running(chain: Chain, *, reason: str) -> int:
    """Tell every running case to compute its deadlines again; how many were told."""
    return await chain.gateway.signal_all(RUNNING_APPROVALS, RECOMPUTE, Recompute(reason))


async def load_holiday_schedule(chain: Chain, *, caller: Caller, year: int,
                                holidays: list[date], makeup_workdays: list[date],
                                now: datetime) -> tuple[handlers.ScheduleLoad, int]:
    """Load a year's schedule, then tell running cases to recompute; how many were told."""
    load = await asyncio.to_thread(
        handlers.load_holiday_schedule, uow=chain.writing(), caller=caller, year=year,
        holidays=holidays, makeup_workdays=makeup_workdays, now=now)
    # Only after the commit: a case recomputing now reads the new schedule.
    told = await recompute_running(chain, reason=f"holiday schedule {year} loaded")
    return load, told
