"""A tender from announcement to contract: the trading service over gRPC, its real
activities, the real TenderWorkflow, on a time-skipping server of the test's own.

Each test has its own server and task queues, so tender numbers (which repeat
across fresh databases) never meet another test's workflow. Time is skipped
to each deadline; what the public sees is read back from the feed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from kernel.signing import Signed, TrustedKeys, public_keys_dir, trust_in_workflows
from kernel.temporal import CASE_KIND, CASE_NUMBER
from services.trading.db import tables
from services.trading.domain.sealed_bids import seal_bid
from services.trading.main import DEFINITION
from tests.integration.intake.sealing import closed_port
from tests.support import (
    SAMPLE_DIR,
    ServiceUnderTest,
    as_official,
    fresh_database_url,
    service_under_test,
)
from workflows import tender_contract as t
from workflows.approval_contract import SignedStatement
from workflows.tender import TenderWorkflow

T = TypeVar("T")
OFFICER = as_official("ZWFWZX-007")


def _target(environment: WorkflowEnvironment) -> str:
    return str(environment.client.service_client.config.target_host)


def _stamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


async def _until(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool],
                 what: str) -> T:
    for _ in range(400):
        found = await probe()
        if done(found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}; last {found!r}")


@dataclass
class Venue:
    env: WorkflowEnvironment
    trading: ServiceUnderTest
    channels: dict[str, grpc.aio.Channel]

    def via(self, system: str = "trading-platform") -> Any:
        if system not in self.channels:
            self.channels[system] = self.trading.channel(system)
        return trading_pb2_grpc.TradingServiceStub(self.channels[system])

    async def announce(self, value: int = 500_000_000) -> pb.Tender:
        project = (await self.via().RegisterProject(pb.RegisterProjectRequest(
            request_id=str(uuid.uuid4()), category=pb.TRADING_CATEGORY_CONSTRUCTION,
            title="浑南新区道路工程", estimated_value_fen=value,
            funding_source=pb.FUNDING_SOURCE_PUBLIC, department_code="JYJ"),
            metadata=OFFICER)).project
        now = await self.env.get_current_time()
        response = await self.via().AnnounceTender(pb.AnnounceTenderRequest(
            request_id=str(uuid.uuid4()), project_no=project.project_no,
            bid_deadline=_stamp(now + timedelta(days=20, minutes=10))), metadata=OFFICER)
        tender: pb.Tender = response.tender
        return tender

    async def tender(self, tender_no: str) -> pb.Tender:
        found: pb.Tender = (await self.via().GetTender(
            pb.GetTenderRequest(tender_no=tender_no))).tender
        return found

    async def until_stage(self, tender_no: str, stage: Any) -> pb.Tender:
        return await _until(lambda: self.tender(tender_no), lambda x: x.stage == stage,
                            f"tender at {pb.TenderStage.Name(stage)}")

    async def bid(self, tender_no: str, n: str, price_fen: int = 500_000_000,
                  ) -> tuple[str, bytes]:
        """A bid sealed by the bidder's client; its key commitment and its key."""
        document = json.dumps({"price_fen": price_fen, "offer": str(uuid.uuid4())}).encode()
        sealed, key = seal_bid(document, tender_number=tender_no, bidder_id=f"BD-{n}")
        await self.via(f"bidder-system-bd{n}").SubmitSealedBid(pb.SubmitSealedBidRequest(
            tender_no=tender_no, bidder_id=f"BD-{n}", ciphertext=sealed.envelope,
            ciphertext_sha256=sealed.ciphertext_sha256, key_commitment=sealed.key_commitment))
        return sealed.key_commitment, key

    async def reveal(self, tender_no: str, n: str, key: bytes) -> None:
        await self.via(f"bidder-system-bd{n}").RevealBidKey(pb.RevealBidKeyRequest(
            tender_no=tender_no, bidder_id=f"BD-{n}", key=key.hex()))

    async def feed(self, tender_no: str) -> list[tuple[str, dict[str, Any]]]:
        """The tender's feed entries: kind and signed body (verified with trading's key)."""
        keys = TrustedKeys.load(public_keys_dir(self.trading.pki_dir))
        entries = (await self.via().ListFeed(pb.ListFeedRequest(cursor=0,
                                                                page_size=500))).entries
        found = []
        for entry in entries:
            if entry.subject != f"tender/{tender_no}":
                continue
            assert hashlib.sha256(entry.body.encode()).hexdigest() == entry.body_sha256
            signed = Signed.from_dict(json.loads(entry.body))
            found.append((entry.kind, keys.verify(signed, signer="trading")))
        return found

    async def skip(self, delta: timedelta) -> None:
        await self.env.sleep(delta)

    async def draw_committee(self, tender_no: str, draw_id: str = "DR-2026-0001",
                             ) -> tuple[list[str], pb.DrawEvaluationCommitteeResponse]:
        """The committee's expert draw (5 experts), opened, committed and revealed by its
        witnesses (the independent one, JJZ-001, last): the experts drawn."""
        now = datetime.now(UTC)
        opened = await self.via().DrawEvaluationCommittee(pb.DrawEvaluationCommitteeRequest(
            tender_no=tender_no, draw_id=draw_id, specialties=["园林绿化"], committee_size=5,
            witness_ids=["ZWFWZX-008", "JJZ-001"],
            commit_deadline=_stamp(now + timedelta(hours=1)),
            reveal_deadline=_stamp(now + timedelta(hours=2))), metadata=OFFICER)
        seeds = {"ZWFWZX-008": os.urandom(32), "JJZ-001": os.urandom(32)}
        system = {"ZWFWZX-008": "trading-platform", "JJZ-001": "supervision-system"}
        for witness, seed in seeds.items():
            await self.via(system[witness]).CommitSeed(pb.CommitSeedRequest(
                draw_id=draw_id, commitment=hashlib.sha256(seed).hexdigest()),
                metadata=as_official(witness))
        drawn = None
        for witness, seed in seeds.items():
            drawn = (await self.via(system[witness]).RevealSeed(pb.RevealSeedRequest(
                draw_id=draw_id, seed=seed.hex()), metadata=as_official(witness))).draw
        assert drawn is not None and drawn.state == pb.DRAW_STATE_DRAWN
        return list(drawn.drawn), opened

    async def seat(self, tender_no: str) -> list[str]:
        seated = await self.via().SeatEvaluationCommittee(pb.SeatEvaluationCommitteeRequest(
            request_id=str(uuid.uuid4()), tender_no=tender_no), metadata=OFFICER)
        return list(seated.member_ids)


