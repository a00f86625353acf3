"""Drive one application through the four-single chain over gRPC, as the systems would.

Used by the end-to-end tests, the fault tests and the approval benchmark:
the hall's window system submits, the item's department system decides
review and signature, the center's seal system seals, each with its own
client certificate (deploy/sample/systems.json). Every call goes over mTLS
to the running services.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from govhall.intake.v1 import intake_pb2, intake_pb2_grpc
from govhall.review.v1 import review_pb2, review_pb2_grpc
from kernel.grpcserver import secure_channel
from kernel.identity import OFFICIAL_METADATA_KEY

if TYPE_CHECKING:
    from govhall.intake.v1.intake_pb2_grpc import IntakeServiceAsyncStub
    from govhall.review.v1.review_pb2_grpc import ReviewServiceAsyncStub

#: 食品经营许可（新办） of 市场监督管理局 (SCJGJ), and the sample officials who act on it.
SAMPLE_ITEM = "012101000007001"
CLERK = "SCJGJ-001"
REVIEWER = "SCJGJ-003"
LEADER = "SCJGJ-006"
SEAL_CUSTODIAN = "ZWFWZX-001"
#: The systems they act through.
WINDOW_SYSTEM = "hall-window-system"
DEPARTMENT_SYSTEM = "department-system-scjgj"
SEAL_SYSTEM = "center-seal-system"


def acting(official_id: str) -> tuple[tuple[str, str], ...]:
    return ((OFFICIAL_METADATA_KEY, official_id),)


@dataclass
class ChainDriver:
    intake: IntakeServiceAsyncStub
    #: Review as the department's system calls it (review and signature).
    review: ReviewServiceAsyncStub
    #: Review as the center's seal system calls it.
    seal: ReviewServiceAsyncStub
    channels: list[grpc.aio.Channel]
    #: The materials of each item, read from the catalogue once, as a window system would.
    materials: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def connect(cls, *, intake_address: str, review_address: str, pki_dir: Path) -> ChainDriver:
        intake = secure_channel(intake_address, pki_dir=pki_dir, system=WINDOW_SYSTEM)
        review = secure_channel(review_address, pki_dir=pki_dir, system=DEPARTMENT_SYSTEM)
        seal = secure_channel(review_address, pki_dir=pki_dir, system=SEAL_SYSTEM)
        return cls(intake_pb2_grpc.IntakeServiceStub(intake),
                   review_pb2_grpc.ReviewServiceStub(review),
                   review_pb2_grpc.ReviewServiceStub(seal),
                   [intake, review, seal])

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close(grace=None)

    async def submit(self, *, item_code: str = SAMPLE_ITEM, clerk: str = CLERK,
                     idempotency_key: str = "") -> str:
        """Submit a complete application; returns the accepted case's number."""
        if item_code not in self.materials:
            item = (await self.intake.GetApprovalItem(
                intake_pb2.GetApprovalItemRequest(code=item_code))).item
            self.materials[item_code] = [m.code for m in item.materials]
        reply = await self.intake.SubmitApplication(intake_pb2.SubmitApplicationRequest(
            idempotency_key=idempotency_key or uuid.uuid4().hex,
            item_code=item_code,
            applicant=intake_pb2.Applicant(
                kind=intake_pb2.APPLICANT_KIND_ORGANISATION, name="沈阳示例餐饮有限公司",
                id_number="91210100MA0XXXXX1Y"),
            materials=[intake_pb2.SubmittedMaterial(code=code, provided=True)
                       for code in self.materials[item_code]],
            finding=intake_pb2.FINDING_NONE), metadata=acting(clerk))
        if reply.outcome != intake_pb2.INTAKE_OUTCOME_ACCEPTED:
            raise RuntimeError(f"the application was not accepted: {reply.outcome}")
        return reply.case.case_number

    async def decide(self, case_number: str, *, stage: review_pb2.ApprovalStage.ValueType,
                     outcome: review_pb2.DecisionOutcome.ValueType, official: str,
                     request_id: str = "", attempts: int = 5) -> review_pb2.DecideCaseResponse:
        """Send one decision; on UNAVAILABLE send it again with the same request id.

        The request id is the workflow update's id, so a resend never decides twice.
        The seal goes through the seal system, the other stages through the department's.
        """
        stub = self.seal if stage == review_pb2.APPROVAL_STAGE_SEAL else self.review
        request = review_pb2.DecideCaseRequest(
            case_number=case_number, stage=stage, outcome=outcome,
            opinion="材料齐全，符合法定条件", legal_basis="《中华人民共和国行政许可法》第三十八条",
            request_id=request_id or str(uuid.uuid4()))
        for attempt in range(1, attempts + 1):
            try:
                return await stub.DecideCase(request, metadata=acting(official))
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == attempts:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def review_case(self, case_number: str, *, request_id: str = "") -> None:
        await self.decide(case_number, stage=review_pb2.APPROVAL_STAGE_REVIEW,
                          outcome=review_pb2.DECISION_OUTCOME_APPROVE, official=REVIEWER,
                          request_id=request_id)

    async def sign_case(self, case_number: str, *, request_id: str = "") -> None:
        await self.decide(case_number, stage=review_pb2.APPROVAL_STAGE_SIGN,
                          outcome=review_pb2.DECISION_OUTCOME_APPROVE, official=LEADER,
                          request_id=request_id)

    async def seal_case(self, case_number: str, *, request_id: str = "") -> str:
        reply = await self.decide(case_number, stage=review_pb2.APPROVAL_STAGE_SEAL,
                                  outcome=review_pb2.DECISION_OUTCOME_SEAL,
                                  official=SEAL_CUSTODIAN, request_id=request_id)
        return reply.receipt.certificate_number if reply.HasField("receipt") else ""

    async def run_case(self) -> tuple[str, str]:
        """Submit, review, sign and seal one case; returns (case number, certificate)."""
        case_number = await self.submit()
        await self.review_case(case_number)
        await self.sign_case(case_number)
        return case_number, await self.seal_case(case_number)
