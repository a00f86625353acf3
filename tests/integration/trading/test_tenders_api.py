"""Projects, the catalogue enforced, tenders announced, sealed bids: over real gRPC.

The trading service runs with Temporal out of reach (a closed port): the
tender's workflow is not needed for any of these, and an announced tender
stays an outbox entry (its start pending). The workflow side is
test_tender_chain.py. Every refusal is checked to change nothing: the
audit log, the tender and its bids stay as they were.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select, update

from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from services.trading.db import tables
from services.trading.domain.sealed_bids import MAX_ENVELOPE_BYTES, seal_bid
from services.trading.main import DEFINITION
from tests.integration.intake.sealing import closed_port
from tests.support import ServiceUnderTest, as_official, fresh_database_url, service_under_test

OFFICER = as_official("ZWFWZX-007")
CONSTRUCTION = pb.TRADING_CATEGORY_CONSTRUCTION
PROCUREMENT = pb.TRADING_CATEGORY_GOVERNMENT_PROCUREMENT
SUPPLIER = "91210100MA0XXXXX1A"


@pytest.fixture
async def trading(backend: str, tmp_path: Path, pki_dir: Path
                  ) -> AsyncIterator[ServiceUnderTest]:
    url = fresh_database_url(backend, "trading", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=closed_port(),
                                  tender_start_wait_seconds=0.5) as service:
        yield service


class Calls:
    """Stubs through the trading platform and through each bidder's own system."""

    def __init__(self, service: ServiceUnderTest) -> None:
        self.service = service
        self.channels: dict[str, grpc.aio.Channel] = {}

    def via(self, system: str) -> Any:
        if system not in self.channels:
            self.channels[system] = self.service.channel(system)
        return trading_pb2_grpc.TradingServiceStub(self.channels[system])

    @property
    def platform(self) -> Any:
        return self.via("trading-platform")

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(None)


@pytest.fixture
async def calls(trading: ServiceUnderTest) -> AsyncIterator[Calls]:
    made = Calls(trading)
    try:
        yield made
    finally:
        await made.close()


def _stamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def _count(service: ServiceUnderTest, table: Any) -> int:
    with service.running.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _state(service: ServiceUnderTest) -> tuple[int, ...]:
    """Everything a refused call must leave as it was."""
    return tuple(_count(service, t) for t in (
        tables.audit_log, tables.projects, tables.direct_awards, tables.tenders,
        tables.sealed_bids, tables.feed_entries))


async def _project(calls: Calls, category: Any, value: int) -> pb.Project:
    response = await calls.platform.RegisterProject(pb.RegisterProjectRequest(
        request_id=str(uuid.uuid4()), category=category, title="沈阳市第一中学新校区建设项目",
        estimated_value_fen=value, funding_source=pb.FUNDING_SOURCE_PUBLIC,
        department_code="JYJ"), metadata=OFFICER)
    project: pb.Project = response.project
    return project


async def _direct_award(calls: Calls, project_no: str, amount: int) -> Any:
    return await calls.platform.RecordDirectAward(pb.RecordDirectAwardRequest(
        request_id=str(uuid.uuid4()), project_no=project_no, supplier_code=SUPPLIER,
        amount_fen=amount), metadata=OFFICER)


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


# ---- the catalogue enforced ------------------------------------------------------------------

#: (category, threshold, the entry that begins there): every threshold of the sample catalogue.
THRESHOLDS = [
    (CONSTRUCTION, 100_000_000, "CE-03"),
    (CONSTRUCTION, 200_000_000, "CE-02"),
    (CONSTRUCTION, 400_000_000, "CE-01"),
    (PROCUREMENT, 100_000_000, "GP-03"),
    (PROCUREMENT, 400_000_000, "GP-01"),
]


@pytest.mark.parametrize(("category", "threshold", "code"), THRESHOLDS)
async def test_each_threshold_decides_on_both_sides(
        calls: Calls, trading: ServiceUnderTest, category: Any, threshold: int,
        code: str) -> None:
    at = await _project(calls, category, threshold)
    below = await _project(calls, category, threshold - 1)
    assert at.must_enter and at.entry.code == code
    assert below.entry.code != code
    # At the threshold a direct award is refused, naming the rule; nothing is recorded.
    before = _state(trading)
    refused = await _refused(_direct_award(calls, at.project_no, threshold))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert code in (refused.details() or "")
    assert str(threshold) in (refused.details() or "")
    assert _state(trading) == before


