"""No bad input, on any RPC of any service, gets INTERNAL or UNKNOWN or changes anything.

Every unary RPC of every service, on SQLite and on PostgreSQL (the
``backend`` fixture), is sent

* bytes that do not parse, an empty message, and a message whose every
  string field is huge or holds control characters;
* a request it would take (``BASE``), but for one string field holding a
  control character — every string field in turn, nested and repeated ones
  included — which must be INVALID_ARGUMENT naming that field;
* the same for every name field holding a zero-width or bidi character, a
  tab, or only whitespace;
* the same for every number, enum, Timestamp (alone and in pairs) holding
  extreme values, which must never be INTERNAL or UNKNOWN, and where a time
  lies outside what a Timestamp can be, INVALID_ARGUMENT naming it.

Every call that is not answered OK must leave the service's database as it
was: every table's rows, the audit log included, are compared before and
after. A call may also be PERMISSION_DENIED: the registry of calling systems
may stop it before its input is looked at; it still changes nothing.

Then the regressions an outside attacker found on PostgreSQL: a NUL in an
opinion wedged a case (its recording activity, now record_transition,
retried for ever), a NUL in a withdrawal reason answered INTERNAL after the
withdrawal happened, and a delegation's time range overflowed protovalidate's
CEL.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from govhall.intake.v1 import intake_pb2, intake_pb2_grpc
from govhall.review.v1 import review_pb2, review_pb2_grpc
from kernel.grpcserver import validate_request
from kernel.service import ServiceDefinition, prepare, served_service_names
from kernel.wellformed import (
    MAX_DURATION_SECONDS,
    MAX_TIMESTAMP_SECONDS,
    MIN_TIMESTAMP_SECONDS,
)
from services.complaints.main import DEFINITION as COMPLAINTS
from services.intake.main import DEFINITION as INTAKE
from services.review.activities import ReviewActivities
from services.review.db import tables as review_tables
from services.review.main import DEFINITION as REVIEW
from services.trading.main import DEFINITION as TRADING
from tests.integration.review.conftest import (  # noqa: F401 - the chain fixture and its keys
    Chain,
    chain,
    sign_acceptance,
    signers,
)
from tests.support import (
    POSTGRES_URL,
    ServiceUnderTest,
    as_official,
    field_violations,
    fresh_database_url,
    official_for,
    sample_registry,
    service_under_test,
    system_for,
)
from tests.unit.workflows.fakes import REVIEWER, Signers
from workflows.approval_contract import (
    DeadlinesRequest,
    DecisionTaken,
    Outcome,
    SlaState,
    Stage,
    Transition,
)

DEFINITIONS = {"intake": INTAKE, "review": REVIEW, "trading": TRADING, "complaints": COMPLAINTS}
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
UNREACHABLE_TEMPORAL = "127.0.0.1:1"
CASE = "AP-20260105-000001"
COMPLAINT = "CP-20260105-000001"
#: A dispatcher of the center (complaint_dispatcher of ZWFWZX).
DISPATCHER = "ZWFWZX-009"
TENDER = "TD-20260105-000001"
LISTING = "LS-20000101-000001"
TIMESTAMP = "google.protobuf.Timestamp"
DURATION = "google.protobuf.Duration"

#: Who sends each RPC: (system, official). The service's entry is the default.
CALLERS: dict[str, tuple[str, str]] = {
    "intake": ("hall-window-system", "SCJGJ-001"),
    "review": ("department-system-scjgj", "SCJGJ-003"),
    "trading": ("trading-platform", "ZWFWZX-007"),
    "complaints": ("operator", "ZWFWZX-009"),
    "PublishApprovalItemVersion": ("operator", "ZWFWZX-004"),
    "RevokeDecision": ("operator", "ZWFWZX-004"),
    "LoadHolidaySchedule": ("operator", "ZWFWZX-004"),
    "GrantDelegation": ("department-system-scjgj", "SCJGJ-006"),
    "RevokeDelegation": ("department-system-scjgj", "SCJGJ-006"),
    "ExtendTimeLimit": ("department-system-scjgj", "SCJGJ-006"),
    "PublishAuditCheckpoint": ("operator", "ZWFWZX-004"),
    "ExportAuditLog": ("supervision-system", "ZWFWZX-004"),
    # A platform's RPCs: any other system is refused before its input counts.
    "SubmitComplaint": ("hotline-12345", ""),
    "GetComplaint": ("hotline-12345", ""),
    "ListComplaintEvents": ("hotline-12345", ""),
    "RateComplaint": ("hotline-12345", ""),
    # A department's handlers act through its system; the center's dispatchers through theirs.
    "ListComplaintInbox": ("department-system-scjgj", "SCJGJ-008"),
    "SignForComplaint": ("department-system-scjgj", "SCJGJ-008"),
    "ReturnComplaint": ("department-system-scjgj", "SCJGJ-008"),
    "ContributeToComplaint": ("department-system-scjgj", "SCJGJ-008"),
    "ReplyToComplaint": ("department-system-scjgj", "SCJGJ-008"),
    "RequestComplaintExtension": ("department-system-scjgj", "SCJGJ-008"),
    "DispatchComplaint": ("complaint-dispatch-system", DISPATCHER),
    "SetCoHandlers": ("complaint-dispatch-system", DISPATCHER),
    "DecideComplaintExtension": ("complaint-dispatch-system", DISPATCHER),
    "MergeComplaint": ("complaint-dispatch-system", DISPATCHER),
    "ListPlatformEvents": ("hotline-12345", ""),
    "SetPlatformWebhook": ("operator", "ZWFWZX-004"),
}


def _in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _base_requests() -> dict[str, dict[str, Any]]:
    """For each RPC with input, a request (proto JSON) it would take but for the field tried.

    An RPC missing here is sent an empty message; ``test_the_base_requests_pass_validation``
    keeps the table honest.
    """
    decided = {"case_number": CASE, "request_id": str(uuid.uuid4())}
    return {
        # every service: its audit log, checked against checkpoints the caller kept, and
        # the checkpoint feed (AuditCheckpointsService)
        "VerifyAuditLog": {"checkpoints": [{
            "number": 1, "service": "intake", "sequence": 1, "head_hash": "0" * 64,
            "signed_at": _in_days(-1), "key_id": "0123456789abcdef", "body": "e30=",
            "signature": "A" * 86 + "=="}]},
        "ListAuditCheckpoints": {"cursor": 0, "page_size": 5},
        # every service: its registry of calling systems (CallingSystemsService)
        "ListCallingSystems": {"page_size": 5},
        "GetCallingSystem": {"name": "hotline-12345"},
        "SetCallingSystem": {
            "name": "bad-input-probe", "description": "坏输入探测系统",
            "rpcs": ["govhall.review.v1.ReviewService/ListOfficials"],
            "speaks_for": [{"department_code": "SCJGJ", "role": "ROLE_REVIEWER"}]},
        "RemoveCallingSystem": {"name": "bad-input-probe"},
        "ExportAuditLog": {"after_sequence": 0, "page_size": 5},
        # complaints
        "ListDepartments": {"kind": "DEPARTMENT_KIND_MUNICIPAL_DEPARTMENT", "page_size": 5},
        "GetDepartment": {"code": "SCJGJ"},
        "ListCategories": {"department_code": "SCJGJ", "page_size": 5},
        "RouteComplaint": {"category_code": "SC-01"},
        "SetRoutingRule": {"category_code": "SC-01", "department_code": "SCJGJ",
                           "basis": "《沈阳市12345热线管理办法》第十条"},
        "ListRoutingRules": {"category_code": "SC-01", "page_size": 5},
        "SubmitComplaint": {
            "external_id": "HL-2026-000001", "kind": "COMPLAINT_KIND_COMPLAINT",
            "urgent": True, "category_code": "SC-01", "content": "早餐店使用过期食材",
            "location": {"latitude": 41.8057, "longitude": 123.4315,
                         "address": "沈阳市和平区南京北街1号"},
            "complainant_name": "张三丰", "complainant_phone": "13800000000",
            "linked_case_number": CASE, "linked_tender_number": "ZB-2026-0001"},
        "GetComplaint": {"case_number": "CP-20260105-000001"},
        "ListComplaintEvents": {"case_number": "CP-20260105-000001", "page_size": 5},
        "ListComplaintInbox": {"page_size": 5},
        "SignForComplaint": {"request_id": str(uuid.uuid4()), "case_number": COMPLAINT},
        "ReturnComplaint": {"request_id": str(uuid.uuid4()), "case_number": COMPLAINT,
                            "basis": "该事项不属于本部门职责"},
        "DispatchComplaint": {"request_id": str(uuid.uuid4()), "case_number": COMPLAINT,
                              "outcome": "DISPATCH_OUTCOME_REASSIGN",
                              "department_code": "ZJJ", "basis": "属住建局职责"},
        "SetCoHandlers": {"request_id": str(uuid.uuid4()), "case_number": COMPLAINT,
                          "department_codes": ["ZJJ"]},
        "ContributeToComplaint": {"request_id": str(uuid.uuid4()), "case_number": COMPLAINT,
                                  "text": "已现场核查"},
        "ReplyToComplaint": {"request_id": str(uuid.uuid4()), "case_number": COMPLAINT,
                             "text": "经核查，已责令整改。"},
        "RequestComplaintExtension": {"request_id": str(uuid.uuid4()),
                                      "case_number": COMPLAINT, "days": 5,
                                      "basis": "需现场检测"},
        "DecideComplaintExtension": {"request_id": str(uuid.uuid4()),
                                     "case_number": COMPLAINT,
                                     "decision": "EXTENSION_DECISION_GRANTED", "days": 5},
        "MergeComplaint": {"request_id": str(uuid.uuid4()), "case_number": COMPLAINT,
                           "primary_case_number": "CP-20260105-000002"},
        "RateComplaint": {"request_id": str(uuid.uuid4()), "case_number": COMPLAINT,
                          "level": 4, "comment": "满意"},
        "GetDeadlinePolicy": {"version": 1},
        "SetDeadlinePolicy": {"policy": {
            "consultation_days": 2, "request_days": 10, "complaint_days": 15,
            "urgent_reply_hours": 2, "sign_for_working_hours": 4,
            "urgent_sign_for_minutes": 30, "rating_window_days": 5,
            "reopen_reply_days": 15, "max_extension_days": 10,
            "basis": "《沈阳市12345热线管理办法》"}},
        "GetComplaintMetrics": {"period_start": _in_days(-30), "period_end": _in_days(0),
                                "department_code": "SCJGJ"},
        "SetPlatformWebhook": {"platform_id": "12345",
                               "url": "https://hooks.hotline.example/govhall"},
        "ListPlatformEvents": {"page_size": 5},
        # intake
        "ListApprovalItems": {"department_code": "SCJGJ", "page_size": 5},
        "GetApprovalItem": {"code": "012101000007001", "version": 1},
        "PublishApprovalItemVersion": {"item": {
            "code": "012101000007001", "name": "食品经营许可（新办）",
            "department_code": "SCJGJ", "legal_limit_days": 20, "promised_limit_days": 10,
            "materials": [{"code": "M01", "name": "营业执照副本", "required": True,
                           "form": "MATERIAL_FORM_COPY"}],
            "special_procedures": ["SPECIAL_PROCEDURE_EXPERT_REVIEW"], "fee_fen": 0,
            "basis": "《中华人民共和国食品安全法》第三十五条", "version": 1}},
        "SubmitApplication": {
            "idempotency_key": uuid.uuid4().hex, "item_code": "012101000007001",
            "applicant": {"kind": "APPLICANT_KIND_PERSON", "name": "张三丰",
                          "id_number": "110101199003077777", "phone": "13800000000"},
            "materials": [{"code": f"M0{i}", "provided": True} for i in range(1, 7)],
            "finding": "FINDING_NONE"},
        "SupplementMaterials": {"case_number": CASE, "idempotency_key": uuid.uuid4().hex,
                                "materials": [{"code": "M02", "provided": True}]},
        "WithdrawApplication": {"case_number": CASE, "reason": "申请人撤回"},
        "GetCase": {"case_number": CASE},
        "VerifyDecision": {"document": "e30=", "signature": "A" * 86 + "=="},
        "GetDecision": {"certificate_number": "SY-2026-000001",
                        "verification_code": "ABCDEFGH23"},
        "RevokeDecision": {"certificate_number": "SY-2026-000001", "reason": "事实认定错误"},
        "ListRegister": {"cursor": 0, "page_size": 5},
        "CheckCaseLink": {"case_number": CASE},
        # review
        "ListOfficials": {"department_code": "SCJGJ", "role": "ROLE_REVIEWER", "page_size": 5},
        "GetOfficial": {"official_id": "SCJGJ-005"},
        "GrantDelegation": {"deputy_id": "SCJGJ-007", "reason": "出差",
                            "period": {"valid_from": _in_days(0.1),
                                       "valid_until": _in_days(2)}},
        "RevokeDelegation": {"delegation_id": 1, "reason": "提前返岗"},
        "ListDelegations": {"department_code": "SCJGJ", "in_force_at": _in_days(0),
                            "page_size": 5},
        "LoadHolidaySchedule": {"year": 2031, "holidays": ["2031-01-01"],
                                "makeup_workdays": ["2031-01-04"]},
        "ListInbox": {"department_code": "SCJGJ", "stage": "APPROVAL_STAGE_REVIEW",
                      "claimed": "CLAIM_FILTER_UNCLAIMED", "page_size": 5},
        "ClaimTask": {"case_number": CASE, "stage": "APPROVAL_STAGE_REVIEW"},
        "DecideCase": decided | {"stage": "APPROVAL_STAGE_REVIEW",
                                 "outcome": "DECISION_OUTCOME_APPROVE", "opinion": "同意",
                                 "legal_basis": "《中华人民共和国行政许可法》第三十八条"},
        "StartSpecialProcedure": decided | {"procedure": "SPECIAL_PROCEDURE_EXPERT_REVIEW",
                                            "note": "组织专家评审"},
        "EndSpecialProcedure": decided | {"procedure": "SPECIAL_PROCEDURE_EXPERT_REVIEW",
                                          "note": "专家评审结束"},
        "ExtendTimeLimit": decided | {"days": 5, "reason": "情况复杂，经负责人批准延长"},
        "ListEscalations": {"department_code": "SCJGJ", "open_only": True, "page_size": 5},
        "GetCaseProgress": {"case_number": CASE},
        "RecordRefusedAct": {"case_number": CASE, "report_id": "0f" * 32,
                             "update_name": "decide", "refused_at": _in_days(0),
                             "reason": "the decision is not one the review service signed"},
        # trading
        "ListCatalogueEntries": {"category": "TRADING_CATEGORY_CONSTRUCTION"},
        "CheckMustEnter": {"category": "TRADING_CATEGORY_GOVERNMENT_PROCUREMENT",
                           "estimated_value_fen": 500_000_000},
        "ListAgencies": {"page_size": 5},
        "GetAgency": {"code": "AG-001"},
        "ListExperts": {"specialty": "市政工程", "page_size": 5},
        "GetExpert": {"id": "EX-0001"},
        "RegisterExpert": {"id": "EX-9001", "name": "易东松", "specialties": ["市政工程"],
                           "employer": "沈阳市政工程设计研究院"},
        "SetExpertAvailability": {"id": "EX-0001", "available": False, "reason": "出国"},
        "ListFeed": {"cursor": 0, "page_size": 5},
        "ReadFeed": {"sequence": 1},
        # An expert draw: its every text field (conflicts and exclusions too) is probed.
        "OpenDraw": {"draw_id": "DR-2026-0001", "purpose": "DRAW_PURPOSE_EXPERT_DRAW",
                     "title": "沈阳市第一中学新校区建设项目评标专家抽取",
                     "subject": "tender/ZB-2026-0001/experts", "specialties": ["市政工程"],
                     "conflicted_employers": ["沈阳华建建筑设计研究院有限公司"],
                     "exclusions": [{"expert_id": "EX-0002", "basis": "曾参与本项目前期咨询"}],
                     "witness_ids": ["JJZ-001", "ZWFWZX-008"], "count": 1,
                     "commit_deadline": _in_days(1), "reveal_deadline": _in_days(2)},
        "CommitSeed": {"draw_id": "DR-2026-0001", "commitment": "a1" * 32},
        "RevealSeed": {"draw_id": "DR-2026-0001", "seed": "c3" * 32},
        "GetDraw": {"draw_id": "DR-2026-0001"},
        "RegisterProject": {"request_id": str(uuid.uuid4()),
                            "category": "TRADING_CATEGORY_CONSTRUCTION",
                            "title": "沈阳市第一中学新校区建设项目",
                            "estimated_value_fen": 500_000_000,
                            "funding_source": "FUNDING_SOURCE_PUBLIC",
                            "department_code": "JYJ"},
        "AnnounceTender": {"request_id": str(uuid.uuid4()), "project_no": "PJ-20000101-000001",
                           "bid_deadline": _in_days(21), "decryption_window_minutes": 120},
        "RecordDirectAward": {"request_id": str(uuid.uuid4()),
                              "project_no": "PJ-20000101-000001",
                              "supplier_code": "91210100MA0XXXXX1A", "amount_fen": 1000},
        "GetTender": {"tender_no": TENDER},
        "CheckTenderLink": {"tender_no": TENDER},
        "AmendTender": {"request_id": str(uuid.uuid4()), "tender_no": TENDER,
                        "content": "第3章技术参数更正"},
        "ObjectToTender": {"request_id": str(uuid.uuid4()), "tender_no": TENDER,
                           "target": "OBJECTION_TARGET_DOCUMENTS", "grounds": "资格条件"},
        "AnswerObjection": {"request_id": str(uuid.uuid4()), "tender_no": TENDER,
                            "objection_id": "OB-1", "answer": "符合规定"},
        "SubmitEvaluation": {"request_id": str(uuid.uuid4()), "tender_no": TENDER,
                             "candidate_bidder_ids": ["BD-0001", "BD-0002"]},
        "AwardTender": {"request_id": str(uuid.uuid4()), "tender_no": TENDER,
                        "winner_bidder_id": "BD-0001", "amount_fen": 1000},
        "RecordContract": {"request_id": str(uuid.uuid4()), "tender_no": TENDER,
                           "contract_no": "HT-2026-001", "amount_fen": 1000},
        "SubmitSealedBid": {"tender_no": TENDER, "bidder_id": "BD-0001",
                            "ciphertext": "R0hTQgE=", "ciphertext_sha256": "ab" * 32,
                            "key_commitment": "cd" * 32},
        "RevealBidKey": {"tender_no": TENDER, "bidder_id": "BD-0001", "key": "ef" * 32},
        "ListTradeAlerts": {"cursor": 0, "page_size": 5, "trade": f"tender/{TENDER}",
                            "rule": "TRADE_ALERT_RULE_LOW_PRICE"},
        "GetTradeStatistics": {"period_start": _in_days(-30), "period_end": _in_days(0),
                               "category": "TRADING_CATEGORY_CONSTRUCTION"},
        "DrawEvaluationCommittee": {"tender_no": TENDER, "draw_id": "DR-2026-0001",
                                    "specialties": ["园林绿化"], "committee_size": 5,
                                    "witness_ids": ["JJZ-001", "ZWFWZX-008"],
                                    "commit_deadline": _in_days(1),
                                    "reveal_deadline": _in_days(2)},
        "SeatEvaluationCommittee": {"request_id": str(uuid.uuid4()), "tender_no": TENDER},
        "SubmitScoreSheet": {"request_id": str(uuid.uuid4()), "tender_no": TENDER,
                             "member_id": "EX-0002", "bidder_id": "BD-0001",
                             "compliant": True, "technical_score": 80,
                             "business_score": 90},
        "PublishLandListing": {"request_id": str(uuid.uuid4()),
                               "project_no": "PJ-20000101-000001",
                               "opens_at": _in_days(21), "closes_at": _in_days(40),
                               "start_price_fen": 100_000_000, "increment_fen": 1_000_000,
                               "auction_interval_seconds": 300},
        "DiscloseProperty": {"request_id": str(uuid.uuid4()),
                             "project_no": "PJ-20000101-000001", "closes_at": _in_days(40),
                             "reserve_price_fen": 50_000_000, "increment_fen": 500_000,
                             "auction_interval_seconds": 300, "max_extensions": 1},
        "PlaceListingBid": {"request_id": str(uuid.uuid4()), "listing_no": LISTING,
                            "bidder_id": "BD-0001", "amount_fen": 100_000_000},
        "RegisterBuyer": {"request_id": str(uuid.uuid4()), "listing_no": LISTING,
                          "buyer_id": "BD-0001"},
        "PlaceAuctionBid": {"request_id": str(uuid.uuid4()), "listing_no": LISTING,
                            "bidder_id": "BD-0001", "amount_fen": 100_000_000},
        "RecordAgreement": {"request_id": str(uuid.uuid4()), "listing_no": LISTING,
                            "price_fen": 50_000_000},
        "GetListing": {"listing_no": LISTING},
        "DeclareAuctionInterest": {"request_id": str(uuid.uuid4()), "listing_no": LISTING,
                                   "bidder_id": "BD-0001"},
        "ListListings": {"page_size": 10},
    }


def _methods(definition: ServiceDefinition) -> Iterator[MethodDescriptor]:
    """Every unary RPC the service serves: its own, and the audit checkpoint feed that
    kernel.service mounts beside them on every service with an audit trail."""
    pool = descriptor_pool.Default()
    for name in served_service_names(definition):
        for method in pool.FindServiceByName(name).methods:
            if not method.client_streaming and not method.server_streaming:
                yield method


def _message(descriptor: Descriptor) -> Any:
    return message_factory.GetMessageClass(descriptor)()


def _base(method: MethodDescriptor) -> Any:
    request = _message(method.input_type)
    json_format.ParseDict(_base_requests().get(method.name, {}), request)
    return request


def _caller(service: str, method: MethodDescriptor) -> tuple[str, str]:
    """Who sends ``method``: its entry in CALLERS, else the service's when the registry lets
    that system call it, else the first sample system that may (and an official it speaks
    for) — so every call reaches the request's checks, past the registry."""
    rpc = f"{method.containing_service.full_name}/{method.name}"
    if method.name in CALLERS:
        return CALLERS[method.name]
    system, official = CALLERS[service]
    scope = sample_registry().scope_of(system)
    if scope is not None and scope.may_call(rpc):
        return system, official
    system = system_for(rpc)
    return system, official_for(system)


