"""Record a history of ListingWorkflow as it is now, for the replay test.

Run before a change to the workflow's shape, and commit the file:
``python -m tests.replay.record_listing_history [recording]`` (starts its own
time-skipping server). The trading activities are fakes answering as trading
would for this listing (a history records their results, so a replay needs no
service); the acts are signed by a fresh trading key, which the replay does not
need (validators do not run on replay, and nothing else verifies).

The listing: the run first reads what trading recorded (from r3: nothing yet), a land
listing opens, two bidders bid, both ask to keep bidding at the close (from r2), the close
sends it to auction, two auction bids (each re-arming the quiet interval), the auction
ends, the deal.

``python -m tests.replay.record_listing_history r3-repeated`` records it with BD-0001's
first request id used again for a higher bid after BD-0002's: the history of attack s17
LOW 5, where the workflow took a second content under one request (kept to replay the path
before ``listing-one-act-per-request``).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.signing import TrustedKeys, public_keys_dir, service_signer, trust_in_workflows
from kernel.temporal import SEARCH_ATTRIBUTES
from workflows import listing_contract as lc
from workflows.approval_contract import as_statement
from workflows.listing import ListingWorkflow

HISTORIES = Path(__file__).parent / "histories"
NUMBER = "LS-20261201-000042"


def fake_trading() -> list[Any]:
    """Trading's answers for the recorded listing: the stage each step leaves it at."""
    sequence = iter(range(1, 100))

    @activity.defn(name=lc.OPEN_LISTING)
    async def open_listing(step: lc.ListingStep) -> lc.StepReceipt:
        return lc.StepReceipt(step.listing_no, "listing", [next(sequence)])

    @activity.defn(name=lc.RECORD_LISTING_STEP)
    async def record(step: lc.ListingStep) -> lc.StepReceipt:
        stage = "auction" if step.step == "auction_bid" else "listing"
        return lc.StepReceipt(step.listing_no, stage, [next(sequence)])

    @activity.defn(name=lc.CLOSE_LISTING)
    async def close(step: lc.ListingStep) -> lc.StepReceipt:
        return lc.StepReceipt(step.listing_no, "auction", [next(sequence)])

    @activity.defn(name=lc.READ_LISTING)
    async def read(step: lc.ListingStep) -> lc.ListingRecorded:
        return lc.ListingRecorded(step.listing_no, "listing")

    @activity.defn(name=lc.CONCLUDE_AUCTION)
    async def conclude(step: lc.ListingStep) -> lc.StepReceipt:
        return lc.StepReceipt(step.listing_no, "sold", [next(sequence)], buyer_id="BD-0002",
                              price_fen=104_000_000, method="auction")

    return [read, open_listing, record, close, conclude]


async def record(recording: str) -> Path:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=pydantic_data_converter)
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace, search_attributes={
            key.name: IndexedValueType.ValueType(key.indexed_value_type)
            for key in SEARCH_ATTRIBUTES}))
    pki = Path(tempfile.mkdtemp()) / "pki"
    signer = service_signer(pki, "trading")
    trust_in_workflows(TrustedKeys.load(public_keys_dir(pki)))
    prefix = f"record{uuid.uuid4().hex[:8]}-"
    try:
        async with (
            Worker(env.client, task_queue=f"{prefix}workflows", workflows=[ListingWorkflow]),
            Worker(env.client, task_queue=f"{prefix}trading", activities=fake_trading()),
        ):
            now = await env.get_current_time()
            opens, closes = now + timedelta(days=21), now + timedelta(days=40)
            announcement = signer.sign(lc.listing_statement_body(
                kind=lc.StatementKind.ANNOUNCEMENT, listing_no=NUMBER,
                system="trading-platform", issued_at=now, request_id=str(uuid.uuid4()),
                official_id="ZWFWZX-007", department_code="ZWFWZX", category=lc.LAND,
                project_no="PJ-20261201-000042", entry_code="LD-01",
                owner_department="GTJ", opens_at=opens, closes_at=closes,
                start_price_fen=100_000_000, increment_fen=1_000_000,
                auction_interval_seconds=300))
            handle = await env.client.start_workflow(
                ListingWorkflow.run, lc.ListingInput(as_statement(announcement)),
                id=lc.workflow_id(NUMBER), task_queue=f"{prefix}workflows")

            async def act(update: str, kind: lc.StatementKind, bidder: str,
                          amount: int, request_id: str = "") -> None:
                body = lc.listing_statement_body(
                    kind=kind, listing_no=NUMBER, system=f"bidder-system-bd{bidder[3:]}",
                    issued_at=await env.get_current_time(),
                    request_id=request_id or str(uuid.uuid4()), bidder_id=bidder,
                    amount_fen=amount)
                await handle.execute_update(update, lc.ListingAct(
                    as_statement(signer.sign(body))), result_type=lc.ListingReceipt)

            await env.sleep(opens - await env.get_current_time() + timedelta(minutes=1))
            first = str(uuid.uuid4())
            await act(lc.BID, lc.StatementKind.BID, "BD-0001", 100_000_000, first)
            await act(lc.BID, lc.StatementKind.BID, "BD-0002", 101_000_000)
            if recording.endswith("-repeated"):
                await act(lc.BID, lc.StatementKind.BID, "BD-0001", 102_000_000, first)
            await act(lc.DECLARE_INTEREST, lc.StatementKind.INTEREST, "BD-0001", 0)
            await act(lc.DECLARE_INTEREST, lc.StatementKind.INTEREST, "BD-0002", 0)
            await env.sleep(closes - await env.get_current_time() + timedelta(seconds=1))
            for _ in range(400):
                status = await handle.query(lc.STATUS, result_type=lc.ListingStatus)
                if status.stage == "auction":
                    break
                await asyncio.sleep(0.025)
            # The auction's first bid is the one not leading.
            second, first_bidder = (("BD-0001", "BD-0002") if recording.endswith("-repeated")
                                    else ("BD-0002", "BD-0001"))
            await act(lc.AUCTION_BID, lc.StatementKind.AUCTION_BID, first_bidder, 103_000_000)
            await env.sleep(timedelta(minutes=4))
            await act(lc.AUCTION_BID, lc.StatementKind.AUCTION_BID, second, 104_000_000)
            result = await handle.result()
            assert result.outcome == "sold", result
            history = await handle.fetch_history()
    finally:
        await env.shutdown()
    path = HISTORIES / f"listing-land-{recording}-auction.json"
    path.write_text(history.to_json(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(asyncio.run(record(sys.argv[1] if len(sys.argv) > 1 else "r3")))
