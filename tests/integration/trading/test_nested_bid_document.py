"""A bidder's deeply nested JSON bid document (well within the size limit) is a valid
bid that states no price: json.loads raises RecursionError on it, which the opening must
take like any other document that is not JSON, not fail on at every attempt (the tender
would never leave the decryption stage: one losing bidder could veto it)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from govhall.trading.v1 import trading_pb2 as pb
from services.trading.domain.sealed_bids import seal_bid
from tests.integration.trading.test_tender_chain import OFFICER, Venue, _stamp
from tests.integration.trading.test_tender_chain import venue as venue

NESTED = b"[" * 100_000 + b"]" * 100_000


async def test_a_nested_bid_document_does_not_stall_the_opening(venue: Venue) -> None:
    project = (await venue.via().RegisterProject(pb.RegisterProjectRequest(
        request_id=str(uuid.uuid4()), category=pb.TRADING_CATEGORY_CONSTRUCTION,
        title="attack road", estimated_value_fen=500_000_000,
        funding_source=pb.FUNDING_SOURCE_PUBLIC, department_code="JYJ"),
        metadata=OFFICER)).project
    now = await venue.env.get_current_time()
    number: str = (await venue.via().AnnounceTender(pb.AnnounceTenderRequest(
        request_id=str(uuid.uuid4()), project_no=project.project_no,
        bid_deadline=_stamp(now + timedelta(days=20, minutes=10)),
        evaluation_method=pb.EVALUATION_METHOD_LOWEST_PRICE),
        metadata=OFFICER)).tender.tender_no
    keys = {}
    for n in ("0001", "0002", "0003", "0004"):
        bidder = f"BD-{n}"
        document = NESTED if n == "0004" else json.dumps({"price_fen": 400_000_000}).encode()
        sealed, keys[n] = seal_bid(document, tender_number=number, bidder_id=bidder)
        await venue.via(f"bidder-system-bd{n}").SubmitSealedBid(pb.SubmitSealedBidRequest(
            tender_no=number, bidder_id=bidder, ciphertext=sealed.envelope,
            ciphertext_sha256=sealed.ciphertext_sha256, key_commitment=sealed.key_commitment))
    await venue.skip(timedelta(days=20, minutes=11))
    await venue.until_stage(number, pb.TENDER_STAGE_DECRYPTION)
    for n in keys:
        await venue.reveal(number, n, keys[n])
    await venue.skip(timedelta(hours=2, minutes=1))
    # EVALUATION is reached (BD-0004 valid but unpriced); a stuck opening times out here.
    tender = await venue.until_stage(number, pb.TENDER_STAGE_EVALUATION)
    assert tender.stage == pb.TENDER_STAGE_EVALUATION


pytestmark = pytest.mark.timeout(300)
