"""A complaint linked to an approval case is checked against intake and counted for it.

Intake and complaints run as their processes run them, over real gRPC with
mTLS; the check is the real ``complaints.check_link`` activity, run the way
a worker runs it, asking intake as the calling system complaints-service.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from temporalio.testing import ActivityEnvironment

from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from govhall.intake.v1 import intake_pb2, intake_pb2_grpc
from kernel.errors import Unavailable
from services.complaints.app.links import LINK_CHECKED, NO_INTAKE, NO_TRADING
from services.complaints.db import tables
from services.complaints.intake_links import IntakeLinks
from services.complaints.link_activity import LinkActivities
from services.intake.main import DEFINITION as INTAKE
from tests.integration.intake.sealing import CLERK, application, closed_port
from tests.support import (
    ServiceUnderTest,
    as_official,
    fresh_database_url,
    service_under_test,
)
from workflows.complaint_contract import LinkCheck, LinkChecked

HOTLINE = "hotline-12345"
LINKER = "complaints-service"
UNKNOWN_CASE = "AP-20260105-999999"


@pytest.fixture
async def intake(backend: str, tmp_path: Path,
                 pki_dir: Path) -> AsyncIterator[ServiceUnderTest]:
    """Intake with Temporal out of reach: cases are accepted, their workflows start later."""
    url = fresh_database_url(backend, "intake", tmp_path)
    async with service_under_test(INTAKE, database_url=url, pki_dir=pki_dir,
                                  temporal_address=closed_port()) as service:
        yield service


async def _accepted_case(intake: ServiceUnderTest) -> intake_pb2.Case:
    async with intake.channel("hall-window-system") as channel:
        response = await intake_pb2_grpc.IntakeServiceStub(channel).SubmitApplication(
            application(), metadata=as_official(CLERK))
    assert response.outcome == intake_pb2.INTAKE_OUTCOME_ACCEPTED
    return response.case


async def _pushed(complaints: ServiceUnderTest, external_id: str, *,
                  linked_case: str = "", linked_tender: str = "") -> str:
    async with complaints.channel(HOTLINE) as channel:
        pushed = await complaints_pb2_grpc.ComplaintsServiceStub(channel).SubmitComplaint(
            pb.SubmitComplaintRequest(
                external_id=external_id, kind=pb.COMPLAINT_KIND_COMPLAINT,
                category_code="SC-01", content="办理食品经营许可时窗口要求额外材料。",
                complainant_name="欧阳晓筠", complainant_phone="139-7531-8642",
                linked_case_number=linked_case, linked_tender_number=linked_tender))
    return str(pushed.complaint.case_number)


def _link_columns(complaints: ServiceUnderTest, number: str) -> tuple[Any, ...]:
    engine = sa.create_engine(complaints.settings.resolved_database_url())
    t = tables.complaint_cases
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sa.select(t.c.link_status, t.c.link_item_code, t.c.link_department_code,
                          t.c.link_checked_at.is_not(None))
                .where(t.c.case_number == number)).one()
    finally:
        engine.dispose()
    return tuple(row)


async def _link_events(complaints: ServiceUnderTest, number: str) -> list[dict[str, str]]:
    async with complaints.channel(HOTLINE) as channel:
        events = await complaints_pb2_grpc.ComplaintsServiceStub(channel).ListComplaintEvents(
            pb.ListComplaintEventsRequest(case_number=number))
    return [dict(e.details) for e in events.events if e.code == LINK_CHECKED]


def _checker(complaints: ServiceUnderTest, intake_address: str | None) -> LinkActivities:
    # Each attempt waits up to 3 s for intake (10 s in the service).
    lookup = None if intake_address is None else IntakeLinks(
        intake_address, pki_dir=complaints.pki_dir, system=LINKER, timeout_seconds=3.0)
    return LinkActivities(complaints.running.engine, lookup)


async def _check(checker: LinkActivities, number: str) -> LinkChecked:
    checked: LinkChecked = await ActivityEnvironment().run(checker.check_link,
                                                            LinkCheck(number))
    return checked


# ---- intake's side ----------------------------------------------------------------------

async def test_intake_tells_complaints_a_cases_item_department_and_status_only(
        intake: ServiceUnderTest) -> None:
    case = await _accepted_case(intake)
    async with intake.channel(LINKER) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        found = await stub.CheckCaseLink(
            intake_pb2.CheckCaseLinkRequest(case_number=case.case_number))
        unknown = await stub.CheckCaseLink(
            intake_pb2.CheckCaseLinkRequest(case_number=UNKNOWN_CASE))
        with pytest.raises(grpc.aio.AioRpcError) as malformed:
            await stub.CheckCaseLink(intake_pb2.CheckCaseLinkRequest(case_number="CP-1"))
    assert (found.found, found.item_code, found.department_code, found.status) == (
        True, case.item_code, "SCJGJ", intake_pb2.CASE_STATUS_ACCEPTED)
    # Codes only: nothing of the applicant rides along.
    assert {f.name for f, _ in found.ListFields()} == {
        "found", "item_code", "department_code", "status"}
    assert case.applicant.name not in str(found)
    assert unknown == intake_pb2.CheckCaseLinkResponse(found=False)
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("system", ["operator", "supervision-system", HOTLINE])
async def test_only_the_complaints_service_may_check_a_link(intake: ServiceUnderTest,
                                                            system: str) -> None:
    async with intake.channel(system) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await intake_pb2_grpc.IntakeServiceStub(channel).CheckCaseLink(
                intake_pb2.CheckCaseLinkRequest(case_number=UNKNOWN_CASE))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


# ---- the check, as the workflow runs it -------------------------------------------------

async def test_a_link_found_is_kept_with_its_item_and_department_once(
        complaints: ServiceUnderTest, intake: ServiceUnderTest) -> None:
    case = await _accepted_case(intake)
    number = await _pushed(complaints, "HL-LINK-1", linked_case=case.case_number)
    assert _link_columns(complaints, number) == ("unchecked", "", "", False)
    checker = _checker(complaints, intake.address)
    checked = await _check(checker, number)
    assert (checked.kind, checked.found) == ("approval", True)
    assert case.item_code in checked.detail and "SCJGJ" in checked.detail
    assert _link_columns(complaints, number) == ("found", case.item_code, "SCJGJ", True)
    expected = {"linked_case": case.case_number, "status": "found", "item": case.item_code,
                "department": "SCJGJ", "case_status": "accepted"}
    assert await _link_events(complaints, number) == [expected]
    # A retried activity (or a second check) finds the same and records nothing more.
    assert await _check(checker, number) == checked
    assert await _link_events(complaints, number) == [expected]
    assert "欧阳晓筠" not in json.dumps(expected, ensure_ascii=False)


async def test_a_case_intake_does_not_have_is_not_found(
        complaints: ServiceUnderTest, intake: ServiceUnderTest) -> None:
    number = await _pushed(complaints, "HL-LINK-2", linked_case=UNKNOWN_CASE)
    checked = await _check(_checker(complaints, intake.address), number)
    assert (checked.kind, checked.found) == ("approval", False)
    assert _link_columns(complaints, number) == ("not_found", "", "", True)
    assert await _link_events(complaints, number) == [
        {"linked_case": UNKNOWN_CASE, "status": "not_found"}]


async def test_intake_down_fails_the_check_for_a_retry_and_blocks_nothing(
        complaints: ServiceUnderTest, backend: str, tmp_path: Path, pki_dir: Path) -> None:
    address = closed_port()
    number = await _pushed(complaints, "HL-LINK-3", linked_case=UNKNOWN_CASE)
    checker = _checker(complaints, address)
    # Retryable (not an ApplicationError marked non-retryable): Temporal tries again.
    with pytest.raises(Unavailable, match="did not answer"):
        await _check(checker, number)
    assert _link_columns(complaints, number) == ("unchecked", "", "", False)
    assert await _link_events(complaints, number) == []
    # The case goes on meanwhile: it is read, and another case is taken in.
    async with complaints.channel(HOTLINE) as channel:
        read = await complaints_pb2_grpc.ComplaintsServiceStub(channel).GetComplaint(
            pb.GetComplaintRequest(case_number=number))
    assert read.complaint.status == pb.COMPLAINT_STATUS_ROUTED
    await _pushed(complaints, "HL-LINK-4")
    # Intake comes up at that address: the retry finds the answer.
    port = address.rsplit(":", 1)[1]
    url = fresh_database_url(backend, "intake", tmp_path)
    async with service_under_test(INTAKE, database_url=url, pki_dir=pki_dir,
                                  temporal_address=closed_port(), port=int(port)):
        checked = await _check(checker, number)
    assert (checked.kind, checked.found) == ("approval", False)
    assert _link_columns(complaints, number) == ("not_found", "", "", True)


async def test_a_case_and_a_tender_are_both_checked_and_reported(
        complaints: ServiceUnderTest, intake: ServiceUnderTest) -> None:
    # This process asks intake but has no trading to ask: the tender says why.
    number = await _pushed(complaints, "HL-LINK-5", linked_case=UNKNOWN_CASE,
                           linked_tender="ZB-2026-0007")
    checked = await _check(_checker(complaints, intake.address), number)
    assert (checked.kind, checked.found) == ("approval", False)
    assert checked.detail.endswith(NO_TRADING)
    assert _link_columns(complaints, number) == ("not_found", "", "", True)
    assert await _link_events(complaints, number) == [
        {"linked_case": UNKNOWN_CASE, "status": "not_found", "linked_tender": "ZB-2026-0007",
         "tender_status": "unchecked", "tender_reason": NO_TRADING}]


async def test_without_an_intake_address_the_link_stays_unchecked(
        complaints: ServiceUnderTest) -> None:
    number = await _pushed(complaints, "HL-LINK-6", linked_case=UNKNOWN_CASE)
    checked = await _check(_checker(complaints, None), number)
    assert checked == LinkChecked(kind="approval", found=False, detail=NO_INTAKE)
    assert _link_columns(complaints, number) == ("unchecked", "", "", True)


async def test_a_case_without_a_link_is_left_as_it_is(complaints: ServiceUnderTest) -> None:
    number = await _pushed(complaints, "HL-LINK-7")
    checked = await _check(_checker(complaints, None), number)
    assert (checked.kind, checked.found) == ("", False)
    assert _link_columns(complaints, number) == ("unchecked", "", "", False)
    assert await _link_events(complaints, number) == []