def _kind(field: FieldDescriptor) -> str:
    """The full name of a message field's type; '' for a scalar."""
    return field.message_type.full_name if field.message_type is not None else ""


def _is_plain_message(field: FieldDescriptor) -> bool:
    """A field of a message type of govhall's own, not a map, Timestamp or Duration."""
    return (field.message_type is not None and not field.message_type.GetOptions().map_entry
            and _kind(field) not in (TIMESTAMP, DURATION))


def _child(field: FieldDescriptor) -> Descriptor:
    assert field.message_type is not None
    return field.message_type


FieldChain = tuple[FieldDescriptor, ...]


def _leaves(descriptor: Descriptor, wanted: Any, depth: int = 0) -> Iterator[FieldChain]:
    """Field chains from ``descriptor`` down to every field ``wanted`` accepts."""
    for field in descriptor.fields:
        if wanted(field):
            yield (field,)
        elif _is_plain_message(field) and depth < 4:
            for rest in _leaves(_child(field), wanted, depth + 1):
                yield (field, *rest)


def _holder(request: Any, fields: FieldChain) -> tuple[Any, list[str]]:
    """The message holding the chain's last field (made where missing), and its path."""
    current, parts = request, []
    for field in fields[:-1]:
        if field.is_repeated:
            items = getattr(current, field.name)
            if not items:
                items.add()
            current, part = items[0], f"{field.name}[0]"
        else:
            current, part = getattr(current, field.name), field.name
        parts.append(part)
    return current, parts


