"""The trading benchmark: one tender with many sealed bids, beside the crypto floor.

    .venv/bin/python -m bench.trading [--bids 1000] [--concurrency 20] [--repeat 1]
                                      [--document-kib 0]

One run starts, in this process, a time-skipping Temporal test server, the
trading service (gRPC over mTLS on a free port of 127.0.0.1, SQLite in a
throwaway directory, its activity worker) and a TenderWorkflow worker. The
bidders directory gets --bids bidders of the benchmark's own, spread over
--concurrency calling systems of its own (one per client in flight, each
with its certificate; a bidder may bid only through its system).

Each round (--repeat rounds, medians printed):

1. **Submission.** A trading officer registers a project and announces a
   tender (its workflow starts). The bids are sealed beforehand by the
   bidders' clients (``sealed_bids.seal_bid``, not timed: that is the
   bidder's machine), each a JSON document with a distinctive price, and
   submitted with ``SubmitSealedBid`` at --concurrency calls in flight.
   With --document-kib N each document also carries N KiB of random filler
   (an "annex" of base64 text inside the JSON), for a realistic bid size;
   0 (the default) keeps the small document.
   Figures: accepted bids per second and the p50/p99 latency of one call.
2. **Opening**, from the deadline to the published candidates: the trading
   activities the workflow runs, called here with the instants the workflow
   would give them (the workflow itself waits on its 20-day timer, which is
   never skipped): ``close_bidding`` (the bids counted, the commitments
   published), the keys revealed in the window (straight into the database,
   not timed: it is the bidders' act), ``close_decryption`` (every bid's
   ciphertext digest and key commitment checked and the bid decrypted; the
   outcome published), then the evaluation's last step: the 5-member
   committee's score sheets are put in the database except the last one
   (not timed: experts' acts), and the last sheet is recorded with
   ``record_tender_step``, which ranks the bids and publishes the candidates.
   Each sheet is added to its bid's and its member's tallies as it is recorded
   (``Evaluations.add_sheet``, the experts' acts, not timed), so the ranking
   reads a row per bid, not a row per sheet.
   Temporal's own round trips (3 activities) are not in it.
3. **Crypto floor**, in the same round: the same checks in a plain loop over
   the same bids held in memory: SHA-256 of each envelope against its
   digest, the key commitment recomputed, AES-256-GCM decryption.

Printed: per round, the submission figures and the opening's parts in ms
beside the floor; then the medians and the ratio opening / floor (aim:
<= 2).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.figures import latency_histogram, median
from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from kernel.pki import SAMPLE_SYSTEMS, ensure_pki
from kernel.signing import Signed, TrustedKeys, public_keys_dir, service_signer, trust_in_workflows
from kernel.temporal import SEARCH_ATTRIBUTES, TemporalSecurity, data_converter
from services.trading.app import tender_steps
from services.trading.db.repository import TradingUnitOfWork
from services.trading.domain.sealed_bids import (
    HEADER_BYTES,
    MAGIC,
    MAX_DOCUMENT_BYTES,
    SealedBid,
    associated_data,
    envelope_sha256,
    key_commitment_of,
    seal_bid,
)
from services.trading.domain.tenders import Bidder, Committee
from services.trading.main import DEFINITION
from tests.support import as_official, register_system, service_under_test
from workflows import tender_contract as t
from workflows.approval_contract import SignedStatement, as_statement
from workflows.tender import TenderWorkflow

OFFICER = as_official("ZWFWZX-007")
SUBMIT = "govhall.trading.v1.TradingService/SubmitSealedBid"
#: The committee whose sheets the ranking reads (experts' ids of the sample pool).
MEMBERS = ("EX-0002", "EX-0003", "EX-0019", "EX-0025", "EX-0045")
FIRST_BIDDER = 5000
AIM = 2.0
#: The largest filler: the document stays within what a bidder may seal.
MAX_DOCUMENT_KIB = MAX_DOCUMENT_BYTES // 1024 - 1
BIN = Path(sys.executable).parent


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.trading", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bids", type=int, default=1000, help="sealed bids in the tender")
    parser.add_argument("--concurrency", type=int, default=20,
                        help="SubmitSealedBid calls in flight")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (one tender each)")
    parser.add_argument("--document-kib", type=int, default=0,
                        help="KiB of random filler (base64 text) in each bid document; "
                             "0: the small document alone")
    args = parser.parse_args(argv)
    if not 3 <= args.bids <= 4999:
        parser.error("--bids is 3 to 4999")
    if not 0 <= args.document_kib <= MAX_DOCUMENT_KIB:
        parser.error(f"--document-kib is 0 to {MAX_DOCUMENT_KIB}")
    if args.concurrency < 1 or args.repeat < 1:
        parser.error("--concurrency and --repeat are 1 at least")
    return args


@dataclass
class Round:
    number: int
    bids: int
    submitted: int = 0
    submit_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    #: The opening's parts, in seconds: close_bidding, close_decryption, ranking.
    parts: dict[str, float] = field(default_factory=dict)
    floor_seconds: float = 0.0
    candidates: list[str] = field(default_factory=list)

    @property
    def bids_per_second(self) -> float:
        return self.submitted / self.submit_seconds if self.submit_seconds else 0.0

    @property
    def opening_seconds(self) -> float:
        return sum(self.parts.values())

    @property
    def ratio(self) -> float:
        return self.opening_seconds / self.floor_seconds if self.floor_seconds else float("nan")

    def percentile_ms(self, percent: float) -> float:
        histogram = latency_histogram()
        for seconds in self.latencies:
            histogram.record_value(max(1, round(seconds * 1_000_000)))
        if not self.latencies:
            return float("nan")
        return float(histogram.get_value_at_percentile(percent)) / 1000


@dataclass(frozen=True)
class Bid:
    bidder_id: str
    sealed: SealedBid
    key: bytes


def crypto_floor(tender_no: str, bids: Sequence[Bid]) -> float:
    """Seconds for the opening's checks alone, in a plain loop over bids in memory."""
    started = time.perf_counter()
    for bid in bids:
        envelope = bid.sealed.envelope
        if not hmac.compare_digest(envelope_sha256(envelope), bid.sealed.ciphertext_sha256):
            raise AssertionError("digest")
        commitment = key_commitment_of(bid.key, tender_number=tender_no,
                                       bidder_id=bid.bidder_id,
                                       ciphertext_sha256=bid.sealed.ciphertext_sha256)
        if not hmac.compare_digest(commitment, bid.sealed.key_commitment):
            raise AssertionError("commitment")
        AESGCM(bid.key).decrypt(envelope[len(MAGIC) + 1:HEADER_BYTES], envelope[HEADER_BYTES:],
                                associated_data(tender_number=tender_no,
                                                bidder_id=bid.bidder_id))
    return time.perf_counter() - started


