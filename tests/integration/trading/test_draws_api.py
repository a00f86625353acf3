"""Verifiable draws and the public feed over real gRPC, on SQLite and PostgreSQL.

The witnesses are two supervisors of the discipline inspection group
(JJZ-001, JJZ-002), who reveal through the supervision system, and a
trading officer (ZWFWZX-008), who reveals through the trading platform; the
draw is opened by another trading officer (ZWFWZX-007).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from kernel.signing import public_keys_dir
from services.trading.db import tables
from services.trading.main import DEFINITION
from tests.integration.trading.conftest import OTHER_TRADING_OFFICER, TRADING_OFFICER
from tests.support import (
    ServiceUnderTest,
    as_official,
    field_violations,
    fresh_database_url,
    service_under_test,
)

ROOT = Path(__file__).resolve().parents[3]

SUPERVISOR, OTHER_SUPERVISOR = "JJZ-001", "JJZ-002"
WITNESSES = (SUPERVISOR, OTHER_TRADING_OFFICER, OTHER_SUPERVISOR)
#: Which system reveals for which witness: the one that may speak for them.
SYSTEM_OF = {SUPERVISOR: "supervision-system", OTHER_SUPERVISOR: "supervision-system",
             OTHER_TRADING_OFFICER: "trading-platform", TRADING_OFFICER: "trading-platform"}
AGENCIES = [f"AG-{n:03d}" for n in range(1, 8)]
TABLES = (tables.feed_entries, tables.draws, tables.draw_seeds, tables.audit_log)


@pytest.fixture
async def venue(backend: str, tmp_path: Path,
                pki_dir: Path) -> AsyncIterator[ServiceUnderTest]:
    """The trading service, checking for reveal deadlines every 50 ms."""
    url = fresh_database_url(backend, "trading", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  draw_close_poll_seconds=0.05) as service:
        yield service


@dataclass
class Clients:
    service: ServiceUnderTest
    channels: dict[str, grpc.aio.Channel]

    def stub(self, system: str) -> trading_pb2_grpc.TradingServiceAsyncStub:
        if system not in self.channels:
            self.channels[system] = self.service.channel(system)
        return trading_pb2_grpc.TradingServiceStub(self.channels[system])

    def rows(self) -> dict[str, list[str]]:
        """Every row of the draw tables and the audit log: equal means nothing was written."""
        with self.service.running.engine.connect() as connection:
            return {t.name: sorted(repr(tuple(r)) for r in connection.execute(select(t)))
                    for t in TABLES}


@pytest.fixture
async def clients(venue: ServiceUnderTest) -> AsyncIterator[Clients]:
    made = Clients(venue, {})
    yield made
    for channel in made.channels.values():
        await channel.close(None)


def _seeds() -> dict[str, bytes]:
    return {w: os.urandom(32) for w in WITNESSES}


def _deadline(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC) + timedelta(seconds=seconds))
    return stamp


def _open_request(draw_id: str, seeds: dict[str, bytes], *, candidates: Sequence[str] = AGENCIES,
                  count: int = 1, deadline_seconds: float = 3600) -> pb.OpenDrawRequest:
    return pb.OpenDrawRequest(
        draw_id=draw_id, purpose=pb.DRAW_PURPOSE_AGENCY_LOTTERY,
        title="沈阳市第一中学新校区建设项目招标代理",
        candidates=list(candidates),
        witnesses=[pb.DrawWitness(official_id=w, commitment=hashlib.sha256(s).hexdigest())
                   for w, s in seeds.items()],
        count=count, reveal_deadline=_deadline(deadline_seconds))


async def _reveal(clients: Clients, draw_id: str, witness: str, seed: bytes) -> pb.Draw:
    return (await clients.stub(SYSTEM_OF[witness]).RevealSeed(
        pb.RevealSeedRequest(draw_id=draw_id, seed=seed.hex()),
        metadata=as_official(witness))).draw


async def _feed(clients: Clients, system: str = "hotline-12345") -> list[pb.FeedEntry]:
    entries: list[pb.FeedEntry] = []
    cursor = 0
    while True:
        page = await clients.stub(system).ListFeed(pb.ListFeedRequest(cursor=cursor,
                                                                      page_size=7))
        if not page.entries:
            assert page.next_cursor == cursor
            return entries
        entries += page.entries
        cursor = page.next_cursor


def _expected(seeds: Sequence[bytes], candidates: Sequence[str]) -> tuple[str, list[str]]:
    """The scheme of docs/draws.md, written out here a third time."""
    randomness = hashlib.sha256(b"".join(seeds)).digest()
    tickets = {c: hmac.new(randomness, c.encode(), hashlib.sha256).digest() for c in candidates}
    return randomness.hex(), sorted(candidates, key=lambda c: tickets[c])


def _export(entries: Sequence[pb.FeedEntry], path: Path) -> Path:
    path.write_text(json.dumps({"entries": [json_format.MessageToDict(e) for e in entries]}),
                    "utf-8")
    return path


def _trading_keys(service: ServiceUnderTest) -> list[str]:
    return [str(p) for p in sorted((public_keys_dir(service.pki_dir) / "trading").glob("*.pub"))]


def _tool(*args: str) -> tuple[int, str]:
    """``python -m tools.verify_draw ARGS``: its exit status and what it printed."""
    done = subprocess.run([sys.executable, "-m", "tools.verify_draw", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, done.stdout + done.stderr


def _verify(service: ServiceUnderTest, feed: Path, *extra: str) -> tuple[int, str]:
    keys = [arg for key in _trading_keys(service) for arg in ("--key", key)]
    return _tool("--feed", str(feed), *keys, *extra)


async def _wait_for_state(clients: Clients, draw_id: str, state: int,
                          within: float = 20.0) -> pb.Draw:
    deadline = time.monotonic() + within
    while True:
        draw = (await clients.stub("hotline-12345").GetDraw(
            pb.GetDrawRequest(draw_id=draw_id))).draw
        if draw.state == state or time.monotonic() > deadline:
            return draw
        await asyncio.sleep(0.05)


async def test_a_draw_is_published_before_any_seed_and_drawn_from_all_seeds(
        clients: Clients, tmp_path: Path) -> None:
    seeds = _seeds()
    opened = (await clients.stub("trading-platform").OpenDraw(
        _open_request("DR-2026-0001", seeds, count=2),
        metadata=as_official(TRADING_OFFICER))).draw
    assert opened.state == pb.DRAW_STATE_OPEN and opened.opened_sequence == 1
    feed = await _feed(clients)
    assert [(e.sequence, e.kind, e.subject) for e in feed] == [
        (1, "draw.opened", "draw/DR-2026-0001")]
    published = json.loads(feed[0].body)
    assert feed[0].body_sha256 == hashlib.sha256(feed[0].body.encode()).hexdigest()
    assert published["signer"] == "trading"
    assert published["body"]["candidates"] == AGENCIES
    assert [w["commitment"] for w in published["body"]["witnesses"]] == [
        hashlib.sha256(seeds[w]).hexdigest() for w in WITNESSES]

    # Seeds come in out of order; none is published before the result.
    for witness in (OTHER_SUPERVISOR, SUPERVISOR):
        draw = await _reveal(clients, "DR-2026-0001", witness, seeds[witness])
        assert draw.state == pb.DRAW_STATE_OPEN
    assert len(await _feed(clients)) == 1
    assert [w.revealed for w in draw.witnesses] == [True, False, True]

    drawn = await _reveal(clients, "DR-2026-0001", OTHER_TRADING_OFFICER,
                          seeds[OTHER_TRADING_OFFICER])
    randomness, order = _expected([seeds[w] for w in WITNESSES], AGENCIES)
    assert drawn.state == pb.DRAW_STATE_DRAWN
    assert (drawn.randomness, list(drawn.order), list(drawn.drawn)) == (
        randomness, order, order[:2])
    assert list(drawn.missing_witnesses) == []
    feed = await _feed(clients)
    assert [(e.sequence, e.kind) for e in feed] == [(1, "draw.opened"), (2, "draw.drawn")]
    assert drawn.result_sequence == 2
    result = json.loads(feed[1].body)["body"]
    assert [r["seed"] for r in result["revealed"]] == [seeds[w].hex() for w in WITNESSES]
    assert (await clients.stub("supervision-system").ReadFeed(
        pb.ReadFeedRequest(sequence=2))).entry == feed[1]

    status, out = _verify(clients.service, _export(feed, tmp_path / "feed.json"))
    assert status == 0, out
    assert f"draw DR-2026-0001: VALID — drew {order[0]}, {order[1]} of 7 candidates" in out


async def test_the_verifier_reads_the_feed_from_the_service(
        clients: Clients, tmp_path: Path) -> None:
    seeds = _seeds()
    await clients.stub("operator").OpenDraw(_open_request("DR-2026-0002", seeds),
                                            metadata=as_official(TRADING_OFFICER))
    for witness, seed in seeds.items():
        await _reveal(clients, "DR-2026-0002", witness, seed)
    saved = tmp_path / "saved.json"
    status, out = await asyncio.to_thread(
        _tool, "--address", clients.service.address, "--pki-dir", str(clients.service.pki_dir),
        "--system", "hotline-12345", "--save", str(saved))
    assert status == 0 and "draw DR-2026-0002: VALID" in out, out
    status, out = _verify(clients.service, saved, "--draw", "DR-2026-0002")
    assert status == 0 and "draw DR-2026-0002: VALID" in out, out


async def test_a_witness_who_never_reveals_is_named_missing_at_the_deadline(
        clients: Clients, tmp_path: Path) -> None:
    seeds = _seeds()
    await clients.stub("trading-platform").OpenDraw(
        _open_request("DR-2026-0003", seeds, deadline_seconds=1.5),
        metadata=as_official(TRADING_OFFICER))
    for witness in (SUPERVISOR, OTHER_SUPERVISOR):
        await _reveal(clients, "DR-2026-0003", witness, seeds[witness])
    draw = await _wait_for_state(clients, "DR-2026-0003", pb.DRAW_STATE_DRAWN)
    assert draw.state == pb.DRAW_STATE_DRAWN
    assert list(draw.missing_witnesses) == [OTHER_TRADING_OFFICER]
    randomness, order = _expected([seeds[SUPERVISOR], seeds[OTHER_SUPERVISOR]], AGENCIES)
    assert (draw.randomness, list(draw.drawn)) == (randomness, order[:1])
    # The late witness is refused, and nothing changes.
    before = clients.rows()
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await _reveal(clients, "DR-2026-0003", OTHER_TRADING_OFFICER,
                      seeds[OTHER_TRADING_OFFICER])
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert clients.rows() == before
    status, out = _verify(clients.service, _export(await _feed(clients), tmp_path / "f.json"))
    assert status == 0 and f"VALID — drew {draw.drawn[0]}" in out, out
    assert f"missing {OTHER_TRADING_OFFICER}" in out


async def test_with_fewer_than_two_seeds_at_the_deadline_the_draw_fails_publicly(
        clients: Clients, tmp_path: Path) -> None:
    seeds = _seeds()
    await clients.stub("trading-platform").OpenDraw(
        _open_request("DR-2026-0004", seeds, deadline_seconds=1.0),
        metadata=as_official(TRADING_OFFICER))
    await _reveal(clients, "DR-2026-0004", SUPERVISOR, seeds[SUPERVISOR])
    draw = await _wait_for_state(clients, "DR-2026-0004", pb.DRAW_STATE_FAILED)
    assert draw.state == pb.DRAW_STATE_FAILED
    assert list(draw.missing_witnesses) == [OTHER_TRADING_OFFICER, OTHER_SUPERVISOR]
    assert list(draw.drawn) == [] and draw.randomness == ""
    feed = await _feed(clients)
    assert [e.kind for e in feed] == ["draw.opened", "draw.failed"]
    status, out = _verify(clients.service, _export(feed, tmp_path / "f.json"))
    assert status == 0 and "VALID — failed: 1 seed(s) revealed" in out, out


async def _refused(clients: Clients, call: object, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    before = clients.rows()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call  # type: ignore[misc]
    assert refused.value.code() == code, refused.value.details()
    assert clients.rows() == before
    return refused.value


async def test_bad_reveals_are_refused_and_change_nothing(clients: Clients) -> None:
    seeds = _seeds()
    await clients.stub("trading-platform").OpenDraw(_open_request("DR-2026-0005", seeds),
                                                    metadata=as_official(TRADING_OFFICER))
    wrong = await _refused(clients, _reveal(clients, "DR-2026-0005", SUPERVISOR,
                                            seeds[OTHER_SUPERVISOR]),
                           grpc.StatusCode.INVALID_ARGUMENT)
    assert field_violations(wrong) == ["seed"]
    # The official who opened the draw is no witness of it.
    not_witness = await _refused(clients, _reveal(clients, "DR-2026-0005", TRADING_OFFICER,
                                                  seeds[SUPERVISOR]),
                                 grpc.StatusCode.PERMISSION_DENIED)
    assert "not a witness" in (not_witness.details() or "")
    # The supervision system may not speak for the trading officer who witnesses.
    spoken = await _refused(clients, clients.stub("supervision-system").RevealSeed(
        pb.RevealSeedRequest(draw_id="DR-2026-0005", seed=seeds[OTHER_TRADING_OFFICER].hex()),
        metadata=as_official(OTHER_TRADING_OFFICER)), grpc.StatusCode.PERMISSION_DENIED)
    assert "may not speak for" in (spoken.details() or "")
    # A system the registry does not let reveal at all.
    await _refused(clients, clients.stub("hotline-12345").RevealSeed(
        pb.RevealSeedRequest(draw_id="DR-2026-0005", seed=seeds[SUPERVISOR].hex()),
        metadata=as_official(SUPERVISOR)), grpc.StatusCode.PERMISSION_DENIED)
    await _refused(clients, _reveal(clients, "DR-2026-9999", SUPERVISOR, seeds[SUPERVISOR]),
                   grpc.StatusCode.NOT_FOUND)
    # A retried reveal changes nothing; the last one draws; any reveal after is refused.
    await _reveal(clients, "DR-2026-0005", SUPERVISOR, seeds[SUPERVISOR])
    before = clients.rows()
    again = await _reveal(clients, "DR-2026-0005", SUPERVISOR, seeds[SUPERVISOR])
    assert again.state == pb.DRAW_STATE_OPEN and clients.rows() == before
    await _reveal(clients, "DR-2026-0005", OTHER_SUPERVISOR, seeds[OTHER_SUPERVISOR])
    last = await _reveal(clients, "DR-2026-0005", OTHER_TRADING_OFFICER,
                         seeds[OTHER_TRADING_OFFICER])
    assert last.state == pb.DRAW_STATE_DRAWN
    after = await _refused(clients, _reveal(clients, "DR-2026-0005", SUPERVISOR,
                                            seeds[SUPERVISOR]),
                           grpc.StatusCode.FAILED_PRECONDITION)
    assert "drawn" in (after.details() or "")


async def test_bad_draws_are_refused_and_change_nothing(clients: Clients) -> None:
    seeds = _seeds()
    platform = clients.stub("trading-platform")
    officer = as_official(TRADING_OFFICER)

    async def refused_open(request: pb.OpenDrawRequest, field: str,
                           code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT,
                           *, who: str = TRADING_OFFICER) -> None:
        error = await _refused(clients, platform.OpenDraw(request, metadata=as_official(who)),
                               code)
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            assert any(f.startswith(field) for f in field_violations(error)), (
                field, field_violations(error), error.details())

    await refused_open(_open_request("DR-2026-0010", seeds, candidates=["AG-001"]),
                       "candidates")
    await refused_open(_open_request("DR-2026-0010", seeds, candidates=["AG-001", "AG-002"],
                                     count=3), "count")
    await refused_open(_open_request("DR-2026-0010", seeds,
                                     candidates=["AG-001", "AG-002", "AG-001"]), "candidates")
    await refused_open(_open_request("DR-2026-0010", {SUPERVISOR: seeds[SUPERVISOR]}),
                       "witnesses")
    await refused_open(_open_request("DR-2026-0010", {SUPERVISOR: seeds[SUPERVISOR],
                                                      TRADING_OFFICER: seeds[OTHER_SUPERVISOR]}),
                       "witnesses")
    await refused_open(_open_request("DR-2026-0010", {SUPERVISOR: seeds[SUPERVISOR],
                                                      "FGW-001": seeds[OTHER_SUPERVISOR]}),
                       "witnesses[1].official_id")
    await refused_open(_open_request("DR-2026-0010", {SUPERVISOR: seeds[SUPERVISOR],
                                                      "JJZ-999": seeds[OTHER_SUPERVISOR]}),
                       "witnesses[1].official_id")
    twice = _open_request("DR-2026-0010", seeds)
    twice.witnesses[1].commitment = twice.witnesses[0].commitment
    await refused_open(twice, "witnesses")
    await refused_open(_open_request("DR-2026-0010", seeds, deadline_seconds=-60),
                       "reveal_deadline")
    await refused_open(_open_request("DR-2026-0010", seeds, deadline_seconds=31 * 86400),
                       "reveal_deadline")
    # Only a trading officer opens a draw.
    await refused_open(_open_request("DR-2026-0010", seeds), "", grpc.StatusCode.PERMISSION_DENIED,
                       who="ZWFWZX-004")
    # A retry of the same draw returns it; another draw under its id is refused.
    first = await platform.OpenDraw(_open_request("DR-2026-0010", seeds), metadata=officer)
    before = clients.rows()
    retry = pb.OpenDrawRequest()
    retry.CopyFrom(_open_request("DR-2026-0010", seeds))
    retry.reveal_deadline.CopyFrom(first.draw.reveal_deadline)
    assert (await platform.OpenDraw(retry, metadata=officer)).draw == first.draw
    assert clients.rows() == before
    await refused_open(_open_request("DR-2026-0010", seeds, count=2), "",
                       grpc.StatusCode.ALREADY_EXISTS)


async def test_no_reader_misses_or_rereads_an_entry_under_concurrent_writers(
        clients: Clients) -> None:
    """Four writers open draws at once while a reader follows the feed with its cursor."""
    writers, draws_each = 4, 6
    total = writers * draws_each
    seeds = _seeds()
    done = asyncio.Event()

    async def write(writer: int) -> None:
        stub = clients.stub("trading-platform" if writer % 2 else "operator")
        for n in range(draws_each):
            await stub.OpenDraw(_open_request(f"DR-2027-{writer}{n:03d}", seeds),
                                metadata=as_official(TRADING_OFFICER))

    async def read() -> list[int]:
        seen: list[int] = []
        cursor = 0
        stub = clients.stub("hotline-12345")
        while len(seen) < total:
            page = await stub.ListFeed(pb.ListFeedRequest(cursor=cursor, page_size=3))
            seen += [e.sequence for e in page.entries]
            cursor = page.next_cursor
            if not page.entries:
                if done.is_set() and len(seen) < total:
                    # Every writer finished: whatever is left is there to read now.
                    continue
                await asyncio.sleep(0.01)
        return seen

    reader = asyncio.create_task(read())
    await asyncio.gather(*(write(w) for w in range(writers)))
    done.set()
    seen = await asyncio.wait_for(reader, timeout=30)
    assert seen == list(range(1, total + 1))
    feed = await _feed(clients)
    assert [e.sequence for e in feed] == seen
    assert {json.loads(e.body)["body"]["draw_id"] for e in feed} == {
        f"DR-2027-{w}{n:03d}" for w in range(writers) for n in range(draws_each)}
