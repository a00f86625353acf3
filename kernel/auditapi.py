"""The AuditCheckpointsService every service mounts: its checkpoint feed over gRPC."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization

from govhall.common.v1 import audit_pb2 as pb
from govhall.common.v1 import audit_pb2_grpc
from kernel.audittrail import AuditTrailService
from kernel.commonpb import audit_entry_to_proto, checkpoint_to_proto
from kernel.identity import current_caller
from kernel.signing import raw_public

#: The service's full name, for health and reflection.
AUDIT_CHECKPOINTS_SERVICE = pb.DESCRIPTOR.services_by_name["AuditCheckpointsService"].full_name


class AuditCheckpointsServicer(audit_pb2_grpc.AuditCheckpointsServiceServicer):
    def __init__(self, audit: AuditTrailService) -> None:
        self._audit = audit

    async def ListAuditCheckpoints(self, request: pb.ListAuditCheckpointsRequest,
                                   context: grpc.aio.ServicerContext[Any, Any],
                                   ) -> pb.ListAuditCheckpointsResponse:
        page = await asyncio.to_thread(self._audit.checkpoints, cursor=request.cursor,
                                       requested_size=request.page_size)
        return pb.ListAuditCheckpointsResponse(
            checkpoints=[checkpoint_to_proto(c) for c in page.checkpoints],
            next_cursor=page.next_cursor)

    async def PublishAuditCheckpoint(self, request: pb.PublishAuditCheckpointRequest,
                                     context: grpc.aio.ServicerContext[Any, Any],
                                     ) -> pb.PublishAuditCheckpointResponse:
        checkpoint = await asyncio.to_thread(self._audit.publish, caller=current_caller())
        return pb.PublishAuditCheckpointResponse(checkpoint=checkpoint_to_proto(checkpoint))

    async def ExportAuditLog(self, request: pb.ExportAuditLogRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.ExportAuditLogResponse:
        page = await asyncio.to_thread(self._audit.export, after_sequence=request.after_sequence,
                                       requested_size=request.page_size)
        return pb.ExportAuditLogResponse(entries=[audit_entry_to_proto(e) for e in page.entries],
                                         next_after_sequence=page.next_after_sequence)

    async def ListAuditSigningKeys(self, request: pb.ListAuditSigningKeysRequest,
                                   context: grpc.aio.ServicerContext[Any, Any],
                                   ) -> pb.ListAuditSigningKeysResponse:
        keys = await asyncio.to_thread(self._audit.signing_keys)
        return pb.ListAuditSigningKeysResponse(service=self._audit.service, keys=[
            pb.AuditSigningKey(
                key_id=k.key_id, public_key=raw_public(k.public_key), current=k.current,
                public_key_pem=k.public_key.public_bytes(
                    serialization.Encoding.PEM,
                    serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii"))
            for k in keys])
