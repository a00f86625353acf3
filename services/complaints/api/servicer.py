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
from services.complaints.app import cases, handlers, webhooks
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
from services.complaints.domain.model import Category, Platform, RoutingRule
from services.complaints.domain.webhooks import PlatformEvent, PlatformWebhook

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


def webhook_to_proto(webhook: PlatformWebhook) -> pb.PlatformWebhook:
    message = pb.PlatformWebhook(platform_id=webhook.platform_id, url=webhook.url,
                                 set_by_official_id=webhook.set_by_official_id)
    message.set_at.FromDatetime(webhook.set_at)
    return message


def platform_event_to_proto(event: PlatformEvent) -> pb.PlatformEvent:
    message = pb.PlatformEvent(event_id=event.event_id, sequence=event.sequence,
                               case_number=event.case_number, event_type=event.event_type,
                               data=event.data)
    message.occurred_at.FromDatetime(event.created_at)
    if event.delivered_at is not None:
        message.delivered_at.FromDatetime(event.delivered_at)
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

    # ---- webhooks ----

    async def SetPlatformWebhook(self, request: pb.SetPlatformWebhookRequest,
                                 context: grpc.aio.ServicerContext[Any, Any],
                                 ) -> pb.SetPlatformWebhookResponse:
        result = await asyncio.to_thread(
            webhooks.set_platform_webhook, uow=self._writing(), cipher=self._cipher,
            caller=current_caller(), platform_id=request.platform_id, url=request.url,
            now=datetime.now(UTC))
        return pb.SetPlatformWebhookResponse(webhook=webhook_to_proto(result.webhook),
                                             signing_secret=result.secret)

    async def ListPlatformEvents(self, request: pb.ListPlatformEventsRequest,
                                 context: grpc.aio.ServicerContext[Any, Any],
                                 ) -> pb.ListPlatformEventsResponse:
        page = await asyncio.to_thread(
            webhooks.list_platform_events, uow=self._reading(), caller=current_caller(),
            platform_id=request.platform_id, requested_size=request.page_size,
            page_token=request.page_token)
        return pb.ListPlatformEventsResponse(
            events=[platform_event_to_proto(e) for e in page.events],
            next_page_token=page.next_page_token, more=page.more)