def _with_value(base: Any, fields: FieldChain, value: Any) -> tuple[Any, str]:
    """A copy of ``base`` with the chain's field set to ``value``, and the field's path."""
    request = _message(base.DESCRIPTOR)
    request.CopyFrom(base)
    holder, parts = _holder(request, fields)
    field = fields[-1]
    if field.type == FieldDescriptor.TYPE_MESSAGE:  # a Timestamp or Duration
        target = getattr(holder, field.name).add() if field.is_repeated else getattr(
            holder, field.name)
        target.seconds, target.nanos = value
        index = len(getattr(holder, field.name)) - 1 if field.is_repeated else None
    elif field.is_repeated:
        getattr(holder, field.name).append(value)
        index = len(getattr(holder, field.name)) - 1
    else:
        setattr(holder, field.name, value)
        index = None
    parts.append(field.name if index is None else f"{field.name}[{index}]")
    return request, ".".join(parts)


#: Each engine's tables, reflected once: no RPC makes or drops a table, and reflecting
#: a PostgreSQL schema for every probe cost most of this module's time.
_TABLES: weakref.WeakKeyDictionary[sa.Engine, sa.MetaData] = weakref.WeakKeyDictionary()


def _digest(engine: sa.Engine) -> dict[str, str]:
    """Each table's rows, hashed: equal digests mean nothing was written."""
    if (metadata := _TABLES.get(engine)) is None:
        metadata = _TABLES[engine] = sa.MetaData()
        metadata.reflect(engine)
    digests = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            rows = sorted(repr(tuple(row)) for row in connection.execute(sa.select(table)))
            digests[table.name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return digests


class Prober:
    """Sends requests to one running service and keeps what went wrong."""

    def __init__(self, service: str, running: ServiceUnderTest,
                 channels: dict[str, grpc.aio.Channel]) -> None:
        self.service = service
        self.running = running
        self.channels = channels
        self.problems: dict[str, str] = {}
        self.codes: dict[str, grpc.StatusCode] = {}
        self._state = _digest(running.running.engine)

    async def send(self, label: str, method: MethodDescriptor, payload: bytes,
                   *, must_name: str = "") -> grpc.StatusCode:
        """Send ``payload``; record a problem if the answer is a bug or the refusal wrote.

        With ``must_name``, the call must be refused INVALID_ARGUMENT naming that field
        (or PERMISSION_DENIED before its input is looked at).
        """
        system, official = _caller(self.service, method)
        call = self.channels[system].unary_unary(
            f"/{method.containing_service.full_name}/{method.name}",
            request_serializer=None, response_deserializer=None)
        named: list[str] = []
        details = ""
        try:
            await call(payload, metadata=as_official(official) if official else (), timeout=15)
            code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as error:
            code = error.code()
            named = field_violations(error)
            details = error.details() or ""
        key = f"{method.name}/{label}"
        self.codes[key] = code
        if code in NEVER:
            self.problems[key] = code.name
        if "may not call" in details:
            # The caller is one the registry lets through: the request itself is tried.
            self.problems[key] = f"stopped by the registry: {details}"
        if must_name and code != grpc.StatusCode.PERMISSION_DENIED and (
                code != grpc.StatusCode.INVALID_ARGUMENT or must_name not in named):
            self.problems[key] = f"{code.name}, fields named {named}, not {must_name}"
        state = _digest(self.running.running.engine)
        if code != grpc.StatusCode.OK and state != self._state:
            changed = sorted(t for t in state if state[t] != self._state.get(t))
            self.problems[key] = f"{code.name} but wrote to {changed}"
        self._state = state
        return code


def _filled(descriptor: Descriptor, text: str, depth: int = 0) -> Any:
    """A message with every string field set to ``text``, recursing into messages."""
    message = _message(descriptor)
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                getattr(message, field.name).extend([text, text])
            else:
                setattr(message, field.name, text)
        elif _is_plain_message(field) and depth < 2 and (
                not _kind(field).startswith("google.protobuf.")):
            child = _filled(_child(field), text, depth + 1)
            if field.is_repeated:
                getattr(message, field.name).append(child)
            else:
                getattr(message, field.name).CopyFrom(child)
    return message


def _has_text(descriptor: Descriptor) -> bool:
    return any(True for _ in _leaves(descriptor, _is_string))


def _is_string(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_STRING


def _is_name(field: FieldDescriptor) -> bool:
    return _is_string(field) and (field.name == "name" or field.name.endswith("_name"))


_INT_EXTREMES: dict[int, list[Any]] = {
    FieldDescriptor.TYPE_INT32: [2**31 - 1, -(2**31)],
    FieldDescriptor.TYPE_SINT32: [2**31 - 1, -(2**31)],
    FieldDescriptor.TYPE_SFIXED32: [2**31 - 1, -(2**31)],
    FieldDescriptor.TYPE_INT64: [2**63 - 1, -(2**63)],
    FieldDescriptor.TYPE_SINT64: [2**63 - 1, -(2**63)],
    FieldDescriptor.TYPE_SFIXED64: [2**63 - 1, -(2**63)],
    FieldDescriptor.TYPE_UINT32: [2**32 - 1],
    FieldDescriptor.TYPE_FIXED32: [2**32 - 1],
    FieldDescriptor.TYPE_UINT64: [2**64 - 1],
    FieldDescriptor.TYPE_FIXED64: [2**64 - 1],
    FieldDescriptor.TYPE_DOUBLE: [float("inf"), float("-inf"), float("nan"), 1e308],
    FieldDescriptor.TYPE_FLOAT: [float("inf"), float("nan")],
    FieldDescriptor.TYPE_ENUM: [2**31 - 1, -1, 999],
}
#: Times a Timestamp cannot be (refused by name) and the far ends of those it can.
_BAD_TIMES = [(MAX_TIMESTAMP_SECONDS + 1, 0), (MIN_TIMESTAMP_SECONDS - 1, 0), (2**63 - 1, 0),
              (-(2**63), 0), (1_800_000_000, -1), (1_800_000_000, 1_000_000_000)]
_FAR_TIMES = [(MAX_TIMESTAMP_SECONDS, 999_999_999), (MIN_TIMESTAMP_SECONDS, 0), (0, 0)]
_BAD_DURATIONS = [(MAX_DURATION_SECONDS + 1, 0), (-(2**63), 0), (1, -1), (0, 1_000_000_000)]
_FAR_DURATIONS = [(MAX_DURATION_SECONDS, 999_999_999), (-MAX_DURATION_SECONDS, 0)]


def _is_number(field: FieldDescriptor) -> bool:
    return field.type in _INT_EXTREMES or _kind(field) in (TIMESTAMP, DURATION)


@pytest.fixture(params=sorted(DEFINITIONS))
async def prober(request: pytest.FixtureRequest, backend: str, tmp_path: Path,
                 pki_dir: Path) -> Any:
    service = str(request.param)
    url = fresh_database_url(backend, service, tmp_path)
    # No checkpoints published on the service's own timer: the prober compares the
    # database before and after each call, and a checkpoint signed meanwhile is no write
    # of the call's (PublishAuditCheckpoint still writes one when asked).
    async with service_under_test(DEFINITIONS[service], database_url=url, pki_dir=pki_dir,
                                  temporal_address=UNREACHABLE_TEMPORAL,
                                  audit_checkpoint_every_entries=0,
                                  audit_checkpoint_interval_seconds=0) as running:
        systems = {_caller(service, method)[0] for method in _methods(DEFINITIONS[service])}
        channels = {system: running.channel(system) for system in systems}
        try:
            yield Prober(service, running, channels)
        finally:
            for channel in channels.values():
                await channel.close(None)


def test_the_base_requests_pass_validation() -> None:
    """Each base request is one its RPC would take, so the field tried is the only fault."""
    described = set()
    for definition in DEFINITIONS.values():
        for method in _methods(definition):
            validate_request(_base(method))
            if method.input_type.fields:
                described.add(method.name)
    assert described <= set(_base_requests())


async def test_no_malformed_request_is_an_internal_error(prober: Prober) -> None:
    definition = DEFINITIONS[prober.service]
    for method in _methods(definition):
        cases = {
            "garbage": b"\xff\xfe\x00\x01garbage",
            "empty": b"",
            "huge": _filled(method.input_type, "法" * 20_000).SerializeToString(),
            "control": _filled(method.input_type, "\x00\x1b[2J\u202e").SerializeToString(),
        }
        for label, payload in cases.items():
            await prober.send(label, method, payload)
    assert prober.codes
    assert prober.problems == {}
    # Huge text never gets through validation into a handler.
    texts = {m.name for m in _methods(definition) if _has_text(m.input_type)}
    assert texts
    passed = {k for k, v in prober.codes.items()
              if k.endswith("/huge") and k.split("/")[0] in texts and v == grpc.StatusCode.OK}
    assert passed == set()


#: A NUL, an escape sequence, DEL and a C1 control (CSI).
CONTROLS = ["前\x00后", "\x1b[2J", "\x7f", "\u009b31m"]


async def test_a_control_character_in_any_text_field_is_refused_before_anything_runs(
        prober: Prober) -> None:
    tried = 0
    for method in _methods(DEFINITIONS[prober.service]):
        base = _base(method)
        for fields in _leaves(method.input_type, _is_string):
            for number, text in enumerate(CONTROLS):
                request, path = _with_value(base, fields, text)
                await prober.send(f"{path}#{number}", method, request.SerializeToString(),
                                  must_name=path)
                tried += 1
    assert tried > 0
    assert prober.problems == {}
    assert grpc.StatusCode.INVALID_ARGUMENT in prober.codes.values()


#: Names that look like others or hide text, a name broken over lines, a blank one.
BAD_NAMES = ["张\u200b三", "\u202e三张", "\u2066张三\u2069", "张\ufeff三", "张\t三",
             "张三\n", "\u3000 "]


async def test_a_zero_width_bidi_broken_or_blank_name_is_refused(prober: Prober) -> None:
    methods = list(_methods(DEFINITIONS[prober.service]))
    if not any(any(_leaves(m.input_type, _is_name)) for m in methods):
        pytest.skip(f"no request of {prober.service} carries a name")
    tried = 0
    for method in methods:
        base = _base(method)
        for fields in _leaves(method.input_type, _is_name):
            for number, name in enumerate(BAD_NAMES):
                request, path = _with_value(base, fields, name)
                await prober.send(f"{path}#{number}", method, request.SerializeToString(),
                                  must_name=path)
                tried += 1
    assert tried > 0
    assert prober.problems == {}


async def test_extreme_times_numbers_and_enums_never_get_internal(prober: Prober) -> None:
    tried = 0
    for method in _methods(DEFINITIONS[prober.service]):
        base = _base(method)
        chains = list(_leaves(method.input_type, _is_number))
        for fields in chains:
            field = fields[-1]
            bad: list[Any] = {TIMESTAMP: _BAD_TIMES, DURATION: _BAD_DURATIONS}.get(
                _kind(field), [])
            far: list[Any] = {TIMESTAMP: _FAR_TIMES, DURATION: _FAR_DURATIONS}.get(
                _kind(field), _INT_EXTREMES.get(field.type, []))
            for number, value in enumerate([*bad, *far]):
                request, path = _with_value(base, fields, value)
                await prober.send(f"{path}#{number}", method, request.SerializeToString(),
                                  must_name=path if value in bad else "")
                tried += 1
        # Two times of one message at opposite ends: their difference overflows.
        times = [c for c in chains if _kind(c[-1]) == TIMESTAMP]
        for first in times:
            for second in times:
                if first == second or first[:-1] != second[:-1]:
                    continue
                request, _ = _with_value(base, first, (MIN_TIMESTAMP_SECONDS, 0))
                request, _ = _with_value(request, second, (MAX_TIMESTAMP_SECONDS, 0))
                label = f"{first[-1].name}..{second[-1].name}"
                await prober.send(label, method, request.SerializeToString())
                tried += 1
    assert tried > 0
    assert prober.problems == {}


#: Keys no page this service gave out ends on: out of any column's range, not a number,
#: holding what PostgreSQL cannot store. Inside a token, the text rules cannot see them.
#: Each is the list of parts a token carries (kernel.paging: one part for text and id
#: keys, three for the inbox's due time, case number and stage).
FORGED_KEYS: list[list[Any]] = [
    [9223372036854775807], [99999999999999999999999], [-1], [2147483648], [1e9], [True],
    ["2147483648"], ["٣"], ["a\x00b"], ["\x00"], ["\x1b[2J"], [""], [" "],
    ["012101000007001\x00"], ["SCJGJ|\x00|1"],
    ["2026-01-05T00:00:00.000000+00:00", "AP-20260105-\x00", "review"],
    ["2026-01-05T00:00:00.000000+00:00", CASE, "review\x00"],
    ["9999-12-31T23:59:59-12:00", CASE, "review"],
    ["0001-01-01T00:00:00+14:00", CASE, "review"],
    ["2026-01-05T00:00:00", CASE, "review"], [1, 2, 3], [{"a": 1}], [],
]


def _forged_token(parts: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": parts}).encode()).decode()


async def test_a_forged_page_token_is_never_an_internal_error(prober: Prober) -> None:
    tried = 0
    for method in _methods(DEFINITIONS[prober.service]):
        if "page_token" not in method.input_type.fields_by_name:
            continue
        base = _base(method)
        tokens = [_forged_token(key) for key in FORGED_KEYS] + [
            base64.urlsafe_b64encode(raw).decode() for raw in (
                b'{"after": 1e400}', b'{"after": ["x"]}', b"\x00\xff", b'{"after": "\\u0000"}')]
        for number, token in enumerate(tokens):
            request = _message(method.input_type)
            request.CopyFrom(base)
            request.page_token = token
            await prober.send(f"page_token#{number}", method, request.SerializeToString())
            tried += 1
    assert tried > 0
    assert prober.problems == {}


async def test_names_are_kept_in_nfc(backend: str, tmp_path: Path, pki_dir: Path) -> None:
    url = fresh_database_url(backend, "intake", tmp_path)
    item = _base_requests()["PublishApprovalItemVersion"]["item"]
    request = intake_pb2.PublishApprovalItemVersionRequest()
    json_format.ParseDict({"item": item | {"name": "Cafe\u0301许可（新办）"}}, request)
    async with service_under_test(INTAKE, database_url=url, pki_dir=pki_dir,
                                  temporal_address=UNREACHABLE_TEMPORAL) as intake:
        async with intake.channel("operator") as channel:
            stub = intake_pb2_grpc.IntakeServiceStub(channel)
            published = await stub.PublishApprovalItemVersion(
                request, metadata=as_official("ZWFWZX-004"))
            read = await stub.GetApprovalItem(intake_pb2.GetApprovalItemRequest(
                code=item["code"], version=published.item.version))
    assert published.item.name == read.item.name == "Café许可（新办）"


# ---- what VerifyDecision and VerifyAuditLog are handed to read ---------------------------

#: Decision documents no JSON reader should choke on: nested past the parser's depth, numbers
#: out of any range, not UTF-8, not an object, naming a key in the wrong type.
MALFORMED_DOCUMENTS: dict[str, bytes] = {
    "nested arrays": b"[" * 2000 + b"]" * 2000,
    "nested objects": b'{"a":' * 2000 + b"1" + b"}" * 2000,
    "nesting inside the document": b'{"key_id": "x", "chain": ' + b"[" * 5000
                                   + b"]" * 5000 + b"}",
    "an integer of 5000 digits": b'{"key_id": 1' + b"0" * 5000 + b"}",
    "1e400": b'{"certificate_number": 1e400}',
    "NaN": b'{"key_id": NaN}',
    "not UTF-8": b"\xff\xfe{}",
    "not an object": b'["SY-2026-000001"]',
    "a key id that is a list": b'{"key_id": ["a6d4ad4b3226170d"]}',
}


async def test_a_malformed_decision_document_is_tampered_never_internal(
        backend: str, tmp_path: Path, pki_dir: Path) -> None:
    """A document nested past the JSON parser's depth answered INTERNAL (RecursionError)."""
    url = fresh_database_url(backend, "intake", tmp_path)
    async with service_under_test(INTAKE, database_url=url, pki_dir=pki_dir,
                                  temporal_address=UNREACHABLE_TEMPORAL) as intake:
        async with intake.channel("hotline-12345") as channel:
            stub = intake_pb2_grpc.IntakeServiceStub(channel)
            verdicts: dict[str, Any] = {}
            for label, document in MALFORMED_DOCUMENTS.items():
                try:
                    verdicts[label] = (await stub.VerifyDecision(intake_pb2.VerifyDecisionRequest(
                        document=document, signature=b"\x00" * 64))).result
                except grpc.aio.AioRpcError as error:
                    verdicts[label] = error.code()
    assert verdicts == dict.fromkeys(MALFORMED_DOCUMENTS, intake_pb2.VERIFICATION_RESULT_TAMPERED)


def _checkpoint_body(**fields: str) -> bytes:
    """A checkpoint body as written (its raw JSON text), but for ``fields``' raw values."""
    values = {"checkpoint": "1", "head_hash": f'"{"0" * 64}"', "sequence": "1",
              "service": '"{service}"', "signed_at": '"2026-03-05T02:00:00.000000Z"',
              "type": '"govhall.audit_checkpoint.v1"'} | fields
    return ("{" + ",".join(f'"{k}":{v}' for k, v in sorted(values.items())) + "}").encode()


#: Kept checkpoints whose body RFC 8785 cannot write or JSON cannot read: numbers no JSON
#: number is, integers beyond 2^53, a lone surrogate, nesting past the parser's depth (the
#: body may be 2048 bytes).
UNCANONICAL_BODIES: dict[str, bytes] = {
    "sequence 1e400": _checkpoint_body(sequence="1e400"),
    "sequence -1e400": _checkpoint_body(sequence="-1e400"),
    "sequence NaN": _checkpoint_body(sequence="NaN"),
    "checkpoint Infinity": _checkpoint_body(checkpoint="Infinity"),
    "sequence 2^53 + 1": _checkpoint_body(sequence=str(2**53 + 1)),
    "sequence of 1000 digits": _checkpoint_body(sequence="9" * 1000),
    "a lone surrogate": _checkpoint_body(service='"\\ud800"'),
    "nested 1000 deep": b"[" * 1000 + b"]" * 1000,
}


async def test_a_kept_checkpoint_rfc8785_cannot_write_is_refused_never_internal(
        prober: Prober) -> None:
    """A caller's checkpoint with ``"sequence": 1e400`` answered INTERNAL before any signature
    was checked (rfc8785's FloatDomainError); now it is refused like any forged checkpoint."""
    [method] = [m for m in _methods(DEFINITIONS[prober.service])
                if m.name == "VerifyAuditLog"
                and m.containing_service.full_name.startswith("govhall.")]
    system, official = _caller(prober.service, method)
    call = prober.channels[system].unary_unary(
        f"/{method.containing_service.full_name}/{method.name}",
        request_serializer=None, response_deserializer=None)
    answers: dict[str, Any] = {}
    for number, (label, body) in enumerate(UNCANONICAL_BODIES.items(), start=1):
        request = _base(method)
        kept = request.checkpoints[0]
        kept.number, kept.service = number, prober.service
        kept.body = body.replace(b"{service}", prober.service.encode())
        await prober.send(label, method, request.SerializeToString())
        try:
            answer = _message(method.output_type).FromString(await call(
                request.SerializeToString(),
                metadata=as_official(official) if official else (), timeout=15))
        except grpc.aio.AioRpcError as error:
            answers[label] = error.code()
            continue
        verification = answer.verification
        answers[label] = (verification.intact,
                          [r.number for r in verification.refused_checkpoints])
    assert prober.problems == {}
    assert answers == {label: (False, [number]) for number, label
                       in enumerate(UNCANONICAL_BODIES, start=1)}


# ---- the regressions found on PostgreSQL ------------------------------------------------


async def test_a_nul_in_a_decision_opinion_is_refused_and_the_case_goes_on(
        chain: Chain) -> None:  # noqa: F811 - the fixture imported above
    """On PostgreSQL the NUL reached the recording activity, which retried for ever: the case
    was stuck."""
    handle = await chain.start_case()
    case_number = handle.id.removeprefix("approval/")
    engine = chain.engine

    def decisions() -> list[tuple[str, str]]:
        with engine.connect() as connection:
            return [(r.stage, r.opinion) for r in connection.execute(
                sa.select(review_tables.decisions).where(
                    review_tables.decisions.c.case_number == case_number))]

    async with chain.review.channel("department-system-scjgj") as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        await _until_review_task_open(engine, case_number)
        before = _digest(engine)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.DecideCase(review_pb2.DecideCaseRequest(
                case_number=case_number, stage=review_pb2.APPROVAL_STAGE_REVIEW,
                outcome=review_pb2.DECISION_OUTCOME_APPROVE, opinion="同意\x00",
                request_id=str(uuid.uuid4())), metadata=as_official("SCJGJ-003"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(refused.value) == ["opinion"]
        assert _digest(engine) == before
        # The case is not stuck: the same reviewer decides with a clean opinion.
        decided = await stub.DecideCase(review_pb2.DecideCaseRequest(
            case_number=case_number, stage=review_pb2.APPROVAL_STAGE_REVIEW,
            outcome=review_pb2.DECISION_OUTCOME_APPROVE, opinion="同意",
            request_id=str(uuid.uuid4())), metadata=as_official("SCJGJ-003"), timeout=30)
    assert decided.receipt.next_stage == review_pb2.APPROVAL_STAGE_SIGN
    # The workflow records the decision in review after it answered (review.record_transition).
    deadline = asyncio.get_running_loop().time() + 20
    while not await asyncio.to_thread(decisions):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the review decision of {case_number} is not recorded after 20 s")
        await asyncio.sleep(0.05)
    assert decisions() == [("review", "同意")]


async def _until_review_task_open(engine: sa.Engine, case_number: str) -> None:
    tasks = review_tables.tasks
    deadline = asyncio.get_running_loop().time() + 20

    def open_now() -> bool:
        with engine.connect() as connection:
            return connection.execute(sa.select(sa.func.count()).select_from(tasks).where(
                tasks.c.case_number == case_number, tasks.c.stage == "review",
                tasks.c.closed_at.is_(None))).scalar_one() == 1

    while not await asyncio.to_thread(open_now):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"case {case_number} has no open review task after 20 s")
        await asyncio.sleep(0.05)


async def test_a_nul_in_a_withdrawal_reason_is_refused_before_anything_happens(
        backend: str, tmp_path: Path, pki_dir: Path) -> None:
    """On PostgreSQL the reason failed to store after the withdrawal had gone to the workflow."""
    url = fresh_database_url(backend, "intake", tmp_path)
    submit = intake_pb2.SubmitApplicationRequest()
    json_format.ParseDict(_base_requests()["SubmitApplication"], submit)
    del submit.materials[1:]  # materials missing: the case waits for them, no workflow yet
    async with service_under_test(INTAKE, database_url=url, pki_dir=pki_dir,
                                  temporal_address=UNREACHABLE_TEMPORAL) as intake:
        clerk = as_official("SCJGJ-001")
        async with intake.channel("hall-window-system") as channel:
            stub = intake_pb2_grpc.IntakeServiceStub(channel)
            number = (await stub.SubmitApplication(submit, metadata=clerk)).case.case_number
            before = _digest(intake.running.engine)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.WithdrawApplication(intake_pb2.WithdrawApplicationRequest(
                    case_number=number, reason="申请人\x00撤回"), metadata=clerk)
            after = _digest(intake.running.engine)
            case = (await stub.GetCase(intake_pb2.GetCaseRequest(case_number=number),
                                       metadata=clerk)).case
            withdrawn = await stub.WithdrawApplication(intake_pb2.WithdrawApplicationRequest(
                case_number=number, reason="申请人撤回"), metadata=clerk)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(refused.value) == ["reason"]
    assert after == before
    assert case.status == intake_pb2.CASE_STATUS_AWAITING_MATERIALS
    assert withdrawn.case.status == intake_pb2.CASE_STATUS_WITHDRAWN


async def test_a_delegation_whose_time_range_overflows_is_an_invalid_argument(
        backend: str, tmp_path: Path, pki_dir: Path) -> None:
    url = fresh_database_url(backend, "review", tmp_path)
    request = review_pb2.GrantDelegationRequest(deputy_id="SCJGJ-007", reason="出差")
    request.period.valid_from.seconds = MIN_TIMESTAMP_SECONDS
    request.period.valid_until.seconds = MAX_TIMESTAMP_SECONDS
    async with service_under_test(REVIEW, database_url=url, pki_dir=pki_dir,
                                  temporal_address=UNREACHABLE_TEMPORAL) as review:
        before = _digest(review.running.engine)
        async with review.channel("department-system-scjgj") as channel:
            stub = review_pb2_grpc.ReviewServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GrantDelegation(request, metadata=as_official("SCJGJ-006"))
        after = _digest(review.running.engine)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(refused.value) == ["period"]
    assert "at_most_90_days" in (refused.value.details() or "")
    assert after == before


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (GOVHALL_TEST_POSTGRES_URL)")
async def test_on_postgresql_an_activity_given_a_nul_fails_for_good(
        tmp_path: Path, pki_dir: Path) -> None:
    """Whatever reaches an activity past the RPC checks, text PostgreSQL refuses is not retried."""
    url = fresh_database_url("postgresql", "review", tmp_path)
    settings = REVIEW.settings_type(database_url=url, pki_dir=pki_dir, port=0)
    prepare(REVIEW, settings)
    engine = sa.create_engine(url)
    keys = Signers(pki_dir)
    now = datetime.now(UTC)
    try:
        activities = ReviewActivities(engine, keys.keys, clock=lambda: now)
        acceptance = sign_acceptance(keys, CASE, accepted_at=now)
        deadlines = await ActivityEnvironment().run(activities.open_case, DeadlinesRequest(
            acceptance, stage=Stage.REVIEW, at=now))
        # Review signed the opinion with the NUL in it: only the database refuses it.
        decision = keys.decision(CASE, REVIEWER, Stage.REVIEW, Outcome.APPROVE,
                                    opinion="同意\x00")
        taken = DecisionTaken(Stage.REVIEW, Outcome.APPROVE, REVIEWER.official_id, "", "",
                              REVIEWER.system, now, decision.statement, decision.opinion,
                              decision.legal_basis)
        with pytest.raises(ApplicationError) as failed:
            await ActivityEnvironment().run(activities.record_transition, Transition(
                CASE, taken, Stage.SIGN, next_department="SCJGJ", next_role="leader",
                next_due_at=deadlines.stage_due_at[Stage.SIGN], item_code="012101000001000",
                sla_state=SlaState.ON_TIME))
        with engine.connect() as connection:
            recorded = connection.execute(
                sa.select(sa.func.count()).select_from(review_tables.decisions)).scalar_one()
    finally:
        engine.dispose()
    assert failed.value.non_retryable
    assert failed.value.type == "DataError"
    assert recorded == 0
