"""Complaints linked to an approval case or a tender: checked against it, counted for it.

A platform may name the approval case (AP- number) or the tender a
complaint is about. The complaint workflow asks once, at its start, for the
links to be checked (activity ``complaints.check_link``): intake answers
whether the approval case exists and under which item and department
(``IntakeService/CheckCaseLink``, codes only); trading answers whether the
tender exists, its category of trade, the tenderer's department and its
stage (``TradingService/CheckTenderLink``, codes only). The answers are kept
on the case (``link_status``, ``link_item_code``, ``link_department_code``;
``tender_link_status``, ``tender_link_category``,
``tender_link_department_code``) with an event, so the metrics count linked
complaints per item and department, and per category and tenderer — the
complaint-rate input of the three-zeros report.

A service that cannot be reached fails the check as retryable (Temporal
tries again); the case itself never waits on it. A process given no address
of intake (or trading) leaves that link unchecked, and the event says why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from kernel.audit import Actor
from kernel.errors import NotFound
from services.complaints.db.links import StoredLink
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.domain.cases import ComplaintEvent
from services.complaints.domain.metrics import LinkKind, LinkStatus

log = structlog.get_logger("govhall.complaints.links")

#: The event a check leaves on the case.
LINK_CHECKED = "complaint.link_checked"
#: The system the complaint workflows' activities act as in the audit log.
WORKFLOWS = "govhall-workflows"
#: Why a tender stays unchecked when this process has no trading to ask.
NO_TRADING = "no trading address is configured: the tender cannot be checked"
#: Why an approval case stays unchecked when this process has no intake to ask.
NO_INTAKE = "no intake address is configured: the approval case cannot be checked"


@dataclass(frozen=True)
class IntakeAnswer:
    """What intake answered about an approval case: codes only."""

    found: bool
    item_code: str = ""
    department_code: str = ""
    #: Intake's status of the case (its CaseStatus value), '' when not found.
    case_status: str = ""


#: Asks intake about a case number; raises kernel.errors.Unavailable while intake cannot
#: be reached (the check is retried).
IntakeLookup = Callable[[str], Awaitable[IntakeAnswer]]


@dataclass(frozen=True)
class TradingAnswer:
    """What trading answered about a tender: codes only."""

    found: bool
    #: The category of trade ("construction", "government_procurement", ...).
    category: str = ""
    #: The tenderer's department.
    department_code: str = ""
    #: Trading's stage of the tender ("bidding", "awarded", ...), '' when not found.
    stage: str = ""


#: Asks trading about a tender number; raises kernel.errors.Unavailable while trading cannot
#: be reached (the check is retried).
TradingLookup = Callable[[str], Awaitable[TradingAnswer]]


@dataclass(frozen=True)
class LinkOutcome:
    #: "approval", "tender" or '' when the case names no link.
    kind: str
    found: bool
    detail: str


def links_of(*, uow: ComplaintsUnitOfWork, case_number: str) -> StoredLink:
    with uow:
        stored = uow.links.get(case_number)
    if stored is None:
        raise NotFound(f"complaint case {case_number} is unknown")
    return stored


def _approval_detail(answer: IntakeAnswer | None, number: str) -> str:
    if answer is None:
        return NO_INTAKE
    if not answer.found:
        return f"intake has no approval case {number}"
    return (f"approval case {number}: item {answer.item_code} of {answer.department_code}, "
            f"{answer.case_status}")


def _tender_detail(answer: TradingAnswer | None, number: str) -> str:
    if answer is None:
        return NO_TRADING
    if not answer.found:
        return f"trading has no tender {number}"
    return (f"tender {number}: {answer.category} of {answer.department_code}, "
            f"{answer.stage}")


def outcome_of(stored: StoredLink, answer: IntakeAnswer | None,
               tender_answer: TradingAnswer | None = None) -> LinkOutcome:
    """What the check found, for the workflow (codes only)."""
    if stored.linked_case_number:
        detail = _approval_detail(answer, stored.linked_case_number)
        if stored.linked_tender_number:
            detail += f"; {_tender_detail(tender_answer, stored.linked_tender_number)}"
        return LinkOutcome(str(LinkKind.APPROVAL), bool(answer and answer.found), detail)
    if stored.linked_tender_number:
        return LinkOutcome(str(LinkKind.TENDER), bool(tender_answer and tender_answer.found),
                           _tender_detail(tender_answer, stored.linked_tender_number))
    return LinkOutcome("", False, "the case names no approval case and no tender")


def _status_of(found: bool | None) -> LinkStatus:
    if found is None:
        return LinkStatus.UNCHECKED
    return LinkStatus.FOUND if found else LinkStatus.NOT_FOUND


def record_link_check(*, uow: ComplaintsUnitOfWork, case_number: str,
                      answer: IntakeAnswer | None, now: datetime,
                      tender_answer: TradingAnswer | None = None) -> LinkOutcome:
    """Keep what the check found on the case, with an event and an audit entry.

    ``answer`` is intake's and ``tender_answer`` trading's, each None when
    there was no service to ask. Run again with the same answers (a retried
    activity) it changes nothing.
    """
    with uow:
        stored = uow.links.get(case_number, for_update=True)
        if stored is None:
            raise NotFound(f"complaint case {case_number} is unknown")
        outcome = outcome_of(stored, answer, tender_answer)
        if not outcome.kind:
            return outcome
        status, item, department = LinkStatus.UNCHECKED, "", ""
        if stored.linked_case_number and answer is not None:
            status = _status_of(answer.found)
            if answer.found:
                item, department = answer.item_code, answer.department_code
        tender_status, category, tenderer = LinkStatus.UNCHECKED, "", ""
        if stored.linked_tender_number and tender_answer is not None:
            tender_status = _status_of(tender_answer.found)
            if tender_answer.found:
                category, tenderer = tender_answer.category, tender_answer.department_code
        found = (status, item, department, tender_status, category, tenderer)
        if stored.checked_at is not None and found == (
                stored.status, stored.item_code, stored.department_code, stored.tender_status,
                stored.tender_category, stored.tender_department_code):
            return outcome
        uow.links.record(case_number, status=status, item_code=item,
                         department_code=department, at=now, tender_status=tender_status,
                         tender_category=category, tender_department_code=tenderer)
        details: dict[str, str] = {}
        if stored.linked_case_number:
            details |= {"linked_case": stored.linked_case_number, "status": str(status)}
            if answer is None:
                details["reason"] = NO_INTAKE
            elif answer.found:
                details |= {"item": item, "department": department,
                            "case_status": answer.case_status}
        if stored.linked_tender_number:
            details |= {"linked_tender": stored.linked_tender_number,
                        "tender_status": str(tender_status)}
            if tender_answer is None:
                details["tender_reason"] = NO_TRADING
            elif tender_answer.found:
                details |= {"tender_category": category, "tender_department": tenderer,
                            "tender_stage": tender_answer.stage}
        uow.events.add([ComplaintEvent(case_number, uow.events.last_sequence(case_number)
                                       + 1, LINK_CHECKED, now, details)])
        uow.audit.append(actor=Actor(WORKFLOWS), action=LINK_CHECKED,
                         subject=f"complaint/{case_number}", at=now, details=details)
        uow.commit()
    log.info(LINK_CHECKED, case_number=case_number, kind=outcome.kind, status=str(status),
             tender_status=str(tender_status))
    return outcome
