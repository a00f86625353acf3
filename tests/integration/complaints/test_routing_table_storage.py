"""The routing table's storage rules, on a real database."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from sqlalchemy import create_engine, text

from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from kernel.errors import FailedPrecondition
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.domain.model import change_routing
from tests.support import ServiceUnderTest


async def test_two_re_points_from_the_same_reading_cannot_both_win(
        complaints: ServiceUnderTest) -> None:
    engine = complaints.running.engine
    with ComplaintsUnitOfWork(engine, write=False) as uow:
        seen = uow.routing.category("SC-01")
    changes = [change_routing(seen, category_code="SC-01", department_code=department,
                              name="", basis="职能调整", at=datetime.now(UTC))
               for department in ("WJW", "ZWFWZX")]
    with ComplaintsUnitOfWork(engine) as uow:
        uow.routing.apply(changes[0])
        uow.commit()
    with ComplaintsUnitOfWork(engine) as uow, pytest.raises(FailedPrecondition):
        uow.routing.apply(changes[1])
    with ComplaintsUnitOfWork(engine, write=False) as uow:
        now = uow.routing.category("SC-01")
        history = uow.routing.rules("SC-01", after_version=0, limit=10)
    assert now is not None
    assert (now.department_code, now.rule_version) == ("WJW", 2)
    assert [(r.version, r.department_code) for r in history] == [(1, "SCJGJ"), (2, "WJW")]


async def test_a_category_routed_to_a_vanished_department_is_a_failed_precondition(
        complaints: ServiceUnderTest) -> None:
    db = create_engine(complaints.settings.resolved_database_url())
    with db.begin() as connection:
        connection.execute(text("DELETE FROM departments WHERE code = 'SCJGJ'"))
    db.dispose()
    async with complaints.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await complaints_pb2_grpc.ComplaintsServiceStub(channel).RouteComplaint(
                pb.RouteComplaintRequest(category_code="SC-01"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "SCJGJ" in (refused.value.details() or "")


async def test_creating_a_category_someone_else_just_created_is_refused(
        complaints: ServiceUnderTest) -> None:
    # Both callers read "no such category" and then race to create it.
    late = change_routing(None, category_code="SC-01", department_code="WJW",
                          name="食品安全", basis="职能调整", at=datetime.now(UTC))
    with ComplaintsUnitOfWork(complaints.running.engine) as uow, \
            pytest.raises(FailedPrecondition) as refused:
        uow.routing.apply(late)
    with ComplaintsUnitOfWork(complaints.running.engine, write=False) as uow:
        now = uow.routing.category("SC-01")
        history = uow.routing.rules("SC-01", after_version=0, limit=10)
    assert "SC-01" in refused.value.message
    assert now is not None
    assert now.department_code == "SCJGJ"
    assert len(history) == 1
