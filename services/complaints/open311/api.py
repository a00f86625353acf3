"""The Open311 GeoReport v2 HTTP API: Starlette routes, GeoReport documents in, errors out.

Every resource answers in the format its extension names (``.xml`` or
``.json``); anything that goes wrong answers in GeoReport's error format —
``<errors><error><code/><description/></error></errors>`` or a JSON list of
``{code, description}`` — with the HTTP status the spec gives it: 404 for
what does not exist (a service code, a request, a token, a path, a format),
403 for a missing (on POST) or wrong api_key, 400 for any other request the
service cannot fulfil as asked. A resource asked for in an unknown format
answers its error in XML, the spec's required format.

Database work runs in a thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import structlog
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from kernel.chinatime import CHINA
from kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    GovhallError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from kernel.fieldcipher import FieldCipher
from kernel.groupcommit import GroupCommit
from kernel.text import text_fault
from services.complaints.app import cases
from services.complaints.db.open311 import CaseSearch, HandlingSchema, Open311UnitOfWork
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.domain.cases import CASE_NUMBER_PATTERN
from services.complaints.domain.model import CATEGORY_CODE
from services.complaints.open311 import handlers
from services.complaints.open311.documents import Format, errors_document, render

log = structlog.get_logger("govhall.complaints.open311")

#: Where the façade lives on its server.
BASE_PATH = "/open311/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: When this API last changed shape (discovery's ``changeset``).
CHANGESET = "2026-11-30T16:00:00Z"
#: GeoReport's default window for GET requests and the most it returns.
DEFAULT_SPAN = timedelta(days=90)
MAX_REQUESTS = 1000
#: Largest POST body read: a 4,000-character description in UTF-8 and percent-encoded,
#: with every other field, fits many times over.
MAX_FORM_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
#: The POST fields GeoReport defines; any other is refused.
_POST_FIELDS = frozenset({
    "api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string",
    "address_id", "email", "device_id", "account_id", "first_name", "last_name", "phone",
    "description", "media_url"})
_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")


class BadRequest(GovhallError):
    """A request the façade cannot read (400)."""


def _status_of(error: GovhallError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, PermissionDenied | Unauthenticated):
        return 403
    # InvalidArgument, AlreadyExists (the same external id with other content),
    # FailedPrecondition and the rest: GeoReport's 400 "the request cannot be fulfilled".
    return 400


def _format(request: Request) -> Format:
    try:
        return Format(request.path_params.get("fmt", ""))
    except ValueError:
        raise NotFound(
            f"unknown format {request.path_params.get('fmt', '')!r}: ask for .xml or .json"
        ) from None


def _path_format(path: str) -> Format:
    return Format.JSON if path.endswith(".json") else Format.XML


def error_response(status: int, description: str, fmt: Format,
                   headers: Mapping[str, str] | None = None) -> Response:
    return Response(render("errors", errors_document(status, description), fmt),
                    status_code=status, media_type=fmt.media_type, headers=headers)


def document_response(root: str, document: Any, fmt: Format) -> Response:
    return Response(render(root, document, fmt), media_type=fmt.media_type)


def _w3(instant: datetime) -> str:
    """A W3C date-time with its offset, in China time (the center's)."""
    return instant.astimezone(CHINA).isoformat(timespec="seconds")


def _single(values: dict[str, list[str]], name: str) -> str:
    given = values.get(name, [])
    if len(given) > 1:
        raise BadRequest(f"{name} is given {len(given)} times: give it once")
    return given[0] if given else ""


def _list(values: dict[str, list[str]], name: str) -> list[str]:
    """A comma-delimited argument (which GeoReport allows to be repeated), '' dropped."""
    return [part.strip() for given in values.get(name, []) for part in given.split(",")
            if part.strip()]


#: The years a date argument may fall in; beyond them no case exists, and the span
#: arithmetic on one would overflow.
FIRST_YEAR, LAST_YEAR = 2000, 2100
#: Degrees as a person writes them: no exponent, no underscores, no inf or nan.
_DEGREES = re.compile(r"[+-]?(?:[0-9]{1,3}(?:\.[0-9]{1,15})?|\.[0-9]{1,15})")


def _instant(name: str, text: str) -> datetime:
    try:
        instant = datetime.fromisoformat(text)
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise BadRequest(f"{name} {text[:40]!r} has no time zone: end it with Z or an "
                             "offset from UTC (+HH:MM)")
        instant = instant.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadRequest(f"{name} {text[:40]!r} is not a W3C date-time such as "
                         "2026-01-05T01:00:00Z") from None
    if not FIRST_YEAR <= instant.year <= LAST_YEAR:
        raise BadRequest(f"{name} {text[:40]!r} is outside the years {FIRST_YEAR} to "
                         f"{LAST_YEAR}")
    return instant


def _no_controls(values: dict[str, list[str]]) -> dict[str, list[str]]:
    """``values`` unless a name or a value holds a control character (NUL, ESC, DEL, C1 …),
    refused as gRPC refuses them (kernel.text)."""
    for name, given in values.items():
        for text in (name, *given):
            fault = text_fault(text)
            if fault is not None:
                shown = name if text_fault(name) is None else "a field name"
                raise InvalidArgument(f"{shown} {fault}",
                                      violations=[FieldViolation(shown, fault)])
    return values


def _degrees(name: str, text: str) -> float | None:
    if not text:
        return None
    try:
        if not _DEGREES.fullmatch(text):
            raise ValueError(text)
        return float(text)
    except ValueError:
        raise InvalidArgument(f"{name} {text!r} is not a number of degrees",
                              violations=[FieldViolation(name, "not a number")]) from None


def _query(request: Request) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        if value:  # GeoReport: an empty argument is one not given
            values.setdefault(name, []).append(value)
    return _no_controls(values)


class Open311Api:
    """The routes' behaviour, on one complaints database."""

    def __init__(self, engine: Engine, *, cipher: FieldCipher,
                 schema: HandlingSchema | None = None,
                 intake: GroupCommit[cases.Push, cases.Submitted] | None = None,
                 wake: Callable[[], None] | None = None) -> None:
        self._engine = engine
        # The outbox's wake (the process's starter): a new case's workflow starts at once.
        self._wake = wake
        self._cipher = cipher
        self._schema = schema if schema is not None else HandlingSchema.of(engine)
        # Posts are taken in by the group commit gRPC's pushes use (the process passes its
        # own, so both share transactions); alone, the façade has one of its own.
        self._intake = intake or cases.group_intake(
            writing=lambda: ComplaintsUnitOfWork(engine), cipher=cipher)

    def _reading(self) -> Open311UnitOfWork:
        return Open311UnitOfWork(self._engine, write=False, schema=self._schema)

    # ---- discovery and services ----------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        fmt = _format(request)
        url = str(request.base_url).rstrip("/") + BASE_PATH
        return document_response("discovery", {
            "changeset": CHANGESET,
            "contact": "The center's complaints dispatch desk (政务服务中心投诉受理). "
                       "Platforms get their api_key from the center's operators.",
            "key_service": "Ask the center's operators: each platform has one api_key.",
            "endpoints": [{
                "specification": SPECIFICATION, "url": url, "changeset": CHANGESET,
                "type": "production", "formats": ["text/xml", "application/json"]}],
        }, fmt)

    async def services(self, request: Request) -> Response:
        fmt = _format(request)
        found = await asyncio.to_thread(handlers.list_services, uow=self._reading())
        return document_response("services", [_service(s) for s in found], fmt)

    async def service_definition(self, request: Request) -> Response:
        fmt = _format(request)
        service = await asyncio.to_thread(
            handlers.service_definition, uow=self._reading(),
            service_code=request.path_params["code"])
        return document_response("service_definition", {
            "service_code": service.category.code,
            "attributes": [_attribute(order, *attribute)
                           for order, attribute in enumerate(handlers.ATTRIBUTES, start=1)],
        }, fmt)

    # ---- requests ------------------------------------------------------------------------

    async def requests(self, request: Request) -> Response:
        """GET requests searches them, POST requests creates one."""
        if request.method == "POST":
            return await self.post_request(request)
        return await self.get_requests(request)

    async def post_request(self, request: Request) -> Response:
        fmt = _format(request)
        fields = await _form(request)
        api_key = _api_key(_query(request), fields)
        form = _service_request_form(fields)
        push = await asyncio.to_thread(
            handlers.prepare_post, uow=self._reading(), cipher=self._cipher, api_key=api_key,
            form=form)
        posted = handlers.posted(await self._intake.submit(push))
        if self._wake is not None and not posted.replayed:
            # Committed: the outbox starts the case's workflow; the answer never waits for it.
            self._wake()
        log.info("open311.request_posted", case_number=posted.case_number,
                 replayed=posted.replayed)
        return document_response("service_requests", [{
            "service_request_id": posted.case_number,
            "service_notice": f"Routed to {posted.department_name}, which answers within the "
                              "deadline of the request's kind.",
            "account_id": None,
        }], fmt)

    async def get_requests(self, request: Request) -> Response:
        fmt = _format(request)
        values = _query(request)
        api_key = _api_key(values, {})
        search = _search(values, now=datetime.now(UTC))
        if search.category_codes:
            await asyncio.to_thread(self._known_services, search.category_codes)
        views = await asyncio.to_thread(
            handlers.find_requests, uow=self._reading(), api_key=api_key, search=search)
        return document_response("service_requests", [_request(v) for v in views], fmt)

    def _known_services(self, codes: Sequence[str]) -> None:
        for code in codes:
            handlers.service_definition(uow=self._reading(), service_code=code)

    async def get_request(self, request: Request) -> Response:
        fmt = _format(request)
        view = await asyncio.to_thread(
            handlers.get_request, uow=self._reading(), api_key=_api_key(_query(request), {}),
            case_number=request.path_params["number"])
        return document_response("service_requests", [_request(view)], fmt)

    async def token(self, request: Request) -> Response:
        fmt = _format(request)
        token = request.path_params["token"]
        found = await asyncio.to_thread(
            handlers.request_ids_for_token, uow=self._reading(),
            api_key=_api_key(_query(request), {}), token=token)
        return document_response("service_requests", [
            {"service_request_id": case.number, "token": token} for case in found], fmt)


def _api_key(query: dict[str, list[str]], form: dict[str, list[str]]) -> str:
    keys = {*query.get("api_key", []), *form.get("api_key", [])}
    if len(keys) > 1:
        raise BadRequest("api_key is given more than once with different values")
    return next(iter(keys), "")


async def _form(request: Request) -> dict[str, list[str]]:
    """The POST body as GeoReport sends it: form-encoded UTF-8, read up to a limit."""
    media_type, _, parameters = request.headers.get("content-type", "").partition(";")
    if media_type.strip().lower() != FORM_TYPE:
        raise BadRequest(f"POST requests takes a form ({FORM_TYPE}), not "
                         f"{media_type.strip() or 'a body without a content type'}")
    charset = re.search(r"charset\s*=\s*\"?([^\";\s]+)", parameters, re.IGNORECASE)
    if charset and charset.group(1).lower() not in ("utf-8", "utf8"):
        raise BadRequest("the form must be UTF-8")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise BadRequest(f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(bytes(body).decode("utf-8"), keep_blank_values=True,
                          strict_parsing=bool(body), encoding="utf-8", errors="strict",
                          max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the body is not a UTF-8 form (name=value&name=value)") from None
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        if value:  # GeoReport: an empty argument is one not given
            fields.setdefault(name, []).append(value)
    return _no_controls(fields)


def _service_request_form(fields: dict[str, list[str]]) -> handlers.ServiceRequestForm:
    attributes: dict[str, str] = {}
    unknown: list[str] = []
    for name, given in fields.items():
        attribute = _ATTRIBUTE.fullmatch(name)
        if attribute is not None:
            if attribute.group(2) or len(given) > 1:
                raise BadRequest(f"{name} takes one value: no attribute here is a "
                                 "multivaluelist")
            attributes[attribute.group(1)] = given[0]
        elif name not in _POST_FIELDS:
            unknown.append(name)
    if unknown:
        raise BadRequest("unknown field(s) " + ", ".join(repr(u[:40]) for u in sorted(unknown))
                         + ": POST requests takes GeoReport's fields and attribute[code]")
    if _single(fields, "address_id"):
        raise BadRequest("address_id is not supported here: give lat and long, "
                         "address_string, or both")
    latitude = _degrees("lat", _single(fields, "lat"))
    longitude = _degrees("long", _single(fields, "long"))
    address = _single(fields, "address_string")
    if latitude is None and longitude is None and not address:
        raise InvalidArgument("a location is required: lat and long, address_string, or both",
                              violations=[FieldViolation("lat/long or address_string",
                                                         "required")])
    return handlers.ServiceRequestForm(
        service_code=_single(fields, "service_code"), latitude=latitude, longitude=longitude,
        address=address, first_name=_single(fields, "first_name"),
        last_name=_single(fields, "last_name"), phone=_single(fields, "phone"),
        description=_single(fields, "description"), attributes=attributes)


def _search(values: dict[str, list[str]], *, now: datetime) -> CaseSearch:
    numbers = _list(values, "service_request_id")
    if numbers:
        # GeoReport: service_request_id overrides all other arguments.
        malformed = [n for n in numbers if not CASE_NUMBER_PATTERN.fullmatch(n)]
        if malformed:
            raise BadRequest(f"service_request_id {malformed[0][:40]!r} is not a case number "
                             "such as CP-20260105-000001")
        if len(numbers) > MAX_REQUESTS:
            raise BadRequest(f"at most {MAX_REQUESTS} service_request_id at once")
        return CaseSearch(numbers=numbers, limit=MAX_REQUESTS)
    codes = _list(values, "service_code")
    for code in codes:
        if not CATEGORY_CODE.fullmatch(code):
            raise BadRequest(f"service_code {code[:40]!r} is not a service code such as SC-01")
    statuses = _list(values, "status")
    for status in statuses:
        if status not in ("open", "closed"):
            raise BadRequest(f"status {status[:40]!r} is neither open nor closed")
    start_text, end_text = _single(values, "start_date"), _single(values, "end_date")
    start = _instant("start_date", start_text) if start_text else None
    end = _instant("end_date", end_text) if end_text else None
    if start is not None and end is not None:
        if start > end:
            raise BadRequest("start_date is after end_date")
        if end - start > DEFAULT_SPAN:
            raise BadRequest("start_date to end_date spans more than 90 days")
    elif start is not None:
        end = start + DEFAULT_SPAN
    elif end is not None:
        start = end - DEFAULT_SPAN
    else:
        start, end = now - DEFAULT_SPAN, now
    return CaseSearch(category_codes=codes or None, received_from=start, received_until=end,
                      statuses=frozenset(statuses) or None, limit=MAX_REQUESTS)


def _service(service: handlers.Service) -> dict[str, Any]:
    return {
        "service_code": service.category.code,
        "service_name": service.category.name,
        "description": f"{service.category.name}: routed to {service.department_name}",
        "metadata": True,
        "type": "realtime",
        "keywords": ", ".join(k.value for k in handlers.KIND_NAMES),
        "group": service.department_name,
    }


def _attribute(order: int, code: str, datatype: str, required: bool,
               description: str) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "variable": True, "code": code, "datatype": datatype, "required": required,
        "datatype_description": None, "order": order, "description": description}
    if code == "kind":
        attribute["values"] = [{"key": k.value, "name": name}
                               for k, name in handlers.KIND_NAMES.items()]
    elif code == "urgent":
        attribute["values"] = [{"key": "false", "name": "not urgent"},
                               {"key": "true", "name": "urgent (2-hour reply)"}]
    return attribute


def _request(view: handlers.RequestView) -> dict[str, Any]:
    """A case as GeoReport lays a request out; the public view leaves out the description
    and the place (and no view has the complainant)."""
    case = view.case
    document: dict[str, Any] = {
        "service_request_id": case.number,
        "status": "closed" if case.closed else "open",
        "status_notes": case.published_reply,
        "service_name": view.service_name,
        "service_code": case.category_code,
    }
    if view.full:
        document["description"] = case.content
    document["agency_responsible"] = view.department_name
    document["service_notice"] = None
    document["requested_datetime"] = _w3(case.received_at)
    document["updated_datetime"] = _w3(case.updated_at)
    if case.reply_due is not None:
        document["expected_datetime"] = _w3(case.reply_due)
    if view.full:
        document["address"] = case.address or None
        if case.latitude is not None and case.longitude is not None:
            document["lat"] = case.latitude
            document["long"] = case.longitude
    return document


Endpoint = Callable[[Request], Awaitable[Response]]


def _answering_errors(endpoint: Endpoint) -> Endpoint:
    """Turn the use cases' errors into GeoReport's error format and status."""
    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except GovhallError as error:
            status = _status_of(error)
            fmt = _path_format(request.url.path)
            if not isinstance(error, NotFound | InvalidArgument | BadRequest | AlreadyExists
                              | FailedPrecondition | PermissionDenied):
                log.warning("open311.refused", status=status, error=type(error).__name__)
            return error_response(status, str(error), fmt)
    return answer


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    status = error.status_code
    description = {404: f"there is no resource {request.url.path} here: see "
                        f"{BASE_PATH}/discovery.xml",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(
        status, error.detail)
    return error_response(status, description, _path_format(request.url.path),
                          headers=error.headers)


async def _bug(request: Request, error: Exception) -> Response:
    log.error("open311.failed", path=request.url.path, error=type(error).__name__)
    return error_response(500, "the service failed on this request: the center's operators "
                               "are told", _path_format(request.url.path))


def open311_app(engine: Engine, *, cipher: FieldCipher,
                schema: HandlingSchema | None = None,
                intake: GroupCommit[cases.Push, cases.Submitted] | None = None,
                wake: Callable[[], None] | None = None) -> Starlette:
    """The façade's ASGI application on the complaints database; posts are taken in by
    ``intake`` (the process's group commit) when given, and a new case calls ``wake`` (the
    outbox's) once committed."""
    api = Open311Api(engine, cipher=cipher, schema=schema, intake=intake, wake=wake)

    def route(path: str, endpoint: Endpoint, methods: list[str]) -> Route:
        return Route(path, _answering_errors(endpoint), methods=methods)

    routes = [
        route("/discovery.{fmt}", api.discovery, ["GET"]),
        route("/services.{fmt}", api.services, ["GET"]),
        route("/services/{code}.{fmt}", api.service_definition, ["GET"]),
        route("/requests.{fmt}", api.requests, ["GET", "POST"]),
        route("/requests/{number}.{fmt}", api.get_request, ["GET"]),
        route("/tokens/{token}.{fmt}", api.token, ["GET"]),
    ]
    return Starlette(
        routes=[Mount(BASE_PATH, routes=routes),
                route("/open311/discovery.{fmt}", api.discovery, ["GET"])],
        exception_handlers={HTTPException: _http_error, Exception: _bug})
