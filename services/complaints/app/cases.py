"""Complaint cases pushed in by platforms: submit, read, list events.

A platform is the calling system the platforms table names for it; any
other system is refused (PERMISSION_DENIED), and a platform asking for
another platform's case is told there is no such case (NOT_FOUND), so it
learns nothing about cases not its own.

Submitting is idempotent on (platform, external id) by the table's unique
constraint, not by a read before the write: two pushes of one case racing
each other both try to insert, one wins, the other's insert fails and it
answers with the winner's case (or ALREADY_EXISTS when it said something
else). The complainant's name and phone are sealed (kernel.fieldcipher)
before they reach the database, and only the submitting platform's reads
open them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from kernel.audit import Actor
from kernel.chinatime import china_date
from kernel.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from kernel.fieldcipher import FieldCipher, FieldCipherError
from kernel.identity import Caller
from kernel.paging import after_number, page_size, rows_to_fetch, take_page
from kernel.signing import canonical
from services.complaints.db.repository import (
    ComplaintsUnitOfWork,
    DuplicatePush,
    StoredComplaint,
)
from services.complaints.domain.cases import (
    Complainant,
    Complaint,
    ComplaintEvent,
    ComplaintSubmission,
    case_number,
    check_re_push,
    take_in,
)
from services.complaints.domain.model import Platform

log = structlog.get_logger("govhall.complaints.cases")


@dataclass(frozen=True)
class ComplaintView:
    """A case as the submitting platform sees it: the complainant opened."""

    complaint: Complaint
    department_name: str


@dataclass(frozen=True)
class Submitted:
    view: ComplaintView
    #: The case was pushed before; this push changed nothing.
    replayed: bool


@dataclass(frozen=True)
class EventPage:
    events: list[ComplaintEvent]
    next_page_token: str


def _platform_of(uow: ComplaintsUnitOfWork, caller: Caller) -> Platform:
    platform = uow.platforms.of_system(caller.system)
    if platform is None:
        raise PermissionDenied(
            f"system {caller.system} is not a complaint platform's system: only a platform "
            "pushes cases in and reads them")
    return platform


def seal_complainant(cipher: FieldCipher, complainant: Complainant, *, number: str) -> str:
    content = json.dumps({"name": complainant.name, "phone": complainant.phone},
                         ensure_ascii=False)
    return cipher.seal(content.encode("utf-8"), context=number)


def open_complainant(cipher: FieldCipher, sealed: str, *, number: str) -> Complainant:
    try:
        content = json.loads(cipher.open(sealed, context=number))
    except FieldCipherError as error:
        raise FailedPrecondition(
            f"the complainant of case {number} cannot be decrypted with this service's key: "
            "an operator must restore the complaints field key") from error
    return Complainant(content["name"], content["phone"])


def _view(uow: ComplaintsUnitOfWork, cipher: FieldCipher,
          stored: StoredComplaint) -> ComplaintView:
    complaint = stored.complaint
    opened = open_complainant(cipher, stored.sealed_complainant, number=complaint.number)
    department = uow.departments.get(complaint.department_code)
    return ComplaintView(
        replace(complaint, complainant=opened),
        department.name if department else "")


def _replayed(uow: ComplaintsUnitOfWork, cipher: FieldCipher, stored: StoredComplaint, *,
              fingerprint: str, platform: Platform) -> Submitted:
    check_re_push(stored_fingerprint=stored.fingerprint, fingerprint=fingerprint,
                  platform_id=platform.id, external_id=stored.complaint.external_id,
                  number=stored.complaint.number)
    return Submitted(_view(uow, cipher, stored), replayed=True)


def submit_complaint(*, uow: ComplaintsUnitOfWork, cipher: FieldCipher, caller: Caller,
                     submission: ComplaintSubmission, now: datetime) -> Submitted:
    """Take in a case a platform pushes, or return the one an earlier push of it made."""
    fingerprint = cipher.digest(canonical(submission.fingerprint_content()))
    try:
        with uow:
            platform = _platform_of(uow, caller)
            earlier = uow.cases.of_platform(platform.id, submission.external_id)
            if earlier is not None:
                return _replayed(uow, cipher, earlier, fingerprint=fingerprint,
                                 platform=platform)
            category = uow.routing.category(submission.category_code)
            if category is None:
                # The platform sent a code the center does not have: its request is wrong.
                raise InvalidArgument(
                    f"complaint category {submission.category_code} is not in the routing "
                    "table: choose one ListCategories lists",
                    violations=[FieldViolation("category_code", "unknown category")])
            department = uow.departments.get(category.department_code)
            if department is None:
                # The request is right but the center's routing table is not: the center
                # must fix it before the case can be taken, and the platform retries later.
                raise FailedPrecondition(
                    f"category {category.code} is routed to {category.department_code}, "
                    "which is no longer in the directory: a dispatcher must re-point it")
            day = china_date(now)
            number = case_number(day, uow.sequences.next(f"CP-{day:%Y%m%d}"))
            intake = take_in(submission, number=number, platform_id=platform.id,
                             category=category, received_at=now)
            complaint = intake.complaint
            uow.cases.add(complaint, fingerprint=fingerprint,
                          sealed_complainant=seal_complainant(
                              cipher, submission.complainant, number=number))
            uow.events.add(intake.events)
            details: dict[str, str | int | bool] = {
                "platform": platform.id, "external_id": submission.external_id,
                "kind": str(complaint.kind), "urgent": complaint.urgent,
                "category": complaint.category_code, "department": complaint.department_code,
                "rule_version": complaint.rule_version,
                "deadline_class": str(complaint.deadline_class)}
            if complaint.linked_case_number:
                details["linked_case"] = complaint.linked_case_number
            if complaint.linked_tender_number:
                details["linked_tender"] = complaint.linked_tender_number
            uow.audit.append(actor=Actor(caller.system), action="complaint.submitted",
                             subject=f"complaint/{number}", at=now, details=details)
            uow.commit()
    except DuplicatePush:
        # Another push of this external id committed between our read and our insert.
        with uow:
            platform = _platform_of(uow, caller)
            winner = uow.cases.of_platform(platform.id, submission.external_id)
            if winner is None:
                raise
            return _replayed(uow, cipher, winner, fingerprint=fingerprint, platform=platform)
    log.info("complaint.submitted", case_number=number, platform=platform.id,
             category=complaint.category_code, department=complaint.department_code)
    return Submitted(ComplaintView(complaint, department.name), replayed=False)


def _own_case(uow: ComplaintsUnitOfWork, caller: Caller, number: str) -> StoredComplaint:
    platform = _platform_of(uow, caller)
    stored = uow.cases.get(number)
    if stored is None or stored.complaint.platform_id != platform.id:
        # The same answer whether the case exists for another platform or not at all.
        raise NotFound(f"platform {platform.id} has no complaint case {number}")
    return stored


def get_complaint(*, uow: ComplaintsUnitOfWork, cipher: FieldCipher, caller: Caller,
                  case_number: str) -> ComplaintView:
    with uow:
        return _view(uow, cipher, _own_case(uow, caller, case_number))


def list_complaint_events(*, uow: ComplaintsUnitOfWork, caller: Caller, case_number: str,
                          requested_size: int, page_token: str) -> EventPage:
    size = page_size(requested_size)
    after = after_number(page_token)
    with uow:
        _own_case(uow, caller, case_number)
        page = take_page(uow.events.list(case_number, after_sequence=after,
                                         limit=rows_to_fetch(size)),
                         size, key=lambda e: (e.sequence,))
    return EventPage(page.items, page.next_page_token)
