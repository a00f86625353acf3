"""A request id kept after an UNAVAILABLE answer goes through again with the same update id,
so Temporal answers it with the first result (review's take_request is the model).

The workflow gateway is replaced by one that answers as Temporal does (an update id seen
before gets the first update's result) and loses its first answer: the act was taken, the
caller heard UNAVAILABLE. Before the fix the kept id answered UNAVAILABLE for ever.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from kernel.errors import Unavailable
from kernel.workflow_gateway import WorkflowGateway
from services.complaints.db import tables
from tests.integration.complaints.test_handling_api import _submit, offline  # noqa: F401
from tests.support import ServiceUnderTest, as_official
from workflows.complaint_contract import ActReceipt

SYSTEM, HANDLER = "department-system-scjgj", "SCJGJ-008"


class LosesItsFirstAnswer:
    """Temporal's update dedup by id, with the first answer lost on the way back."""

    def __init__(self) -> None:
        self.taken: dict[str, ActReceipt] = {}
        self.calls: list[str] = []

    async def update(self, workflow_id: str, name: str, argument: Any, *, update_id: str,
                     result_type: type[Any]) -> Any:
        self.calls.append(update_id)
        if update_id in self.taken:
            return self.taken[update_id]
        number = workflow_id.split("/")[-1]
        self.taken[update_id] = ActReceipt(number, "handling", "SCJGJ", "",
                                           "2026-12-20T00:00:00.000000Z", False)
        raise Unavailable("Temporal did not answer in time: send the same request again")


@pytest.fixture
def lossy(monkeypatch: pytest.MonkeyPatch) -> LosesItsFirstAnswer:
    fake = LosesItsFirstAnswer()
    async def update(gateway: WorkflowGateway, workflow_id: str, name: str, argument: Any, *,
                     update_id: str, result_type: type[Any]) -> Any:
        return await fake.update(workflow_id, name, argument, update_id=update_id,
                                 result_type=result_type)
    monkeypatch.setattr(WorkflowGateway, "update", update)
    return fake


async def _sign_for(service: ServiceUnderTest, number: str
                    ) -> tuple[grpc.StatusCode, pb.SignForComplaintResponse | None]:
    async with service.channel(SYSTEM) as channel:
        try:
            response = await complaints_pb2_grpc.ComplaintsServiceStub(channel).SignForComplaint(
                pb.SignForComplaintRequest(request_id="sf-lost", case_number=number),
                metadata=as_official(HANDLER), timeout=10)
        except grpc.aio.AioRpcError as error:
            return error.code(), None
    return grpc.StatusCode.OK, response


async def test_a_request_kept_after_unavailable_is_answered_with_the_acts_receipt(
        offline: ServiceUnderTest, lossy: LosesItsFirstAnswer) -> None:  # noqa: F811
    number = await _submit(offline, "RETRY-1")
    with offline.running.engine.begin() as connection:
        connection.execute(sa.update(tables.complaint_cases).where(
            tables.complaint_cases.c.case_number == number).values(workflow_started=True))
    first, _ = await _sign_for(offline, number)
    again, response = await _sign_for(offline, number)
    third, repeated = await _sign_for(offline, number)
    assert first == grpc.StatusCode.UNAVAILABLE
    assert (again, third) == (grpc.StatusCode.OK, grpc.StatusCode.OK)
    assert response is not None and repeated is not None
    assert response.receipt.status == pb.COMPLAINT_STATUS_HANDLING
    assert response.receipt == repeated.receipt
    # The same update id both times; the third answer came from the stored response.
    assert len(lossy.calls) == 2 and lossy.calls[0] == lossy.calls[1]
