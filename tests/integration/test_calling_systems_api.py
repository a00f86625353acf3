"""The registry of calling systems over real gRPC: reading it, and an operator changing it.

Every service mounts CallingSystemsService on its own registry; these
tests use intake's, and review's to show the two are apart.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import text

from govhall.common.v1 import common_pb2, systems_pb2, systems_pb2_grpc
from govhall.review.v1 import review_pb2, review_pb2_grpc
from kernel.pki import client_pair, issue
from services.intake.main import DEFINITION as INTAKE
from services.review.main import DEFINITION as REVIEW
from tests.support import (
    SAMPLE_AUDIT_ENTRIES,
    ServiceUnderTest,
    as_official,
    field_violations,
    fresh_database_url,
    sample_registry,
    service_under_test,
)

OPERATOR = "ZWFWZX-004"
TRADING_OFFICER = "ZWFWZX-007"
SUPERVISOR = "JJZ-001"
#: A system nobody registered yet: FGW's department system.
NEW_SYSTEM = "department-system-fgw"
INBOX = "govhall.review.v1.ReviewService/ListInbox"
GET_CASE = "/govhall.intake.v1.IntakeService/GetCase"


@pytest.fixture
async def intake(backend: str, tmp_path: Path, pki_dir: Path) -> AsyncIterator[ServiceUnderTest]:
    url = fresh_database_url(backend, "intake", tmp_path)
    async with service_under_test(INTAKE, database_url=url, pki_dir=pki_dir,
                                  temporal_address="127.0.0.1:1") as service:
        yield service


@pytest.fixture(scope="session")
def new_system_certificate(pki_dir: Path) -> str:
    pair = client_pair(pki_dir, NEW_SYSTEM)
    if not pair.cert.exists():
        issue(pki_dir, pair, common_name=NEW_SYSTEM, server=False)
    return NEW_SYSTEM


def _fgw_system(*rpcs: str) -> systems_pb2.SetCallingSystemRequest:
    return systems_pb2.SetCallingSystemRequest(
        name=NEW_SYSTEM, description="沈阳市发展和改革委员会审批系统", rpcs=list(rpcs),
        speaks_for=[
            systems_pb2.DepartmentRole(department_code="FGW", role=common_pb2.ROLE_REVIEWER),
            systems_pb2.DepartmentRole(department_code="FGW", role=common_pb2.ROLE_LEADER)])


def _audit(service: ServiceUnderTest) -> list[tuple[str, str, str, str, str]]:
    with service.running.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT system, official_id, action, subject, details FROM audit_log "
            "ORDER BY sequence"))
        return [(r.system, r.official_id, r.action, r.subject, r.details) for r in rows]


async def _refusal(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call  # type: ignore[misc]
    return refused.value.code(), refused.value.details() or ""


async def _get_case(channel: grpc.aio.Channel) -> tuple[grpc.StatusCode, str]:
    """An empty GetCase: INVALID_ARGUMENT once past the registry, PERMISSION_DENIED before."""
    call = channel.unary_unary(GET_CASE, request_serializer=None, response_deserializer=None)
    return await _refusal(call(b""))


async def test_the_registry_is_read_page_by_page_and_by_name(intake: ServiceUnderTest) -> None:
    async with intake.channel("supervision-system") as channel:
        stub = systems_pb2_grpc.CallingSystemsServiceStub(channel)
        names: list[str] = []
        token = ""
        while True:
            page = await stub.ListCallingSystems(
                systems_pb2.ListCallingSystemsRequest(page_size=4, page_token=token))
            names += [s.name for s in page.systems]
            token = page.next_page_token
            if not token:
                break
        window = (await stub.GetCallingSystem(
            systems_pb2.GetCallingSystemRequest(name="hall-window-system"))).system
        unknown = await _refusal(stub.GetCallingSystem(
            systems_pb2.GetCallingSystemRequest(name="nobody-at-all")))
        bad_token = await _refusal(stub.ListCallingSystems(
            systems_pb2.ListCallingSystemsRequest(page_token="bm90IGEgdG9rZW4=")))
    assert names == sorted(sample_registry().systems)
    assert list(window.rpcs) == sorted(sample_registry().systems["hall-window-system"].rpcs)
    assert [(p.department_code, p.role) for p in window.speaks_for] == [
        ("*", common_pb2.ROLE_WINDOW_CLERK)]
    assert window.HasField("updated_at") and window.updated_by == ""
    assert unknown[0] == grpc.StatusCode.NOT_FOUND
    assert bad_token[0] == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_operator_registers_changes_and_removes_a_system_and_each_is_audited(
        intake: ServiceUnderTest, new_system_certificate: str) -> None:
    request = _fgw_system("govhall.intake.v1.IntakeService/GetCase")
    async with intake.channel("operator") as console, \
            intake.channel(new_system_certificate) as newcomer:
        stub = systems_pb2_grpc.CallingSystemsServiceStub(console)
        before = await _get_case(newcomer)
        created = await stub.SetCallingSystem(request, metadata=as_official(OPERATOR))
        # At once, through this process: the newcomer gets past the registry.
        after = await _get_case(newcomer)
        again = await stub.SetCallingSystem(request, metadata=as_official(OPERATOR))
        entries_after_repeat = len(_audit(intake))
        changed = await stub.SetCallingSystem(
            _fgw_system("govhall.intake.v1.IntakeService/*"), metadata=as_official(OPERATOR))
        read = (await stub.GetCallingSystem(
            systems_pb2.GetCallingSystemRequest(name=NEW_SYSTEM))).system
        removed = (await stub.RemoveCallingSystem(
            systems_pb2.RemoveCallingSystemRequest(name=NEW_SYSTEM),
            metadata=as_official(OPERATOR))).removed
        gone = await _get_case(newcomer)
        removed_twice = await _refusal(stub.RemoveCallingSystem(
            systems_pb2.RemoveCallingSystemRequest(name=NEW_SYSTEM),
            metadata=as_official(OPERATOR)))
    assert before[0] == gone[0] == grpc.StatusCode.PERMISSION_DENIED
    assert f"system {NEW_SYSTEM} is not in the registry" in before[1]
    assert after[0] == grpc.StatusCode.INVALID_ARGUMENT  # the empty request, not the system
    assert (created.created, created.changed) == (True, True)
    assert created.system.updated_by == OPERATOR
    assert (again.created, again.changed) == (False, False)
    assert (changed.created, changed.changed) == (False, True)
    assert list(read.rpcs) == ["govhall.intake.v1.IntakeService/*"]
    assert removed.name == NEW_SYSTEM
    assert removed_twice[0] == grpc.StatusCode.NOT_FOUND
    audit = _audit(intake)
    assert entries_after_repeat == SAMPLE_AUDIT_ENTRIES + 1
    assert [(system, official, action, subject) for system, official, action, subject, _
            in audit[SAMPLE_AUDIT_ENTRIES:]] == [
        ("operator", OPERATOR, "calling_system.registered", f"calling_system/{NEW_SYSTEM}"),
        ("operator", OPERATOR, "calling_system.changed", f"calling_system/{NEW_SYSTEM}"),
        ("operator", OPERATOR, "calling_system.removed", f"calling_system/{NEW_SYSTEM}")]
    assert json.loads(audit[SAMPLE_AUDIT_ENTRIES][4]) == {
        "rpcs": ["govhall.intake.v1.IntakeService/GetCase"],
        "speaks_for": ["FGW:leader", "FGW:reviewer"]}


async def test_only_an_operator_of_the_center_changes_the_registry(
        intake: ServiceUnderTest) -> None:
    request = _fgw_system(INBOX)
    async with intake.channel("operator") as console, \
            intake.channel("supervision-system") as supervision:
        stub = systems_pb2_grpc.CallingSystemsServiceStub(console)
        # An operator of FGW (not of the center), and a way for the console to name them.
        with intake.running.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO officials (id, name, department_code, roles) "
                "VALUES ('FGW-099', '测试', 'FGW', '[\"operator\"]')"))
        console_entry = (await stub.GetCallingSystem(
            systems_pb2.GetCallingSystemRequest(name="operator"))).system
        widened = systems_pb2.SetCallingSystemRequest(
            name="operator", description=console_entry.description,
            rpcs=list(console_entry.rpcs),
            speaks_for=[*console_entry.speaks_for, systems_pb2.DepartmentRole(
                department_code="FGW", role=common_pb2.ROLE_OPERATOR)])
        await stub.SetCallingSystem(widened, metadata=as_official(OPERATOR))
        entries = len(_audit(intake))
        refused = {
            "nobody": await _refusal(stub.SetCallingSystem(request)),
            "a trading officer": await _refusal(stub.SetCallingSystem(
                request, metadata=as_official(TRADING_OFFICER))),
            "an operator of another department": await _refusal(stub.SetCallingSystem(
                request, metadata=as_official("FGW-099"))),
            "a supervisor, through a system that only reads": await _refusal(
                systems_pb2_grpc.CallingSystemsServiceStub(supervision).SetCallingSystem(
                    request, metadata=as_official(SUPERVISOR))),
            "removal by a trading officer": await _refusal(stub.RemoveCallingSystem(
                systems_pb2.RemoveCallingSystemRequest(name="hotline-12345"),
                metadata=as_official(TRADING_OFFICER))),
        }
        still = (await stub.GetCallingSystem(
            systems_pb2.GetCallingSystemRequest(name="hotline-12345"))).system
    assert {label: code for label, (code, _) in refused.items()} == {
        "nobody": grpc.StatusCode.UNAUTHENTICATED,
        "a trading officer": grpc.StatusCode.PERMISSION_DENIED,
        "an operator of another department": grpc.StatusCode.PERMISSION_DENIED,
        "a supervisor, through a system that only reads": grpc.StatusCode.PERMISSION_DENIED,
        "removal by a trading officer": grpc.StatusCode.PERMISSION_DENIED,
    }
    assert "does not hold the role operator" in refused["a trading officer"][1]
    assert "only the center's operators" in refused["an operator of another department"][1]
    assert "may not call govhall.common.v1.CallingSystemsService/SetCallingSystem" in refused[
        "a supervisor, through a system that only reads"][1]
    assert still.name == "hotline-12345"
    assert len(_audit(intake)) == entries


async def test_a_wrong_entry_is_refused_and_changes_nothing(intake: ServiceUnderTest) -> None:
    reviewer = systems_pb2.DepartmentRole(department_code="FGW", role=common_pb2.ROLE_REVIEWER)
    cases = {
        "unknown rpc": _fgw_system("govhall.intake.v1.IntakeService/Nope"),
        "unknown service": _fgw_system("govhall.nope.v1.NopeService/*"),
        "not an rpc": _fgw_system("GetCase"),
        "bad name": systems_pb2.SetCallingSystemRequest(name="Bad Name!", rpcs=[INBOX]),
        "leaders of every department": systems_pb2.SetCallingSystemRequest(
            name=NEW_SYSTEM, rpcs=[INBOX], speaks_for=[systems_pb2.DepartmentRole(
                department_code="*", role=common_pb2.ROLE_LEADER)]),
        "unknown department": systems_pb2.SetCallingSystemRequest(
            name=NEW_SYSTEM, rpcs=[INBOX], speaks_for=[systems_pb2.DepartmentRole(
                department_code="NOWHERE", role=common_pb2.ROLE_REVIEWER)]),
        "no role": systems_pb2.SetCallingSystemRequest(
            name=NEW_SYSTEM, rpcs=[INBOX], speaks_for=[systems_pb2.DepartmentRole(
                department_code="FGW")]),
        "the shared entry speaking for someone": systems_pb2.SetCallingSystemRequest(
            name="*", rpcs=[INBOX], speaks_for=[reviewer]),
        "control characters": systems_pb2.SetCallingSystemRequest(
            name=NEW_SYSTEM, description="审批\x00系统", rpcs=[INBOX]),
        "the same rpc twice": _fgw_system(INBOX, INBOX),
    }
    async with intake.channel("operator") as console:
        stub = systems_pb2_grpc.CallingSystemsServiceStub(console)
        entries = len(_audit(intake))
        outcomes = {}
        fields = {}
        for label, request in cases.items():
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.SetCallingSystem(request, metadata=as_official(OPERATOR))
            outcomes[label] = refused.value.code()
            fields[label] = field_violations(refused.value)
        listed = await stub.ListCallingSystems(systems_pb2.ListCallingSystemsRequest())
        shared = (await stub.GetCallingSystem(
            systems_pb2.GetCallingSystemRequest(name="*"))).system
    assert outcomes == dict.fromkeys(cases, grpc.StatusCode.INVALID_ARGUMENT)
    assert fields["unknown rpc"] == ["rpcs"]
    assert fields["leaders of every department"] == ["speaks_for"]
    assert fields["unknown department"] == ["speaks_for"]
    assert fields["no role"] == ["speaks_for.role"]
    assert fields["bad name"] == ["name"]
    assert fields["control characters"] == ["description"]
    assert [s.name for s in listed.systems] == sorted(sample_registry().systems)
    assert not shared.speaks_for
    assert len(_audit(intake)) == entries


async def test_no_change_may_leave_the_registry_unchangeable(intake: ServiceUnderTest) -> None:
    async with intake.channel("operator") as console:
        stub = systems_pb2_grpc.CallingSystemsServiceStub(console)
        entries = len(_audit(intake))
        removal = await _refusal(stub.RemoveCallingSystem(
            systems_pb2.RemoveCallingSystemRequest(name="operator"),
            metadata=as_official(OPERATOR)))
        narrowing = await _refusal(stub.SetCallingSystem(systems_pb2.SetCallingSystemRequest(
            name="operator", rpcs=["govhall.common.v1.CallingSystemsService/ListCallingSystems"],
            speaks_for=[systems_pb2.DepartmentRole(department_code="ZWFWZX",
                                                   role=common_pb2.ROLE_OPERATOR)]),
            metadata=as_official(OPERATOR)))
        still = await stub.GetCallingSystem(systems_pb2.GetCallingSystemRequest(name="operator"))
    assert removal[0] == narrowing[0] == grpc.StatusCode.FAILED_PRECONDITION
    assert "no system could change the registry" in removal[1]
    assert "govhall.common.v1.CallingSystemsService/*" in still.system.rpcs
    assert len(_audit(intake)) == entries


async def test_a_change_holds_for_its_own_service_and_reaches_its_other_replicas(
        backend: str, tmp_path: Path, pki_dir: Path, new_system_certificate: str) -> None:
    intake_url = fresh_database_url(backend, "intake", tmp_path)
    review_url = fresh_database_url(backend, "review", tmp_path)
    ttl = {"systems_cache_seconds": 0.5}
    async with service_under_test(INTAKE, database_url=intake_url, pki_dir=pki_dir,
                                  temporal_address="127.0.0.1:1", **ttl) as first, \
            service_under_test(INTAKE, database_url=intake_url, pki_dir=pki_dir,
                               temporal_address="127.0.0.1:1", **ttl) as second, \
            service_under_test(REVIEW, database_url=review_url, pki_dir=pki_dir,
                               temporal_address="127.0.0.1:1", **ttl) as review:
        async with second.channel(new_system_certificate) as newcomer:
            # The second replica has read the registry (and will keep it a while).
            assert (await _get_case(newcomer))[0] == \
                grpc.StatusCode.PERMISSION_DENIED
            async with first.channel("operator") as console:
                await systems_pb2_grpc.CallingSystemsServiceStub(console).SetCallingSystem(
                    _fgw_system("govhall.intake.v1.IntakeService/GetCase"),
                    metadata=as_official(OPERATOR))
            deadline = time.monotonic() + 10
            while (await _get_case(newcomer))[0] == \
                    grpc.StatusCode.PERMISSION_DENIED:
                assert time.monotonic() < deadline, "the other replica never saw the change"
                await asyncio.sleep(0.05)
        async with review.channel(new_system_certificate) as newcomer:
            elsewhere = await _refusal(review_pb2_grpc.ReviewServiceStub(newcomer).ListInbox(
                review_pb2.ListInboxRequest(), metadata=as_official("FGW-003")))
    # Review keeps its own registry, which the change did not touch.
    assert elsewhere[0] == grpc.StatusCode.PERMISSION_DENIED
    assert f"system {NEW_SYSTEM} is not in the registry" in elsewhere[1]