@pytest.fixture
async def venue(time_skipping: WorkflowEnvironment, backend: str, tmp_path: Path,
                pki_dir: Path) -> AsyncIterator[Venue]:
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    url = fresh_database_url(backend, "trading", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=_target(time_skipping),
                                  task_queue_prefix=prefix, run_activity_worker=True,
                                  ) as trading:
        # The workflows worker trusts the services' published keys, trading's among them.
        trust_in_workflows(TrustedKeys.load(public_keys_dir(pki_dir)))
        made = Venue(time_skipping, trading, {})
        async with Worker(time_skipping.client, task_queue=f"{prefix}workflows",
                          workflows=[TenderWorkflow]):
            try:
                yield made
            finally:
                for channel in made.channels.values():
                    await channel.close(None)


async def test_a_tender_runs_from_announcement_to_contract_and_every_step_is_published(
        venue: Venue) -> None:
    tender = await venue.announce()
    assert tender.workflow_started
    number = tender.tender_no
    await _until(lambda: venue.feed(number), lambda f: len(f) == 1, "announcement published")
    prices = {"0001": 490_000_000, "0002": 480_000_000, "0003": 470_000_000,
              "0004": 460_000_000}
    sealed = {f"BD-{n}": await venue.bid(number, n, prices[n]) for n in prices}
    commitments = {bidder: commitment for bidder, (commitment, _) in sealed.items()}

    amended = (await venue.via().AmendTender(pb.AmendTenderRequest(
        request_id=str(uuid.uuid4()), tender_no=number, content="第3章技术参数更正"),
        metadata=OFFICER)).result
    assert amended.feed_sequence > 0
    # More than 15 days before the deadline: it stands.
    assert amended.tender.bid_deadline == tender.bid_deadline

    objected = await venue.via().ObjectToTender(pb.ObjectToTenderRequest(
        request_id=str(uuid.uuid4()), tender_no=number,
        target=pb.OBJECTION_TARGET_DOCUMENTS, grounds="资格条件排斥潜在投标人"),
        metadata=OFFICER)
    assert objected.result.tender.paused and objected.objection_id == "OB-1"
    await venue.skip(timedelta(hours=5))
    answered = (await venue.via().AnswerObjection(pb.AnswerObjectionRequest(
        request_id=str(uuid.uuid4()), tender_no=number, objection_id="OB-1",
        answer="资格条件符合法律规定"), metadata=OFFICER)).result
    assert not answered.tender.paused
    # The deadline moved by the pause (as trading recorded it from the signed statements).
    assert answered.tender.bid_deadline.ToDatetime() > tender.bid_deadline.ToDatetime()

    deadline = answered.tender.bid_deadline.ToDatetime(tzinfo=UTC)
    await venue.skip(deadline - await venue.env.get_current_time() + timedelta(minutes=1))
    opened = await venue.until_stage(number, pb.TENDER_STAGE_DECRYPTION)
    assert opened.bids == 4
    # In the window: a wrong key is refused, the right ones taken; BD-0004 never reveals.
    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await venue.reveal(number, "0001", sealed["BD-0002"][1])
    assert wrong.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for n in ("0001", "0002", "0003"):
        await venue.reveal(number, n, sealed[f"BD-{n}"][1])
    await venue.skip(timedelta(hours=2, minutes=1))
    await venue.until_stage(number, pb.TENDER_STAGE_EVALUATION)
    # The committee, drawn and seated; each expert judges each valid bid through its own
    # system (lowest evaluated price: BD-0003 is found non-compliant by the majority).
    await venue.draw_committee(number)
    members = await venue.seat(number)
    systems = {r["expert_id"]: r["system"] for r in json.loads(
        (SAMPLE_DIR / "trading.json").read_text("utf-8"))["expert_systems"]}
    for bidder in ("BD-0001", "BD-0002", "BD-0003"):
        for index, member in enumerate(members):
            await venue.via(systems[member]).SubmitScoreSheet(pb.SubmitScoreSheetRequest(
                request_id=str(uuid.uuid4()), tender_no=number, member_id=member,
                bidder_id=bidder, compliant=bidder != "BD-0003" or index < 2))
    early = pb.AwardTenderRequest(request_id=str(uuid.uuid4()), tender_no=number,
                                  winner_bidder_id="BD-0002", amount_fen=480_000_000)
    with pytest.raises(grpc.aio.AioRpcError) as too_early:
        await venue.via().AwardTender(early, metadata=OFFICER)
    assert too_early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await venue.tender(number)).stage == pb.TENDER_STAGE_CANDIDATES
    await venue.skip(timedelta(days=3, minutes=1))
    await venue.via().AwardTender(pb.AwardTenderRequest(
        request_id=str(uuid.uuid4()), tender_no=number, winner_bidder_id="BD-0002",
        amount_fen=480_000_000), metadata=OFFICER)
    contracted = (await venue.via().RecordContract(pb.RecordContractRequest(
        request_id=str(uuid.uuid4()), tender_no=number, contract_no="HT-2026-001",
        amount_fen=480_000_000), metadata=OFFICER)).result
    assert contracted.tender.stage == pb.TENDER_STAGE_CONTRACTED
    result = await venue.env.client.get_workflow_handle(
        t.workflow_id(number), result_type=t.TenderResult).result()
    assert result.outcome == "contracted" and result.winner == "BD-0002"

    feed = await venue.feed(number)
    assert [kind for kind, _ in feed] == ["tender.announced", "tender.amended",
                                          "tender.opened", "tender.decrypted",
                                          "tender.committee", "tender.candidates",
                                          "tender.awarded",
                                          "tender.contracted"]
    published = dict(feed)
    # The commitments are published at the deadline; no ciphertext ever is.
    assert {b["bidder_id"]: b["key_commitment"] for b in published["tender.opened"]["bids"]} \
        == commitments
    assert "ciphertext" not in json.dumps(published["tender.opened"]).replace(
        "ciphertext_sha256", "")
    assert published["tender.amended"]["content"] == "第3章技术参数更正"
    # Both lists in the bidders' order, whatever order the bids came in.
    assert [b["bidder_id"] for b in published["tender.opened"]["bids"]] == sorted(commitments)
    assert [b["bidder_id"] for b in published["tender.decrypted"]["bids"]] == [
        "BD-0001", "BD-0002", "BD-0003", "BD-0004"]
    assert {(b["bidder_id"], b["valid"], b["reason"])
            for b in published["tender.decrypted"]["bids"]} == {
        ("BD-0001", True, ""), ("BD-0002", True, ""), ("BD-0003", True, ""),
        ("BD-0004", False, "unrevealed")}
    # No key and no bid document is published.
    for _, key in sealed.values():
        assert key.hex() not in json.dumps(feed)
    assert published["tender.candidates"]["candidates"] == ["BD-0002", "BD-0001"]
    assert published["tender.awarded"]["winner"] == "BD-0002"
    # Each published act carries the official's statement, signed by trading.
    statement = published["tender.awarded"]["statement"]
    TrustedKeys.load(public_keys_dir(venue.trading.pki_dir)).verify(
        Signed.from_dict(statement), signer="trading")


