"""The intake gRPC API: protobuf in and out, the use cases in between.

Database work runs in a thread so the event loop keeps serving other calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from sqlalchemy import Engine

from govhall.intake.v1 import intake_pb2 as pb
from govhall.intake.v1 import intake_pb2_grpc
from kernel.commonpb import verification_to_proto
from kernel.identity import current_caller
from services.intake.app import handlers
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.domain.model import ApprovalItem, Material

_FORMS = {"original": pb.MATERIAL_FORM_ORIGINAL, "copy": pb.MATERIAL_FORM_COPY}
_FORM_NAMES = {v: k for k, v in _FORMS.items()}
_PROCEDURES = {
    "hearing": pb.SPECIAL_PROCEDURE_HEARING,
    "expert_review": pb.SPECIAL_PROCEDURE_EXPERT_REVIEW,
    "inspection_testing": pb.SPECIAL_PROCEDURE_INSPECTION_TESTING,
    "appraisal": pb.SPECIAL_PROCEDURE_APPRAISAL,
    "tendering_auction": pb.SPECIAL_PROCEDURE_TENDERING_AUCTION,
}
_PROCEDURE_NAMES = {v: k for k, v in _PROCEDURES.items()}


def item_to_proto(item: ApprovalItem, department_name: str) -> pb.ApprovalItem:
    return pb.ApprovalItem(
        code=item.code,
        name=item.name,
        department_code=item.department_code,
        department_name=department_name,
        legal_limit_days=item.legal_limit_days,
        promised_limit_days=item.promised_limit_days,
        materials=[pb.Material(code=m.code, name=m.name, required=m.required, form=_FORMS[m.form])
                   for m in item.materials],
        special_procedures=[_PROCEDURES[p] for p in item.special_procedures],
        fee_fen=item.fee_fen,
        basis=item.basis,
        version=item.version,
    )


def item_from_proto(message: pb.ApprovalItem) -> ApprovalItem:
    return ApprovalItem(
        code=message.code,
        name=message.name,
        department_code=message.department_code,
        legal_limit_days=message.legal_limit_days,
        promised_limit_days=message.promised_limit_days,
        materials=tuple(Material(m.code, m.name, m.required, _FORM_NAMES[m.form])
                        for m in message.materials),
        special_procedures=tuple(_PROCEDURE_NAMES[p] for p in message.special_procedures),
        fee_fen=message.fee_fen,
        basis=message.basis,
    )


class IntakeServicer(intake_pb2_grpc.IntakeServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _reading(self) -> IntakeUnitOfWork:
        return IntakeUnitOfWork(self._engine, write=False)

    def _writing(self) -> IntakeUnitOfWork:
        return IntakeUnitOfWork(self._engine)

    async def ListApprovalItems(self, request: pb.ListApprovalItemsRequest,
                                context: grpc.aio.ServicerContext[Any, Any],
                                ) -> pb.ListApprovalItemsResponse:
        page = await asyncio.to_thread(
            handlers.list_approval_items, uow=self._reading(),
            department_code=request.department_code, requested_size=request.page_size,
            page_token=request.page_token)
        return pb.ListApprovalItemsResponse(
            items=[item_to_proto(i, page.department_names[i.department_code])
                   for i in page.items],
            next_page_token=page.next_page_token)

    async def GetApprovalItem(self, request: pb.GetApprovalItemRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.GetApprovalItemResponse:
        item, department_name = await asyncio.to_thread(
            handlers.get_approval_item, uow=self._reading(), code=request.code,
            version=request.version)
        return pb.GetApprovalItemResponse(item=item_to_proto(item, department_name))

    async def PublishApprovalItemVersion(
        self, request: pb.PublishApprovalItemVersionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> pb.PublishApprovalItemVersionResponse:
        item, department_name = await asyncio.to_thread(
            handlers.publish_approval_item_version, uow=self._writing(),
            caller=current_caller(), item=item_from_proto(request.item))
        return pb.PublishApprovalItemVersionResponse(item=item_to_proto(item, department_name))

    async def VerifyAuditLog(self, request: pb.VerifyAuditLogRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.VerifyAuditLogResponse:
        result = await asyncio.to_thread(handlers.verify_audit_log, uow=self._reading())
        return pb.VerifyAuditLogResponse(verification=verification_to_proto(result))
