"""Verifiable draws and the public feed over real gRPC, on SQLite and PostgreSQL.

The witnesses are two supervisors of the discipline inspection group
(JJZ-001, JJZ-002), who commit and reveal through the supervision system,
and a trading officer (ZWFWZX-008), who commits and reveals through the
trading platform; the draw is opened by another trading officer
(ZWFWZX-007) through the trading platform or the operator console, neither
of which may speak for the supervisors.
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
    register_system,
    service_under_test,
)

ROOT = Path(__file__).resolve().parents[3]

SUPERVISOR, OTHER_SUPERVISOR = "JJZ-001", "JJZ-002"
WITNESSES = (SUPERVISOR, OTHER_TRADING_OFFICER, OTHER_SUPERVISOR)
#: An order the service takes reveals in: the witness the opening system speaks for
#: first, the independent witnesses (the supervisors) after it.
REVEAL_ORDER = (OTHER_TRADING_OFFICER, OTHER_SUPERVISOR, SUPERVISOR)
#: Which system reveals for which witness: the one that may speak for them.
SYSTEM_OF = {SUPERVISOR: "supervision-system", OTHER_SUPERVISOR: "supervision-system",
             OTHER_TRADING_OFFICER: "trading-platform", TRADING_OFFICER: "trading-platform"}
AGENCIES = [f"AG-{n:03d}" for n in range(1, 8)]
TABLES = (tables.feed_entries, tables.draws, tables.draw_seeds, tables.draw_commitments,
          tables.audit_log)
GENESIS = "0" * 64


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


def _open_request(draw_id: str, witnesses: Sequence[str] = WITNESSES, *,
                  candidates: Sequence[str] = AGENCIES, count: int = 1,
                  deadline_seconds: float = 3600, commit_seconds: float = 1800,
                  title: str = "沈阳市第一中学新校区建设项目招标代理") -> pb.OpenDrawRequest:
    return pb.OpenDrawRequest(
        draw_id=draw_id, purpose=pb.DRAW_PURPOSE_AGENCY_LOTTERY, title=title,
        candidates=list(candidates), witness_ids=list(witnesses), count=count,
        commit_deadline=_deadline(commit_seconds), reveal_deadline=_deadline(deadline_seconds))


async def _commit(clients: Clients, draw_id: str, witness: str, seed: bytes) -> pb.Draw:
    return (await clients.stub(SYSTEM_OF[witness]).CommitSeed(
        pb.CommitSeedRequest(draw_id=draw_id, commitment=hashlib.sha256(seed).hexdigest()),
        metadata=as_official(witness))).draw


async def _open_and_commit(clients: Clients, request: pb.OpenDrawRequest,
                           seeds: dict[str, bytes], *, system: str = "trading-platform") -> pb.Draw:
    """Open the draw and have every witness commit: the draw is published."""
    await clients.stub(system).OpenDraw(request, metadata=as_official(TRADING_OFFICER))
    for witness in request.witness_ids:
        draw = await _commit(clients, request.draw_id, witness, seeds[witness])
    assert draw.state == pb.DRAW_STATE_OPEN
    return draw


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


def _expected(draw_id: str, seeds: Sequence[bytes],
              candidates: Sequence[str]) -> tuple[str, list[str]]:
    """The scheme of docs/draws.md, written out here a third time."""
    parts = [b"govhall-draw/3", draw_id.encode(), *seeds]
    randomness = hashlib.sha256(b"".join(len(p).to_bytes(4, "big") + p for p in parts)).digest()
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


def _link(entry: pb.FeedEntry) -> dict[str, object]:
    """The entry's signed place in the feed's chain."""
    link: dict[str, object] = json.loads(entry.body)["body"]["feed"]
    return link


def _assert_chained(feed: Sequence[pb.FeedEntry]) -> None:
    previous = GENESIS
    for entry in feed:
        assert _link(entry)["sequence"] == entry.sequence
        assert _link(entry)["previous_sha256"] == previous
        previous = entry.body_sha256


async def _wait_for_state(clients: Clients, draw_id: str, state: int,
                          within: float = 20.0) -> pb.Draw:
    deadline = time.monotonic() + within
    while True:
        draw = (await clients.stub("hotline-12345").GetDraw(
            pb.GetDrawRequest(draw_id=draw_id))).draw
        if draw.state == state or time.monotonic() > deadline:
            return draw
        await asyncio.sleep(0.05)



async def test_witnesses_commit_their_own_seeds_before_the_draw_is_published(
        clients: Clients, tmp_path: Path) -> None:
    seeds = _seeds()
    opened = (await clients.stub("trading-platform").OpenDraw(
        _open_request("DR-2026-0001", count=2), metadata=as_official(TRADING_OFFICER))).draw
    assert opened.state == pb.DRAW_STATE_COMMITTING and opened.opened_sequence == 0
    assert [w.commitment for w in opened.witnesses] == ["", "", ""]
    # Nothing is published, and no seed is taken, until every witness has committed;
    # until then nobody sees a commitment, only who has committed.
    for witness in (OTHER_SUPERVISOR, SUPERVISOR):
        draw = await _commit(clients, "DR-2026-0001", witness, seeds[witness])
        assert draw.state == pb.DRAW_STATE_COMMITTING
        assert [w.commitment for w in draw.witnesses] == ["", "", ""]
    shown = (await clients.stub("hotline-12345").GetDraw(
        pb.GetDrawRequest(draw_id="DR-2026-0001"))).draw
    assert [w.commitment for w in shown.witnesses] == ["", "", ""]
    assert [w.committed for w in shown.witnesses] == [True, False, True]
    assert [w.independent for w in shown.witnesses] == [True, False, True]
    assert await _feed(clients) == []
    early = await _refused(clients, _reveal(clients, "DR-2026-0001", SUPERVISOR,
                                            seeds[SUPERVISOR]),
                           grpc.StatusCode.FAILED_PRECONDITION)
    assert "commitments" in (early.details() or "")

    published = await _commit(clients, "DR-2026-0001", OTHER_TRADING_OFFICER,
                              seeds[OTHER_TRADING_OFFICER])
    assert published.state == pb.DRAW_STATE_OPEN and published.opened_sequence == 1
    feed = await _feed(clients)
    assert [(e.sequence, e.kind, e.subject) for e in feed] == [
        (1, "draw.opened", "draw/DR-2026-0001")]
    document = json.loads(feed[0].body)
    assert feed[0].body_sha256 == hashlib.sha256(feed[0].body.encode()).hexdigest()
    assert document["signer"] == "trading"
    assert document["body"]["candidates"] == AGENCIES
    assert [w["commitment"] for w in document["body"]["witnesses"]] == [
        hashlib.sha256(seeds[w]).hexdigest() for w in WITNESSES]
    assert [w["independent"] for w in document["body"]["witnesses"]] == [True, False, True]
    assert [w.commitment for w in published.witnesses] == [
        hashlib.sha256(seeds[w]).hexdigest() for w in WITNESSES]
    assert document["body"]["min_seeds"] == len(WITNESSES)
    assert document["body"]["scheme"] == "govhall-draw/3"

    # Seeds come in out of witness order; none is published before the result.
    for witness in (OTHER_TRADING_OFFICER, OTHER_SUPERVISOR):
        draw = await _reveal(clients, "DR-2026-0001", witness, seeds[witness])
        assert draw.state == pb.DRAW_STATE_OPEN
    assert len(await _feed(clients)) == 1
    assert [w.revealed for w in draw.witnesses] == [False, True, True]

    drawn = await _reveal(clients, "DR-2026-0001", SUPERVISOR, seeds[SUPERVISOR])
    randomness, order = _expected("DR-2026-0001", [seeds[w] for w in WITNESSES], AGENCIES)
    assert drawn.state == pb.DRAW_STATE_DRAWN
    assert (drawn.randomness, list(drawn.order), list(drawn.drawn)) == (
        randomness, order, order[:2])
    assert list(drawn.missing_witnesses) == []
    feed = await _feed(clients)
    assert [(e.sequence, e.kind) for e in feed] == [(1, "draw.opened"), (2, "draw.drawn")]
    _assert_chained(feed)
    assert drawn.result_sequence == 2
    result = json.loads(feed[1].body)["body"]
    assert [r["seed"] for r in result["revealed"]] == [seeds[w].hex() for w in WITNESSES]
    assert (await clients.stub("supervision-system").ReadFeed(
        pb.ReadFeedRequest(sequence=2))).entry == feed[1]

    status, out = _verify(clients.service, _export(feed, tmp_path / "feed.json"))
    assert status == 0, out
    assert f"draw DR-2026-0001: VALID — drew {order[0]}, {order[1]} of 7 candidates" in out


async def test_the_opening_system_cannot_commit_for_an_independent_witness(
        clients: Clients) -> None:
    """The attack of the review: the trading platform, speaking for the opener and for
    the trading officer who witnesses, invents the supervisor's commitment. It may not
    speak for the supervisor, so it cannot; the operator console neither."""
    await clients.stub("trading-platform").OpenDraw(
        _open_request("DR-2026-0006", (OTHER_TRADING_OFFICER, SUPERVISOR)),
        metadata=as_official(TRADING_OFFICER))
    invented = hashlib.sha256(b"a seed the platform chose").hexdigest()
    for system in ("trading-platform", "operator"):
        refused = await _refused(clients, clients.stub(system).CommitSeed(
            pb.CommitSeedRequest(draw_id="DR-2026-0006", commitment=invented),
            metadata=as_official(SUPERVISOR)), grpc.StatusCode.PERMISSION_DENIED)
        assert "may not speak for" in (refused.details() or "")
    # The witness the platform speaks for commits; the draw waits for the supervisor.
    draw = await _commit(clients, "DR-2026-0006", OTHER_TRADING_OFFICER, b"x" * 32)
    assert draw.state == pb.DRAW_STATE_COMMITTING and await _feed(clients) == []


async def test_a_draw_needs_a_witness_the_opening_system_may_not_speak_for(
        clients: Clients) -> None:
    """A system speaking for trading officers and supervisors alike could commit every
    seed itself: it may not open a draw none of whose witnesses is beyond its voice."""
    wide = register_system(
        clients.service, "trading-wide", rpcs=["govhall.trading.v1.TradingService/*"],
        speaks_for=[("ZWFWZX", "trading_officer"), ("JJZ", "supervisor")])
    stub = clients.stub(wide)
    refused = await _refused(clients, stub.OpenDraw(
        _open_request("DR-2026-0007", WITNESSES), metadata=as_official(TRADING_OFFICER)),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert field_violations(refused) == ["witness_ids"]
    assert "independent witness" in (refused.details() or "")
    # With a witness it may not speak for (a supervisor of another body), it may.
    narrow = register_system(
        clients.service, "trading-narrow", rpcs=["govhall.trading.v1.TradingService/*"],
        speaks_for=[("ZWFWZX", "trading_officer"), ("JJZ", "operator")])
    opened = await clients.stub(narrow).OpenDraw(
        _open_request("DR-2026-0007", WITNESSES), metadata=as_official(TRADING_OFFICER))
    assert opened.draw.state == pb.DRAW_STATE_COMMITTING


async def test_bad_commitments_are_refused_and_change_nothing(clients: Clients) -> None:
    seeds = _seeds()
    await clients.stub("operator").OpenDraw(_open_request("DR-2026-0008"),
                                            metadata=as_official(TRADING_OFFICER))
    # Not a witness (the opener), a system that may not commit at all, an unknown draw.
    await _refused(clients, clients.stub("trading-platform").CommitSeed(
        pb.CommitSeedRequest(draw_id="DR-2026-0008", commitment="ab" * 32),
        metadata=as_official(TRADING_OFFICER)), grpc.StatusCode.PERMISSION_DENIED)
    await _refused(clients, clients.stub("hotline-12345").CommitSeed(
        pb.CommitSeedRequest(draw_id="DR-2026-0008", commitment="ab" * 32),
        metadata=as_official(SUPERVISOR)), grpc.StatusCode.PERMISSION_DENIED)
    await _refused(clients, _commit(clients, "DR-2026-9999", SUPERVISOR, seeds[SUPERVISOR]),
                   grpc.StatusCode.NOT_FOUND)
    malformed = await _refused(clients, clients.stub("supervision-system").CommitSeed(
        pb.CommitSeedRequest(draw_id="DR-2026-0008", commitment="AB" * 32),
        metadata=as_official(SUPERVISOR)), grpc.StatusCode.INVALID_ARGUMENT)
    assert field_violations(malformed) == ["commitment"]
    await _commit(clients, "DR-2026-0008", SUPERVISOR, seeds[SUPERVISOR])
    # Another witness's commitment, a changed commitment: refused; a retry: the same draw.
    copied = await _refused(clients, _commit(clients, "DR-2026-0008", OTHER_SUPERVISOR,
                                             seeds[SUPERVISOR]),
                            grpc.StatusCode.INVALID_ARGUMENT)
    assert field_violations(copied) == ["commitment"]
    changed = await _refused(clients, _commit(clients, "DR-2026-0008", SUPERVISOR,
                                              seeds[OTHER_SUPERVISOR]),
                             grpc.StatusCode.FAILED_PRECONDITION)
    assert "cannot change" in (changed.details() or "")
    before = clients.rows()
    again = await _commit(clients, "DR-2026-0008", SUPERVISOR, seeds[SUPERVISOR])
    assert again.state == pb.DRAW_STATE_COMMITTING and clients.rows() == before


async def test_a_witness_who_does_not_commit_fails_the_draw_publicly(
        clients: Clients, tmp_path: Path) -> None:
    seeds = _seeds()
    await clients.stub("trading-platform").OpenDraw(
        _open_request("DR-2026-0009", commit_seconds=1.0),
        metadata=as_official(TRADING_OFFICER))
    for witness in (SUPERVISOR, OTHER_TRADING_OFFICER):
        await _commit(clients, "DR-2026-0009", witness, seeds[witness])
    draw = await _wait_for_state(clients, "DR-2026-0009", pb.DRAW_STATE_FAILED)
    assert draw.state == pb.DRAW_STATE_FAILED
    assert list(draw.missing_witnesses) == [OTHER_SUPERVISOR]
    feed = await _feed(clients)
    assert [e.kind for e in feed] == ["draw.failed"]
    body = json.loads(feed[0].body)["body"]
    assert body["stage"] == "commit" and body["missing"] == [OTHER_SUPERVISOR]
    assert "commitment" not in feed[0].body  # the commitments given stay unpublished
    shown = (await clients.stub("hotline-12345").GetDraw(
        pb.GetDrawRequest(draw_id="DR-2026-0009"))).draw
    assert [w.commitment for w in shown.witnesses] == ["", "", ""]
    assert [w.committed for w in shown.witnesses] == [True, True, False]
    await _refused(clients, _commit(clients, "DR-2026-0009", OTHER_SUPERVISOR,
                                    seeds[OTHER_SUPERVISOR]), grpc.StatusCode.FAILED_PRECONDITION)
    status, out = _verify(clients.service, _export(feed, tmp_path / "f.json"))
    assert status == 0, out
    assert f"VALID — failed before it was opened: {OTHER_SUPERVISOR} did not commit" in out


async def test_the_verifier_reads_the_feed_from_the_service(
        clients: Clients, tmp_path: Path) -> None:
    seeds = _seeds()
    await _open_and_commit(clients, _open_request("DR-2026-0002"), seeds, system="operator")
    for witness in REVEAL_ORDER:
        await _reveal(clients, "DR-2026-0002", witness, seeds[witness])
    saved = tmp_path / "saved.json"
    status, out = await asyncio.to_thread(
        _tool, "--address", clients.service.address, "--pki-dir", str(clients.service.pki_dir),
        "--system", "hotline-12345", "--save", str(saved))
    assert status == 0 and "draw DR-2026-0002: VALID" in out, out
    status, out = _verify(clients.service, saved, "--draw", "DR-2026-0002")
    assert status == 0 and "draw DR-2026-0002: VALID" in out, out


async def test_a_witness_who_never_reveals_fails_the_draw_at_the_deadline(
        clients: Clients, tmp_path: Path) -> None:
    """Nothing is drawn from the other seeds: withholding a seed cannot choose between
    results, it can only make the draw fail in the open, naming the witness."""
    seeds = _seeds()
    await _open_and_commit(clients, _open_request("DR-2026-0003", deadline_seconds=2.0,
                                                  commit_seconds=1.5), seeds)
    for witness in (OTHER_TRADING_OFFICER, SUPERVISOR):
        await _reveal(clients, "DR-2026-0003", witness, seeds[witness])
    draw = await _wait_for_state(clients, "DR-2026-0003", pb.DRAW_STATE_FAILED)
    assert draw.state == pb.DRAW_STATE_FAILED
    assert list(draw.missing_witnesses) == [OTHER_SUPERVISOR]
    assert list(draw.drawn) == [] and draw.randomness == ""
    # The late witness is refused, and nothing changes.
    late = await _refused(clients, _reveal(clients, "DR-2026-0003", OTHER_SUPERVISOR,
                                           seeds[OTHER_SUPERVISOR]),
                          grpc.StatusCode.FAILED_PRECONDITION)
    assert "failed" in (late.details() or "")
    feed = await _feed(clients)
    assert [e.kind for e in feed] == ["draw.opened", "draw.failed"]
    _assert_chained(feed)
    status, out = _verify(clients.service, _export(feed, tmp_path / "f.json"))
    assert status == 0 and "VALID — failed: 2 seed(s) revealed" in out, out
    assert f"missing {OTHER_SUPERVISOR}" in out


async def _refused(clients: Clients, call: object, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    before = clients.rows()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call  # type: ignore[misc]
    assert refused.value.code() == code, refused.value.details()
    assert clients.rows() == before
    return refused.value


async def test_an_independent_witness_reveals_after_every_other_witness(
        clients: Clients) -> None:
    """The supervisors, whom the opening system may not speak for, reveal last: until the
    trading officer's seed is in, theirs is refused and nothing is stored, so no seed
    that would give the result away sits in the database while a witness the opening
    system controls could still withhold its own."""
    seeds = _seeds()
    opened = await _open_and_commit(clients, _open_request("DR-2026-0013"), seeds)
    assert [w.independent for w in opened.witnesses] == [True, False, True]
    for witness in (SUPERVISOR, OTHER_SUPERVISOR):
        early = await _refused(clients, _reveal(clients, "DR-2026-0013", witness,
                                                seeds[witness]),
                               grpc.StatusCode.FAILED_PRECONDITION)
        assert "independent witness" in (early.details() or "")
        assert OTHER_TRADING_OFFICER in (early.details() or "")
    await _reveal(clients, "DR-2026-0013", OTHER_TRADING_OFFICER, seeds[OTHER_TRADING_OFFICER])
    await _reveal(clients, "DR-2026-0013", SUPERVISOR, seeds[SUPERVISOR])
    # The last independent seed computes and publishes the result in its transaction.
    drawn = await _reveal(clients, "DR-2026-0013", OTHER_SUPERVISOR, seeds[OTHER_SUPERVISOR])
    assert drawn.state == pb.DRAW_STATE_DRAWN and drawn.result_sequence == 2


async def test_a_commitment_serves_one_draw_only(clients: Clients) -> None:
    """A seed committed for one draw is refused for any later draw, by any witness."""
    seeds = _seeds()
    await _open_and_commit(clients, _open_request("DR-2026-0014"), seeds)
    await clients.stub("trading-platform").OpenDraw(_open_request("DR-2026-0015"),
                                                    metadata=as_official(TRADING_OFFICER))
    for witness, seed in ((SUPERVISOR, seeds[SUPERVISOR]),
                          (OTHER_SUPERVISOR, seeds[SUPERVISOR])):
        reused = await _refused(clients, _commit(clients, "DR-2026-0015", witness, seed),
                                grpc.StatusCode.ALREADY_EXISTS)
        assert "earlier draw" in (reused.details() or "")
    draw = await _commit(clients, "DR-2026-0015", SUPERVISOR, os.urandom(32))
    assert [w.committed for w in draw.witnesses] == [True, False, False]


async def test_one_commitment_given_to_two_draws_at_once_is_taken_once(
        clients: Clients) -> None:
    """Never INTERNAL: on PostgreSQL the loser's insert hits the commitment's primary key
    after the winner commits, and is answered ALREADY_EXISTS."""
    for draw_id in ("DR-2026-0016", "DR-2026-0017"):
        await clients.stub("trading-platform").OpenDraw(_open_request(draw_id),
                                                        metadata=as_official(TRADING_OFFICER))
    seed = os.urandom(32)
    answers = await asyncio.gather(*(
        _commit(clients, draw_id, witness, seed) for draw_id, witness in (
            ("DR-2026-0016", SUPERVISOR), ("DR-2026-0017", OTHER_SUPERVISOR),
            ("DR-2026-0016", OTHER_TRADING_OFFICER), ("DR-2026-0017", SUPERVISOR))),
        return_exceptions=True)
    taken = [a for a in answers if isinstance(a, pb.Draw)]
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert len(taken) == 1 and len(refused) == 3, answers
    assert all(r.code() in (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.INVALID_ARGUMENT)
               for r in refused), [(r.code(), r.details()) for r in refused]


async def test_bad_reveals_are_refused_and_change_nothing(clients: Clients) -> None:
    seeds = _seeds()
    await _open_and_commit(clients, _open_request("DR-2026-0005"), seeds)
    wrong = await _refused(clients, _reveal(clients, "DR-2026-0005", OTHER_TRADING_OFFICER,
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
    # A retried reveal changes nothing; the last one draws.
    await _reveal(clients, "DR-2026-0005", OTHER_TRADING_OFFICER, seeds[OTHER_TRADING_OFFICER])
    before = clients.rows()
    again = await _reveal(clients, "DR-2026-0005", OTHER_TRADING_OFFICER,
                          seeds[OTHER_TRADING_OFFICER])
    assert again.state == pb.DRAW_STATE_OPEN and clients.rows() == before
    await _reveal(clients, "DR-2026-0005", OTHER_SUPERVISOR, seeds[OTHER_SUPERVISOR])
    last = await _reveal(clients, "DR-2026-0005", SUPERVISOR, seeds[SUPERVISOR])
    assert last.state == pb.DRAW_STATE_DRAWN
    # The final reveal retried (its answer was lost): the recorded answer, nothing changed.
    before = clients.rows()
    for witness in (OTHER_TRADING_OFFICER, SUPERVISOR):
        retried = await _reveal(clients, "DR-2026-0005", witness, seeds[witness])
        assert retried == last and clients.rows() == before
    # Another seed after the result is refused.
    after = await _refused(clients, _reveal(clients, "DR-2026-0005", SUPERVISOR,
                                            seeds[OTHER_SUPERVISOR]),
                           grpc.StatusCode.FAILED_PRECONDITION)
    assert "drawn" in (after.details() or "")


async def test_the_final_reveal_sent_twice_at_once_closes_the_draw_once(
        clients: Clients) -> None:
    """Both calls answer with the drawn draw (PostgreSQL serialises them on the draw's
    row, SQLite on its write lock); one result is published."""
    seeds = _seeds()
    await _open_and_commit(clients, _open_request("DR-2026-0011"), seeds)
    for witness in (OTHER_TRADING_OFFICER, SUPERVISOR):
        await _reveal(clients, "DR-2026-0011", witness, seeds[witness])
    answers = await asyncio.gather(*(
        _reveal(clients, "DR-2026-0011", OTHER_SUPERVISOR, seeds[OTHER_SUPERVISOR])
        for _ in range(4)))
    assert all(a.state == pb.DRAW_STATE_DRAWN and a == answers[0] for a in answers)
    assert [e.kind for e in await _feed(clients)] == ["draw.opened", "draw.drawn"]


async def test_bad_draws_are_refused_and_change_nothing(clients: Clients) -> None:
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

    await refused_open(_open_request("DR-2026-0010", candidates=["AG-001"]), "candidates")
    await refused_open(_open_request("DR-2026-0010", candidates=["AG-001", "AG-002"], count=3),
                       "count")
    await refused_open(_open_request("DR-2026-0010", candidates=["AG-001", "AG-002", "AG-001"]),
                       "candidates")
    await refused_open(_open_request("DR-2026-0010", (SUPERVISOR,)), "witnesses")
    await refused_open(_open_request("DR-2026-0010", (SUPERVISOR, TRADING_OFFICER)),
                       "witnesses")
    await refused_open(_open_request("DR-2026-0010", (SUPERVISOR, SUPERVISOR)), "witnesses")
    await refused_open(_open_request("DR-2026-0010", (SUPERVISOR, "FGW-001")), "witness_ids[1]")
    await refused_open(_open_request("DR-2026-0010", (SUPERVISOR, "JJZ-999")), "witness_ids[1]")
    # The opener gives no commitment: each witness commits its own.
    given = _open_request("DR-2026-0010", ())
    given.witnesses.extend(pb.DrawWitness(official_id=w, commitment=f"{n:064x}")
                           for n, w in enumerate(WITNESSES, 1))
    await refused_open(given, "witnesses")
    await refused_open(_open_request("DR-2026-0010", deadline_seconds=-60, commit_seconds=-120),
                       "commit_deadline")
    await refused_open(_open_request("DR-2026-0010", deadline_seconds=600, commit_seconds=900),
                       "reveal_deadline")
    await refused_open(_open_request("DR-2026-0010", deadline_seconds=31 * 86400),
                       "reveal_deadline")
    # Only a trading officer opens a draw.
    await refused_open(_open_request("DR-2026-0010"), "", grpc.StatusCode.PERMISSION_DENIED,
                       who="ZWFWZX-004")
    # A retry of the same draw returns it; another draw under its id is refused.
    first = await platform.OpenDraw(_open_request("DR-2026-0010"), metadata=officer)
    before = clients.rows()
    retry = pb.OpenDrawRequest()
    retry.CopyFrom(_open_request("DR-2026-0010"))
    retry.reveal_deadline.CopyFrom(first.draw.reveal_deadline)
    retry.commit_deadline.CopyFrom(first.draw.commit_deadline)
    assert (await platform.OpenDraw(retry, metadata=officer)).draw == first.draw
    assert clients.rows() == before
    await refused_open(_open_request("DR-2026-0010", count=2), "",
                       grpc.StatusCode.ALREADY_EXISTS)


async def test_the_same_draw_opened_twice_at_once_is_opened_once(clients: Clients) -> None:
    """Concurrent identical OpenDraw calls all get the draw; concurrent different ones
    under one id: one is opened, the others ALREADY_EXISTS. Never INTERNAL: on
    PostgreSQL the losers' inserts hit the primary key (UniqueViolation) after the
    winner commits, and are answered from the draw it stored."""
    platform = clients.stub("trading-platform")
    same = _open_request("DR-2026-0012")
    answers = await asyncio.gather(*(platform.OpenDraw(same, metadata=as_official(
        TRADING_OFFICER)) for _ in range(6)))
    assert all(a.draw == answers[0].draw for a in answers)
    assert answers[0].draw.state == pb.DRAW_STATE_COMMITTING

    results = await asyncio.gather(*(platform.OpenDraw(
        _open_request("DR-2026-0013", title=f"项目 {n}"), metadata=as_official(TRADING_OFFICER))
        for n in range(6)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(refused) == 5, results
    assert {r.code() for r in refused} == {grpc.StatusCode.ALREADY_EXISTS}
    with clients.service.running.engine.connect() as connection:
        assert connection.execute(select(tables.draws.c.draw_id)).scalars().all() == [
            "DR-2026-0012", "DR-2026-0013"]


async def test_no_reader_misses_or_rereads_an_entry_under_concurrent_writers(
        clients: Clients) -> None:
    """Four writers publish draws at once while a reader follows the feed with its cursor.

    On SQLite this holds trivially: every writing transaction takes the
    database's write lock at its start, so the writers run one after another
    and nothing can commit out of order. It proves the rule only on
    PostgreSQL (the advisory lock of Feed.append); what SQLite can show is
    tested on the repository (tests/integration/trading/test_feed_repository.py).
    """
    writers, draws_each = 4, 4
    total = writers * draws_each
    done = asyncio.Event()

    async def write(writer: int) -> None:
        for n in range(draws_each):
            await _open_and_commit(clients, _open_request(f"DR-2027-{writer}{n:03d}"), _seeds(),
                                   system="trading-platform" if writer % 2 else "operator")

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
    seen = await asyncio.wait_for(reader, timeout=60)
    assert seen == list(range(1, total + 1))
    feed = await _feed(clients)
    assert [e.sequence for e in feed] == seen
    _assert_chained(feed)
    assert {json.loads(e.body)["body"]["draw_id"] for e in feed} == {
        f"DR-2027-{w}{n:03d}" for w in range(writers) for n in range(draws_each)}
