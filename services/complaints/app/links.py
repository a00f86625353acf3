"""Complaints linked to an approval case or a tender: checked against it, counted for it.

A platform may name the approval case (AP- number) or the tender a
complaint is about. The complaint workflow asks once, at its start, for the
link to be checked (activity ``complaints.check_link``): intake answers
whether the approval case exists and under which item and department
(``IntakeService/CheckCaseLink``, codes only), and the answer is kept on
the case (``link_status``, ``link_item_code``, ``link_department_code``)
with an event, so the metrics count linked complaints per item and
department — the complaint-rate input of the three-zeros report.

Trading keeps no tenders yet, so a tender number cannot be checked: it
stays "unchecked", and the event says why. An intake that cannot be reached
fails the check as retryable (Temporal tries again); the case itself never
waits on it.
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
#: Why a tender number stays unchecked.
TENDERS_UNCHECKED = "trading keeps no tenders yet: a linked tender number cannot be checked"
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


def outcome_of(stored: StoredLink, answer: IntakeAnswer | None) -> LinkOutcome:
    """What the check found, for the workflow (codes only)."""
    if stored.linked_case_number:
        detail = _approval_detail(answer, stored.linked_case_number)
        if stored.linked_tender_number:
            detail += f"; {TENDERS_UNCHECKED}"
        return LinkOutcome(str(LinkKind.APPROVAL), bool(answer and answer.found), detail)
    if stored.linked_tender_number:
        return LinkOutcome(str(LinkKind.TENDER), False, TENDERS_UNCHECKED)
    return LinkOutcome("", False, "the case names no approval case and no tender")


def record_link_check(*, uow: ComplaintsUnitOfWork, case_number: str,
                      answer: IntakeAnswer | None, now: datetime) -> LinkOutcome:
    """Keep what the check found on the case, with an event and an audit entry.

    ``answer`` is intake's, or None when there was no intake to ask. Run
    again with the same answer (a retried activity) it changes nothing.
    """
    with uow:
        stored = uow.links.get(case_number, for_update=True)
        if stored is None:
            raise NotFound(f"complaint case {case_number} is unknown")
        outcome = outcome_of(stored, answer)
        if not outcome.kind:
            return outcome
        status, item, department = LinkStatus.UNCHECKED, "", ""
        if stored.linked_case_number and answer is not None:
            status = LinkStatus.FOUND if answer.found else LinkStatus.NOT_FOUND
            if answer.found:
                item, department = answer.item_code, answer.department_code
        if stored.checked_at is not None and (stored.status, stored.item_code,
                                              stored.department_code) == (status, item,
                                                                          department):
            return outcome
        uow.links.record(case_number, status=status, item_code=item,
                         department_code=department, at=now)
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
                        "tender_status": str(LinkStatus.UNCHECKED),
                        "tender_reason": TENDERS_UNCHECKED}
        uow.events.add([ComplaintEvent(case_number, uow.events.last_sequence(case_number)
                                       + 1, LINK_CHECKED, now, details)])
        uow.audit.append(actor=Actor(WORKFLOWS), action=LINK_CHECKED,
                         subject=f"complaint/{case_number}", at=now, details=details)
        uow.commit()
    log.info(LINK_CHECKED, case_number=case_number, kind=outcome.kind, status=str(status))
    return outcome