async def test_two_bids_fail_the_tender_publicly_and_nothing_is_opened(venue: Venue) -> None:
    tender = await venue.announce()
    number = tender.tender_no
    await venue.bid(number, "0001")
    await venue.bid(number, "0002")
    await venue.skip(timedelta(days=20, minutes=11))
    failed = await venue.until_stage(number, pb.TENDER_STAGE_FAILED)
    assert failed.bids == 2
    feed = await venue.feed(number)
    assert [kind for kind, _ in feed] == ["tender.announced", "tender.failed"]
    assert dict(feed)["tender.failed"]["bids"] == 2
    result = await venue.env.client.get_workflow_handle(
        t.workflow_id(number), result_type=t.TenderResult).result()
    assert result.outcome == "failed"
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await venue.bid(number, "0003")
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_two_valid_bids_after_decryption_fail_the_tender_publicly_unevaluated(
        venue: Venue) -> None:
    tender = await venue.announce()
    number = tender.tender_no
    sealed = {n: await venue.bid(number, n) for n in ("0001", "0002", "0003", "0004")}
    await venue.skip(timedelta(days=20, minutes=11))
    await venue.until_stage(number, pb.TENDER_STAGE_DECRYPTION)
    # Two keys revealed; BD-0003 and BD-0004 never reveal theirs.
    for n in ("0001", "0002"):
        await venue.reveal(number, n, sealed[n][1])
    await venue.skip(timedelta(hours=2, minutes=1))
    failed = await venue.until_stage(number, pb.TENDER_STAGE_FAILED)
    assert failed.bids == 4
    result = await venue.env.client.get_workflow_handle(
        t.workflow_id(number), result_type=t.TenderResult).result()
    assert result.outcome == "failed"
    feed = await venue.feed(number)
    assert [kind for kind, _ in feed] == ["tender.announced", "tender.opened",
                                          "tender.decrypted", "tender.failed"]
    published = dict(feed)
    assert published["tender.failed"]["valid"] == 2
    assert "fewer than 3 valid bids" in published["tender.failed"]["reason"]
    # No evaluation: the committee cannot be drawn for a failed tender.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await venue.draw_committee(number)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def _bidder_objection(number: str, bidder: str, target: Any,
                      grounds: str = "评分标准排斥潜在投标人") -> pb.ObjectToTenderRequest:
    return pb.ObjectToTenderRequest(request_id=str(uuid.uuid4()), tender_no=number,
                                    target=target, grounds=grounds, bidder_id=bidder)


