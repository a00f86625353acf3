"""The complaints gRPC API: protobuf in and out, the use cases in between.

Database work runs in a thread so the event loop keeps serving other calls.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
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
from kernel.errors import Unavailable
from kernel.fieldcipher import FieldCipher
from kernel.groupcommit import GroupCommit
from kernel.identity import current_caller
from services.complaints.app import cases, desk, handlers, webhooks
from services.complaints.app import metrics as complaint_metrics
from services.complaints.app.flow import ComplaintStarter
from services.complaints.db.repository import ComplaintsUnitOfWork, StoredPolicy
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
from services.complaints.domain.policy import DeadlinePolicy
from services.complaints.domain.webhooks import PlatformEvent, PlatformWebhook
from workflows.complaint_contract import ActReceipt

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
_STATUSES = {
    ComplaintStatus.ROUTED: pb.COMPLAINT_STATUS_ROUTED,
    ComplaintStatus.HANDLING: pb.COMPLAINT_STATUS_HANDLING,
    ComplaintStatus.RETURNED: pb.COMPLAINT_STATUS_RETURNED,
    ComplaintStatus.REPLIED: pb.COMPLAINT_STATUS_REPLIED,
    ComplaintStatus.CLOSED: pb.COMPLAINT_STATUS_CLOSED,
    ComplaintStatus.MERGED: pb.COMPLAINT_STATUS_MERGED,
}
_INBOX_REASONS = {
    "lead": pb.INBOX_REASON_LEAD,
    "co_handler": pb.INBOX_REASON_CO_HANDLER,
    "returned": pb.INBOX_REASON_RETURNED,
    "extension": pb.INBOX_REASON_EXTENSION,
}
_DISPATCH_OUTCOMES = {pb.DISPATCH_OUTCOME_REASSIGN: "reassign",
                      pb.DISPATCH_OUTCOME_SEND_BACK: "send_back"}
_EXTENSION_DECISIONS = {pb.EXTENSION_DECISION_GRANTED: "granted",
                        pb.EXTENSION_DECISION_REFUSED: "refused"}


def _stamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _iso_stamp(text: str) -> Timestamp | None:
    return _stamp(datetime.fromisoformat(text.replace("Z", "+00:00"))) if text else None


def receipt_to_proto(receipt: ActReceipt) -> pb.ComplaintActReceipt:
    return pb.ComplaintActReceipt(
        case_number=receipt.case_number, status=_STATUSES[ComplaintStatus(receipt.stage)],
        department_code=receipt.department_code, sign_for_due=_iso_stamp(receipt.sign_for_due),
        reply_due=_iso_stamp(receipt.reply_due), reopened=receipt.reopened)


def handling_to_proto(view: desk.HandlingView) -> pb.ComplaintHandling:
    case = view.case
    return pb.ComplaintHandling(
        case_number=case.case_number, status=_STATUSES[case.status],
        department_code=case.department_code,
        co_handlers=[pb.ComplaintCoHandler(department_code=c.department_code,
                                           contributed=c.contributed_at is not None)
                     for c in view.co_handlers],
        sign_for_due=_stamp(case.sign_for_due), signed_for_at=_stamp(case.signed_for_at),
        reply_due=_stamp(case.reply_due), replied_at=_stamp(case.replied_at),
        rating_closes=_stamp(case.rating_closes), closed_at=_stamp(case.closed_at),
        rating=case.rating or 0, reopened=case.reopened, merged_into=case.merged_into,
        escalations=case.escalations, policy_version=case.policy_version or 0,
        extension_pending_days=view.extension_pending_days,
        extended_days=case.extended_days,
        replies=[pb.ComplaintReply(sequence=r.sequence, department_code=r.department_code,
                                   text=r.text, published_text=r.published_text,
                                   replied_at=_stamp(r.replied_at), answered_by=r.answered_by)
                 for r in view.replies],
        returned_by=case.returned_by, return_basis=view.return_basis,
        kind=_KIND_PROTOS[ComplaintKind(case.kind)], urgent=case.urgent,
        category_code=case.category_code)


def policy_to_proto(stored: StoredPolicy) -> pb.DeadlinePolicy:
    policy = stored.policy
    return pb.DeadlinePolicy(
        version=policy.version, consultation_days=policy.consultation_days,
        request_days=policy.request_days, complaint_days=policy.complaint_days,
        urgent_reply_hours=policy.urgent_reply_hours,
        sign_for_working_hours=policy.sign_for_working_hours,
        urgent_sign_for_minutes=policy.urgent_sign_for_minutes,
        rating_window_days=policy.rating_window_days,
        reopen_reply_days=policy.reopen_reply_days,
        max_extension_days=policy.max_extension_days, basis=stored.basis,
        set_by_official_id=stored.set_by_official_id, valid_from=_stamp(stored.valid_from),
        valid_until=_stamp(stored.valid_until))


def policy_from_proto(message: pb.DeadlinePolicy) -> DeadlinePolicy:
    return DeadlinePolicy(
        version=1, consultation_days=message.consultation_days,
        request_days=message.request_days, complaint_days=message.complaint_days,
        urgent_reply_hours=message.urgent_reply_hours,
        sign_for_working_hours=message.sign_for_working_hours,
        urgent_sign_for_minutes=message.urgent_sign_for_minutes,
        rating_window_days=message.rating_window_days,
        reopen_reply_days=message.reopen_reply_days,
        max_extension_days=message.max_extension_days)


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
                               department_code=count.department_code, cases=count.cases,
                               category=count.category)


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
                 cipher: FieldCipher, desk: desk.Desk | None = None,
                 starter: ComplaintStarter | None = None,
                 intake: GroupCommit[cases.Push, cases.Submitted] | None = None,
                 webhook_allow_loopback: bool = False) -> None:
        self._engine = engine
        self._webhook_allow_loopback = webhook_allow_loopback
        self._audit = audit
        self._cipher = cipher
        self._desk = desk
        self._starter = starter
        # Concurrent pushes share transactions (group commit): see cases.submit_complaints.
        self._intake = intake or cases.group_intake(writing=self._writing, cipher=cipher)

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
        result = await self._intake.submit(cases.Push(current_caller(),
                                                      submission_from_proto(request)))
        if self._starter is not None and not result.replayed:
            # The outbox starts the case's workflow; the answer never waits for it.
            self._starter.wake()
        return pb.SubmitComplaintResponse(complaint=complaint_to_proto(result.view),
                                          replayed=result.replayed)

    async def GetComplaint(self, request: pb.GetComplaintRequest,
                           context: grpc.aio.ServicerContext[Any, Any],
                           ) -> pb.GetComplaintResponse:
        caller = current_caller()
        if caller.official_id:
            # An official of a department system: the handling departments see the
            # complainant, the dispatcher the case without them.
            seen = await asyncio.to_thread(
                desk.official_view, uow=self._reading(), cipher=self._cipher, caller=caller,
                case_number=request.case_number)
            return pb.GetComplaintResponse(complaint=complaint_to_proto(seen.view),
                                           handling=handling_to_proto(seen.handling))
        view = await asyncio.to_thread(
            cases.get_complaint, uow=self._reading(), cipher=self._cipher,
            caller=caller, case_number=request.case_number)
        handling = await asyncio.to_thread(desk.handling_of, uow=self._reading(),
                                           case_number=request.case_number)
        return pb.GetComplaintResponse(complaint=complaint_to_proto(view),
                                       handling=handling_to_proto(handling))

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

    # ---- complaint handling ----

    def _handling_desk(self) -> desk.Desk:
        if self._desk is None:
            raise Unavailable("complaint handling is not configured in this process")
        return self._desk

    async def ListComplaintInbox(self, request: pb.ListComplaintInboxRequest,
                                 context: grpc.aio.ServicerContext[Any, Any],
                                 ) -> pb.ListComplaintInboxResponse:
        page = await asyncio.to_thread(
            desk.list_inbox, uow=self._reading(), caller=current_caller(),
            requested_size=request.page_size, page_token=request.page_token)
        return pb.ListComplaintInboxResponse(
            items=[pb.ComplaintInboxItem(reason=_INBOX_REASONS[item.reason],
                                         handling=handling_to_proto(item.view))
                   for item in page.items],
            next_page_token=page.next_page_token)

    async def SignForComplaint(self, request: pb.SignForComplaintRequest,
                               context: grpc.aio.ServicerContext[Any, Any],
                               ) -> pb.SignForComplaintResponse:
        receipt = await desk.sign_for(
            self._handling_desk(), caller=current_caller(), case_number=request.case_number,
            request_id=request.request_id, now=datetime.now(UTC))
        return pb.SignForComplaintResponse(receipt=receipt_to_proto(receipt))

    async def ReturnComplaint(self, request: pb.ReturnComplaintRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.ReturnComplaintResponse:
        receipt = await desk.return_case(
            self._handling_desk(), caller=current_caller(), case_number=request.case_number,
            request_id=request.request_id, basis=request.basis, now=datetime.now(UTC))
        return pb.ReturnComplaintResponse(receipt=receipt_to_proto(receipt))

    async def DispatchComplaint(self, request: pb.DispatchComplaintRequest,
                                context: grpc.aio.ServicerContext[Any, Any],
                                ) -> pb.DispatchComplaintResponse:
        receipt = await desk.dispatch(
            self._handling_desk(), caller=current_caller(), case_number=request.case_number,
            request_id=request.request_id, outcome=_DISPATCH_OUTCOMES[request.outcome],
            department_code=request.department_code, basis=request.basis,
            now=datetime.now(UTC))
        return pb.DispatchComplaintResponse(receipt=receipt_to_proto(receipt))

    async def SetCoHandlers(self, request: pb.SetCoHandlersRequest,
                            context: grpc.aio.ServicerContext[Any, Any],
                            ) -> pb.SetCoHandlersResponse:
        receipt = await desk.set_co_handlers(
            self._handling_desk(), caller=current_caller(), case_number=request.case_number,
            request_id=request.request_id, departments=list(request.department_codes),
            now=datetime.now(UTC))
        return pb.SetCoHandlersResponse(receipt=receipt_to_proto(receipt))

    async def ContributeToComplaint(self, request: pb.ContributeToComplaintRequest,
                                    context: grpc.aio.ServicerContext[Any, Any],
                                    ) -> pb.ContributeToComplaintResponse:
        receipt = await desk.contribute(
            self._handling_desk(), caller=current_caller(), case_number=request.case_number,
            request_id=request.request_id, text=request.text, now=datetime.now(UTC))
        return pb.ContributeToComplaintResponse(receipt=receipt_to_proto(receipt))

    async def ReplyToComplaint(self, request: pb.ReplyToComplaintRequest,
                               context: grpc.aio.ServicerContext[Any, Any],
                               ) -> pb.ReplyToComplaintResponse:
        receipt = await desk.reply(
            self._handling_desk(), caller=current_caller(), case_number=request.case_number,
            request_id=request.request_id, text=request.text, now=datetime.now(UTC))
        return pb.ReplyToComplaintResponse(receipt=receipt_to_proto(receipt))

    async def RequestComplaintExtension(self, request: pb.RequestComplaintExtensionRequest,
                                        context: grpc.aio.ServicerContext[Any, Any],
                                        ) -> pb.RequestComplaintExtensionResponse:
        receipt = await desk.request_extension(
            self._handling_desk(), caller=current_caller(), case_number=request.case_number,
            request_id=request.request_id, days=request.days, basis=request.basis,
            now=datetime.now(UTC))
        return pb.RequestComplaintExtensionResponse(receipt=receipt_to_proto(receipt))

    async def DecideComplaintExtension(self, request: pb.DecideComplaintExtensionRequest,
                                       context: grpc.aio.ServicerContext[Any, Any],
                                       ) -> pb.DecideComplaintExtensionResponse:
        receipt = await desk.decide_extension(
            self._handling_desk(), caller=current_caller(), case_number=request.case_number,
            request_id=request.request_id, outcome=_EXTENSION_DECISIONS[request.decision],
            days=request.days, now=datetime.now(UTC))
        return pb.DecideComplaintExtensionResponse(receipt=receipt_to_proto(receipt))

    async def MergeComplaint(self, request: pb.MergeComplaintRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.MergeComplaintResponse:
        receipt = await desk.merge(
            self._handling_desk(), caller=current_caller(), case_number=request.case_number,
            request_id=request.request_id, primary_case_number=request.primary_case_number,
            now=datetime.now(UTC))
        return pb.MergeComplaintResponse(receipt=receipt_to_proto(receipt))

    async def RateComplaint(self, request: pb.RateComplaintRequest,
                            context: grpc.aio.ServicerContext[Any, Any],
                            ) -> pb.RateComplaintResponse:
        receipt = await desk.rate(
            self._handling_desk(), caller=current_caller(), case_number=request.case_number,
            request_id=request.request_id, level=request.level, comment=request.comment,
            now=datetime.now(UTC))
        return pb.RateComplaintResponse(receipt=receipt_to_proto(receipt))

    async def GetDeadlinePolicy(self, request: pb.GetDeadlinePolicyRequest,
                                context: grpc.aio.ServicerContext[Any, Any],
                                ) -> pb.GetDeadlinePolicyResponse:
        stored = await asyncio.to_thread(desk.get_deadline_policy, uow=self._reading(),
                                         version=request.version)
        return pb.GetDeadlinePolicyResponse(policy=policy_to_proto(stored))

    async def SetDeadlinePolicy(self, request: pb.SetDeadlinePolicyRequest,
                                context: grpc.aio.ServicerContext[Any, Any],
                                ) -> pb.SetDeadlinePolicyResponse:
        stored = await asyncio.to_thread(
            desk.set_deadline_policy, uow=self._writing(), caller=current_caller(),
            policy=policy_from_proto(request.policy), basis=request.policy.basis,
            now=datetime.now(UTC))
        return pb.SetDeadlinePolicyResponse(policy=policy_to_proto(stored))

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

    # ---- webhooks ----

    async def SetPlatformWebhook(self, request: pb.SetPlatformWebhookRequest,
                                 context: grpc.aio.ServicerContext[Any, Any],
                                 ) -> pb.SetPlatformWebhookResponse:
        result = await asyncio.to_thread(
            webhooks.set_platform_webhook, uow=self._writing(), cipher=self._cipher,
            caller=current_caller(), platform_id=request.platform_id, url=request.url,
            now=datetime.now(UTC), allow_loopback=self._webhook_allow_loopback)
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
