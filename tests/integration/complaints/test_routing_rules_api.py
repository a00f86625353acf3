"""Setting routing rules: who may, what is refused, and the history that is kept."""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING

import grpc
import pytest
from sqlalchemy import create_engine, text

from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from tests.support import SAMPLE_AUDIT_ENTRIES, ServiceUnderTest, as_official, field_violations

if TYPE_CHECKING:
    from govhall.complaints.v1.complaints_pb2_grpc import ComplaintsServiceAsyncStub

DISPATCHER = "ZWFWZX-009"
OTHER_DISPATCHER = "ZWFWZX-010"
OPERATOR = "ZWFWZX-004"
WINDOW_CLERK = "FGW-001"

Stub = complaints_pb2_grpc.ComplaintsServiceStub


def _repoint(category_code: str, department_code: str, basis: str = "市政府职能调整通知",
             name: str = "") -> pb.SetRoutingRuleRequest:
    return pb.SetRoutingRuleRequest(category_code=category_code, department_code=department_code,
                                    name=name, basis=basis)


async def _history(stub: ComplaintsServiceAsyncStub, category_code: str) -> list[pb.RoutingRule]:
    rules: list[pb.RoutingRule] = []
    token = ""
    while True:
        page = await stub.ListRoutingRules(pb.ListRoutingRulesRequest(
            category_code=category_code, page_size=1, page_token=token))
        rules += page.rules
        token = page.next_page_token
        if not token:
            return rules


async def _unchanged(
        stub: ComplaintsServiceAsyncStub) -> tuple[pb.Category, list[pb.RoutingRule], int]:
    route = await stub.RouteComplaint(pb.RouteComplaintRequest(category_code="SC-01"))
    audit = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
    return route.category, await _history(stub, "SC-01"), audit.entries


async def test_a_dispatcher_re_points_a_category_and_the_old_rule_is_kept(
        complaints: ServiceUnderTest) -> None:
    async with complaints.channel() as channel:
        stub = Stub(channel)
        before = await stub.RouteComplaint(pb.RouteComplaintRequest(category_code="SC-01"))
        result = await stub.SetRoutingRule(_repoint("SC-01", "WJW"),
                                           metadata=as_official(DISPATCHER))
        after = await stub.RouteComplaint(pb.RouteComplaintRequest(category_code="SC-01"))
        history = await _history(stub, "SC-01")
        now_at_health = await stub.ListCategories(pb.ListCategoriesRequest(department_code="WJW"))
        still_at_market = await stub.ListCategories(
            pb.ListCategoriesRequest(department_code="SCJGJ", page_size=500))
        audit = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
    assert before.department.code == "SCJGJ"
    assert result.category.department_code == "WJW"
    assert result.category.department_name
    assert result.category.rule_version == 2
    assert result.rule.version == 2
    assert result.rule.set_by_official_id == DISPATCHER
    assert not result.rule.HasField("valid_until")
    assert after.department.code == "WJW"
    assert after.category.rule_version == 2
    assert after.category.name == before.category.name
    assert [(r.version, r.department_code) for r in history] == [(1, "SCJGJ"), (2, "WJW")]
    first, second = history
    assert first.HasField("valid_until")
    assert first.valid_until == second.valid_from
    assert first.valid_from.ToDatetime() <= first.valid_until.ToDatetime()
    assert first.basis == "initial routing table"
    assert first.set_by_official_id == ""
    assert second.basis == "市政府职能调整通知"
    assert not second.HasField("valid_until")
    assert "SC-01" in {c.code for c in now_at_health.categories}
    assert "SC-01" not in {c.code for c in still_at_market.categories}
    assert audit.intact
    assert audit.entries == SAMPLE_AUDIT_ENTRIES + 1


async def test_every_re_point_adds_to_the_history(complaints: ServiceUnderTest) -> None:
    async with complaints.channel() as channel:
        stub = Stub(channel)
        for official, department in ((DISPATCHER, "WJW"), (OPERATOR, "ZWFWZX"),
                                     (OTHER_DISPATCHER, "SCJGJ")):
            await stub.SetRoutingRule(_repoint("SC-01", department),
                                      metadata=as_official(official))
        history = await _history(stub, "SC-01")
        route = await stub.RouteComplaint(pb.RouteComplaintRequest(category_code="SC-01"))
    assert [(r.version, r.department_code, r.set_by_official_id) for r in history] == [
        (1, "SCJGJ", ""), (2, "WJW", DISPATCHER), (3, "ZWFWZX", OPERATOR),
        (4, "SCJGJ", OTHER_DISPATCHER)]
    assert [r.HasField("valid_until") for r in history] == [True, True, True, False]
    assert all(a.valid_until == b.valid_from for a, b in itertools.pairwise(history))
    assert route.department.code == "SCJGJ"
    assert route.category.rule_version == 4


