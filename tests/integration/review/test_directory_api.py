"""The staff directory the review service owns, served over real gRPC and mTLS."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, text

from govhall.common.v1 import common_pb2
from govhall.review.v1 import review_pb2 as pb
from govhall.review.v1 import review_pb2_grpc
from tests.support import SAMPLE_AUDIT_ENTRIES, ServiceUnderTest, field_violations

if TYPE_CHECKING:
    from govhall.review.v1.review_pb2_grpc import ReviewServiceAsyncStub


async def _all_officials(stub: ReviewServiceAsyncStub,
                         **filters: object) -> list[pb.Official]:
    officials: list[pb.Official] = []
    token = ""
    while True:
        page = await stub.ListOfficials(
            pb.ListOfficialsRequest(page_size=60, page_token=token, **filters))  # type: ignore[arg-type]
        officials += page.officials
        token = page.next_page_token
        if not token:
            return officials


async def test_the_sample_staff_is_served_page_by_page(review: ServiceUnderTest) -> None:
    async with review.channel("department-system-scjgj") as channel:
        officials = await _all_officials(review_pb2_grpc.ReviewServiceStub(channel))
    assert len(officials) == 338  # 335 before three complaint handlers joined (stop 12)
    ids = [o.id for o in officials]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    for official in officials:
        assert official.name and official.department_name
        assert official.roles
        assert common_pb2.ROLE_UNSPECIFIED not in official.roles


async def test_officials_of_one_department_and_one_role(review: ServiceUnderTest) -> None:
    async with review.channel() as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        leaders = await _all_officials(stub, department_code="SCJGJ",
                                       role=common_pb2.ROLE_LEADER)
        department = await _all_officials(stub, department_code="SCJGJ")
        custodians = await _all_officials(stub, role=common_pb2.ROLE_SEAL_CUSTODIAN)
    assert [o.id for o in leaders] == ["SCJGJ-006", "SCJGJ-007"]
    assert len(department) == 8
    assert {o.department_code for o in department} == {"SCJGJ"}
    assert [o.id for o in custodians] == ["ZWFWZX-001", "ZWFWZX-002", "ZWFWZX-003"]
    assert all(o.roles == [common_pb2.ROLE_SEAL_CUSTODIAN] for o in custodians)


async def test_one_official_with_their_department(review: ServiceUnderTest) -> None:
    async with review.channel() as channel:
        response = await review_pb2_grpc.ReviewServiceStub(channel).GetOfficial(
            pb.GetOfficialRequest(official_id="ZWFWZX-004"))
    assert response.official.id == "ZWFWZX-004"
    assert response.official.department_code == "ZWFWZX"
    assert response.official.department_name
    assert list(response.official.roles) == [common_pb2.ROLE_OPERATOR]
    assert not response.delegations_in_force


async def test_unknown_things_are_not_found(review: ServiceUnderTest) -> None:
    async with review.channel() as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as missing_official:
            await stub.GetOfficial(pb.GetOfficialRequest(official_id="ABC-999"))
        with pytest.raises(grpc.aio.AioRpcError) as missing_department:
            await stub.ListOfficials(pb.ListOfficialsRequest(department_code="NOPE"))
    assert missing_official.value.code() == grpc.StatusCode.NOT_FOUND
    assert "ABC-999" in (missing_official.value.details() or "")
    assert missing_department.value.code() == grpc.StatusCode.NOT_FOUND


async def test_malformed_requests_are_invalid_arguments(review: ServiceUnderTest) -> None:
    async with review.channel() as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as bad_id:
            await stub.GetOfficial(pb.GetOfficialRequest(official_id="x'; DROP TABLE officials"))
        with pytest.raises(grpc.aio.AioRpcError) as bad_token:
            await stub.ListOfficials(pb.ListOfficialsRequest(page_token="not-a-token"))
        with pytest.raises(grpc.aio.AioRpcError) as huge_page:
            await stub.ListOfficials(pb.ListOfficialsRequest(page_size=100_000))
        with pytest.raises(grpc.aio.AioRpcError) as unknown_role:
            await stub.ListOfficials(pb.ListOfficialsRequest(role=99))  # type: ignore[arg-type]
        raw = channel.unary_unary("/govhall.review.v1.ReviewService/GetOfficial",
                                  request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as garbage:
            await raw(b"\xff\xff\xff\xff")
    for refused in (bad_id, bad_token, huge_page, unknown_role, garbage):
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(bad_id.value) == ["official_id"]
    assert field_violations(huge_page.value) == ["page_size"]
    assert field_violations(unknown_role.value) == ["role"]


async def test_the_audit_verifier_names_the_first_edited_entry(review: ServiceUnderTest) -> None:
    async with review.channel() as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        for year in (2030, 2031, 2032):
            await stub.LoadHolidaySchedule(
                pb.LoadHolidayScheduleRequest(year=year, holidays=[f"{year}-01-01"]),
                metadata=(("x-govhall-official", "ZWFWZX-004"),))
        before = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
        engine = create_engine(review.settings.resolved_database_url())
        with engine.begin() as connection:
            connection.execute(text(
                "UPDATE audit_log SET official_id = 'ZWFWZX-005' WHERE sequence = :edited"),
                {"edited": SAMPLE_AUDIT_ENTRIES + 2})
        engine.dispose()
        after = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
    assert before.intact and before.entries == SAMPLE_AUDIT_ENTRIES + 3
    assert not after.intact
    assert after.first_broken_sequence == SAMPLE_AUDIT_ENTRIES + 2
    assert after.entries == SAMPLE_AUDIT_ENTRIES + 1


async def test_health(review: ServiceUnderTest) -> None:
    async with review.channel() as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="govhall.review.v1.ReviewService"))
    assert health.status == health_pb2.HealthCheckResponse.SERVING