async def test_a_project_below_every_threshold_may_be_awarded_directly(
        calls: Calls, trading: ServiceUnderTest) -> None:
    project = await _project(calls, CONSTRUCTION, 99_999_999)
    assert not project.must_enter and not project.HasField("entry")
    before = _count(trading, tables.direct_awards)
    awarded = await _direct_award(calls, project.project_no, 99_000_000)
    assert awarded.project_no == project.project_no
    assert _count(trading, tables.direct_awards) == before + 1
    again = await _refused(_direct_award(calls, project.project_no, 99_000_000))
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_an_award_that_reaches_a_threshold_is_refused_however_low_the_estimate(
        calls: Calls, trading: ServiceUnderTest) -> None:
    project = await _project(calls, CONSTRUCTION, 50_000_000)
    before = _state(trading)
    refused = await _refused(_direct_award(calls, project.project_no, 100_000_000))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "CE-03" in (refused.details() or "")
    assert _state(trading) == before


@pytest.mark.parametrize("category", [pb.TRADING_CATEGORY_LAND,
                                      pb.TRADING_CATEGORY_PROPERTY_RIGHTS])
async def test_land_and_property_rights_always_enter(calls: Calls, trading: ServiceUnderTest,
                                                     category: Any) -> None:
    project = await _project(calls, category, 1)
    assert project.must_enter and project.entry.threshold_fen == 0
    refused = await _refused(_direct_award(calls, project.project_no, 1))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert project.entry.code in (refused.details() or "")


@pytest.mark.parametrize("category", [pb.TRADING_CATEGORY_LAND,
                                      pb.TRADING_CATEGORY_PROPERTY_RIGHTS])
async def test_land_and_property_rights_are_not_tendered(
        calls: Calls, trading: ServiceUnderTest, category: Any) -> None:
    """Land is listed and property rights are disclosed (DESIGN.md §2): a tender for such
    a project is refused naming the rule, and nothing is written (found by the s16 attack:
    a listed parcel was announced as a tender too)."""
    project = await _project(calls, category, 900_000_000)
    before = _state(trading)
    refused = await _refused(_announce(calls, project.project_no))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "a tender takes government procurement and construction projects" in (
        refused.details() or "")
    assert _state(trading) == before


async def test_a_project_that_must_enter_goes_through_a_tender(
        calls: Calls, trading: ServiceUnderTest) -> None:
    project = await _project(calls, CONSTRUCTION, 500_000_000)
    tender = await _announce(calls, project.project_no)
    assert tender.entry_code == "CE-01"
    assert tender.stage == pb.TENDER_STAGE_BIDDING
    # Not started (Temporal is out of reach): the outbox keeps it.
    assert not tender.workflow_started
    # Once tendered, no direct award either, whatever the value.
    small = await _project(calls, CONSTRUCTION, 10_000_000)
    await _announce(calls, small.project_no)
    refused = await _refused(_direct_award(calls, small.project_no, 10_000_000))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "tendered" in (refused.details() or "")


@pytest.mark.parametrize("value", [0, -1, 10**14 + 1, 2**63 - 1])
async def test_negative_or_absurd_values_are_refused(calls: Calls, trading: ServiceUnderTest,
                                                     value: int) -> None:
    before = _state(trading)
    refused = await _refused(calls.platform.RegisterProject(pb.RegisterProjectRequest(
        request_id=str(uuid.uuid4()), category=CONSTRUCTION, title="道路工程",
        estimated_value_fen=value, funding_source=pb.FUNDING_SOURCE_PUBLIC,
        department_code="JYJ"), metadata=OFFICER))
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    project = await _project(calls, CONSTRUCTION, 1_000_000)
    before = _state(trading)
    refused = await _refused(_direct_award(calls, project.project_no, value))
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _state(trading) == before