async def test_an_operator_creates_a_new_category(complaints: ServiceUnderTest) -> None:
    async with complaints.channel() as channel:
        stub = Stub(channel)
        before = await stub.ListCategories(pb.ListCategoriesRequest(page_size=500))
        created = await stub.SetRoutingRule(
            _repoint("JT-99", "JTYSJ", name="网约车服务", basis="网约车管理办法第五条"),
            metadata=as_official(OPERATOR))
        route = await stub.RouteComplaint(pb.RouteComplaintRequest(category_code="JT-99"))
        after = await stub.ListCategories(pb.ListCategoriesRequest(page_size=500))
        history = await _history(stub, "JT-99")
    assert created.category.name == "网约车服务"
    assert created.category.rule_version == 1
    assert route.department.code == "JTYSJ"
    assert len(after.categories) == len(before.categories) + 1
    assert [(r.version, r.department_code, r.basis) for r in history] == [
        (1, "JTYSJ", "网约车管理办法第五条")]


async def test_the_audit_log_holds_codes_only(complaints: ServiceUnderTest) -> None:
    basis = "依据张三同志13800000000来电反映"
    async with complaints.channel("operator") as channel:
        await Stub(channel).SetRoutingRule(_repoint("SC-01", "WJW", basis=basis),
                                           metadata=as_official(DISPATCHER))
    engine = create_engine(complaints.settings.resolved_database_url())
    with engine.connect() as connection:
        entry = connection.execute(text(
            "SELECT system, official_id, action, subject, details FROM audit_log "
            "WHERE sequence = :first"), {"first": SAMPLE_AUDIT_ENTRIES + 1}).one()
    engine.dispose()
    assert (entry.system, entry.official_id, entry.action, entry.subject) == (
        "operator", DISPATCHER, "routing_rule.set", "category/SC-01")
    assert json.loads(entry.details) == {
        "version": 2, "department": "WJW", "previous_department": "SCJGJ"}
    assert "张三" not in entry.details
    assert "138" not in entry.details


async def test_only_dispatchers_and_operators_set_rules_and_nothing_changes_otherwise(
        complaints: ServiceUnderTest) -> None:
    async with complaints.channel("operator") as channel:
        stub = Stub(channel)
        before = await _unchanged(stub)
        outcomes = {}
        for label, metadata in (("nobody", ()), ("clerk", as_official(WINDOW_CLERK)),
                                ("trading officer", as_official("ZWFWZX-007")),
                                ("stranger", as_official("ABC-999")),
                                ("malformed", (("x-govhall-official", "robert'); --"),))):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.SetRoutingRule(_repoint("SC-01", "WJW"), metadata=metadata)
            outcomes[label] = refused.value
        with pytest.raises(grpc.aio.AioRpcError) as new_category:
            await stub.SetRoutingRule(_repoint("JT-99", "JTYSJ", name="网约车服务"),
                                      metadata=as_official(WINDOW_CLERK))
        async with complaints.channel("hall-window-system") as window:
            with pytest.raises(grpc.aio.AioRpcError) as through_the_window:
                await Stub(window).SetRoutingRule(_repoint("SC-01", "WJW"),
                                                  metadata=as_official(DISPATCHER))
        with pytest.raises(grpc.aio.AioRpcError) as not_created:
            await stub.RouteComplaint(pb.RouteComplaintRequest(category_code="JT-99"))
        after = await _unchanged(stub)
    assert {k: e.code() for k, e in outcomes.items()} == {
        "nobody": grpc.StatusCode.UNAUTHENTICATED,
        "clerk": grpc.StatusCode.PERMISSION_DENIED,
        "trading officer": grpc.StatusCode.PERMISSION_DENIED,
        "stranger": grpc.StatusCode.PERMISSION_DENIED,
        "malformed": grpc.StatusCode.INVALID_ARGUMENT,
    }
    # The console may not speak for a window clerk; it may for a trading officer, who
    # holds neither routing role.
    assert "may not speak for official FGW-001" in (outcomes["clerk"].details() or "")
    assert "complaint_dispatcher" in (outcomes["trading officer"].details() or "")
    assert "not in the staff directory" in (outcomes["stranger"].details() or "")
    assert new_category.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert through_the_window.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert not_created.value.code() == grpc.StatusCode.NOT_FOUND
    assert after == before
    category, history, audit_entries = before
    assert category.rule_version == 1
    assert len(history) == 1
    assert audit_entries == SAMPLE_AUDIT_ENTRIES


