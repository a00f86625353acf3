"""The Open311 façade's use cases, one function each, on a unit of work.

A GeoReport *service* is a complaint category; a *service request* is a case.
Posting a request goes through the intake's group commit
(``cases.submit_complaints``), the one gRPC's SubmitComplaint calls go
through, after the same protovalidate rules: routing, validation,
idempotency and sealing of the complainant are one code path, and posts
share transactions with each other and with gRPC pushes under a burst.

Who sees what. Without an API key anybody reads the public view of every
case: its category, status, responsible department, dates and the published
(anonymised) reply — never the description, the place or the complainant.
With a platform's key, that platform reads its own cases in full
(description, address, coordinates); another platform's cases it still sees
only in the public view, as anyone would: a key adds to what is public, it
never shows another platform's case. A key that is not a platform's is
refused (403) rather than read as no key, so a platform with a mistyped key
learns at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from govhall.complaints.v1 import complaints_pb2 as pb
from kernel.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied
from kernel.fieldcipher import FieldCipher
from kernel.grpcserver import validate_request
from kernel.identity import Caller
from services.complaints.api.servicer import submission_from_proto
from services.complaints.app import cases
from services.complaints.db.open311 import CaseRecord, CaseSearch, Open311UnitOfWork
from services.complaints.domain.cases import CASE_NUMBER_PATTERN, ComplaintKind
from services.complaints.domain.model import Category
from services.complaints.open311.keys import key_hash

#: The kinds a request may be posted as (the ``kind`` attribute's values).
KIND_NAMES = {
    ComplaintKind.CONSULTATION: "咨询 consultation",
    ComplaintKind.HELP_REQUEST: "求助 help request",
    ComplaintKind.SUGGESTION: "建议 suggestion",
    ComplaintKind.COMPLAINT: "投诉 complaint",
    ComplaintKind.REPORT: "举报 report",
}
_PROTO_KINDS = {
    ComplaintKind.CONSULTATION: pb.COMPLAINT_KIND_CONSULTATION,
    ComplaintKind.HELP_REQUEST: pb.COMPLAINT_KIND_HELP_REQUEST,
    ComplaintKind.SUGGESTION: pb.COMPLAINT_KIND_SUGGESTION,
    ComplaintKind.COMPLAINT: pb.COMPLAINT_KIND_COMPLAINT,
    ComplaintKind.REPORT: pb.COMPLAINT_KIND_REPORT,
}
#: The Open311 names of the gRPC request's fields, for error messages.
_FIELD_NAMES = {
    "external_id": "attribute[external_id]",
    "kind": "attribute[kind]",
    "category_code": "service_code",
    "content": "description",
    "complainant_name": "first_name/last_name",
    "complainant_phone": "phone",
    "location.latitude": "lat",
    "location.longitude": "long",
    "location.address": "address_string",
    "location": "lat/long or address_string",
    "linked_case_number": "attribute[linked_case_number]",
    "linked_tender_number": "attribute[linked_tender_number]",
}
#: Attributes every service takes: (code, datatype, required, description).
ATTRIBUTES = (
    ("kind", "singlevaluelist", True, "What the request is: consultation, help request, "
                                      "suggestion, complaint or report."),
    ("urgent", "singlevaluelist", False, "true when life or property is at risk now: the "
                                         "case then has a 2-hour reply deadline."),
    ("external_id", "string", False, "The platform's own id of the case (1 to 64 letters, "
                                     "digits and . _ : -). Posting the same id again returns "
                                     "the same case; without it, the same posting twice "
                                     "does."),
    ("linked_case_number", "string", False, "The approval case the request is about "
                                            "(AP-YYYYMMDD-NNNNNN), if any."),
    ("linked_tender_number", "string", False, "The tender the request is about, if any."),
)
ATTRIBUTE_CODES = frozenset(code for code, *_ in ATTRIBUTES)


@dataclass(frozen=True)
class Service:
    """A complaint category as a GeoReport service."""

    category: Category
    department_name: str


@dataclass(frozen=True)
class RequestView:
    """A case as one caller may see it: ``full`` only for the platform that pushed it."""

    case: CaseRecord
    service_name: str
    department_name: str
    full: bool


@dataclass(frozen=True)
class ServiceRequestForm:
    """A ``POST requests`` form, parsed but not yet judged."""

    service_code: str
    latitude: float | None = None
    longitude: float | None = None
    address: str = ""
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    description: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Posted:
    case_number: str
    department_name: str
    replayed: bool


def authenticate(uow: Open311UnitOfWork, api_key: str) -> str | None:
    """The platform ``api_key`` belongs to; None without a key; 403 for a wrong one.

    Called inside an open unit of work.
    """
    if not api_key:
        return None
    platform_id = uow.api_keys.platform_of(key_hash(api_key))
    if platform_id is None:
        raise PermissionDenied("invalid api_key: it is no platform's key; nothing was done")
    return platform_id


def list_services(*, uow: Open311UnitOfWork) -> list[Service]:
    with uow:
        categories = uow.routing.list_categories(department_code="", after="", limit=10_000)
        names = _department_names(uow, {c.department_code for c in categories})
    return [Service(c, names.get(c.department_code, "")) for c in categories]


def service_definition(*, uow: Open311UnitOfWork, service_code: str) -> Service:
    with uow:
        category = uow.routing.category(service_code)
        if category is None:
            raise NotFound(f"service_code {service_code} is not a service here: "
                           "GET services lists them")
        names = _department_names(uow, {category.department_code})
    return Service(category, names.get(category.department_code, ""))


def _department_names(uow: Open311UnitOfWork, codes: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for code in codes:
        department = uow.departments.get(code)
        if department is not None:
            names[code] = department.name
    return names


def _external_id(cipher: FieldCipher, form: ServiceRequestForm, platform_id: str) -> str:
    """The platform's id for the case, or one derived from the whole posting: the same
    posting twice is then one case, as a re-push with one external id is."""
    given = form.attributes.get("external_id", "")
    if given:
        return given
    content = "\x1f".join([
        platform_id, form.service_code, repr(form.latitude), repr(form.longitude),
        form.address, form.first_name, form.last_name, form.phone, form.description,
        *(f"{k}={v}" for k, v in sorted(form.attributes.items()))])
    return "o311-" + cipher.digest(content.encode("utf-8"))[:40]


def _submission_request(cipher: FieldCipher, form: ServiceRequestForm,
                        platform_id: str) -> pb.SubmitComplaintRequest:
    problems: list[FieldViolation] = []
    unknown = sorted(set(form.attributes) - ATTRIBUTE_CODES)
    if unknown:
        problems.append(FieldViolation(
            "attribute", f"unknown attribute(s) {', '.join(unknown)}: the service definition "
                         "lists " + ", ".join(sorted(ATTRIBUTE_CODES))))
    kind_name = form.attributes.get("kind", "")
    try:
        kind = ComplaintKind(kind_name)
    except ValueError:
        kind = None
        problems.append(FieldViolation(
            "attribute[kind]", "required: one of " + ", ".join(k.value for k in ComplaintKind)))
    urgent = form.attributes.get("urgent", "false")
    if urgent not in ("true", "false"):
        problems.append(FieldViolation("attribute[urgent]", "must be true or false"))
    for name, value in (("lat", form.latitude), ("long", form.longitude)):
        if value is not None and not math.isfinite(value):
            problems.append(FieldViolation(name, "must be a finite number of degrees"))
    if problems:
        raise InvalidArgument("the request is not valid: " + "; ".join(
            f"{p.field} {p.description}" for p in problems), violations=problems)
    assert kind is not None
    request = pb.SubmitComplaintRequest(
        external_id=_external_id(cipher, form, platform_id), kind=_PROTO_KINDS[kind],
        urgent=urgent == "true", category_code=form.service_code, content=form.description,
        complainant_name=" ".join(n for n in (form.first_name, form.last_name) if n),
        complainant_phone=form.phone,
        linked_case_number=form.attributes.get("linked_case_number", ""),
        linked_tender_number=form.attributes.get("linked_tender_number", ""))
    if form.latitude is not None or form.longitude is not None or form.address:
        request.location.address = form.address
        if form.latitude is not None:
            request.location.latitude = form.latitude
        if form.longitude is not None:
            request.location.longitude = form.longitude
    return request


def _in_open311_words(error: InvalidArgument) -> InvalidArgument:
    violations = [FieldViolation(_FIELD_NAMES.get(v.field, v.field), v.description)
                  for v in error.violations]
    if not violations:
        return error
    return InvalidArgument("the request is not valid: " + "; ".join(
        f"{v.field}: {v.description}" for v in violations), violations=violations)


def prepare_post(*, uow: Open311UnitOfWork, cipher: FieldCipher, api_key: str,
                 form: ServiceRequestForm) -> cases.Push:
    """The push a platform's posting makes, after the façade's own checks (its key, its
    calling system, the service code, the form and protovalidate's rules); reads only.

    The push is then taken in as a gRPC SubmitComplaint is, by the intake's group commit
    (``cases.submit_complaints``), whose checks it passes again in the batch.
    """
    with uow:
        platform_id = authenticate(uow, api_key)
        if platform_id is None:
            raise PermissionDenied("POST requests needs the platform's api_key; nothing was "
                                   "done")
        platform = next((p for p in uow.platforms.list() if p.id == platform_id), None)
        category = uow.routing.category(form.service_code) if form.service_code else None
    if platform is None or not platform.system_name:
        raise PermissionDenied(f"platform {platform_id} has no calling system registered, so "
                               "it cannot push cases in; nothing was done")
    if not form.service_code:
        raise InvalidArgument("service_code is required: GET services lists them",
                              violations=[FieldViolation("service_code", "required")])
    if category is None:
        raise NotFound(f"service_code {form.service_code} is not a service here: "
                       "GET services lists them")
    request = _submission_request(cipher, form, platform_id)
    try:
        validate_request(request)
        submission = submission_from_proto(request)
    except InvalidArgument as error:
        raise _in_open311_words(error) from error
    return cases.Push(Caller(platform.system_name), submission)


def posted(submitted: cases.Submitted) -> Posted:
    """What the façade answers for a push taken in."""
    return Posted(submitted.view.complaint.number, submitted.view.department_name,
                  submitted.replayed)


def _views(uow: Open311UnitOfWork, records: list[CaseRecord],
           viewer: str | None) -> list[RequestView]:
    names = _department_names(uow, {r.department_code for r in records})
    services: dict[str, str] = {}
    for code in {r.category_code for r in records}:
        category = uow.routing.category(code)
        services[code] = category.name if category else ""
    return [RequestView(r, services[r.category_code], names.get(r.department_code, ""),
                        full=viewer is not None and viewer == r.platform_id)
            for r in records]


def find_requests(*, uow: Open311UnitOfWork, api_key: str,
                  search: CaseSearch) -> list[RequestView]:
    with uow:
        viewer = authenticate(uow, api_key)
        return _views(uow, uow.open311.search(search), viewer)


def get_request(*, uow: Open311UnitOfWork, api_key: str, case_number: str) -> RequestView:
    with uow:
        viewer = authenticate(uow, api_key)
        found = (uow.open311.search(CaseSearch(numbers=[case_number], limit=1))
                 if CASE_NUMBER_PATTERN.fullmatch(case_number) else [])
        if not found:
            raise NotFound(f"there is no service request {case_number}")
        return _views(uow, found, viewer)[0]


def request_ids_for_token(*, uow: Open311UnitOfWork, api_key: str,
                          token: str) -> list[CaseRecord]:
    """The cases a token names. A token is the id the platform pushed a case under
    (``attribute[external_id]``, or the one derived from the posting): with a key, that
    platform's; without, any platform's (the case numbers it gives are public anyway)."""
    with uow:
        viewer = authenticate(uow, api_key)
        found = uow.open311.of_external_id(token, platform_id=viewer)
    if not found:
        raise NotFound(f"token {token} names no service request")
    return found
