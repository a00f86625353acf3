"""The expert pool over real gRPC: who may read it, who may change it, what it records."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import pytest
from sqlalchemy import create_engine, text

from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from kernel.directory import read_sample
from tests.integration.trading.conftest import (
    OTHER_TRADING_OFFICER,
    TRADING_OFFICER,
    WINDOW_CLERK,
)
from tests.support import SAMPLE_AUDIT_ENTRIES, ServiceUnderTest, as_official, field_violations

OFFICER = as_official(TRADING_OFFICER)
NEW_NAME = "欧阳测试"
NEW_EMPLOYER = "沈阳测试工程咨询有限公司"


def _register_request(expert_id: str = "EX-0097", *, specialties: Sequence[str] = ("法律",),
                      name: str = NEW_NAME) -> pb.RegisterExpertRequest:
    return pb.RegisterExpertRequest(id=expert_id, name=name, specialties=list(specialties),
                                    employer=NEW_EMPLOYER)


async def _all_experts(stub: trading_pb2_grpc.TradingServiceAsyncStub,
                       specialty: str = "") -> list[pb.Expert]:
    experts: list[pb.Expert] = []
    token = ""
    while True:
        page = await stub.ListExperts(
            pb.ListExpertsRequest(specialty=specialty, page_size=40, page_token=token),
            metadata=OFFICER)
        experts += page.experts
        token = page.next_page_token
        if not token:
            return experts


async def _audit_entries(stub: trading_pb2_grpc.TradingServiceAsyncStub) -> int:
    verification = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
    assert verification.intact
    return verification.entries


def _audit_rows(service: ServiceUnderTest) -> list[str]:
    engine = create_engine(service.settings.resolved_database_url())
    with engine.connect() as connection:
        rows = [" ".join(str(v) for v in row) for row in connection.execute(
            text("SELECT subject, action, details FROM audit_log ORDER BY sequence"))]
    engine.dispose()
    return rows


async def test_trading_officers_read_the_pool_page_by_page(trading: ServiceUnderTest) -> None:
    sample = read_sample(trading.settings.sample_dir, "trading.json")["experts"]
    async with trading.channel("trading-platform") as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        experts = await _all_experts(stub)
        one = (await stub.GetExpert(pb.GetExpertRequest(id="EX-0002"),
                                    metadata=as_official(OTHER_TRADING_OFFICER))).expert
    assert [e.id for e in experts] == sorted(r["id"] for r in sample)
    assert all(e.available and not e.unavailable_reason for e in experts)
    assert one.name == "蒋振阳"
    assert list(one.specialties) == ["园林绿化", "交通工程"]
    assert one.employer == "辽宁北方城建设计院有限公司"


async def test_experts_of_one_specialty(trading: ServiceUnderTest) -> None:
    sample = read_sample(trading.settings.sample_dir, "trading.json")["experts"]
    async with trading.channel() as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        medical = await _all_experts(stub, "医疗设备")
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.ListExperts(pb.ListExpertsRequest(specialty="烹饪"), metadata=OFFICER)
    assert [e.id for e in medical] == sorted(
        r["id"] for r in sample if "医疗设备" in r["specialties"])
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(unknown.value) == ["specialty"]


async def test_the_pool_is_read_by_trading_officers_only(trading: ServiceUnderTest) -> None:
    async with trading.channel("trading-platform") as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        outcomes = {}
        for label, metadata in (("nobody", ()), ("clerk", as_official(WINDOW_CLERK)),
                                ("stranger", as_official("ABC-999"))):
            with pytest.raises(grpc.aio.AioRpcError) as listing:
                await stub.ListExperts(pb.ListExpertsRequest(), metadata=metadata)
            with pytest.raises(grpc.aio.AioRpcError) as getting:
                await stub.GetExpert(pb.GetExpertRequest(id="EX-0001"), metadata=metadata)
            outcomes[label] = (listing.value.code(), getting.value.code())
    assert outcomes == {
        "nobody": (grpc.StatusCode.UNAUTHENTICATED,) * 2,
        "clerk": (grpc.StatusCode.PERMISSION_DENIED,) * 2,
        "stranger": (grpc.StatusCode.PERMISSION_DENIED,) * 2,
    }


async def test_expert_lookups_that_cannot_be_answered(trading: ServiceUnderTest) -> None:
    async with trading.channel() as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetExpert(pb.GetExpertRequest(id="EX-9999"), metadata=OFFICER)
        with pytest.raises(grpc.aio.AioRpcError) as malformed:
            await stub.GetExpert(pb.GetExpertRequest(id="EX-1"), metadata=OFFICER)
        with pytest.raises(grpc.aio.AioRpcError) as bad_token:
            await stub.ListExperts(pb.ListExpertsRequest(page_token="???"), metadata=OFFICER)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert "EX-9999" in (missing.value.details() or "")
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(malformed.value) == ["id"]
    assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_registered_expert_joins_the_pool_available(trading: ServiceUnderTest) -> None:
    async with trading.channel("trading-platform") as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        registered = (await stub.RegisterExpert(
            _register_request(specialties=["资产评估", "法律"]), metadata=OFFICER)).expert
        fetched = (await stub.GetExpert(pb.GetExpertRequest(id="EX-0097"),
                                        metadata=OFFICER)).expert
        lawyers = await _all_experts(stub, "法律")
        appraisers = await _all_experts(stub, "资产评估")
        entries = await _audit_entries(stub)
    assert registered == fetched
    assert fetched.name == NEW_NAME
    assert fetched.employer == NEW_EMPLOYER
    assert list(fetched.specialties) == ["资产评估", "法律"]
    assert fetched.available
    assert "EX-0097" in [e.id for e in lawyers]
    assert "EX-0097" in [e.id for e in appraisers]
    assert entries == SAMPLE_AUDIT_ENTRIES + 1
    last = _audit_rows(trading)[-1]
    assert "expert/EX-0097" in last
    assert "expert.registered" in last
    assert NEW_NAME not in last
    assert NEW_EMPLOYER not in last


async def test_registering_a_taken_id_is_already_exists_and_changes_nothing(
        trading: ServiceUnderTest) -> None:
    async with trading.channel() as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        before = (await stub.GetExpert(pb.GetExpertRequest(id="EX-0001"),
                                       metadata=OFFICER)).expert
        with pytest.raises(grpc.aio.AioRpcError) as taken:
            await stub.RegisterExpert(_register_request("EX-0001"), metadata=OFFICER)
        after = (await stub.GetExpert(pb.GetExpertRequest(id="EX-0001"),
                                      metadata=OFFICER)).expert
        entries = await _audit_entries(stub)
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "EX-0001" in (taken.value.details() or "")
    assert after == before
    assert entries == SAMPLE_AUDIT_ENTRIES


@pytest.mark.parametrize(("request_", "field"), [
    (_register_request(specialties=["烹饪"]), "specialties"),
    (_register_request(specialties=["法律", "烹饪"]), "specialties"),
    (_register_request(specialties=[]), "specialties"),
    (_register_request(specialties=["法律", "法律"]), "specialties"),
    (_register_request(specialties=["法律", "财务会计", "资产评估", "土地估价", "市政工程",
                                    "水利工程"]), "specialties"),
    (_register_request("EX-97"), "id"),
    (_register_request("ex-0097"), "id"),
    (_register_request(name=""), "name"),
    (_register_request(name="名" * 51), "name"),
    (pb.RegisterExpertRequest(id="EX-0097", name=NEW_NAME, specialties=["法律"]), "employer"),
])
async def test_a_bad_registration_is_invalid_and_changes_nothing(
        trading: ServiceUnderTest, request_: pb.RegisterExpertRequest, field: str) -> None:
    async with trading.channel() as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.RegisterExpert(request_, metadata=OFFICER)
        experts = await _all_experts(stub)
        entries = await _audit_entries(stub)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(refused.value)
    assert len(experts) == 96
    assert entries == SAMPLE_AUDIT_ENTRIES


async def test_registering_needs_a_trading_officer(trading: ServiceUnderTest) -> None:
    async with trading.channel("trading-platform") as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        outcomes = {}
        for label, metadata in (("nobody", ()), ("clerk", as_official(WINDOW_CLERK)),
                                ("stranger", as_official("ABC-999")),
                                ("malformed", (("x-govhall-official", "robert'); --"),))):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.RegisterExpert(_register_request(), metadata=metadata)
            outcomes[label] = refused.value.code()
        async with trading.channel("hall-window-system") as window:
            with pytest.raises(grpc.aio.AioRpcError) as through_the_window:
                await trading_pb2_grpc.TradingServiceStub(window).RegisterExpert(
                    _register_request(), metadata=OFFICER)
        with pytest.raises(grpc.aio.AioRpcError) as still_missing:
            await stub.GetExpert(pb.GetExpertRequest(id="EX-0097"), metadata=OFFICER)
        entries = await _audit_entries(stub)
    assert outcomes == {
        "nobody": grpc.StatusCode.UNAUTHENTICATED,
        "clerk": grpc.StatusCode.PERMISSION_DENIED,
        "stranger": grpc.StatusCode.PERMISSION_DENIED,
        "malformed": grpc.StatusCode.INVALID_ARGUMENT,
    }
    assert through_the_window.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert still_missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert entries == SAMPLE_AUDIT_ENTRIES


async def test_an_expert_taken_out_and_put_back(trading: ServiceUnderTest) -> None:
    async with trading.channel() as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        out = (await stub.SetExpertAvailability(pb.SetExpertAvailabilityRequest(
            id="EX-0006", available=False, reason="出国访学"), metadata=OFFICER)).expert
        fetched = (await stub.GetExpert(pb.GetExpertRequest(id="EX-0006"),
                                        metadata=OFFICER)).expert
        after_out = await _audit_entries(stub)
        retried = (await stub.SetExpertAvailability(pb.SetExpertAvailabilityRequest(
            id="EX-0006", available=False, reason="出国访学"), metadata=OFFICER)).expert
        after_retry = await _audit_entries(stub)
        back = (await stub.SetExpertAvailability(pb.SetExpertAvailabilityRequest(
            id="EX-0006", available=True), metadata=as_official(OTHER_TRADING_OFFICER))).expert
        after_back = await _audit_entries(stub)
    assert (out.available, out.unavailable_reason) == (False, "出国访学")
    assert fetched == out
    assert retried == out
    assert (back.available, back.unavailable_reason) == (True, "")
    assert (after_out, after_retry, after_back) == (
        SAMPLE_AUDIT_ENTRIES + 1, SAMPLE_AUDIT_ENTRIES + 1, SAMPLE_AUDIT_ENTRIES + 2)
    rows = _audit_rows(trading)[SAMPLE_AUDIT_ENTRIES:]
    assert "expert.made_unavailable" in rows[0]
    assert "expert.made_available" in rows[1]
    assert all("expert/EX-0006" in row for row in rows)
    assert not any("出国访学" in row for row in rows)


async def test_bad_availability_changes_are_refused_and_change_nothing(
        trading: ServiceUnderTest) -> None:
    async with trading.channel() as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        outcomes = {}
        fields = {}
        for label, request, metadata in (
            ("no reason", pb.SetExpertAvailabilityRequest(id="EX-0006", available=False),
             OFFICER),
            ("blank reason", pb.SetExpertAvailabilityRequest(
                id="EX-0006", available=False, reason="  "), OFFICER),
            ("long reason", pb.SetExpertAvailabilityRequest(
                id="EX-0006", available=False, reason="因" * 201), OFFICER),
            ("bad id", pb.SetExpertAvailabilityRequest(id="EX-6", available=False, reason="x"),
             OFFICER),
            ("unknown expert", pb.SetExpertAvailabilityRequest(
                id="EX-9999", available=False, reason="x"), OFFICER),
            ("nobody", pb.SetExpertAvailabilityRequest(
                id="EX-0006", available=False, reason="x"), ()),
            ("clerk", pb.SetExpertAvailabilityRequest(
                id="EX-0006", available=False, reason="x"), as_official(WINDOW_CLERK)),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.SetExpertAvailability(request, metadata=metadata)
            outcomes[label] = refused.value.code()
            fields[label] = field_violations(refused.value)
        expert = (await stub.GetExpert(pb.GetExpertRequest(id="EX-0006"),
                                       metadata=OFFICER)).expert
        entries = await _audit_entries(stub)
    assert outcomes == {
        "no reason": grpc.StatusCode.INVALID_ARGUMENT,
        "blank reason": grpc.StatusCode.INVALID_ARGUMENT,
        "long reason": grpc.StatusCode.INVALID_ARGUMENT,
        "bad id": grpc.StatusCode.INVALID_ARGUMENT,
        "unknown expert": grpc.StatusCode.NOT_FOUND,
        "nobody": grpc.StatusCode.UNAUTHENTICATED,
        "clerk": grpc.StatusCode.PERMISSION_DENIED,
    }
    assert fields["no reason"] == ["reason"]
    assert fields["blank reason"] == ["reason"]
    assert fields["long reason"] == ["reason"]
    assert expert.available
    assert entries == SAMPLE_AUDIT_ENTRIES


async def test_expert_names_never_reach_the_logs(
        trading: ServiceUnderTest, capfd: pytest.CaptureFixture[str]) -> None:
    async with trading.channel() as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        await stub.RegisterExpert(_register_request(), metadata=OFFICER)
        with pytest.raises(grpc.aio.AioRpcError) as taken:
            await stub.RegisterExpert(_register_request(), metadata=OFFICER)
        with pytest.raises(grpc.aio.AioRpcError) as unknown_specialty:
            await stub.RegisterExpert(_register_request("EX-0098", specialties=["烹饪"]),
                                      metadata=OFFICER)
        await stub.GetExpert(pb.GetExpertRequest(id="EX-0097"), metadata=OFFICER)
    captured = capfd.readouterr()
    # Each refused where it should be, so its log line is the one checked below.
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert unknown_specialty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    logged = captured.out + captured.err
    assert "rpc.refused" in logged  # the logs were captured at all
    assert "EX-0098" in logged
    assert NEW_NAME not in logged
    assert NEW_EMPLOYER not in logged


async def test_the_audit_verifier_names_the_first_edited_entry(
        trading: ServiceUnderTest) -> None:
    async with trading.channel() as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        await stub.RegisterExpert(_register_request(), metadata=OFFICER)
        for available in (False, True):
            await stub.SetExpertAvailability(pb.SetExpertAvailabilityRequest(
                id="EX-0097", available=available, reason="病假"), metadata=OFFICER)
        before = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
        engine = create_engine(trading.settings.resolved_database_url())
        with engine.begin() as connection:
            connection.execute(text(
                "UPDATE audit_log SET official_id = 'ZWFWZX-008' WHERE sequence = :edited"),
                {"edited": SAMPLE_AUDIT_ENTRIES + 2})
        engine.dispose()
        after = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
    assert before.intact
    assert before.entries == SAMPLE_AUDIT_ENTRIES + 3
    assert not after.intact
    assert after.first_broken_sequence == SAMPLE_AUDIT_ENTRIES + 2
    assert after.entries == SAMPLE_AUDIT_ENTRIES + 1
