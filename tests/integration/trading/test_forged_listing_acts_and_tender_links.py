"""A forged listing act refused before anything is written, and CheckTenderLink answering
each tender's own department and category.

- A forged listing act is refused *at once*, by the workflow's validator: nothing is
  written to the listing's history (removing the validator's signature check left
  test_a_forged_act_sent_to_the_workflow_is_refused_at_once green, because the recording
  activity refuses it later with the same status and message).
- CheckTenderLink reports the tender's own tenderer and category: the stop's tests passed
  with trading answering "JYJ" (and construction) for every tender, since every tender
  they announced was JYJ's construction tender.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError

from govhall.trading.v1 import trading_pb2, trading_pb2_grpc
from kernel.signing import service_signer
from services.trading.main import DEFINITION as TRADING
from tests.integration.intake.sealing import closed_port
from tests.integration.trading.listing_venue import Venue
from tests.support import ServiceUnderTest, as_official, fresh_database_url, service_under_test
from workflows import listing_contract as lc
from workflows.approval_contract import as_statement

OFFICER = as_official("ZWFWZX-007")
LINKER = "complaints-service"


# ---- a forged listing act leaves no trace in the listing's history -----------------------

async def test_a_forged_listing_act_is_refused_before_anything_is_written_to_the_history(
        venue: Venue, tmp_path: Path) -> None:
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    await venue.opened(listing)
    await venue.bid(listing.listing_no, "0001", 101_000_000)
    handle = venue.env.client.get_workflow_handle(lc.workflow_id(listing.listing_no))
    before = [e.event_type for e in (await handle.fetch_history()).events]
    forger = service_signer(tmp_path / "forger", "trading")
    body = lc.listing_statement_body(
        kind=lc.StatementKind.BID, listing_no=listing.listing_no, system="bidder-system-bd0002",
        issued_at=await venue.now(), request_id=str(uuid.uuid4()), bidder_id="BD-0002",
        amount_fen=150_000_000)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(lc.BID, lc.ListingAct(as_statement(forger.sign(body))),
                                    result_type=lc.ListingReceipt)
    after = [e.event_type for e in (await handle.fetch_history()).events]
    # A validator's refusal is not recorded: no update accepted, no activity scheduled.
    new = after[len(before):]
    assert after[:len(before)] == before
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED not in new
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in new


# ---- CheckTenderLink: the tender's own tenderer and category -----------------------------

@pytest.fixture
async def trading_offline(backend: str, tmp_path: Path,
                  pki_dir: Path) -> AsyncIterator[ServiceUnderTest]:
    url = fresh_database_url(backend, "trading", tmp_path)
    async with service_under_test(TRADING, database_url=url, pki_dir=pki_dir,
                                  temporal_address=closed_port(),
                                  tender_start_wait_seconds=0.5) as service:
        yield service


async def _tender(stub: Any, category: Any,
                  department: str) -> str:
    project = await stub.RegisterProject(trading_pb2.RegisterProjectRequest(
        request_id=str(uuid.uuid4()), category=category, title="沈阳市道路改造工程",
        estimated_value_fen=500_000_000, funding_source=trading_pb2.FUNDING_SOURCE_PUBLIC,
        department_code=department), metadata=OFFICER)
    deadline = Timestamp()
    deadline.FromDatetime(datetime.now(UTC) + timedelta(days=20, minutes=5))
    documents_until = Timestamp()
    documents_until.FromDatetime(datetime.now(UTC) + timedelta(days=10))
    announced = await stub.AnnounceTender(trading_pb2.AnnounceTenderRequest(
        request_id=str(uuid.uuid4()), project_no=project.project.project_no,
        bid_deadline=deadline,
        documents_until=documents_until
        if category == trading_pb2.TRADING_CATEGORY_GOVERNMENT_PROCUREMENT else None),
        metadata=OFFICER)
    return str(announced.tender.tender_no)


async def test_check_tender_link_answers_each_tenders_own_department_and_category(
        trading_offline: ServiceUnderTest) -> None:
    trading = trading_offline
    async with trading.channel("trading-platform") as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        jyj = await _tender(stub, trading_pb2.TRADING_CATEGORY_CONSTRUCTION, "JYJ")
        zjj = await _tender(stub, trading_pb2.TRADING_CATEGORY_GOVERNMENT_PROCUREMENT, "ZJJ")
    async with trading.channel(LINKER) as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        answers = [await stub.CheckTenderLink(trading_pb2.CheckTenderLinkRequest(tender_no=n))
                   for n in (jyj, zjj)]
    assert [(a.found, a.category, a.department_code) for a in answers] == [
        (True, trading_pb2.TRADING_CATEGORY_CONSTRUCTION, "JYJ"),
        (True, trading_pb2.TRADING_CATEGORY_GOVERNMENT_PROCUREMENT, "ZJJ")]
