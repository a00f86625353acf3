"""Complaint cases pushed in by platforms (DESIGN.md §3), free of any framework.

A platform pushes a case under its own external id; the pair (platform,
external id) names the case for good, so a platform that is not sure its
push arrived pushes again and gets the same case. A case is routed at once
by its category to the department the rule in force names (首接负责) and
falls under a deadline class by its kind and urgency; the policy in force
gives each class its length (the workflow that keeps the deadline comes
later).

The complainant's name and phone are personal data: they travel in a
``Complainant`` that the application layer seals before storing, and no
event, audit entry or log line carries them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from kernel.errors import AlreadyExists, FieldViolation, InvalidArgument
from kernel.numbering import day_number
from services.complaints.domain.model import Category

CASE_NUMBER_PATTERN = re.compile(r"^CP-[0-9]{8}-[0-9]{6}$")
EXTERNAL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
CONTENT_MAX_LENGTH = 2000
ADDRESS_MAX_LENGTH = 200
#: The events every case starts with.
RECEIVED = "complaint.received"
ROUTED = "complaint.routed"


class ComplaintKind(StrEnum):
    CONSULTATION = "consultation"
    HELP_REQUEST = "help_request"
    SUGGESTION = "suggestion"
    COMPLAINT = "complaint"
    REPORT = "report"


class DeadlineClass(StrEnum):
    """Which reply deadline of the policy in force a case falls under."""

    URGENT = "urgent"
    CONSULTATION = "consultation"
    REQUEST = "request"
    COMPLAINT = "complaint"


class ComplaintStatus(StrEnum):
    """Where a case stands (the values of the complaint workflow's ``Stage``)."""

    ROUTED = "routed"
    HANDLING = "handling"
    RETURNED = "returned"
    REPLIED = "replied"
    CLOSED = "closed"
    MERGED = "merged"


_CLASS_OF_KIND = {
    ComplaintKind.CONSULTATION: DeadlineClass.CONSULTATION,
    ComplaintKind.HELP_REQUEST: DeadlineClass.REQUEST,
    ComplaintKind.SUGGESTION: DeadlineClass.REQUEST,
    ComplaintKind.COMPLAINT: DeadlineClass.COMPLAINT,
    ComplaintKind.REPORT: DeadlineClass.COMPLAINT,
}


def deadline_class(kind: ComplaintKind, *, urgent: bool) -> DeadlineClass:
    """The deadline class of a case: urgent cases first, whatever their kind."""
    return DeadlineClass.URGENT if urgent else _CLASS_OF_KIND[kind]


def case_number(day: date, sequence: int) -> str:
    """CP-YYYYMMDD-NNNNNN: the China day's running number, counting from 1."""
    return day_number("CP", day, sequence, what="complaint")


def _refuse(subject: str, problems: list[FieldViolation]) -> None:
    if problems:
        raise InvalidArgument(
            f"{subject} is not valid: " + "; ".join(f"{p.field} {p.description}"
                                                    for p in problems),
            violations=problems)


@dataclass(frozen=True)
class Location:
    """Where the matter is: coordinates (both or neither), an address, or both."""

    latitude: float | None = None
    longitude: float | None = None
    address: str = ""

    def __post_init__(self) -> None:
        problems: list[FieldViolation] = []
        if (self.latitude is None) != (self.longitude is None):
            missing = "location.longitude" if self.longitude is None else "location.latitude"
            problems.append(FieldViolation(missing, "latitude and longitude go together"))
        for name, value, limit in (("latitude", self.latitude, 90.0),
                                   ("longitude", self.longitude, 180.0)):
            if value is not None and not (math.isfinite(value) and -limit <= value <= limit):
                problems.append(FieldViolation(f"location.{name}",
                                               f"must be a number of degrees within ±{limit:g}"))
        if len(self.address) > ADDRESS_MAX_LENGTH:
            problems.append(FieldViolation(
                "location.address", f"must be at most {ADDRESS_MAX_LENGTH} characters"))
        if self.latitude is None and self.longitude is None and not self.address.strip():
            problems.append(FieldViolation(
                "location", "give coordinates, an address or both, or leave location unset"))
        _refuse("location", problems)

    def content(self) -> dict[str, Any]:
        return {"latitude": self.latitude, "longitude": self.longitude,
                "address": self.address}


@dataclass(frozen=True)
class Complainant:
    """Who pushed the case through the platform: personal data, sealed at rest."""

    name: str
    phone: str = field(repr=False)

    def __repr__(self) -> str:
        return "Complainant(<personal data>)"


@dataclass(frozen=True)
class ComplaintSubmission:
    """A case as a platform pushes it in."""

    external_id: str
    kind: ComplaintKind
    urgent: bool
    category_code: str
    content: str
    complainant: Complainant
    location: Location | None = None
    linked_case_number: str = ""
    linked_tender_number: str = ""

    def __post_init__(self) -> None:
        problems: list[FieldViolation] = []
        if not EXTERNAL_ID_PATTERN.fullmatch(self.external_id):
            problems.append(FieldViolation("external_id", "must be 1 to 64 letters, digits "
                                                          "and . _ : -, starting alphanumeric"))
        if not self.content.strip() or len(self.content) > CONTENT_MAX_LENGTH:
            problems.append(FieldViolation(
                "content", f"must be 1 to {CONTENT_MAX_LENGTH} characters, not only spaces"))
        _refuse(f"complaint {self.external_id}", problems)

    def fingerprint_content(self) -> dict[str, Any]:
        """Everything the push says, for telling a re-push from another case."""
        return {"external_id": self.external_id, "kind": str(self.kind), "urgent": self.urgent,
                "category_code": self.category_code, "content": self.content,
                "location": self.location.content() if self.location else None,
                "complainant": {"name": self.complainant.name,
                                "phone": self.complainant.phone},
                "linked_case_number": self.linked_case_number,
                "linked_tender_number": self.linked_tender_number}


@dataclass(frozen=True)
class Complaint:
    """A case as the center holds it; ``complainant`` is None where it is not to be shown."""

    number: str
    platform_id: str
    external_id: str
    kind: ComplaintKind
    urgent: bool
    category_code: str
    department_code: str
    rule_version: int
    deadline_class: DeadlineClass
    content: str
    location: Location | None
    linked_case_number: str
    linked_tender_number: str
    status: ComplaintStatus
    received_at: datetime
    complainant: Complainant | None = None


@dataclass(frozen=True)
class ComplaintEvent:
    """One thing that happened to a case: codes only, never personal data."""

    case_number: str
    sequence: int
    code: str
    at: datetime
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Intake:
    """What taking a case in makes: the case and its first events."""

    complaint: Complaint
    events: tuple[ComplaintEvent, ...]


def take_in(submission: ComplaintSubmission, *, number: str, platform_id: str,
            category: Category, received_at: datetime) -> Intake:
    """The case ``submission`` makes, routed by ``category``'s rule in force."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must carry a time zone")
    if category.code != submission.category_code:
        raise ValueError(f"routing by category {category.code} for a case of "
                         f"{submission.category_code}")
    klass = deadline_class(submission.kind, urgent=submission.urgent)
    complaint = Complaint(
        number=number, platform_id=platform_id, external_id=submission.external_id,
        kind=submission.kind, urgent=submission.urgent, category_code=category.code,
        department_code=category.department_code, rule_version=category.rule_version,
        deadline_class=klass, content=submission.content, location=submission.location,
        linked_case_number=submission.linked_case_number,
        linked_tender_number=submission.linked_tender_number,
        status=ComplaintStatus.ROUTED, received_at=received_at,
        complainant=submission.complainant)
    received = {"platform": platform_id, "kind": str(submission.kind),
                "urgent": "true" if submission.urgent else "false"}
    if submission.linked_case_number:
        received["linked_case"] = submission.linked_case_number
    if submission.linked_tender_number:
        received["linked_tender"] = submission.linked_tender_number
    routed = {"category": category.code, "department": category.department_code,
              "rule_version": str(category.rule_version), "deadline_class": str(klass)}
    return Intake(complaint, (
        ComplaintEvent(number, 1, RECEIVED, received_at, received),
        ComplaintEvent(number, 2, ROUTED, received_at, routed)))


def check_re_push(*, stored_fingerprint: str, fingerprint: str, platform_id: str,
                  external_id: str, number: str) -> None:
    """A re-push of a case must say what the first push said; otherwise ALREADY_EXISTS."""
    if stored_fingerprint != fingerprint:
        raise AlreadyExists(
            f"platform {platform_id} pushed external id {external_id} before with other "
            f"content (case {number}): a new case needs a new external id; nothing was changed")
