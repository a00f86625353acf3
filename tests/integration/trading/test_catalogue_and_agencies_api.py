"""The catalogue of what must enter the venue and the tender agencies, over real gRPC."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from kernel.directory import read_sample
from tests.support import ServiceUnderTest, field_violations

WAN = 10_000 * 100  # fen in 10,000 yuan


async def test_the_catalogue_is_served_whole_and_ordered_by_code(
        trading: ServiceUnderTest) -> None:
    sample = read_sample(trading.settings.sample_dir, "trading.json")["catalogue"]
    async with trading.channel("trading-platform") as channel:
        entries = (await trading_pb2_grpc.TradingServiceStub(channel).ListCatalogueEntries(
            pb.ListCatalogueEntriesRequest())).entries
    assert [e.code for e in entries] == sorted(r["code"] for r in sample)
    by_code = {e.code: e for e in entries}
    ce01 = by_code["CE-01"]
    assert ce01.category == pb.TRADING_CATEGORY_CONSTRUCTION
    assert ce01.threshold_fen == 400 * WAN
    assert ce01.name == "房屋建筑和市政基础设施工程施工"
    assert "必须招标的工程项目规定" in ce01.basis
    assert {e.category for e in entries} == {
        pb.TRADING_CATEGORY_GOVERNMENT_PROCUREMENT, pb.TRADING_CATEGORY_CONSTRUCTION,
        pb.TRADING_CATEGORY_LAND, pb.TRADING_CATEGORY_PROPERTY_RIGHTS}


async def test_the_catalogue_of_one_category(trading: ServiceUnderTest) -> None:
    async with trading.channel() as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        land = (await stub.ListCatalogueEntries(pb.ListCatalogueEntriesRequest(
            category=pb.TRADING_CATEGORY_LAND))).entries
        with pytest.raises(grpc.aio.AioRpcError) as undefined:
            await stub.ListCatalogueEntries(pb.ListCatalogueEntriesRequest(
                category=99))  # type: ignore[arg-type]
    assert [e.code for e in land] == ["LD-01", "LD-02", "LD-03", "LD-04"]
    assert undefined.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(undefined.value) == ["category"]


@pytest.mark.parametrize(("category", "value_fen", "entry_code"), [
    (pb.TRADING_CATEGORY_CONSTRUCTION, 400 * WAN, "CE-01"),
    (pb.TRADING_CATEGORY_CONSTRUCTION, 400 * WAN - 1, "CE-02"),
    (pb.TRADING_CATEGORY_CONSTRUCTION, 150 * WAN, "CE-03"),
    (pb.TRADING_CATEGORY_CONSTRUCTION, 100 * WAN - 1, ""),
    (pb.TRADING_CATEGORY_GOVERNMENT_PROCUREMENT, 500 * WAN, "GP-01"),
    (pb.TRADING_CATEGORY_GOVERNMENT_PROCUREMENT, 99 * WAN, ""),
    (pb.TRADING_CATEGORY_LAND, 0, "LD-01"),
    (pb.TRADING_CATEGORY_PROPERTY_RIGHTS, 1, "PR-01"),
])
async def test_check_must_enter_names_the_deciding_entry(
        trading: ServiceUnderTest, category: pb.TradingCategory.ValueType, value_fen: int,
        entry_code: str) -> None:
    async with trading.channel() as channel:
        ruling = await trading_pb2_grpc.TradingServiceStub(channel).CheckMustEnter(
            pb.CheckMustEnterRequest(category=category, estimated_value_fen=value_fen))
    assert ruling.must_enter == bool(entry_code)
    assert ruling.HasField("entry") == bool(entry_code)
    assert ruling.entry.code == entry_code
    if entry_code:
        assert ruling.entry.threshold_fen <= value_fen
        assert ruling.entry.category == category


async def test_check_must_enter_refuses_bad_input(trading: ServiceUnderTest) -> None:
    async with trading.channel() as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as no_category:
            await stub.CheckMustEnter(pb.CheckMustEnterRequest(estimated_value_fen=100))
        with pytest.raises(grpc.aio.AioRpcError) as negative:
            await stub.CheckMustEnter(pb.CheckMustEnterRequest(
                category=pb.TRADING_CATEGORY_LAND, estimated_value_fen=-1))
    assert no_category.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(no_category.value) == ["category"]
    assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(negative.value) == ["estimated_value_fen"]


async def test_agencies_are_served_page_by_page(trading: ServiceUnderTest) -> None:
    sample = read_sample(trading.settings.sample_dir, "trading.json")["agencies"]
    async with trading.channel() as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        agencies: list[pb.Agency] = []
        pages = 0
        token = ""
        while True:
            page = await stub.ListAgencies(pb.ListAgenciesRequest(page_size=10, page_token=token))
            assert len(page.agencies) <= 10
            agencies += page.agencies
            pages += 1
            token = page.next_page_token
            if not token:
                break
        one = (await stub.GetAgency(pb.GetAgencyRequest(code="AG-002"))).agency
    assert pages == 3
    assert [a.code for a in agencies] == sorted(r["code"] for r in sample)
    assert one.name == "沈阳德恒招标代理有限公司"
    assert one.qualification == "工程招标代理、政府采购代理"


async def test_agency_lookups_that_cannot_be_answered(trading: ServiceUnderTest) -> None:
    async with trading.channel() as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetAgency(pb.GetAgencyRequest(code="AG-999"))
        with pytest.raises(grpc.aio.AioRpcError) as malformed_code:
            await stub.GetAgency(pb.GetAgencyRequest(code="AG-1; --"))
        with pytest.raises(grpc.aio.AioRpcError) as bad_token:
            await stub.ListAgencies(pb.ListAgenciesRequest(page_token="not-a-token"))
        with pytest.raises(grpc.aio.AioRpcError) as huge_page:
            await stub.ListAgencies(pb.ListAgenciesRequest(page_size=100_000))
        raw = channel.unary_unary("/govhall.trading.v1.TradingService/GetAgency",
                                  request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as garbage:
            await raw(b"\xff\xff\xff\xff")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert "AG-999" in (missing.value.details() or "")
    assert malformed_code.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(malformed_code.value) == ["code"]
    assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert huge_page.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(huge_page.value) == ["page_size"]
    assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_health(trading: ServiceUnderTest) -> None:
    async with trading.channel() as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="govhall.trading.v1.TradingService"))
    assert health.status == health_pb2.HealthCheckResponse.SERVING
