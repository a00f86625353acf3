"""The handling RPCs over real gRPC: who may act, what officials see, the outbox without Temporal.

The service here points at a Temporal that does not answer: a submit is still
accepted at once (the case committed, its workflow pending in the outbox), and
every refusal comes before anything would be sent to a workflow.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from services.complaints.db import tables
from services.complaints.main import DEFINITION
from tests.support import ServiceUnderTest, as_official, fresh_database_url, service_under_test

NAME, PHONE = "欧阳晓筠", "13975318642"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
async def offline(backend: str, tmp_path: Path, pki_dir: Path) -> AsyncIterator[ServiceUnderTest]:
    url = fresh_database_url(backend, "complaints", tmp_path)
    async with service_under_test(
            DEFINITION, database_url=url, pki_dir=pki_dir,
            temporal_address=f"127.0.0.1:{_closed_port()}",
            workflow_call_timeout_seconds=1.0) as service:
        yield service


async def _submit(service: ServiceUnderTest, external_id: str) -> str:
    async with service.channel("hotline-12345") as channel:
        response = await complaints_pb2_grpc.ComplaintsServiceStub(channel).SubmitComplaint(
            pb.SubmitComplaintRequest(
                external_id=external_id, kind=pb.COMPLAINT_KIND_COMPLAINT,
                category_code="SC-01", content="超市出售过期食品",
                complainant_name=NAME, complainant_phone=PHONE), timeout=10)
    number: str = response.complaint.case_number
    return number


async def _call(service: ServiceUnderTest, system: str, rpc: str, request: object,
                official: str = "") -> tuple[grpc.StatusCode, str]:
    async with service.channel(system) as channel:
        stub = complaints_pb2_grpc.ComplaintsServiceStub(channel)
        try:
            await getattr(stub, rpc)(request, metadata=as_official(official) if official else (),
                                     timeout=10)
        except grpc.aio.AioRpcError as error:
            return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


async def test_submit_is_accepted_while_temporal_is_unreachable(
        offline: ServiceUnderTest) -> None:
    number = await _submit(offline, "HL-1")
    with offline.running.engine.connect() as connection:
        started = connection.execute(sa.select(tables.complaint_cases.c.workflow_started).where(
            tables.complaint_cases.c.case_number == number)).scalar_one()
    assert number.startswith("CP-") and started is False
    # An authorised act waits for the workflow: UNAVAILABLE, try again, nothing changed.
    code, _ = await _call(offline, "department-system-scjgj", "SignForComplaint",
                          pb.SignForComplaintRequest(request_id="r1", case_number=number),
                          "SCJGJ-008")
    assert code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(("system", "official", "rpc", "expected"), [
    # Another department's handler, through its own system.
    ("department-system-zjj", "ZJJ-008", "SignForComplaint", grpc.StatusCode.PERMISSION_DENIED),
    # A reviewer of the right department: not a complaint handler.
    ("department-system-scjgj", "SCJGJ-001", "SignForComplaint",
     grpc.StatusCode.PERMISSION_DENIED),
    # A system speaking for an official it may not speak for.
    ("department-system-zjj", "SCJGJ-008", "SignForComplaint",
     grpc.StatusCode.PERMISSION_DENIED),
    # A handler cannot dispatch (the registry does not even let its system call it).
    ("department-system-scjgj", "SCJGJ-008", "DispatchComplaint",
     grpc.StatusCode.PERMISSION_DENIED),
    # Another platform rates a case that is not its own: as if there were none.
    ("provincial-complaint-portal", "", "RateComplaint", grpc.StatusCode.NOT_FOUND),
])
async def test_wrong_department_role_or_platform_is_refused_and_nothing_changes(
        offline: ServiceUnderTest, system: str, official: str, rpc: str,
        expected: grpc.StatusCode) -> None:
    number = await _submit(offline, "HL-2")
    requests = {
        "SignForComplaint": pb.SignForComplaintRequest(request_id="r2", case_number=number),
        "DispatchComplaint": pb.DispatchComplaintRequest(
            request_id="r2", case_number=number, outcome=pb.DISPATCH_OUTCOME_REASSIGN,
            department_code="WJW", basis="改派"),
        "RateComplaint": pb.RateComplaintRequest(request_id="r2", case_number=number, level=5),
    }
    code, details = await _call(offline, system, rpc, requests[rpc], official)
    assert code == expected, details
    with offline.running.engine.connect() as connection:
        status = connection.execute(sa.select(tables.complaint_cases.c.status).where(
            tables.complaint_cases.c.case_number == number)).scalar_one()
        held = connection.execute(sa.select(sa.func.count()).select_from(
            tables.handled_requests)).scalar_one()
    assert status == "routed" and held == 0


async def test_officials_see_the_complainant_only_in_the_handling_department(
        offline: ServiceUnderTest) -> None:
    number = await _submit(offline, "HL-3")
    seen: dict[str, pb.GetComplaintResponse] = {}
    for system, official in (("department-system-scjgj", "SCJGJ-008"),
                             ("complaint-dispatch-system", "ZWFWZX-009")):
        async with offline.channel(system) as channel:
            seen[official] = await complaints_pb2_grpc.ComplaintsServiceStub(
                channel).GetComplaint(pb.GetComplaintRequest(case_number=number),
                                      metadata=as_official(official))
    code, _ = await _call(offline, "department-system-zjj", "GetComplaint",
                          pb.GetComplaintRequest(case_number=number), "ZJJ-008")
    handler, dispatcher = seen["SCJGJ-008"], seen["ZWFWZX-009"]
    assert (handler.complaint.complainant_name, handler.complaint.complainant_phone) == (
        NAME, PHONE)
    assert handler.handling.policy_version in (0, 1)
    assert dispatcher.complaint.complainant_name == dispatcher.complaint.complainant_phone == ""
    assert dispatcher.complaint.content
    assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_the_inbox_and_the_deadline_policy(offline: ServiceUnderTest) -> None:
    number = await _submit(offline, "HL-4")
    async with offline.channel("department-system-scjgj") as channel:
        inbox = await complaints_pb2_grpc.ComplaintsServiceStub(channel).ListComplaintInbox(
            pb.ListComplaintInboxRequest(), metadata=as_official("SCJGJ-008"))
    async with offline.channel("department-system-zjj") as channel:
        other = await complaints_pb2_grpc.ComplaintsServiceStub(channel).ListComplaintInbox(
            pb.ListComplaintInboxRequest(), metadata=as_official("ZJJ-008"))
    assert [(i.reason, i.handling.case_number) for i in inbox.items] == [
        (pb.INBOX_REASON_LEAD, number)]
    assert list(other.items) == []
    async with offline.channel("operator") as channel:
        stub = complaints_pb2_grpc.ComplaintsServiceStub(channel)
        first = await stub.GetDeadlinePolicy(pb.GetDeadlinePolicyRequest())
        changed = pb.DeadlinePolicy()
        changed.CopyFrom(first.policy)
        changed.consultation_days, changed.basis = 3, "市政府新规定"
        new = await stub.SetDeadlinePolicy(pb.SetDeadlinePolicyRequest(policy=changed),
                                           metadata=as_official("ZWFWZX-004"))
        now = await stub.GetDeadlinePolicy(pb.GetDeadlinePolicyRequest())
        old = await stub.GetDeadlinePolicy(pb.GetDeadlinePolicyRequest(version=1))
    code, _ = await _call(offline, "operator", "SetDeadlinePolicy",
                          pb.SetDeadlinePolicyRequest(policy=changed), "ZWFWZX-009")
    assert (first.policy.version, first.policy.consultation_days) == (1, 2)
    assert (new.policy.version, now.policy.version, now.policy.consultation_days) == (2, 2, 3)
    assert old.policy.HasField("valid_until") and not now.policy.HasField("valid_until")
    assert code == grpc.StatusCode.PERMISSION_DENIED
