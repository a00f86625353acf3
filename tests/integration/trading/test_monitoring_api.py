"""Monitoring and statistics over real gRPC (WatchTrades, ListTradeAlerts, GetTradeStatistics).

The trading service runs with Temporal out of reach: the tenders' steps are
recorded by calling trading's own activity functions (services/trading/app/
tender_steps.py) with the signed announcement, as the workflow would; bids
and keys come over gRPC from each bidder's own system. Runs on SQLite, and on
PostgreSQL when configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select

from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from kernel.identity import Caller
from kernel.service import prepare, start
from kernel.signing import service_signer
from services.trading.app import tender_steps, tenders
from services.trading.db import tables
from services.trading.db.repository import TradingUnitOfWork
from services.trading.domain.sealed_bids import seal_bid
from services.trading.main import DEFINITION
from tests.integration.intake.sealing import closed_port
from tests.support import (
    ServiceUnderTest,
    as_official,
    fresh_database_url,
    sample_registry,
    service_under_test,
)
from workflows.approval_contract import SignedStatement
from workflows.tender_contract import TenderStep

OFFICER = as_official("ZWFWZX-007")
BIDDERS = ["BD-0001", "BD-0002", "BD-0003", "BD-0004"]
WAIT = 30.0


@pytest.fixture
async def trading(backend: str, tmp_path: Path, pki_dir: Path
                  ) -> AsyncIterator[ServiceUnderTest]:
    url = fresh_database_url(backend, "trading", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=closed_port(),
                                  tender_start_wait_seconds=0.2,
                                  watch_poll_seconds=0.05) as service:
        yield service


class Calls:
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

    @property
    def supervision(self) -> Any:
        return self.via("supervision-system")

    def bidder(self, bidder_id: str) -> Any:
        return self.via(f"bidder-system-bd{bidder_id[-4:]}")

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


async def _tender(calls: Calls, value: int = 500_000_000) -> pb.Tender:
    project = (await calls.platform.RegisterProject(pb.RegisterProjectRequest(
        request_id=str(uuid.uuid4()), category=pb.TRADING_CATEGORY_CONSTRUCTION,
        title="沈阳市第一中学新校区建设项目", estimated_value_fen=value,
        funding_source=pb.FUNDING_SOURCE_PUBLIC, department_code="JYJ"),
        metadata=OFFICER)).project
    response = await calls.platform.AnnounceTender(pb.AnnounceTenderRequest(
        request_id=str(uuid.uuid4()), project_no=project.project_no,
        bid_deadline=_stamp(datetime.now(UTC) + timedelta(days=20, minutes=5))),
        metadata=OFFICER)
    tender: pb.Tender = response.tender
    return tender


def _sealed(tender_no: str, bidder_id: str, document: bytes
            ) -> tuple[pb.SubmitSealedBidRequest, bytes]:
    sealed, key = seal_bid(document, tender_number=tender_no, bidder_id=bidder_id)
    return pb.SubmitSealedBidRequest(
        tender_no=tender_no, bidder_id=bidder_id, ciphertext=sealed.envelope,
        ciphertext_sha256=sealed.ciphertext_sha256,
        key_commitment=sealed.key_commitment), key


def _count(service: ServiceUnderTest, table: Any) -> int:
    with service.running.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


class Watcher:
    """A WatchTrades stream read in the background."""

    def __init__(self, stub: Any, after: int = 0) -> None:
        self.steps: list[pb.TradeStep] = []
        self.call = stub.WatchTrades(pb.WatchTradesRequest(after_step=after, follow=True))
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for response in self.call:
            self.steps.append(response.step)

    async def until(self, count: int) -> None:
        """Wait, up to a deadline, until ``count`` steps have come."""
        deadline = time.monotonic() + WAIT
        while len(self.steps) < count:
            assert time.monotonic() < deadline, f"{len(self.steps)} steps of {count}"
            assert not self.task.done(), self.task.exception()
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


# ---- the watch -------------------------------------------------------------------------------

async def test_a_watch_sees_every_step_once_in_order_under_concurrent_writers(
        calls: Calls, trading: ServiceUnderTest) -> None:
    tenders_ = [await _tender(calls) for _ in range(3)]
    live = Watcher(calls.supervision)
    documents: dict[tuple[str, str], bytes] = {}

    async def bid(tender_no: str, bidder_id: str) -> None:
        document = json.dumps({"price_fen": 400_000_000, "nonce": str(uuid.uuid4())}).encode()
        documents[(tender_no, bidder_id)] = document
        request, _ = _sealed(tender_no, bidder_id, document)
        await calls.bidder(bidder_id).SubmitSealedBid(request)

    # Twelve writers at once: every bidder on every tender.
    writers = [bid(t.tender_no, b) for t in tenders_ for b in BIDDERS]
    # A second watcher reads the first steps, drops the stream, and resumes after them.
    resumed: list[pb.TradeStep] = []
    await asyncio.gather(*writers[:5])
    first = Watcher(calls.supervision)
    await first.until(5)
    await first.stop()
    resumed.extend(first.steps)
    await asyncio.gather(*writers[5:])
    total = _count(trading, tables.trade_steps)
    assert total == 12
    again = Watcher(calls.via("operator"),
                    after=resumed[-1].sequence)
    await again.until(total - len(resumed))
    await live.until(total)
    await again.stop()
    await live.stop()
    resumed.extend(again.steps)

    for seen in (live.steps, resumed):
        assert [s.sequence for s in seen] == list(range(1, total + 1))
    bids = sorted((s.trade, json.loads(s.details_json)["bidder_id"]) for s in live.steps)
    assert bids == sorted((f"tender/{t}", b) for t, b in documents)
    assert {s.step for s in live.steps} == {"bid_received"}
    # No bid's content is shown, not even its stated price.
    shown = " ".join(str(s) for s in live.steps)
    assert "price_fen" not in shown and "400000000" not in shown
    for tender in tenders_:
        mine = [s for s in live.steps if s.trade == f"tender/{tender.tender_no}"]
        rules = [[a.rule for a in s.alerts] for s in mine]
        # Before its announcement was recorded (no workflow ran): out of order.
        assert rules[0] == [pb.TRADE_ALERT_RULE_OUT_OF_ORDER]
        # All from the loopback address: every later bid shares its origin.
        assert all(pb.TRADE_ALERT_RULE_SAME_ORIGIN in r for r in rules[1:])
        assert json.loads(mine[-1].alerts[0].details_json)["origin"] == "127.0.0.1"


async def test_a_watch_without_follow_ends_at_the_last_step(calls: Calls) -> None:
    tender = await _tender(calls)
    request, _ = _sealed(tender.tender_no, "BD-0001", b'{"price_fen": 1}')
    await calls.bidder("BD-0001").SubmitSealedBid(request)
    seen = [r.step async for r in calls.supervision.WatchTrades(pb.WatchTradesRequest())]
    assert [(s.sequence, s.step) for s in seen] == [(1, "bid_received")]
    after = [r async for r in calls.supervision.WatchTrades(
        pb.WatchTradesRequest(after_step=1))]
    assert after == []


async def test_bad_cursors_are_invalid_arguments(calls: Calls) -> None:
    for after in (-1, 1, 10**12):
        refused = await _refused(_drain(calls.supervision.WatchTrades(
            pb.WatchTradesRequest(after_step=after, follow=True))))
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT, after
    for cursor in (-5, 1):
        refused = await _refused(calls.supervision.ListTradeAlerts(
            pb.ListTradeAlertsRequest(cursor=cursor)))
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT


async def _drain(call: Any) -> list[Any]:
    return [r async for r in call]


async def test_a_bidder_system_may_not_watch(calls: Calls) -> None:
    refused = await _refused(_drain(calls.bidder("BD-0001").WatchTrades(
        pb.WatchTradesRequest())))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_cancelled_watch_ends_and_the_service_goes_on(calls: Calls,
                                                              trading: ServiceUnderTest) -> None:
    watcher = Watcher(calls.supervision)
    await asyncio.sleep(0)  # the call is sent
    await watcher.stop()
    assert await watcher.call.code() == grpc.StatusCode.CANCELLED
    tender = await _tender(calls)
    request, _ = _sealed(tender.tender_no, "BD-0002", b'{"price_fen": 2}')
    await calls.bidder("BD-0002").SubmitSealedBid(request)
    seen = [r.step async for r in calls.supervision.WatchTrades(pb.WatchTradesRequest())]
    assert len(seen) == 1


async def test_shutting_down_ends_open_watches_at_once(backend: str, tmp_path: Path,
                                                       pki_dir: Path) -> None:
    settings = DEFINITION.settings_type(
        database_url=fresh_database_url(backend, "trading", tmp_path), pki_dir=pki_dir,
        port=0, run_activity_worker=False, temporal_address=closed_port(),
        watch_poll_seconds=0.05)
    prepare(DEFINITION, settings)
    running = await start(DEFINITION, settings)
    service = ServiceUnderTest(running, pki_dir, settings)
    channel = service.channel("supervision-system")
    try:
        watcher = Watcher(trading_pb2_grpc.TradingServiceStub(channel))
        await asyncio.sleep(0.3)
        assert not watcher.task.done()
        started = time.monotonic()
        await running.stop(30)  # a long grace: the open watch must not hold it
        await asyncio.wait_for(watcher.task, 5)
        assert time.monotonic() - started < 10
        assert await watcher.call.code() == grpc.StatusCode.OK
    finally:
        await channel.close(None)


# ---- alerts ----------------------------------------------------------------------------------

async def test_a_copied_envelope_and_one_origin_are_alerts_listed_by_rule_and_trade(
        calls: Calls, trading: ServiceUnderTest) -> None:
    tender = await _tender(calls)
    original, _ = _sealed(tender.tender_no, "BD-0001", b'{"price_fen": 100}')
    await calls.bidder("BD-0001").SubmitSealedBid(original)
    copied = pb.SubmitSealedBidRequest()
    copied.CopyFrom(original)
    copied.bidder_id, copied.key_commitment = "BD-0002", "0" * 64
    await calls.bidder("BD-0002").SubmitSealedBid(copied)
    trade = f"tender/{tender.tender_no}"
    identical = (await calls.supervision.ListTradeAlerts(pb.ListTradeAlertsRequest(
        trade=trade, rule=pb.TRADE_ALERT_RULE_IDENTICAL_DOCUMENTS))).alerts
    assert [json.loads(a.details_json)["bidders"] for a in identical] == [
        ["BD-0001", "BD-0002"]]
    assert json.loads(identical[0].details_json)["ciphertext_sha256"] == \
        original.ciphertext_sha256
    every = await calls.supervision.ListTradeAlerts(pb.ListTradeAlertsRequest(page_size=2))
    # out of order (the first bid came before the announcement), same origin, identical.
    assert [a.rule for a in every.alerts] == [pb.TRADE_ALERT_RULE_OUT_OF_ORDER,
                                             pb.TRADE_ALERT_RULE_SAME_ORIGIN]
    rest = await calls.supervision.ListTradeAlerts(
        pb.ListTradeAlertsRequest(cursor=every.next_cursor))
    assert [a.rule for a in rest.alerts] == [pb.TRADE_ALERT_RULE_IDENTICAL_DOCUMENTS]
    assert [a.alert_no for a in [*every.alerts, *rest.alerts]] == [1, 2, 3]
    other = await calls.supervision.ListTradeAlerts(
        pb.ListTradeAlertsRequest(trade="tender/TD-20000101-000001"))
    assert list(other.alerts) == []


async def test_the_same_origin_rule_works_on_the_recorded_address(
        calls: Calls, trading: ServiceUnderTest) -> None:
    tender = await _tender(calls)
    registry = sample_registry()

    def submit(bidder_id: str, origin: str) -> None:
        system = f"bidder-system-bd{bidder_id[-4:]}"
        request, _ = _sealed(tender.tender_no, bidder_id, bidder_id.encode())
        tenders.submit_sealed_bid(
            uow=TradingUnitOfWork(trading.running.engine),
            caller=Caller(system, "", registry.scope_of(system)),
            tender_no=tender.tender_no, bidder_id=bidder_id, ciphertext=request.ciphertext,
            ciphertext_sha256=request.ciphertext_sha256,
            key_commitment=request.key_commitment, now=datetime.now(UTC), origin=origin)

    await asyncio.to_thread(submit, "BD-0001", "10.0.0.1")
    await asyncio.to_thread(submit, "BD-0002", "10.0.0.2")
    await asyncio.to_thread(submit, "BD-0003", "10.0.0.1")
    same = (await calls.supervision.ListTradeAlerts(pb.ListTradeAlertsRequest(
        rule=pb.TRADE_ALERT_RULE_SAME_ORIGIN))).alerts
    assert [json.loads(a.details_json) for a in same] == [
        {"bidders": ["BD-0001", "BD-0003"], "origin": "10.0.0.1"}]
    with trading.running.engine.connect() as connection:
        origins = dict(connection.execute(select(tables.sealed_bids.c.bidder_id,
                                                 tables.sealed_bids.c.origin)).all())
    assert origins == {"BD-0001": "10.0.0.1", "BD-0002": "10.0.0.2", "BD-0003": "10.0.0.1"}


async def opened(calls: Calls, trading: ServiceUnderTest, tender: pb.Tender,
                 documents: dict[str, bytes], *,
                 unrevealed: frozenset[str] = frozenset()) -> list[pb.TradeStep]:
    """Run ``tender``'s opening through trading's own steps with each bidder's ``documents``
    sealed, submitted and revealed (but for the bidders ``unrevealed``, whose bids do not
    open); the steps supervision then watches."""
    engine, settings = trading.running.engine, trading.settings
    keys, signer = settings.trusted_keys(), service_signer(settings.pki_dir, "trading")
    with TradingUnitOfWork(engine, write=False) as unit:
        announcement = SignedStatement(**unit.tenders.announcement(tender.tender_no))

    def step(name: str, at: datetime) -> TenderStep:
        return TenderStep(tender.tender_no, announcement, at, step=name)

    def units() -> TradingUnitOfWork:
        return TradingUnitOfWork(engine)

    await asyncio.to_thread(tender_steps.open_tender, uow=units, keys=keys, signer=signer,
                            step=step("announced", datetime.now(UTC)))
    bid_keys = {}
    for bidder_id, document in documents.items():
        request, bid_keys[bidder_id] = _sealed(tender.tender_no, bidder_id, document)
        await calls.bidder(bidder_id).SubmitSealedBid(request)
    deadline = tender.bid_deadline.ToDatetime(tzinfo=UTC) + timedelta(seconds=1)
    await asyncio.to_thread(tender_steps.close_bidding, uow=units, keys=keys, signer=signer,
                            step=step("deadline", deadline))
    for bidder_id, key in bid_keys.items():
        if bidder_id in unrevealed:
            continue
        await calls.bidder(bidder_id).RevealBidKey(pb.RevealBidKeyRequest(
            tender_no=tender.tender_no, bidder_id=bidder_id, key=key.hex()))
    await asyncio.to_thread(
        tender_steps.close_decryption, uow=units, keys=keys, signer=signer,
        step=step("decryption_closed",
                  deadline + timedelta(minutes=tender.decryption_window_minutes, seconds=1)))
    return [r.step async for r in calls.supervision.WatchTrades(pb.WatchTradesRequest())]


async def test_the_opening_raises_identical_documents_and_a_low_price_in_order(
        calls: Calls, trading: ServiceUnderTest) -> None:
    tender = await _tender(calls, value=500_000_000)
    # BD-0001 and BD-0002 send the very same document (each sealed under its own key);
    # BD-0003 asks 279,999,999 fen: below 70% of the others' mean, 400,000,000.
    documents = {"BD-0001": b'{"price_fen": 400000000, "spec": "A"}',
                 "BD-0002": b'{"price_fen": 400000000, "spec": "A"}',
                 "BD-0003": b'{"price_fen": 279999999, "spec": "C"}',
                 "BD-0004": b'{"price_fen": 400000000, "spec": "D"}'}
    seen = await opened(calls, trading, tender, documents)
    assert [(s.step, s.stage) for s in seen] == [
        ("announced", "bidding"), *[("bid_received", "bidding")] * 4,
        ("deadline", "decryption"), ("decryption_closed", "evaluation")]
    opening = seen[-1]
    assert [a.rule for a in opening.alerts] == [pb.TRADE_ALERT_RULE_IDENTICAL_DOCUMENTS,
                                                pb.TRADE_ALERT_RULE_LOW_PRICE]
    assert json.loads(opening.alerts[0].details_json)["bidders"] == ["BD-0001", "BD-0002"]
    low = json.loads(opening.alerts[1].details_json)
    assert (low["bidder_id"], low["price_fen"]) == ("BD-0003", 279_999_999)
    assert opening.feed_sequence > 0
    # In order from the announcement on: no out-of-order alert anywhere.
    assert all(a.rule != pb.TRADE_ALERT_RULE_OUT_OF_ORDER for s in seen for a in s.alerts)
    # The documents stay unshown: only their digests.
    assert "spec" not in " ".join(str(s) for s in seen)


async def test_prices_beyond_the_bound_state_no_price_and_the_opening_goes_on(
        calls: Calls, trading: ServiceUnderTest) -> None:
    """Two bidders state 4,300-digit prices (the most JSON parsing takes): like the
    evaluation, the price rule reads no price from them. Read as prices, their sum could
    not be written into the third bid's low-price alert, and the opening would be retried
    for ever (found by the s16 attack)."""
    tender = await _tender(calls, value=500_000_000)
    huge = b"9" * 4300
    documents = {"BD-0001": b'{"price_fen": ' + huge + b', "spec": "A"}',
                 "BD-0002": b'{"price_fen": ' + huge + b', "spec": "B"}',
                 "BD-0003": b'{"price_fen": 400000000, "spec": "C"}'}
    seen = await opened(calls, trading, tender, documents)
    assert (seen[-1].step, seen[-1].stage) == ("decryption_closed", "evaluation")
    # BD-0003 alone states a price: set against the estimate, it is not low.
    assert [a.rule for a in seen[-1].alerts] == []
    with trading.running.engine.connect() as connection:
        stage = connection.execute(select(tables.tenders.c.stage).where(
            tables.tenders.c.tender_no == tender.tender_no)).scalar_one()
    assert stage == "evaluation"


# ---- statistics ------------------------------------------------------------------------------

async def test_statistics_count_direct_awards_and_awarded_tenders_exactly(
        calls: Calls, trading: ServiceUnderTest) -> None:
    now = datetime.now(UTC)
    # Two direct awards of small construction projects (below the catalogue's 100,000,000).
    for value, amount in ((50_000_000, 49_999_999), (30_000_000, 30_000_001)):
        project = (await calls.platform.RegisterProject(pb.RegisterProjectRequest(
            request_id=str(uuid.uuid4()), category=pb.TRADING_CATEGORY_CONSTRUCTION,
            title="沈阳市第一中学围墙维修", estimated_value_fen=value,
            funding_source=pb.FUNDING_SOURCE_PUBLIC, department_code="JYJ"),
            metadata=OFFICER)).project
        await calls.platform.RecordDirectAward(pb.RecordDirectAwardRequest(
            request_id=str(uuid.uuid4()), project_no=project.project_no,
            supplier_code="91210100MA0XXXXX1A", amount_fen=amount), metadata=OFFICER)
    # Three tenders recorded as awarded: one contracted at another amount, one awarded
    # last year (outside the period).
    awarded = [await _tender(calls) for _ in range(3)]
    with TradingUnitOfWork(trading.running.engine) as unit:
        for tender, at, award, contract in (
                (awarded[0], now, 450_000_000, 449_000_000),
                (awarded[1], now, 2**40 + 1, None),
                (awarded[2], now - timedelta(days=400), 300_000_000, None)):
            unit.tenders.add_step(tender.tender_no, "awarded/x", step="awarded", at=at,
                                  feed_sequence=0, content="",
                                  statement={"body": {"amount_fen": award}})
            if contract is not None:
                unit.tenders.add_step(tender.tender_no, "contracted/x", step="contracted",
                                      at=at, feed_sequence=0, content="",
                                      statement={"body": {"amount_fen": contract}})
        unit.commit()

    period = pb.GetTradeStatisticsRequest(period_start=_stamp(now - timedelta(days=30)),
                                          period_end=_stamp(now + timedelta(days=1)))
    found = await calls.supervision.GetTradeStatistics(period)
    rows = [(r.category, r.source, r.deals, r.total_value_fen) for r in found.rows]
    assert rows == [
        (pb.TRADING_CATEGORY_CONSTRUCTION, pb.DEAL_SOURCE_DIRECT_AWARD, 2, 80_000_000),
        (pb.TRADING_CATEGORY_CONSTRUCTION, pb.DEAL_SOURCE_TENDER, 2, 449_000_000 + 2**40 + 1)]
    assert (found.deals, found.total_value_fen) == (4, 80_000_000 + 449_000_000 + 2**40 + 1)
    land = pb.GetTradeStatisticsRequest()
    land.CopyFrom(period)
    land.category = pb.TRADING_CATEGORY_LAND
    nothing = await calls.supervision.GetTradeStatistics(land)
    assert (list(nothing.rows), nothing.deals, nothing.total_value_fen) == ([], 0, 0)
    last_year = await calls.supervision.GetTradeStatistics(pb.GetTradeStatisticsRequest(
        period_start=_stamp(now - timedelta(days=500)),
        period_end=_stamp(now - timedelta(days=30))))
    assert (last_year.deals, last_year.total_value_fen) == (1, 300_000_000)


async def test_a_backwards_or_missing_period_is_an_invalid_argument(calls: Calls) -> None:
    now = datetime.now(UTC)
    for request in (pb.GetTradeStatisticsRequest(period_start=_stamp(now),
                                                 period_end=_stamp(now)),
                    pb.GetTradeStatisticsRequest(period_start=_stamp(now)),
                    pb.GetTradeStatisticsRequest(period_start=_stamp(now),
                                                 period_end=_stamp(now - timedelta(days=1)))):
        refused = await _refused(calls.supervision.GetTradeStatistics(request))
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_every_step_of_a_draw_is_watched_in_order(calls: Calls) -> None:
    witnesses = {"JJZ-001": "supervision-system", "ZWFWZX-008": "trading-platform",
                 "JJZ-002": "supervision-system"}
    seeds = {w: os.urandom(32) for w in witnesses}
    now = datetime.now(UTC)
    await calls.platform.OpenDraw(pb.OpenDrawRequest(
        draw_id="DR-2026-0001", purpose=pb.DRAW_PURPOSE_AGENCY_LOTTERY,
        title="沈阳市第一中学新校区建设项目招标代理", witness_ids=list(witnesses), count=1,
        commit_deadline=_stamp(now + timedelta(minutes=30)),
        reveal_deadline=_stamp(now + timedelta(hours=1)),
        subject="project/SY-2026-0001/agency"), metadata=OFFICER)
    for witness, system in witnesses.items():
        await calls.via(system).CommitSeed(pb.CommitSeedRequest(
            draw_id="DR-2026-0001", commitment=hashlib.sha256(seeds[witness]).hexdigest()),
            metadata=as_official(witness))
    for witness in ("ZWFWZX-008", "JJZ-002", "JJZ-001"):
        await calls.via(witnesses[witness]).RevealSeed(pb.RevealSeedRequest(
            draw_id="DR-2026-0001", seed=seeds[witness].hex()), metadata=as_official(witness))
    seen = [r.step async for r in calls.supervision.WatchTrades(pb.WatchTradesRequest())]
    assert {s.trade for s in seen} == {"draw/DR-2026-0001"}
    assert [(s.step, s.stage) for s in seen] == [
        ("registered", "committing"), ("seed_committed", "committing"),
        ("seed_committed", "committing"), ("opened", "open"), ("seed_revealed", "open"),
        ("seed_revealed", "open"), ("seed_revealed", "open"), ("drawn", "drawn")]
    assert [s.feed_sequence > 0 for s in seen] == [False] * 3 + [True] + [False] * 3 + [True]
    assert [a for s in seen for a in s.alerts] == []
    # No seed is shown before the result publishes it, and none in the steps at all.
    assert not any(seed.hex() in s.details_json for s in seen for seed in seeds.values())