async def test_a_bidder_objects_to_the_documents_through_its_own_system_only(
        venue: Venue) -> None:
    tender = await venue.announce()
    number = tender.tender_no
    await _until(lambda: venue.feed(number), lambda f: len(f) == 1, "announcement published")
    documents = pb.OBJECTION_TARGET_DOCUMENTS
    # A bidder system speaking for another bidder: refused, nothing recorded.
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await venue.via("bidder-system-bd0002").ObjectToTender(
            _bidder_objection(number, "BD-0001", documents))
    assert other.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert not (await venue.tender(number)).paused
    # Any registered bidder may object to the documents (BD-0004 has not bid), from its own
    # system, naming no official; the tender pauses as for an officer's objection.
    objected = await venue.via("bidder-system-bd0004").ObjectToTender(
        _bidder_objection(number, "BD-0004", documents))
    assert objected.result.tender.paused and objected.objection_id == "OB-1"
    with venue.trading.running.engine.connect() as connection:
        step = connection.execute(select(tables.tender_steps.c.statement).where(
            tables.tender_steps.c.tender_no == number,
            tables.tender_steps.c.step == "objected")).scalar_one()
    signed = json.loads(step) if isinstance(step, str) else step
    # Signed by trading as the bidder's act, through the bidder's system.
    body = TrustedKeys.load(public_keys_dir(venue.trading.pki_dir)).verify(
        Signed.from_dict(signed), signer="trading")
    assert (body["bidder_id"], body["official_id"], body["system"]) == (
        "BD-0004", "BD-0004", "bidder-system-bd0004")
    # A second one waits for the first's answer (the workflow's rule, as before).
    with pytest.raises(grpc.aio.AioRpcError) as waiting:
        await venue.via("bidder-system-bd0001").ObjectToTender(
            _bidder_objection(number, "BD-0001", documents))
    assert waiting.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await venue.via().AnswerObjection(pb.AnswerObjectionRequest(
        request_id=str(uuid.uuid4()), tender_no=number, objection_id="OB-1",
        answer="评分标准符合规定"), metadata=OFFICER)
    # A bidder's system cannot answer, nor object to the candidates of a tender in bidding.
    with pytest.raises(grpc.aio.AioRpcError) as answering:
        await venue.via("bidder-system-bd0004").AnswerObjection(pb.AnswerObjectionRequest(
            request_id=str(uuid.uuid4()), tender_no=number, objection_id="OB-1",
            answer="x"))
    assert answering.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Answered, the next bidder's objection is taken (the window's limits are the
    # workflow's rules, the same for a bidder's objection as for an officer's).
    again = await venue.via("bidder-system-bd0001").ObjectToTender(
        _bidder_objection(number, "BD-0001", documents))
    assert again.objection_id == "OB-2"
    await venue.via().AnswerObjection(pb.AnswerObjectionRequest(
        request_id=str(uuid.uuid4()), tender_no=number, objection_id="OB-2",
        answer="已澄清"), metadata=OFFICER)
    # Each bidder objects to the documents once, all its grounds at once: BD-0004 cannot
    # pause the tender again (each pause moves the deadline, so its window never ends).
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await venue.via("bidder-system-bd0004").ObjectToTender(
            _bidder_objection(number, "BD-0004", documents))
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "objected to the documents" in (twice.value.details() or "")
    assert not (await venue.tender(number)).paused
    # A bidder naming a bidder outside the directory: NOT_FOUND.
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await venue.via("bidder-system-bd0001").ObjectToTender(
            _bidder_objection(number, "BD-0999", documents))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_only_a_bidder_of_the_tender_objects_to_its_candidates(venue: Venue) -> None:
    tender = await venue.announce()
    number = tender.tender_no
    prices = {"0001": 490_000_000, "0002": 480_000_000, "0003": 470_000_000}
    sealed = {n: await venue.bid(number, n, price) for n, price in prices.items()}
    await venue.skip(timedelta(days=20, minutes=11))
    await venue.until_stage(number, pb.TENDER_STAGE_DECRYPTION)
    for n, (_, key) in sealed.items():
        await venue.reveal(number, n, key)
    await venue.skip(timedelta(hours=2, minutes=1))
    await venue.until_stage(number, pb.TENDER_STAGE_EVALUATION)
    await venue.draw_committee(number)
    members = await venue.seat(number)
    systems = {r["expert_id"]: r["system"] for r in json.loads(
        (SAMPLE_DIR / "trading.json").read_text("utf-8"))["expert_systems"]}
    for n in prices:
        for member in members:
            await venue.via(systems[member]).SubmitScoreSheet(pb.SubmitScoreSheetRequest(
                request_id=str(uuid.uuid4()), tender_no=number, member_id=member,
                bidder_id=f"BD-{n}", compliant=True))
    await venue.until_stage(number, pb.TENDER_STAGE_CANDIDATES)
    candidates = pb.OBJECTION_TARGET_CANDIDATES
    # BD-0004 is a registered bidder but did not bid in this tender.
    with pytest.raises(grpc.aio.AioRpcError) as stranger:
        await venue.via("bidder-system-bd0004").ObjectToTender(
            _bidder_objection(number, "BD-0004", candidates))
    assert stranger.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # A bidder of the tender, through another bidder's system: refused too.
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await venue.via("bidder-system-bd0001").ObjectToTender(
            _bidder_objection(number, "BD-0002", candidates))
    assert other.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert not (await venue.tender(number)).paused
    objected = await venue.via("bidder-system-bd0002").ObjectToTender(
        _bidder_objection(number, "BD-0002", candidates, "第一候选人业绩造假"))
    assert objected.result.tender.paused
    # The award waits for the answer, as for an officer's objection.
    await venue.skip(timedelta(days=3, minutes=1))
    with pytest.raises(grpc.aio.AioRpcError) as paused:
        await venue.via().AwardTender(pb.AwardTenderRequest(
            request_id=str(uuid.uuid4()), tender_no=number, winner_bidder_id="BD-0003",
            amount_fen=470_000_000), metadata=OFFICER)
    assert paused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_forged_act_sent_to_temporal_directly_is_refused_and_recorded_nowhere(
        venue: Venue) -> None:
    tender = await venue.announce()
    number = tender.tender_no
    await _until(lambda: venue.feed(number), lambda f: len(f) == 1, "announcement published")
    handle = venue.env.client.get_workflow_handle(t.workflow_id(number))
    forged = t.OfficialAct(SignedStatement(
        t.tender_statement_body(kind=t.StatementKind.AMENDMENT, tender_no=number,
                                official_id="ZWFWZX-007", department_code="ZWFWZX",
                                roles=["trading_officer"], system="trading-platform",
                                issued_at=datetime.now(UTC)),
        "trading", "0" * 16, "AAAA"))
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(t.AMEND, forged)
    with venue.trading.running.engine.connect() as connection:
        steps = connection.execute(select(tables.tender_steps.c.step).where(
            tables.tender_steps.c.tender_no == number)).scalars().all()
    assert steps == ["announced"]