async def test_the_same_request_registers_one_project(calls: Calls,
                                                      trading: ServiceUnderTest) -> None:
    request = pb.RegisterProjectRequest(
        request_id=str(uuid.uuid4()), category=CONSTRUCTION, title="道路工程",
        estimated_value_fen=1_000_000, funding_source=pb.FUNDING_SOURCE_PUBLIC,
        department_code="JYJ")
    first = await calls.platform.RegisterProject(request, metadata=OFFICER)
    again = await calls.platform.RegisterProject(request, metadata=OFFICER)
    assert first.project.project_no == again.project.project_no
    assert _count(trading, tables.projects) == 1


async def test_only_a_trading_officer_registers(calls: Calls, trading: ServiceUnderTest) -> None:
    before = _state(trading)
    refused = await _refused(calls.platform.RegisterProject(pb.RegisterProjectRequest(
        request_id=str(uuid.uuid4()), category=CONSTRUCTION, title="道路工程",
        estimated_value_fen=1_000_000, funding_source=pb.FUNDING_SOURCE_PUBLIC,
        department_code="JYJ"), metadata=as_official("FGW-001")))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _state(trading) == before


# ---- announcing -------------------------------------------------------------------------------

async def _announce(calls: Calls, project_no: str, *,
                    period: timedelta = timedelta(days=20, minutes=5),
                    documents_until: datetime | None = None) -> pb.Tender:
    request = pb.AnnounceTenderRequest(
        request_id=str(uuid.uuid4()), project_no=project_no,
        bid_deadline=_stamp(datetime.now(UTC) + period))
    if documents_until is not None:
        request.documents_until.CopyFrom(_stamp(documents_until))
    response = await calls.platform.AnnounceTender(request, metadata=OFFICER)
    tender: pb.Tender = response.tender
    return tender


async def test_the_bid_period_is_twenty_days_at_least(calls: Calls,
                                                      trading: ServiceUnderTest) -> None:
    project = await _project(calls, CONSTRUCTION, 500_000_000)
    before = _state(trading)
    refused = await _refused(_announce(calls, project.project_no,
                                       period=timedelta(days=19, hours=23)))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "20 days" in (refused.details() or "")
    assert _state(trading) == before
    unknown = await _refused(_announce(calls, "PJ-20000101-000001"))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert _state(trading) == before


async def test_procurement_documents_are_available_five_working_days(
        calls: Calls, trading: ServiceUnderTest) -> None:
    project = await _project(calls, PROCUREMENT, 500_000_000)
    before = _state(trading)
    missing = await _refused(_announce(calls, project.project_no))
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT
    short = await _refused(_announce(calls, project.project_no,
                                     documents_until=datetime.now(UTC) + timedelta(days=2)))
    assert short.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "5 working days" in (short.details() or "")
    assert _state(trading) == before
    tender = await _announce(calls, project.project_no,
                             documents_until=datetime.now(UTC) + timedelta(days=15))
    assert tender.HasField("objections_until")
    assert tender.objections_until.ToDatetime(tzinfo=UTC) > \
        tender.documents_until.ToDatetime(tzinfo=UTC)


# ---- sealed bids ------------------------------------------------------------------------------

KEYS: dict[tuple[str, str], bytes] = {}


def _bid(tender_no: str, bidder_id: str) -> pb.SubmitSealedBidRequest:
    """A bid sealed as a bidder's client seals it (govhall-bid/1); its key kept in KEYS."""
    sealed, key = seal_bid(f"投标报价 {uuid.uuid4()}".encode(), tender_number=tender_no,
                           bidder_id=bidder_id)
    KEYS[(tender_no, bidder_id)] = key
    return pb.SubmitSealedBidRequest(
        tender_no=tender_no, bidder_id=bidder_id, ciphertext=sealed.envelope,
        ciphertext_sha256=sealed.ciphertext_sha256, key_commitment=sealed.key_commitment)


@pytest.fixture
async def tender(calls: Calls) -> pb.Tender:
    project = await _project(calls, CONSTRUCTION, 500_000_000)
    return await _announce(calls, project.project_no)


async def test_bids_come_from_each_bidder_s_own_system(calls: Calls, trading: ServiceUnderTest,
                                                       tender: pb.Tender) -> None:
    for n in ("0001", "0002", "0003"):
        taken = await calls.via(f"bidder-system-bd{n}").SubmitSealedBid(
            _bid(tender.tender_no, f"BD-{n}"))
        assert taken.bidder_id == f"BD-{n}"
    counted = await calls.platform.GetTender(pb.GetTenderRequest(tender_no=tender.tender_no))
    assert counted.tender.bids == 3