def bid_document(index: int, *, kib: int = 0) -> bytes:
    """Bid ``index``'s JSON document: a distinctive price (so the ranking has work to do)
    and, with ``kib`` > 0, an "annex" of exactly ``kib`` KiB of base64 text of random
    bytes (a realistic bid's size; random, so no two bids' documents are alike)."""
    document: dict[str, object] = {"price_fen": 400_000_000 + 7919 * index,
                                   "offer": f"bench-offer-{uuid.uuid4()}"}
    if kib:
        # 3 random bytes are 4 characters of base64: 768 bytes make 1 KiB of text.
        document["annex"] = base64.b64encode(os.urandom(768 * kib)).decode("ascii")
    return json.dumps(document).encode()


def _stamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def _bidder(index: int) -> str:
    return f"BD-{FIRST_BIDDER + index:04d}"


def _system(index: int, concurrency: int) -> str:
    return f"bench-bidders-{index % concurrency:03d}"


class Bench:
    def __init__(self, env: WorkflowEnvironment, trading: Any, args: argparse.Namespace) -> None:
        self.env = env
        self.trading = trading
        self.args = args
        self.engine = trading.running.engine
        pki = trading.pki_dir
        self.keys = TrustedKeys.load(public_keys_dir(pki))
        self.signer = service_signer(pki, "trading")
        self.channels: dict[str, grpc.aio.Channel] = {}

    def stub(self, system: str = "trading-platform") -> Any:
        if system not in self.channels:
            self.channels[system] = self.trading.channel(system)
        return trading_pb2_grpc.TradingServiceStub(self.channels[system])

    def uow(self) -> TradingUnitOfWork:
        return TradingUnitOfWork(self.engine)

    def register_bidders(self) -> None:
        for k in range(min(self.args.concurrency, self.args.bids)):
            register_system(self.trading, _system(k, self.args.concurrency), rpcs=[SUBMIT],
                            speaks_for=[])
        with self.uow() as unit:
            for index in range(self.args.bids):
                unit.bidders.add(Bidder(_bidder(index), f"投标人{index}",
                                        _system(index, self.args.concurrency)))
            unit.commit()

    async def announce(self) -> tuple[str, datetime]:
        project = (await self.stub().RegisterProject(pb.RegisterProjectRequest(
            request_id=str(uuid.uuid4()), category=pb.TRADING_CATEGORY_CONSTRUCTION,
            title="基准测试道路工程", estimated_value_fen=500_000_000,
            funding_source=pb.FUNDING_SOURCE_PUBLIC, department_code="JYJ"),
            metadata=OFFICER)).project
        now = await self.env.get_current_time()
        tender = (await self.stub().AnnounceTender(pb.AnnounceTenderRequest(
            request_id=str(uuid.uuid4()), project_no=project.project_no,
            bid_deadline=_stamp(now + timedelta(days=20, minutes=10))),
            metadata=OFFICER)).tender
        return tender.tender_no, tender.bid_deadline.ToDatetime(tzinfo=UTC)

    async def submit(self, tender_no: str, bids: list[Bid], figures: Round) -> None:
        queue: asyncio.Queue[tuple[int, Bid]] = asyncio.Queue()
        for item in enumerate(bids):
            queue.put_nowait(item)

        async def client() -> None:
            while not queue.empty():
                index, bid = queue.get_nowait()
                stub = self.stub(_system(index, self.args.concurrency))
                started = time.perf_counter()
                await stub.SubmitSealedBid(pb.SubmitSealedBidRequest(
                    tender_no=tender_no, bidder_id=bid.bidder_id,
                    ciphertext=bid.sealed.envelope,
                    ciphertext_sha256=bid.sealed.ciphertext_sha256,
                    key_commitment=bid.sealed.key_commitment))
                figures.latencies.append(time.perf_counter() - started)
                figures.submitted += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(self.args.concurrency)))
        figures.submit_seconds = time.perf_counter() - started

    def _announcement(self, tender_no: str) -> SignedStatement:
        with self.uow() as unit:
            return as_statement(Signed.from_dict(unit.tenders.announcement(tender_no)))

    def _timed(self, figures: Round, part: str, call: Any, **arguments: Any) -> Any:
        started = time.perf_counter()
        result = call(uow=self.uow, keys=self.keys, signer=self.signer, **arguments)
        figures.parts[part] = time.perf_counter() - started
        return result

    def open(self, tender_no: str, deadline: datetime, bids: list[Bid],
             figures: Round) -> None:
        announcement = self._announcement(tender_no)
        at = deadline + timedelta(minutes=1)
        closed = self._timed(figures, "close_bidding", tender_steps.close_bidding,
                             step=t.TenderStep(tender_no, announcement, at, "deadline",
                                               deadline))
        assert closed.opened and closed.bids == len(bids), closed
        with self.uow() as unit:
            for bid in bids:
                unit.tenders.reveal(tender_no, bid.bidder_id, bid.key,
                                    at=at + timedelta(minutes=5))
            unit.commit()
            tender = unit.tenders.get(tender_no)
            assert tender is not None
            window = timedelta(seconds=tender.decryption_window_seconds)
        at += window + timedelta(seconds=1)
        decrypted = self._timed(figures, "close_decryption", tender_steps.close_decryption,
                                step=t.TenderStep(tender_no, announcement, at,
                                                  "decryption_closed", deadline))
        assert decrypted.stage == t.Stage.EVALUATION, decrypted
        last = (MEMBERS[-1], bids[-1].bidder_id)
        with self.uow() as unit:
            unit.evaluations.plan_committee(Committee(tender_no, "DR-2026-9999",
                                                      len(MEMBERS), ()))
            unit.evaluations.seat(tender_no, MEMBERS, at=at)
            for bid in bids:
                for member in MEMBERS:
                    if (member, bid.bidder_id) != last:
                        unit.evaluations.add_sheet(
                            tender_no, member_id=member, bidder_id=bid.bidder_id,
                            compliant=True, technical=0, business=0, system="bench",
                            at=at, statement={})
            unit.commit()
        body = t.tender_statement_body(
            kind=t.StatementKind.SCORE_SHEET, tender_no=tender_no, official_id=last[0],
            department_code="committee", roles=[], system="bench", issued_at=at,
            request_id=str(uuid.uuid4()), member_id=last[0], bidder_id=last[1],
            compliant=True)
        statement = as_statement(self.signer.sign(body))
        ranked = self._timed(figures, "rank_and_publish", tender_steps.record_step,
                             step=t.TenderStep(tender_no, statement, at, "scored", deadline))
        assert ranked.stage == t.Stage.CANDIDATES, ranked
        figures.candidates = list(ranked.candidates)

    async def round(self, number: int) -> Round:
        figures = Round(number, self.args.bids)
        tender_no, deadline = await self.announce()
        bids = []
        for index in range(self.args.bids):
            bidder = _bidder(index)
            sealed, key = seal_bid(bid_document(index, kib=self.args.document_kib),
                                   tender_number=tender_no, bidder_id=bidder)
            bids.append(Bid(bidder, sealed, key))
        await self.submit(tender_no, bids, figures)
        await asyncio.to_thread(self.open, tender_no, deadline, bids, figures)
        figures.floor_seconds = crypto_floor(tender_no, bids)
        return figures

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(None)


