"""Intake's CheckCaseLink, called as the calling system complaints-service.

The complaints process holds a client certificate of the center's CA for
that system (``<pki_dir>/clients/complaints-service.pem`` in the embedded
default); intake's registry lets it call CheckCaseLink and nothing else.
The channel, the retries and the refusals are the kernel's ``LinkedLookup``
(kernel/linked_lookup.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import grpc

from govhall.intake.v1 import intake_pb2, intake_pb2_grpc
from kernel.linked_lookup import CALL_TIMEOUT_SECONDS as CALL_TIMEOUT_SECONDS
from kernel.linked_lookup import LinkedLookup, code_of
from services.complaints.app.links import IntakeAnswer

if TYPE_CHECKING:
    from govhall.intake.v1.intake_pb2_grpc import IntakeServiceAsyncStub


class IntakeLinks(LinkedLookup["IntakeServiceAsyncStub"]):
    """Asks intake about approval case numbers; one channel, opened on first use."""

    service: ClassVar[str] = "intake"

    def stub_of(self, channel: grpc.aio.Channel) -> IntakeServiceAsyncStub:
        return intake_pb2_grpc.IntakeServiceStub(channel)

    async def __call__(self, case_number: str) -> IntakeAnswer:
        answer = await self.ask(lambda intake: intake.CheckCaseLink,
                                intake_pb2.CheckCaseLinkRequest(case_number=case_number))
        if not answer.found:
            return IntakeAnswer(found=False)
        return IntakeAnswer(
            found=True, item_code=answer.item_code, department_code=answer.department_code,
            case_status=code_of(intake_pb2.CaseStatus.Name(answer.status), "CASE_STATUS_"))