async def test_a_bidder_system_acting_for_another_bidder_is_refused(
        calls: Calls, trading: ServiceUnderTest, tender: pb.Tender) -> None:
    before = _state(trading)
    other = await _refused(calls.via("bidder-system-bd0001").SubmitSealedBid(
        _bid(tender.tender_no, "BD-0002")))
    assert other.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "BD-0002" in (other.details() or "")
    # Not even the platform (which may call every trading RPC) bids for a bidder.
    platform = await _refused(calls.platform.SubmitSealedBid(_bid(tender.tender_no, "BD-0001")))
    assert platform.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _state(trading) == before


async def test_one_bid_per_bidder_a_retry_finds_it(calls: Calls, trading: ServiceUnderTest,
                                                   tender: pb.Tender) -> None:
    bidder = calls.via("bidder-system-bd0001")
    first = _bid(tender.tender_no, "BD-0001")
    taken = await bidder.SubmitSealedBid(first)
    retried = await bidder.SubmitSealedBid(first)
    assert retried.submitted_at == taken.submitted_at
    before = _state(trading)
    second = await _refused(bidder.SubmitSealedBid(_bid(tender.tender_no, "BD-0001")))
    assert second.code() == grpc.StatusCode.ALREADY_EXISTS
    assert _state(trading) == before
    with trading.running.engine.connect() as connection:
        kept = connection.execute(select(tables.sealed_bids.c.ciphertext_sha256)).scalars().all()
    assert kept == [first.ciphertext_sha256]


async def test_bad_bids_are_refused_and_change_nothing(calls: Calls, trading: ServiceUnderTest,
                                                       tender: pb.Tender) -> None:
    bidder = calls.via("bidder-system-bd0001")
    before = _state(trading)
    oversized = _bid(tender.tender_no, "BD-0001")
    oversized.ciphertext = oversized.ciphertext + b"x" * (MAX_ENVELOPE_BYTES + 1
                                                          - len(oversized.ciphertext))
    oversized.ciphertext_sha256 = hashlib.sha256(oversized.ciphertext).hexdigest()
    wrong_hash = _bid(tender.tender_no, "BD-0001")
    wrong_hash.ciphertext_sha256 = "0" * 64
    not_an_envelope = _bid(tender.tender_no, "BD-0001")
    not_an_envelope.ciphertext = uuid.uuid4().bytes * 4
    not_an_envelope.ciphertext_sha256 = hashlib.sha256(not_an_envelope.ciphertext).hexdigest()
    # Sealed for another tender: its envelope's hash is fine, its binding is not this one's.
    elsewhere = _bid("TD-20000101-000002", "BD-0001")
    elsewhere.tender_no = tender.tender_no
    answers = {
        "oversized": (await _refused(bidder.SubmitSealedBid(oversized))).code(),
        "wrong hash": (await _refused(bidder.SubmitSealedBid(wrong_hash))).code(),
        "not an envelope": (await _refused(bidder.SubmitSealedBid(not_an_envelope))).code(),
        "unknown tender": (await _refused(bidder.SubmitSealedBid(
            _bid("TD-20000101-000001", "BD-0001")))).code(),
        "unknown bidder": (await _refused(bidder.SubmitSealedBid(
            _bid(tender.tender_no, "BD-0099")))).code(),
    }
    assert answers == {"oversized": grpc.StatusCode.INVALID_ARGUMENT,
                       "wrong hash": grpc.StatusCode.INVALID_ARGUMENT,
                       "not an envelope": grpc.StatusCode.INVALID_ARGUMENT,
                       "unknown tender": grpc.StatusCode.NOT_FOUND,
                       "unknown bidder": grpc.StatusCode.NOT_FOUND}
    assert _state(trading) == before