async def test_the_outbox_starts_a_tender_announced_while_temporal_was_down(
        time_skipping: WorkflowEnvironment, backend: str, tmp_path: Path,
        pki_dir: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    url = fresh_database_url(backend, "trading", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=closed_port(), task_queue_prefix=prefix,
                                  tender_start_wait_seconds=0.5) as down:
        venue = Venue(time_skipping, down, {})
        tender = await venue.announce()
        for channel in venue.channels.values():
            await channel.close(None)
    assert not tender.workflow_started
    number = tender.tender_no
    # Someone who reached Temporal took the tender's workflow id first.
    squatter = await time_skipping.client.start_workflow(
        "TenderWorkflow", t.TenderInput(SignedStatement({"kind": "x"}, "trading", "", "")),
        id=t.workflow_id(number), task_queue=f"{prefix}squatters")
    # Restarted with Temporal in reach: the outbox starts the tender's own run, once.
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=_target(time_skipping),
                                  task_queue_prefix=prefix) as up:
        venue = Venue(time_skipping, up, {})
        started = await _until(lambda: venue.tender(number), lambda x: x.workflow_started,
                               "the outbox started the tender")
        for channel in venue.channels.values():
            await channel.close(None)
    assert started.workflow_started
    handle = time_skipping.client.get_workflow_handle(t.workflow_id(number))
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert description.run_id != squatter.result_run_id
    assert description.typed_search_attributes.get(CASE_NUMBER) == number
    assert description.typed_search_attributes.get(CASE_KIND) == "tender"
    squatted = await time_skipping.client.get_workflow_handle(
        t.workflow_id(number), run_id=squatter.result_run_id).describe()
    assert squatted.status == WorkflowExecutionStatus.TERMINATED
    with up.running.engine.connect() as connection:
        actions = connection.execute(select(tables.audit_log.c.action)).scalars().all()
    assert actions.count("violation.squatted_workflow") == 1
    assert actions.count("tender.workflow_started") == 1