async def test_bad_rules_are_refused_and_change_nothing(complaints: ServiceUnderTest) -> None:
    cases = {
        "unknown_department": _repoint("SC-01", "NOSUCH"),
        "malformed_category": _repoint("SC01", "WJW"),
        "malformed_department": _repoint("SC-01", "wjw"),
        "empty_basis": _repoint("SC-01", "WJW", basis=""),
        "blank_basis": _repoint("SC-01", "WJW", basis="   "),
        "long_basis": _repoint("SC-01", "WJW", basis="据" * 501),
        "renaming": _repoint("SC-01", "WJW", name="食品卫生"),
        "long_name": _repoint("JT-99", "JTYSJ", name="名" * 101),
        "new_without_name": _repoint("JT-99", "JTYSJ"),
        "unknown_department_for_new": _repoint("JT-99", "NOSUCH", name="网约车服务"),
        "already_there": _repoint("SC-01", "SCJGJ"),
    }
    async with complaints.channel() as channel:
        stub = Stub(channel)
        before = await _unchanged(stub)
        refusals = {}
        for label, request in cases.items():
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.SetRoutingRule(request, metadata=as_official(DISPATCHER))
            refusals[label] = refused.value
        with pytest.raises(grpc.aio.AioRpcError) as not_created:
            await stub.RouteComplaint(pb.RouteComplaintRequest(category_code="JT-99"))
        after = await _unchanged(stub)
    codes = {label: error.code() for label, error in refusals.items()}
    assert codes == {label: grpc.StatusCode.ALREADY_EXISTS if label == "already_there"
                     else grpc.StatusCode.INVALID_ARGUMENT for label in cases}
    fields = {label: field_violations(error) for label, error in refusals.items()}
    assert fields["unknown_department"] == ["department_code"]
    assert fields["unknown_department_for_new"] == ["department_code"]
    assert fields["malformed_category"] == ["category_code"]
    assert fields["malformed_department"] == ["department_code"]
    assert fields["empty_basis"] == ["basis"]
    assert fields["blank_basis"] == ["basis"]
    assert fields["long_basis"] == ["basis"]
    assert fields["renaming"] == ["name"]
    assert fields["long_name"] == ["name"]
    assert fields["new_without_name"] == ["name"]
    assert "NOSUCH" in (refusals["unknown_department"].details() or "")
    assert not_created.value.code() == grpc.StatusCode.NOT_FOUND
    assert after == before


async def test_history_of_an_unknown_category_is_not_found(complaints: ServiceUnderTest) -> None:
    async with complaints.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await Stub(channel).ListRoutingRules(
                pb.ListRoutingRulesRequest(category_code="ZZ-99"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_audit_verifier_names_the_first_edited_entry(
        complaints: ServiceUnderTest) -> None:
    async with complaints.channel() as channel:
        stub = Stub(channel)
        for department in ("WJW", "ZWFWZX", "SCJGJ"):
            await stub.SetRoutingRule(_repoint("SC-01", department),
                                      metadata=as_official(DISPATCHER))
        before = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
        engine = create_engine(complaints.settings.resolved_database_url())
        with engine.begin() as connection:
            connection.execute(text(
                "UPDATE audit_log SET official_id = 'ZWFWZX-011' WHERE sequence = :edited"),
                {"edited": SAMPLE_AUDIT_ENTRIES + 2})
        engine.dispose()
        after = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
    assert before.intact
    assert before.entries == SAMPLE_AUDIT_ENTRIES + 3
    assert not after.intact
    assert after.first_broken_sequence == SAMPLE_AUDIT_ENTRIES + 2
    assert after.entries == SAMPLE_AUDIT_ENTRIES + 1
