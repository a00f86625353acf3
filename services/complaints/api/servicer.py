"""The complaints gRPC API: protobuf in and out, the use cases in between.

Database work runs in a thread so the event loop keeps serving other calls.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy import Engine

from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from kernel.audittrail import AuditTrailService
from kernel.commonpb import (
    checkpoint_from_proto,
    department_kind_name,
    department_to_proto,
    verification_to_proto,
)
from kernel.fieldcipher import FieldCipher
from kernel.identity import current_caller
from services.complaints.app import cases, handlers
from services.complaints.app import metrics as complaint_metrics
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.domain.cases import (
    Complainant,
    ComplaintEvent,
    ComplaintKind,
    ComplaintStatus,
    ComplaintSubmission,
    DeadlineClass,
    Location,
)
from services.complaints.domain.metrics import (
    DepartmentMetrics,
    LinkedCount,
    LinkKind,
    LinkStatus,
    Rate,
)
from services.complaints.domain.model import Category, Platform, RoutingRule

_PLATFORM_KINDS = {"portal": pb.PLATFORM_KIND_PORTAL, "hotline": pb.PLATFORM_KIND_HOTLINE}
_KINDS = {
    pb.COMPLAINT_KIND_CONSULTATION: ComplaintKind.CONSULTATION,
    pb.COMPLAINT_KIND_HELP_REQUEST: ComplaintKind.HELP_REQUEST,
    pb.COMPLAINT_KIND_SUGGESTION: ComplaintKind.SUGGESTION,
    pb.COMPLAINT_KIND_COMPLAINT: ComplaintKind.COMPLAINT,
    pb.COMPLAINT_KIND_REPORT: ComplaintKind.REPORT,
}
_KIND_PROTOS = {kind: value for value, kind in _KINDS.items()}
_DEADLINE_CLASSES = {
    DeadlineClass.URGENT: pb.DEADLINE_CLASS_URGENT,
    DeadlineClass.CONSULTATION: pb.DEADLINE_CLASS_CONSULTATION,
    DeadlineClass.REQUEST: pb.DEADLINE_CLASS_REQUEST,
    DeadlineClass.COMPLAINT: pb.DEADLINE_CLASS_COMPLAINT,
}
_STATUSES = {ComplaintStatus.ROUTED: pb.COMPLAINT_STATUS_ROUTED}


def category_to_proto(category: Category, department_name: str) -> pb.Category:
    return pb.Category(code=category.code, name=category.name,
                       department_code=category.department_code,
                       department_name=department_name, rule_version=category.rule_version)


def rule_to_proto(rule: RoutingRule, department_name: str) -> pb.RoutingRule:
    message = pb.RoutingRule(
        category_code=rule.category_code, version=rule.version,
        department_code=rule.department_code, department_name=department_name,
        basis=rule.basis, set_by_official_id=rule.set_by_official_id)
    message.valid_from.FromDatetime(rule.valid_from)
    if rule.valid_until is not None:
        message.valid_until.FromDatetime(rule.valid_until)
    return message


def platform_to_proto(platform: Platform) -> pb.Platform:
    return pb.Platform(id=platform.id, name=platform.name, kind=_PLATFORM_KINDS[platform.kind])


def submission_from_proto(request: pb.SubmitComplaintRequest) -> ComplaintSubmission:
    location = None
    if request.HasField("location"):
        given = request.location
        location = Location(
            latitude=given.latitude if given.HasField("latitude") else None,
            longitude=given.longitude if given.HasField("longitude") else None,
            address=given.address)
    return ComplaintSubmission(
        external_id=request.external_id, kind=_KINDS[request.kind], urgent=request.urgent,
        category_code=request.category_code, content=request.content,
        complainant=Complainant(request.complainant_name, request.complainant_phone),
        location=location, linked_case_number=request.linked_case_number,
        linked_tender_number=request.linked_tender_number)


def complaint_to_proto(view: cases.ComplaintView) -> pb.Complaint:
    complaint = view.complaint
    message = pb.Complaint(
        case_number=complaint.number, platform_id=complaint.platform_id,
        external_id=complaint.external_id, kind=_KIND_PROTOS[complaint.kind],
        urgent=complaint.urgent, category_code=complaint.category_code,
        department_code=complaint.department_code, department_name=view.department_name,
        rule_version=complaint.rule_version,
        deadline_class=_DEADLINE_CLASSES[complaint.deadline_class],
        content=complaint.content, linked_case_number=complaint.linked_case_number,
        linked_tender_number=complaint.linked_tender_number,
        status=_STATUSES[complaint.status])
    if complaint.location is not None:
        location = complaint.location
        message.location.address = location.address
        if location.latitude is not None and location.longitude is not None:
            message.location.latitude = location.latitude
            message.location.longitude = location.longitude
    if complaint.complainant is not None:
        message.complainant_name = complaint.complainant.name
        message.complainant_phone = complaint.complainant.phone
    message.received_at.FromDatetime(complaint.received_at)
    return message


def event_to_proto(event: ComplaintEvent) -> pb.ComplaintEvent:
    message = pb.ComplaintEvent(sequence=event.sequence, code=event.code,
                                details=event.details)
    message.at.FromDatetime(event.at)
    return message


_LINK_KINDS = {LinkKind.APPROVAL: pb.COMPLAINT_LINK_KIND_APPROVAL,
               LinkKind.TENDER: pb.COMPLAINT_LINK_KIND_TENDER}
_LINK_STATUSES = {LinkStatus.FOUND: pb.COMPLAINT_LINK_STATUS_FOUND,
                  LinkStatus.NOT_FOUND: pb.COMPLAINT_LINK_STATUS_NOT_FOUND,
                  LinkStatus.UNCHECKED: pb.COMPLAINT_LINK_STATUS_UNCHECKED}


def rate_to_proto(rate: Rate) -> pb.ComplaintRate:
    return pb.ComplaintRate(numerator=rate.numerator, denominator=rate.denominator,
                            no_cases=rate.no_cases)


def department_metrics_to_proto(figures: DepartmentMetrics,
                                names: dict[str, str]) -> pb.DepartmentComplaintMetrics:
    return pb.DepartmentComplaintMetrics(
        department_code=figures.department_code,
        department_name=names.get(figures.department_code, ""), cases=figures.cases,
        merged_duplicates=figures.merged_duplicates,
        completion=rate_to_proto(figures.completion),
        sign_for_on_time=rate_to_proto(figures.sign_for_on_time),
        reply_on_time=rate_to_proto(figures.reply_on_time),
        satisfaction=rate_to_proto(figures.satisfaction),
        excellent=rate_to_proto(figures.excellent))


def linked_to_proto(count: LinkedCount) -> pb.LinkedComplaints:
    return pb.LinkedComplaints(kind=_LINK_KINDS[count.kind], status=_LINK_STATUSES[count.status],
                               item_code=count.item_code,
                               department_code=count.department_code, cases=count.cases)


def metrics_to_proto(view: complaint_metrics.MetricsView) -> pb.GetComplaintMetricsResponse:
    metrics = view.metrics
    message = pb.GetComplaintMetricsResponse(
        overall=department_metrics_to_proto(metrics.overall, view.department_names),
        departments=[department_metrics_to_proto(d, view.department_names)
                     for d in metrics.departments],
        linked=[linked_to_proto(c) for c in metrics.linked])
    message.period_start.FromDatetime(metrics.period_start)
    message.period_end.FromDatetime(metrics.period_end)
    message.as_of.FromDatetime(metrics.as_of)
    return message


class ComplaintsServicer(complaints_pb2_grpc.ComplaintsServiceServicer):
    def __init__(self, engine: Engine, *, audit: AuditTrailService,
                 cipher: FieldCipher) -> None:
        self._engine = engine
        self._audit = audit
        self._cipher = cipher

    def _reading(self) -> ComplaintsUnitOfWork:
        return ComplaintsUnitOfWork(self._engine, write=False)

    def _writing(self) -> ComplaintsUnitOfWork:
        return ComplaintsUnitOfWork(self._engine)

    async def ListDepartments(self, request: pb.ListDepartmentsRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.ListDepartmentsResponse:
        page = await asyncio.to_thread(
            handlers.list_departments, uow=self._reading(),
            kind=department_kind_name(request.kind), requested_size=request.page_size,
            page_token=request.page_token)
        return pb.ListDepartmentsResponse(
            departments=[department_to_proto(d) for d in page.departments],
            next_page_token=page.next_page_token)

    async def GetDepartment(self, request: pb.GetDepartmentRequest,
                            context: grpc.aio.ServicerContext[Any, Any],
                            ) -> pb.GetDepartmentResponse:
        department = await asyncio.to_thread(
            handlers.get_department, uow=self._reading(), code=request.code)
        return pb.GetDepartmentResponse(department=department_to_proto(department))

    async def ListCategories(self, request: pb.ListCategoriesRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.ListCategoriesResponse:
        page = await asyncio.to_thread(
            handlers.list_categories, uow=self._reading(),
            department_code=request.department_code, requested_size=request.page_size,
            page_token=request.page_token)
        return pb.ListCategoriesResponse(
            categories=[category_to_proto(c, page.department_names[c.department_code])
                        for c in page.categories],
            next_page_token=page.next_page_token)

    async def RouteComplaint(self, request: pb.RouteComplaintRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.RouteComplaintResponse:
        routing = await asyncio.to_thread(
            handlers.route_complaint, uow=self._reading(), category_code=request.category_code)
        return pb.RouteComplaintResponse(
            department=department_to_proto(routing.department),
            category=category_to_proto(routing.category, routing.department.name))

    async def SetRoutingRule(self, request: pb.SetRoutingRuleRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.SetRoutingRuleResponse:
        result = await asyncio.to_thread(
            handlers.set_routing_rule, uow=self._writing(), caller=current_caller(),
            category_code=request.category_code, department_code=request.department_code,
            name=request.name, basis=request.basis)
        return pb.SetRoutingRuleResponse(
            category=category_to_proto(result.change.category, result.department.name),
            rule=rule_to_proto(result.change.rule, result.department.name))

    async def ListRoutingRules(self, request: pb.ListRoutingRulesRequest,
                               context: grpc.aio.ServicerContext[Any, Any],
                               ) -> pb.ListRoutingRulesResponse:
        page = await asyncio.to_thread(
            handlers.list_routing_rules, uow=self._reading(),
            category_code=request.category_code, requested_size=request.page_size,
            page_token=request.page_token)
        return pb.ListRoutingRulesResponse(
            rules=[rule_to_proto(r, page.department_names[r.department_code])
                   for r in page.rules],
            next_page_token=page.next_page_token)

    async def ListPlatforms(self, request: pb.ListPlatformsRequest,
                            context: grpc.aio.ServicerContext[Any, Any],
                            ) -> pb.ListPlatformsResponse:
        platforms = await asyncio.to_thread(handlers.list_platforms, uow=self._reading())
        return pb.ListPlatformsResponse(platforms=[platform_to_proto(p) for p in platforms])

    async def VerifyAuditLog(self, request: pb.VerifyAuditLogRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.VerifyAuditLogResponse:
        result = await asyncio.to_thread(
            self._audit.verify, kept=[checkpoint_from_proto(c) for c in request.checkpoints])
        return pb.VerifyAuditLogResponse(verification=verification_to_proto(result))

    async def SubmitComplaint(self, request: pb.SubmitComplaintRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.SubmitComplaintResponse:
        result = await asyncio.to_thread(
            cases.submit_complaint, uow=self._writing(), cipher=self._cipher,
            caller=current_caller(), submission=submission_from_proto(request),
            now=datetime.now(UTC))
        return pb.SubmitComplaintResponse(complaint=complaint_to_proto(result.view),
                                          replayed=result.replayed)

    async def GetComplaint(self, request: pb.GetComplaintRequest,
                           context: grpc.aio.ServicerContext[Any, Any],
                           ) -> pb.GetComplaintResponse:
        view = await asyncio.to_thread(
            cases.get_complaint, uow=self._reading(), cipher=self._cipher,
            caller=current_caller(), case_number=request.case_number)
        return pb.GetComplaintResponse(complaint=complaint_to_proto(view))

    async def ListComplaintEvents(self, request: pb.ListComplaintEventsRequest,
                                  context: grpc.aio.ServicerContext[Any, Any],
                                  ) -> pb.ListComplaintEventsResponse:
        page = await asyncio.to_thread(
            cases.list_complaint_events, uow=self._reading(), caller=current_caller(),
            case_number=request.case_number, requested_size=request.page_size,
            page_token=request.page_token)
        return pb.ListComplaintEventsResponse(
            events=[event_to_proto(e) for e in page.events],
            next_page_token=page.next_page_token)

    # ---- metrics -----------------------------------------------------------------------

    async def GetComplaintMetrics(self, request: pb.GetComplaintMetricsRequest,
                                  context: grpc.aio.ServicerContext[Any, Any],
                                  ) -> pb.GetComplaintMetricsResponse:
        view = await asyncio.to_thread(
            complaint_metrics.get_complaint_metrics, uow=self._reading(),
            start=request.period_start.ToDatetime(UTC),
            end=request.period_end.ToDatetime(UTC),
            department_code=request.department_code, as_of=datetime.now(UTC))
        return metrics_to_proto(view)