def report(rounds: Sequence[Round]) -> str:
    lines = ["round  bids  bids/s  p50 ms  p99 ms  close_bidding ms  close_decryption ms  "
             "rank ms  opening ms  floor ms  opening/floor"]
    for r in rounds:
        lines.append(
            f"{r.number:>5}  {r.bids:>4}  {r.bids_per_second:>6.1f}  "
            f"{r.percentile_ms(50):>6.1f}  {r.percentile_ms(99):>6.1f}  "
            f"{r.parts.get('close_bidding', 0) * 1000:>16.1f}  "
            f"{r.parts.get('close_decryption', 0) * 1000:>19.1f}  "
            f"{r.parts.get('rank_and_publish', 0) * 1000:>7.1f}  "
            f"{r.opening_seconds * 1000:>10.1f}  {r.floor_seconds * 1000:>8.1f}  "
            f"{r.ratio:>13.2f}")
    ratio = median([r.ratio for r in rounds])
    verdict = "met" if ratio <= AIM else "NOT met"
    lines += [
        f"median over {len(rounds)} rounds: submission "
        f"{median([r.bids_per_second for r in rounds]):.1f} bids/s, p99 "
        f"{median([r.percentile_ms(99) for r in rounds]):.1f} ms; opening "
        f"{median([r.opening_seconds for r in rounds]) * 1000:.1f} ms, crypto floor "
        f"{median([r.floor_seconds for r in rounds]) * 1000:.1f} ms",
        f"median ratio opening / crypto floor: {ratio:.2f}; aim <= {AIM:.2f}: {verdict}",
        f"candidates (round 1): {', '.join(rounds[0].candidates)}" if rounds else ""]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> list[Round]:
    scratch = Path(tempfile.mkdtemp(prefix="govhall-bench-trading-"))
    pki = scratch / "pki"
    ensure_pki(pki, SAMPLE_SYSTEMS)
    security = TemporalSecurity.embedded(pki)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=data_converter(security.codec))
    rounds: list[Round] = []
    try:
        await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace=env.client.namespace, search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type)
                for key in SEARCH_ATTRIBUTES}))
        prefix = f"bench{uuid.uuid4().hex[:8]}-"
        async with service_under_test(
                DEFINITION, database_url=f"sqlite:///{scratch / 'trading.sqlite3'}",
                pki_dir=pki, temporal_address=str(env.client.service_client.config.target_host),
                task_queue_prefix=prefix, run_activity_worker=True) as trading:
            trust_in_workflows(TrustedKeys.load(public_keys_dir(pki)))
            bench = Bench(env, trading, args)
            async with Worker(env.client, task_queue=f"{prefix}workflows",
                              workflows=[TenderWorkflow]):
                try:
                    bench.register_bidders()
                    for number in range(1, args.repeat + 1):
                        rounds.append(await bench.round(number))
                        print(report(rounds[-1:]).splitlines()[1], flush=True)
                finally:
                    await bench.close()
    finally:
        await env.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
    return rounds


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    print(f"trading bench: {args.bids} bids, concurrency {args.concurrency}, "
          f"{args.repeat} round(s), bid document {len(bid_document(0, kib=args.document_kib))} "
          f"bytes (--document-kib {args.document_kib})", flush=True)
    rounds = asyncio.run(run(args))
    print(report(rounds))


if __name__ == "__main__":
    main()

