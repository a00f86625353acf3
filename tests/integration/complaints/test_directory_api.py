"""The department directory, the routing table and the platforms, read over gRPC and mTLS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from govhall.common.v1 import common_pb2
from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from kernel.directory import read_sample
from services.complaints.app.handlers import load_sample_directory
from services.complaints.db.repository import ComplaintsUnitOfWork
from tests.support import SAMPLE_AUDIT_ENTRIES, ServiceUnderTest, field_violations

if TYPE_CHECKING:
    from govhall.complaints.v1.complaints_pb2_grpc import ComplaintsServiceAsyncStub


def _stub(channel: grpc.aio.Channel) -> ComplaintsServiceAsyncStub:
    return complaints_pb2_grpc.ComplaintsServiceStub(channel)


async def _all_departments(stub: ComplaintsServiceAsyncStub,
                           kind: Any = common_pb2.DEPARTMENT_KIND_UNSPECIFIED,
                           ) -> list[common_pb2.Department]:
    departments: list[common_pb2.Department] = []
    token = ""
    while True:
        page = await stub.ListDepartments(
            pb.ListDepartmentsRequest(kind=kind, page_size=40, page_token=token))
        assert len(page.departments) <= 40
        departments += page.departments
        token = page.next_page_token
        if not token:
            return departments


async def _all_categories(stub: ComplaintsServiceAsyncStub,
                          department_code: str = "") -> list[pb.Category]:
    categories: list[pb.Category] = []
    token = ""
    while True:
        page = await stub.ListCategories(pb.ListCategoriesRequest(
            department_code=department_code, page_size=25, page_token=token))
        categories += page.categories
        token = page.next_page_token
        if not token:
            return categories


async def test_the_whole_directory_is_served_page_by_page(complaints: ServiceUnderTest) -> None:
    async with complaints.channel() as channel:
        departments = await _all_departments(_stub(channel))
    sample = read_sample(complaints.settings.sample_dir, "departments.json")["departments"]
    assert len(departments) >= 110
    assert len(departments) == len(sample)
    assert [d.code for d in departments] == sorted(d["code"] for d in sample)
    assert all(d.name and d.kind != common_pb2.DEPARTMENT_KIND_UNSPECIFIED for d in departments)


async def test_departments_of_one_kind(complaints: ServiceUnderTest) -> None:
    async with complaints.channel() as channel:
        stub = _stub(channel)
        everything = await _all_departments(stub)
        districts = await _all_departments(stub, common_pb2.DEPARTMENT_KIND_DISTRICT_GOVERNMENT)
        utilities = await _all_departments(stub, common_pb2.DEPARTMENT_KIND_PUBLIC_UTILITY)
    assert districts
    assert {d.kind for d in districts} == {common_pb2.DEPARTMENT_KIND_DISTRICT_GOVERNMENT}
    assert utilities
    assert {d.kind for d in utilities} == {common_pb2.DEPARTMENT_KIND_PUBLIC_UTILITY}
    assert len(districts) + len(utilities) < len(everything)


async def test_one_department(complaints: ServiceUnderTest) -> None:
    async with complaints.channel() as channel:
        stub = _stub(channel)
        market = (await stub.GetDepartment(pb.GetDepartmentRequest(code="SCJGJ"))).department
        center = (await stub.GetDepartment(pb.GetDepartmentRequest(code="ZWFWZX"))).department
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetDepartment(pb.GetDepartmentRequest(code="NOSUCH"))
    assert market.code == "SCJGJ"
    assert market.name
    assert market.kind == common_pb2.DEPARTMENT_KIND_MUNICIPAL_DEPARTMENT
    assert center.kind == common_pb2.DEPARTMENT_KIND_CENTER
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert "NOSUCH" in (missing.value.details() or "")


async def test_every_sample_category_is_listed_with_its_department(
        complaints: ServiceUnderTest) -> None:
    async with complaints.channel() as channel:
        stub = _stub(channel)
        categories = await _all_categories(stub)
        market = await _all_categories(stub, "SCJGJ")
        with pytest.raises(grpc.aio.AioRpcError) as unknown_department:
            await stub.ListCategories(pb.ListCategoriesRequest(department_code="NOSUCH"))
    sample = read_sample(complaints.settings.sample_dir, "complaints.json")["categories"]
    assert {(c.code, c.name, c.department_code) for c in categories} == {
        (s["code"], s["name"], s["department_code"]) for s in sample}
    assert [c.code for c in categories] == sorted(c.code for c in categories)
    assert all(c.department_name and c.rule_version == 1 for c in categories)
    assert market
    assert {c.department_code for c in market} == {"SCJGJ"}
    assert len(market) == sum(1 for s in sample if s["department_code"] == "SCJGJ")
    assert unknown_department.value.code() == grpc.StatusCode.NOT_FOUND


async def test_every_category_routes_to_its_responsible_department(
        complaints: ServiceUnderTest) -> None:
    sample = read_sample(complaints.settings.sample_dir, "complaints.json")["categories"]
    names = {d["code"]: d["name"] for d in read_sample(
        complaints.settings.sample_dir, "departments.json")["departments"]}
    async with complaints.channel("hotline-12345") as channel:
        stub = _stub(channel)
        routes = {s["code"]: await stub.RouteComplaint(
            pb.RouteComplaintRequest(category_code=s["code"])) for s in sample}
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.RouteComplaint(pb.RouteComplaintRequest(category_code="ZZ-99"))
    for record in sample:
        route = routes[record["code"]]
        assert route.department.code == record["department_code"]
        # The responsible department's own name, in both places, from the directory.
        assert route.department.name == names[record["department_code"]]
        assert route.category.code == record["code"]
        assert route.category.name == record["name"]
        assert route.category.department_name == names[record["department_code"]]
        assert route.category.rule_version == 1
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert "ZZ-99" in (unknown.value.details() or "")


async def test_the_registered_platforms(complaints: ServiceUnderTest) -> None:
    async with complaints.channel() as channel:
        platforms = (await _stub(channel).ListPlatforms(pb.ListPlatformsRequest())).platforms
    assert [(p.id, p.kind) for p in platforms] == [
        ("12345", pb.PLATFORM_KIND_HOTLINE),
        ("GJZWFW", pb.PLATFORM_KIND_PORTAL),
        ("LNZWFW", pb.PLATFORM_KIND_PORTAL),
    ]
    assert all(p.name for p in platforms)


async def test_malformed_requests_are_invalid_arguments(complaints: ServiceUnderTest) -> None:
    async with complaints.channel() as channel:
        stub = _stub(channel)
        refusals: dict[str, grpc.aio.AioRpcError] = {}
        calls: dict[str, Any] = {
            "category_code": stub.RouteComplaint(
                pb.RouteComplaintRequest(category_code="sc-01' OR 1=1")),
            "department_code": stub.GetDepartment(pb.GetDepartmentRequest(code="scjgj")),
            "kind": stub.ListDepartments(pb.ListDepartmentsRequest(kind=99)),  # type: ignore[arg-type]
            "page_size": stub.ListCategories(pb.ListCategoriesRequest(page_size=100_000)),
            "token": stub.ListDepartments(pb.ListDepartmentsRequest(page_token="not-a-token")),
            "history_token": stub.ListRoutingRules(pb.ListRoutingRulesRequest(
                category_code="SC-01", page_token="eyJhZnRlciI6ICJ4In0=")),
        }
        for label, call in calls.items():
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            refusals[label] = refused.value
        raw = channel.unary_unary("/govhall.complaints.v1.ComplaintsService/RouteComplaint",
                                  request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as garbage:
            await raw(b"\xff\xff\xff\xff")
    assert {k: e.code() for k, e in refusals.items()} == dict.fromkeys(
        refusals, grpc.StatusCode.INVALID_ARGUMENT)
    assert field_violations(refusals["category_code"]) == ["category_code"]
    assert field_violations(refusals["department_code"]) == ["code"]
    assert field_violations(refusals["kind"]) == ["kind"]
    assert field_violations(refusals["page_size"]) == ["page_size"]
    assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_sample_is_loaded_once(complaints: ServiceUnderTest) -> None:
    again = load_sample_directory(uow=ComplaintsUnitOfWork(complaints.running.engine),
                                  sample_dir=complaints.settings.sample_dir)
    async with complaints.channel() as channel:
        audit = (await _stub(channel).VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
    assert again is False
    assert audit.intact
    assert audit.entries == SAMPLE_AUDIT_ENTRIES


async def test_health(complaints: ServiceUnderTest) -> None:
    async with complaints.channel() as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="govhall.complaints.v1.ComplaintsService"))
    assert health.status == health_pb2.HealthCheckResponse.SERVING
