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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import structlog

from kernel.audit import Actor, AuditEntry
from kernel.chinatime import china_date
from kernel.directory import Department
from kernel.errors import (
    FailedPrecondition,
    FieldViolation,
    GovhallError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from kernel.fieldcipher import FieldCipher, FieldCipherError
from kernel.groupcommit import GroupCommit
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
from services.complaints.domain.model import Category, Platform

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


@dataclass(frozen=True)
class Push:
    """One SubmitComplaint call: the platform's system and what it pushed."""

    caller: Caller
    submission: ComplaintSubmission


@dataclass(frozen=True)
class _Routed:
    """A push that passed every check: a new case, routed, waiting for its number."""

    platform: Platform
    category: Category
    department: Department
    fingerprint: str


class _Lookups:
    """The platform, category and department reads of one transaction, each read once.

    They change rarely, but they do change (a routing change, a directory sync), so
    nothing is kept beyond the transaction: a batch reads each once, as of its own
    snapshot, and the next batch reads them afresh.
    """

    def __init__(self, uow: ComplaintsUnitOfWork) -> None:
        self._uow = uow
        self._platforms: dict[str, Platform | None] = {}
        self._categories: dict[str, Category | None] = {}
        self._departments: dict[str, Department | None] = {}
        self._earlier: dict[tuple[str, str], StoredComplaint | None] = {}

    def read_ahead(self, pushes: Sequence[tuple[Platform, Push]]) -> None:
        """Read what the checks of ``pushes`` will ask for in a few queries, not a few each."""
        by_platform: dict[str, set[str]] = {}
        for platform, push in pushes:
            by_platform.setdefault(platform.id, set()).add(push.submission.external_id)
        for platform_id, external_ids in by_platform.items():
            stored = self._uow.cases.of_platform_all(platform_id, external_ids)
            for external_id in external_ids:
                self._earlier[(platform_id, external_id)] = stored.get(external_id)
        codes = {push.submission.category_code for _, push in pushes}
        categories = self._uow.routing.categories(codes)
        self._categories.update({code: categories.get(code) for code in codes})
        departments = {c.department_code for c in categories.values()}
        found = self._uow.departments.of_codes(departments)
        self._departments.update({code: found.get(code) for code in departments})

    def earlier(self, platform_id: str, external_id: str) -> StoredComplaint | None:
        key = (platform_id, external_id)
        if key not in self._earlier:
            self._earlier[key] = self._uow.cases.of_platform(platform_id, external_id)
        return self._earlier[key]

    def platform(self, caller: Caller) -> Platform:
        if caller.system not in self._platforms:
            self._platforms[caller.system] = self._uow.platforms.of_system(caller.system)
        platform = self._platforms[caller.system]
        if platform is None:
            raise PermissionDenied(
                f"system {caller.system} is not a complaint platform's system: only a "
                "platform pushes cases in and reads them")
        return platform

    def category(self, code: str) -> Category | None:
        if code not in self._categories:
            self._categories[code] = self._uow.routing.category(code)
        return self._categories[code]

    def department(self, code: str) -> Department | None:
        if code not in self._departments:
            self._departments[code] = self._uow.departments.get(code)
        return self._departments[code]


def _check(uow: ComplaintsUnitOfWork, cipher: FieldCipher, lookups: _Lookups, push: Push, *,
           fingerprint: str) -> Submitted | _Routed:
    """The earlier push's case when this is a re-push, else the new case's routing.

    Reads only: a push refused here (an exception) has written nothing.
    """
    submission = push.submission
    platform = lookups.platform(push.caller)
    earlier = lookups.earlier(platform.id, submission.external_id)
    if earlier is not None:
        return _replayed(uow, cipher, earlier, fingerprint=fingerprint, platform=platform)
    category = lookups.category(submission.category_code)
    if category is None:
        # The platform sent a code the center does not have: its request is wrong.
        raise InvalidArgument(
            f"complaint category {submission.category_code} is not in the routing "
            "table: choose one ListCategories lists",
            violations=[FieldViolation("category_code", "unknown category")])
    department = lookups.department(category.department_code)
    if department is None:
        # The request is right but the center's routing table is not: the center
        # must fix it before the case can be taken, and the platform retries later.
        raise FailedPrecondition(
            f"category {category.code} is routed to {category.department_code}, "
            "which is no longer in the directory: a dispatcher must re-point it")
    return _Routed(platform, category, department, fingerprint)


def _take_in_all(uow: ComplaintsUnitOfWork, cipher: FieldCipher,
                 routed: Sequence[tuple[Push, _Routed]], *, now: datetime) -> list[Submitted]:
    """Number, store and audit the new cases of ``routed``, in order, with one statement each
    for the running numbers, the cases, their events and their audit entries."""
    if not routed:
        return []
    day = china_date(now)
    numbers = uow.sequences.take(f"CP-{day:%Y%m%d}", len(routed))
    stored: list[StoredComplaint] = []
    events: list[ComplaintEvent] = []
    entries: list[AuditEntry] = []
    answers: list[Submitted] = []
    for (push, route), sequence in zip(routed, numbers, strict=True):
        submission = push.submission
        number = case_number(day, sequence)
        intake = take_in(submission, number=number, platform_id=route.platform.id,
                         category=route.category, received_at=now)
        complaint = intake.complaint
        stored.append(StoredComplaint(
            complaint, seal_complainant(cipher, submission.complainant, number=number),
            route.fingerprint))
        events.extend(intake.events)
        details: dict[str, str | int | bool] = {
            "platform": route.platform.id, "external_id": submission.external_id,
            "kind": str(complaint.kind), "urgent": complaint.urgent,
            "category": complaint.category_code, "department": complaint.department_code,
            "rule_version": complaint.rule_version,
            "deadline_class": str(complaint.deadline_class)}
        if complaint.linked_case_number:
            details["linked_case"] = complaint.linked_case_number
        if complaint.linked_tender_number:
            details["linked_tender"] = complaint.linked_tender_number
        entries.append(AuditEntry(actor=Actor(push.caller.system),
                                  action="complaint.submitted",
                                  subject=f"complaint/{number}", at=now, details=details))
        answers.append(Submitted(ComplaintView(complaint, route.department.name),
                                 replayed=False))
    uow.cases.add_all(stored)
    uow.events.add(events)
    uow.audit.append_all(entries)
    return answers


def _log_taken_in(answers: Sequence[Submitted]) -> None:
    if len(answers) == 1:
        complaint = answers[0].view.complaint
        log.info("complaint.submitted", case_number=complaint.number,
                 platform=complaint.platform_id, category=complaint.category_code,
                 department=complaint.department_code)
    elif answers:
        # One line for a batch: under a burst a line per case cost more than its case.
        log.info("complaint.submitted", case_numbers=[a.view.complaint.number for a in answers])


def submit_complaint(*, uow: ComplaintsUnitOfWork, cipher: FieldCipher, caller: Caller,
                     submission: ComplaintSubmission, now: datetime) -> Submitted:
    """Take in a case a platform pushes, or return the one an earlier push of it made."""
    push = Push(caller, submission)
    fingerprint = cipher.digest(canonical(submission.fingerprint_content()))
    try:
        with uow:
            checked = _check(uow, cipher, _Lookups(uow), push, fingerprint=fingerprint)
            if isinstance(checked, Submitted):
                return checked
            [answer] = _take_in_all(uow, cipher, [(push, checked)], now=now)
            uow.commit()
    except DuplicatePush:
        # Another push of this external id committed between our read and our insert.
        with uow:
            platform = _platform_of(uow, caller)
            winner = uow.cases.of_platform(platform.id, submission.external_id)
            if winner is None:
                raise
            return _replayed(uow, cipher, winner, fingerprint=fingerprint, platform=platform)
    _log_taken_in([answer])
    return answer


def submit_complaints(*, uow: Callable[[], ComplaintsUnitOfWork], cipher: FieldCipher,
                      pushes: Sequence[Push], now: datetime) -> list[Submitted | Exception]:
    """Take in many pushes in one transaction (group commit): each gets its own answer.

    Every check reads before anything is written, so a push refused by its checks
    (its exception is its answer) writes nothing and the others commit. A push of the
    same (platform, external id) as an earlier one of the batch waits for the batch to
    commit and is then answered as any re-push (the case, or ALREADY_EXISTS). When the
    batch as a whole fails (another transaction took one of its external ids meanwhile,
    or a bug), nothing of it was committed and each push is taken alone, as
    ``submit_complaint`` takes it, so one push cannot fail the others.
    """
    answers: list[Submitted | Exception | None] = [None] * len(pushes)
    later: list[int] = []
    try:
        with (unit := uow()):
            lookups = _Lookups(unit)
            platforms: list[Platform | None] = []
            for at, push in enumerate(pushes):
                try:
                    platforms.append(lookups.platform(push.caller))
                except GovhallError as refused:
                    platforms.append(None)
                    answers[at] = refused
            lookups.read_ahead([(platform, push) for platform, push
                                in zip(platforms, pushes, strict=True) if platform is not None])
            taken: set[tuple[str, str]] = set()
            routed: list[tuple[int, _Routed]] = []
            for at, (platform, push) in enumerate(zip(platforms, pushes, strict=True)):
                if platform is None:
                    continue
                try:
                    key = (platform.id, push.submission.external_id)
                    if key in taken:
                        later.append(at)
                        continue
                    fingerprint = cipher.digest(canonical(
                        push.submission.fingerprint_content()))
                    checked = _check(unit, cipher, lookups, push, fingerprint=fingerprint)
                except GovhallError as refused:
                    answers[at] = refused
                    continue
                if isinstance(checked, Submitted):
                    answers[at] = checked
                else:
                    taken.add(key)
                    routed.append((at, checked))
            new = _take_in_all(unit, cipher, [(pushes[at], route) for at, route in routed],
                               now=now)
            unit.commit()
    except Exception:  # every push is retried alone and answered on its own
        log.warning("complaint.batch_taken_alone", pushes=len(pushes), exc_info=True)
        return [_alone(uow, cipher, push, now=now) for push in pushes]
    for (at, _), answer in zip(routed, new, strict=True):
        answers[at] = answer
    _log_taken_in(new)
    for at in later:
        answers[at] = _alone(uow, cipher, pushes[at], now=now)
    return [answer if answer is not None else RuntimeError("a push was left unanswered")
            for answer in answers]


def _alone(uow: Callable[[], ComplaintsUnitOfWork], cipher: FieldCipher, push: Push, *,
           now: datetime) -> Submitted | Exception:
    try:
        return submit_complaint(uow=uow(), cipher=cipher, caller=push.caller,
                                submission=push.submission, now=now)
    except Exception as error:  # it is this push's answer, raised to its caller
        return error


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


#: How long a batch of pushes that is not full waits for more (kernel.groupcommit): 1 ms.
#: Without it, half the batches of a burst held one push (the first caller back after an
#: answer), each paying a transaction's fixed costs alone. Measured in stop 15
#: (bench.complaints, 1500 pushes, 32 in flight): batches of 7 pushes on average instead of
#: 3.8, 546 pushes/s against 476/s; a lone push on a quiet service waits the 1 ms.
INTAKE_LINGER_SECONDS = 0.001


def group_intake(*, writing: Callable[[], ComplaintsUnitOfWork], cipher: FieldCipher,
                 linger_seconds: float = INTAKE_LINGER_SECONDS,
                 ) -> GroupCommit[Push, Submitted]:
    """The pushes of concurrent SubmitComplaint calls (and Open311 posts), taken in by
    shared transactions."""
    def write(pushes: Sequence[Push]) -> list[Submitted | Exception]:
        return submit_complaints(uow=writing, cipher=cipher, pushes=pushes,
                                 now=datetime.now(UTC))
    return GroupCommit(write, linger_seconds=linger_seconds)