async def test_no_bid_after_the_deadline(calls: Calls, trading: ServiceUnderTest,
                                         tender: pb.Tender) -> None:
    # The deadline as the tender's workflow would have moved it: just passed.
    with trading.running.engine.begin() as connection:
        connection.execute(update(tables.tenders)
                           .where(tables.tenders.c.tender_no == tender.tender_no)
                           .values(bid_deadline=datetime.now(UTC) - timedelta(seconds=1)))
    before = _state(trading)
    late = await _refused(calls.via("bidder-system-bd0001").SubmitSealedBid(
        _bid(tender.tender_no, "BD-0001")))
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "deadline" in (late.details() or "")
    assert _state(trading) == before


async def test_an_act_on_an_unknown_tender_is_not_found(calls: Calls,
                                                        trading: ServiceUnderTest) -> None:
    before = _state(trading)
    refused = await _refused(calls.platform.AmendTender(pb.AmendTenderRequest(
        request_id=str(uuid.uuid4()), tender_no="TD-20000101-000001", content="更正"),
        metadata=OFFICER))
    assert refused.code() == grpc.StatusCode.NOT_FOUND
    assert _state(trading) == before


async def test_an_act_while_temporal_is_out_of_reach_is_unavailable(
        calls: Calls, trading: ServiceUnderTest, tender: pb.Tender) -> None:
    before = _state(trading)
    refused = await _refused(calls.platform.AmendTender(pb.AmendTenderRequest(
        request_id=str(uuid.uuid4()), tender_no=tender.tender_no, content="更正"),
        metadata=OFFICER))
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    assert _state(trading) == before


# ---- revealing keys ---------------------------------------------------------------------------

def _reveal(tender_no: str, bidder_id: str, key: bytes) -> pb.RevealBidKeyRequest:
    return pb.RevealBidKeyRequest(tender_no=tender_no, bidder_id=bidder_id, key=key.hex())


def _stage(service: ServiceUnderTest, tender_no: str, stage: str) -> None:
    """The stage the tender's workflow would have moved it to (recorded by its activity)."""
    with service.running.engine.begin() as connection:
        connection.execute(update(tables.tenders).where(tables.tenders.c.tender_no == tender_no)
                           .values(stage=stage))


async def test_keys_are_revealed_in_the_window_only_and_must_match_their_commitment(
        calls: Calls, trading: ServiceUnderTest, tender: pb.Tender) -> None:
    number = tender.tender_no
    bidder = calls.via("bidder-system-bd0001")
    await bidder.SubmitSealedBid(_bid(number, "BD-0001"))
    await calls.via("bidder-system-bd0002").SubmitSealedBid(_bid(number, "BD-0002"))
    key = KEYS[(number, "BD-0001")]
    before = _state(trading)
    early = await _refused(bidder.RevealBidKey(_reveal(number, "BD-0001", key)))
    assert early.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _state(trading) == before

    _stage(trading, number, "decryption")
    before = _state(trading)
    wrong = await _refused(bidder.RevealBidKey(_reveal(number, "BD-0001", bytes(32))))
    assert wrong.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Another bidder's key (a real key, committed for another bid) does not open this one.
    other_key = KEYS[(number, "BD-0002")]
    swapped = await _refused(bidder.RevealBidKey(_reveal(number, "BD-0001", other_key)))
    assert swapped.code() == grpc.StatusCode.INVALID_ARGUMENT
    foreign = await _refused(bidder.RevealBidKey(_reveal(number, "BD-0002", other_key)))
    assert foreign.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _state(trading) == before
    with trading.running.engine.connect() as connection:
        assert connection.execute(select(tables.sealed_bids.c.revealed_key)).scalars().all() \
            == [None, None]

    taken = await bidder.RevealBidKey(_reveal(number, "BD-0001", key))
    again = await bidder.RevealBidKey(_reveal(number, "BD-0001", key))
    assert taken.revealed_at == again.revealed_at
    # The key is kept for the opening; never in the audit log.
    with trading.running.engine.connect() as connection:
        kept = connection.execute(select(tables.sealed_bids.c.revealed_key).where(
            tables.sealed_bids.c.bidder_id == "BD-0001")).scalar_one()
        audit = " ".join(str(r) for r in connection.execute(select(tables.audit_log)))
    assert kept == key.hex()
    assert key.hex() not in audit

    _stage(trading, number, "evaluation")
    late = await _refused(calls.via("bidder-system-bd0002").RevealBidKey(
        _reveal(number, "BD-0002", other_key)))
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
