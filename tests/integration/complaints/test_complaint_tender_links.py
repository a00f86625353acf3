"""A complaint linked to a tender is checked against trading and counted for it.

Trading and complaints run as their processes run them, over real gRPC with
mTLS; the check is the real ``complaints.check_link`` activity, run the way
a worker runs it, asking trading as the calling system complaints-service.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.testing import ActivityEnvironment

from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from govhall.trading.v1 import trading_pb2, trading_pb2_grpc
from kernel.errors import Unavailable
from services.complaints.app.links import LINK_CHECKED, NO_TRADING
from services.complaints.db import tables
from services.complaints.link_activity import LinkActivities
from services.complaints.trading_links import TradingLinks
from services.trading.main import DEFINITION as TRADING
from tests.integration.intake.sealing import closed_port
from tests.support import (
    ServiceUnderTest,
    as_official,
    fresh_database_url,
    service_under_test,
)
from workflows.complaint_contract import LinkCheck, LinkChecked

HOTLINE = "hotline-12345"
LINKER = "complaints-service"
UNKNOWN_TENDER = "TD-20260105-999999"
OFFICER = as_official("ZWFWZX-007")


@pytest.fixture
async def trading(backend: str, tmp_path: Path,
                  pki_dir: Path) -> AsyncIterator[ServiceUnderTest]:
    """Trading with Temporal out of reach: tenders are announced, their workflows start
    later."""
    url = fresh_database_url(backend, "trading", tmp_path)
    async with service_under_test(TRADING, database_url=url, pki_dir=pki_dir,
                                  temporal_address=closed_port(),
                                  tender_start_wait_seconds=0.5) as service:
        yield service


async def _announced_tender(trading: ServiceUnderTest) -> trading_pb2.Tender:
    async with trading.channel("trading-platform") as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        project = await stub.RegisterProject(trading_pb2.RegisterProjectRequest(
            request_id=str(uuid.uuid4()), category=trading_pb2.TRADING_CATEGORY_CONSTRUCTION,
            title="沈阳市第一中学新校区建设项目", estimated_value_fen=500_000_000,
            funding_source=trading_pb2.FUNDING_SOURCE_PUBLIC, department_code="JYJ"),
            metadata=OFFICER)
        deadline = Timestamp()
        deadline.FromDatetime(datetime.now(UTC) + timedelta(days=20, minutes=5))
        announced = await stub.AnnounceTender(trading_pb2.AnnounceTenderRequest(
            request_id=str(uuid.uuid4()), project_no=project.project.project_no,
            bid_deadline=deadline), metadata=OFFICER)
    tender: trading_pb2.Tender = announced.tender
    return tender


async def _pushed(complaints: ServiceUnderTest, external_id: str, *,
                  linked_tender: str) -> str:
    async with complaints.channel(HOTLINE) as channel:
        pushed = await complaints_pb2_grpc.ComplaintsServiceStub(channel).SubmitComplaint(
            pb.SubmitComplaintRequest(
                external_id=external_id, kind=pb.COMPLAINT_KIND_COMPLAINT,
                category_code="SC-01", content="招标文件对本地企业设置了排斥性条件。",
                complainant_name="欧阳晓筠", complainant_phone="139-7531-8642",
                linked_tender_number=linked_tender))
    return str(pushed.complaint.case_number)


def _tender_columns(complaints: ServiceUnderTest, number: str) -> tuple[Any, ...]:
    engine = sa.create_engine(complaints.settings.resolved_database_url())
    t = tables.complaint_cases
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sa.select(t.c.tender_link_status, t.c.tender_link_category,
                          t.c.tender_link_department_code, t.c.link_checked_at.is_not(None))
                .where(t.c.case_number == number)).one()
    finally:
        engine.dispose()
    return tuple(row)


async def _link_events(complaints: ServiceUnderTest, number: str) -> list[dict[str, str]]:
    async with complaints.channel(HOTLINE) as channel:
        events = await complaints_pb2_grpc.ComplaintsServiceStub(channel).ListComplaintEvents(
            pb.ListComplaintEventsRequest(case_number=number))
    return [dict(e.details) for e in events.events if e.code == LINK_CHECKED]


def _checker(complaints: ServiceUnderTest, trading_address: str | None) -> LinkActivities:
    # Each attempt waits up to 3 s for trading (10 s in the service).
    lookup = None if trading_address is None else TradingLinks(
        trading_address, pki_dir=complaints.pki_dir, system=LINKER, timeout_seconds=3.0)
    return LinkActivities(complaints.running.engine, None, tender_lookup=lookup)


async def _check(checker: LinkActivities, number: str) -> LinkChecked:
    checked: LinkChecked = await ActivityEnvironment().run(checker.check_link,
                                                            LinkCheck(number))
    return checked


async def _linked_counts(complaints: ServiceUnderTest) -> list[pb.LinkedComplaints]:
    start, end = Timestamp(), Timestamp()
    start.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    end.FromDatetime(datetime.now(UTC) + timedelta(days=1))
    async with complaints.channel("operator") as channel:
        metrics = await complaints_pb2_grpc.ComplaintsServiceStub(channel).GetComplaintMetrics(
            pb.GetComplaintMetricsRequest(period_start=start, period_end=end))
    return list(metrics.linked)


# ---- trading's side ---------------------------------------------------------------------

async def test_trading_tells_complaints_a_tenders_category_tenderer_and_stage_only(
        trading: ServiceUnderTest) -> None:
    tender = await _announced_tender(trading)
    async with trading.channel(LINKER) as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        found = await stub.CheckTenderLink(
            trading_pb2.CheckTenderLinkRequest(tender_no=tender.tender_no))
        unknown = await stub.CheckTenderLink(
            trading_pb2.CheckTenderLinkRequest(tender_no=UNKNOWN_TENDER))
        # A platform's own numbering is asked about as it is, and simply not found.
        foreign = await stub.CheckTenderLink(
            trading_pb2.CheckTenderLinkRequest(tender_no="ZB-2026-0007"))
        with pytest.raises(grpc.aio.AioRpcError) as malformed:
            await stub.CheckTenderLink(trading_pb2.CheckTenderLinkRequest(tender_no="td 1"))
    assert (found.found, found.category, found.department_code, found.stage) == (
        True, trading_pb2.TRADING_CATEGORY_CONSTRUCTION, "JYJ", trading_pb2.TENDER_STAGE_BIDDING)
    # Codes only: no project title, bidder or bid rides along.
    assert {f.name for f, _ in found.ListFields()} == {
        "found", "category", "department_code", "stage"}
    assert unknown == foreign == trading_pb2.CheckTenderLinkResponse(found=False)
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("system", ["operator", "supervision-system", "trading-platform",
                                    HOTLINE])
async def test_only_the_complaints_service_may_check_a_tender(trading: ServiceUnderTest,
                                                              system: str) -> None:
    async with trading.channel(system) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await trading_pb2_grpc.TradingServiceStub(channel).CheckTenderLink(
                trading_pb2.CheckTenderLinkRequest(tender_no=UNKNOWN_TENDER))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


# ---- the check, as the workflow runs it -------------------------------------------------

async def test_a_tender_found_is_kept_with_its_category_and_tenderer_and_counted_once(
        complaints: ServiceUnderTest, trading: ServiceUnderTest) -> None:
    tender = await _announced_tender(trading)
    number = await _pushed(complaints, "HL-TLINK-1", linked_tender=tender.tender_no)
    assert _tender_columns(complaints, number) == ("unchecked", "", "", False)
    checker = _checker(complaints, trading.address)
    checked = await _check(checker, number)
    assert (checked.kind, checked.found) == ("tender", True)
    assert "construction" in checked.detail and "JYJ" in checked.detail
    assert _tender_columns(complaints, number) == ("found", "construction", "JYJ", True)
    expected = {"linked_tender": tender.tender_no, "tender_status": "found",
                "tender_category": "construction", "tender_department": "JYJ",
                "tender_stage": "bidding"}
    assert await _link_events(complaints, number) == [expected]
    # A retried activity (or a second check) finds the same and records nothing more.
    assert await _check(checker, number) == checked
    assert await _link_events(complaints, number) == [expected]
    # Counted for the tender's category and tenderer.
    assert [(c.kind, c.status, c.category, c.department_code, c.item_code, c.cases)
            for c in await _linked_counts(complaints)] == [
        (pb.COMPLAINT_LINK_KIND_TENDER, pb.COMPLAINT_LINK_STATUS_FOUND, "construction", "JYJ",
         "", 1)]


async def test_a_tender_trading_does_not_have_is_not_found(
        complaints: ServiceUnderTest, trading: ServiceUnderTest) -> None:
    number = await _pushed(complaints, "HL-TLINK-2", linked_tender=UNKNOWN_TENDER)
    checked = await _check(_checker(complaints, trading.address), number)
    assert (checked.kind, checked.found) == ("tender", False)
    assert _tender_columns(complaints, number) == ("not_found", "", "", True)
    assert await _link_events(complaints, number) == [
        {"linked_tender": UNKNOWN_TENDER, "tender_status": "not_found"}]
    assert [(c.kind, c.status, c.category, c.department_code, c.cases)
            for c in await _linked_counts(complaints)] == [
        (pb.COMPLAINT_LINK_KIND_TENDER, pb.COMPLAINT_LINK_STATUS_NOT_FOUND, "", "", 1)]


async def test_trading_down_fails_the_check_for_a_retry_and_blocks_nothing(
        complaints: ServiceUnderTest, backend: str, tmp_path: Path, pki_dir: Path) -> None:
    address = closed_port()
    number = await _pushed(complaints, "HL-TLINK-3", linked_tender=UNKNOWN_TENDER)
    checker = _checker(complaints, address)
    # Retryable (not an ApplicationError marked non-retryable): Temporal tries again.
    with pytest.raises(Unavailable, match="did not answer"):
        await _check(checker, number)
    assert _tender_columns(complaints, number) == ("unchecked", "", "", False)
    assert await _link_events(complaints, number) == []
    # The case goes on meanwhile.
    async with complaints.channel(HOTLINE) as channel:
        read = await complaints_pb2_grpc.ComplaintsServiceStub(channel).GetComplaint(
            pb.GetComplaintRequest(case_number=number))
    assert read.complaint.status == pb.COMPLAINT_STATUS_ROUTED
    # Trading comes up at that address: the retry finds the answer.
    port = address.rsplit(":", 1)[1]
    url = fresh_database_url(backend, "trading", tmp_path)
    async with service_under_test(TRADING, database_url=url, pki_dir=pki_dir,
                                  temporal_address=closed_port(), port=int(port)):
        checked = await _check(checker, number)
    assert (checked.kind, checked.found) == ("tender", False)
    assert _tender_columns(complaints, number) == ("not_found", "", "", True)


async def test_without_a_trading_address_a_tender_stays_unchecked_and_says_why(
        complaints: ServiceUnderTest) -> None:
    number = await _pushed(complaints, "HL-TLINK-5", linked_tender="ZB-2026-0007")
    checked = await _check(_checker(complaints, None), number)
    assert checked == LinkChecked(kind="tender", found=False, detail=NO_TRADING)
    assert _tender_columns(complaints, number) == ("unchecked", "", "", True)
    assert await _link_events(complaints, number) == [
        {"linked_tender": "ZB-2026-0007", "tender_status": "unchecked",
         "tender_reason": NO_TRADING}]
