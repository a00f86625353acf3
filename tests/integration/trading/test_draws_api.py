"""Verifiable draws and the public feed over real gRPC, on SQLite and PostgreSQL.

The witnesses are two supervisors of the discipline inspection group
(JJZ-001, JJZ-002), who commit and reveal through the supervision system,
and a trading officer (ZWFWZX-008), who commits and reveals through the
trading platform; the draw is opened by another trading officer
(ZWFWZX-007) through the trading platform or the operator console, neither
of which may speak for the supervisors.

Every draw is for a subject (``project/SY-2026-0001/agency`` for draw
DR-2026-0001 unless a test says otherwise); its candidates are built by the
service from the registry. What the registry holds is read here from
deploy/sample/trading.json, the sample the service loads, and the expected
candidates are computed from it independently of the service's code.
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
SAMPLE = json.loads((ROOT / "deploy" / "sample" / "trading.json").read_text("utf-8"))
#: The candidates of every agency lottery: every agency of the registry, by code.
AGENCIES = sorted(agency["code"] for agency in SAMPLE["agencies"])
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


def _subject(draw_id: str) -> str:
    """The subject the tests open ``draw_id`` for unless they say otherwise."""
    return f"project/SY-{draw_id[3:]}/agency"


def _open_request(draw_id: str, witnesses: Sequence[str] = WITNESSES, *,
                  candidates: Sequence[str] = (), count: int = 1,
                  deadline_seconds: float = 3600, commit_seconds: float = 1800,
                  title: str = "沈阳市第一中学新校区建设项目招标代理", subject: str = "",
                  replaces: str = "") -> pb.OpenDrawRequest:
    return pb.OpenDrawRequest(
        draw_id=draw_id, purpose=pb.DRAW_PURPOSE_AGENCY_LOTTERY, title=title,
        candidates=list(candidates), witness_ids=list(witnesses), count=count,
        commit_deadline=_deadline(commit_seconds), reveal_deadline=_deadline(deadline_seconds),
        subject=subject or _subject(draw_id), replaces_draw_id=replaces)


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
    parts = [b"govhall-draw/4", draw_id.encode(), *seeds]
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
    assert document["body"]["scheme"] == "govhall-draw/4"
    assert document["body"]["subject"] == "project/SY-2026-0001/agency"
    assert document["body"]["replaces_draw_id"] == ""
    assert (published.subject, list(published.candidates)) == (
        "project/SY-2026-0001/agency", AGENCIES)

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
    assert (f"draw DR-2026-0001: VALID — drew {order[0]}, {order[1]} of {len(AGENCIES)} "
            "candidates") in out


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
        _open_request("DR-2026-0009", commit_seconds=3.0),
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
    await _open_and_commit(clients, _open_request("DR-2026-0003", deadline_seconds=6.0,
                                                  commit_seconds=4.0), seeds)
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

    # Candidates are built by the service from the registry, never given.
    for labels in (["AG-001"], ["AG-001", "AG-002"], AGENCIES, ["AG-001", "AG-002", "AG-001"]):
        await refused_open(_open_request("DR-2026-0010", candidates=labels), "candidates")
    # More drawn than the registry holds.
    await refused_open(_open_request("DR-2026-0010", count=len(AGENCIES) + 1), "",
                       grpc.StatusCode.FAILED_PRECONDITION)
    await refused_open(_open_request("DR-2026-0010", subject="project/SY-2026-0010"),
                       "subject")
    await refused_open(_open_request("DR-2026-0010", subject="tender/ZB-2026-0010/experts"),
                       "subject")
    await refused_open(_open_request("DR-2026-0010", replaces="DR-2026-0010"),
                       "replaces_draw_id")
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


# ---- subjects, re-draws and candidates from the registry (draw shopping) -----------------


def _expert_request(draw_id: str, *, specialties: Sequence[str], count: int = 5,
                    conflicted: Sequence[str] = (),
                    exclusions: Sequence[tuple[str, str]] = (),
                    subject: str = "tender/ZB-2026-0001/experts") -> pb.OpenDrawRequest:
    request = _open_request(draw_id, count=count, subject=subject,
                            title="某道路改造工程评标委员会专家抽取")
    request.purpose = pb.DRAW_PURPOSE_EXPERT_DRAW
    request.specialties.extend(specialties)
    request.conflicted_employers.extend(conflicted)
    request.exclusions.extend(pb.DrawExclusion(expert_id=e, basis=b) for e, b in exclusions)
    return request


def _sample_expert_candidates(specialties: Sequence[str], conflicted: Sequence[str],
                              excluded: Sequence[str], unavailable: Sequence[str] = ()
                              ) -> list[str]:
    """The expert draw's candidates, from the sample file: the experts of any of the
    specialties, not unavailable, not of a conflicted employer, not excluded, by id."""
    return sorted(
        expert["id"] for expert in SAMPLE["experts"]
        if set(expert["specialties"]) & set(specialties)
        and expert["employer"] not in conflicted
        and expert["id"] not in excluded and expert["id"] not in unavailable
        and expert.get("available", True))


async def test_a_subject_has_one_draw_that_has_not_failed(clients: Clients) -> None:
    """Draw shopping: a second draw for the same project is refused, naming the live draw,
    and nothing is written, while the first commits, is open and is drawn."""
    platform, officer = clients.stub("trading-platform"), as_official(TRADING_OFFICER)
    subject = "project/SY-2026-0020/agency"
    seeds = _seeds()
    await platform.OpenDraw(_open_request("DR-2026-0020", subject=subject), metadata=officer)

    async def second(draw_id: str, replaces: str = "") -> None:
        for system in ("trading-platform", "operator"):
            refused = await _refused(clients, clients.stub(system).OpenDraw(
                _open_request(draw_id, subject=subject, replaces=replaces), metadata=officer),
                grpc.StatusCode.ALREADY_EXISTS)
            assert subject in (refused.details() or "")
            assert "DR-2026-0020" in (refused.details() or "")

    await second("DR-2026-0021")  # committing
    await second("DR-2026-0021", replaces="DR-2026-0020")
    for witness in WITNESSES:
        await _commit(clients, "DR-2026-0020", witness, seeds[witness])
    await second("DR-2026-0021")  # open
    for witness in REVEAL_ORDER:
        await _reveal(clients, "DR-2026-0020", witness, seeds[witness])
    await second("DR-2026-0022", replaces="DR-2026-0020")  # drawn: never again
    # Another subject is free.
    other = await platform.OpenDraw(_open_request("DR-2026-0023"), metadata=officer)
    assert other.draw.subject == "project/SY-2026-0023/agency"


async def test_a_redraw_names_the_failed_draw_it_replaces(
        clients: Clients, tmp_path: Path) -> None:
    """After a public failure, a re-draw naming the failed draw is accepted; without it, or
    naming another draw, it is refused. The chain verifies."""
    platform, officer = clients.stub("trading-platform"), as_official(TRADING_OFFICER)
    subject = "project/SY-2026-0030/agency"
    seeds = _seeds()
    await platform.OpenDraw(_open_request("DR-2026-0030", subject=subject, commit_seconds=3.0),
                            metadata=officer)
    await _commit(clients, "DR-2026-0030", SUPERVISOR, seeds[SUPERVISOR])
    failed = await _wait_for_state(clients, "DR-2026-0030", pb.DRAW_STATE_FAILED)
    assert failed.state == pb.DRAW_STATE_FAILED
    # A first draw of a subject replaces nothing.
    await platform.OpenDraw(_open_request("DR-2026-0031", subject="project/SY-2026-0031/agency"),
                            metadata=officer)
    for replaces, named in (("", "DR-2026-0030"), ("DR-2026-0031", "DR-2026-0030"),
                            ("DR-2026-0099", "DR-2026-0030")):
        refused = await _refused(clients, platform.OpenDraw(
            _open_request("DR-2026-0032", subject=subject, replaces=replaces), metadata=officer),
            grpc.StatusCode.FAILED_PRECONDITION)
        assert "replaces_draw_id" in (refused.details() or "")
        assert named in (refused.details() or "")
    refused = await _refused(clients, platform.OpenDraw(
        _open_request("DR-2026-0033", replaces="DR-2026-0030"), metadata=officer),
        grpc.StatusCode.FAILED_PRECONDITION)
    assert "has had no draw" in (refused.details() or "")

    redraw = await _open_and_commit(
        clients, _open_request("DR-2026-0032", subject=subject, replaces="DR-2026-0030"),
        _seeds())
    assert (redraw.subject, redraw.replaces_draw_id) == (subject, "DR-2026-0030")
    # The re-draw is live now: a third draw must wait, even naming the failed one.
    await _refused(clients, platform.OpenDraw(
        _open_request("DR-2026-0034", subject=subject, replaces="DR-2026-0030"),
        metadata=officer), grpc.StatusCode.ALREADY_EXISTS)
    feed = await _feed(clients)
    bodies = [json.loads(e.body)["body"] for e in feed]
    assert [(b["kind"], b["draw_id"], b["subject"], b["replaces_draw_id"]) for b in bodies] == [
        ("draw.failed", "DR-2026-0030", subject, ""),
        ("draw.opened", "DR-2026-0032", subject, "DR-2026-0030")]
    status, out = _verify(clients.service, _export(feed, tmp_path / "f.json"))
    assert status == 0, out
    assert "draw DR-2026-0030: VALID — failed before it was opened" in out
    assert "draw DR-2026-0032: OPEN" in out


async def test_concurrent_draws_of_one_subject_open_one(clients: Clients) -> None:
    """Never INTERNAL: on PostgreSQL the losers' inserts wait on the partial unique index of
    live subjects and are refused once the winner commits; they are answered
    ALREADY_EXISTS naming the winner."""
    platform = clients.stub("trading-platform")
    subject = "project/SY-2026-0040/agency"
    results = await asyncio.gather(*(platform.OpenDraw(
        _open_request(f"DR-2026-004{n}", subject=subject), metadata=as_official(
            TRADING_OFFICER)) for n in range(6)), return_exceptions=True)
    opened = [r for r in results if isinstance(r, pb.OpenDrawResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(opened) == 1 and len(refused) == 5, results
    assert {r.code() for r in refused} == {grpc.StatusCode.ALREADY_EXISTS}, [
        r.details() for r in refused]
    assert all(opened[0].draw.draw_id in (r.details() or "") for r in refused)
    with clients.service.running.engine.connect() as connection:
        assert connection.execute(select(tables.draws.c.draw_id)).scalars().all() == [
            opened[0].draw.draw_id]


async def test_expert_candidates_are_the_pool_minus_conflicts_and_exclusions(
        clients: Clients) -> None:
    platform, officer = clients.stub("trading-platform"), as_official(TRADING_OFFICER)
    specialties = ["市政工程", "电气工程"]
    conflicted = ["沈阳华建建筑设计研究院有限公司", "辽宁恒电电力工程设计有限公司"]
    eligible = _sample_expert_candidates(specialties, conflicted, ())
    # One excluded expert who would be a candidate, one who would not anyway.
    outsider = next(e["id"] for e in SAMPLE["experts"]
                    if not set(e["specialties"]) & set(specialties))
    exclusions = [(eligible[3], "曾参与本项目前期咨询"), (outsider, "近亲属在投标单位任职")]
    unavailable = eligible[0]
    await platform.SetExpertAvailability(pb.SetExpertAvailabilityRequest(
        id=unavailable, available=False, reason="出国访学"), metadata=officer)
    expected = _sample_expert_candidates(specialties, conflicted, [e for e, _ in exclusions],
                                         [unavailable])
    assert len(expected) < len(eligible) - 1  # the conflicts took someone out too

    seeds = _seeds()
    opened = await _open_and_commit(clients, _expert_request(
        "DR-2026-0050", specialties=specialties, conflicted=conflicted, exclusions=exclusions),
        seeds)
    assert list(opened.candidates) == expected
    assert (list(opened.specialties), list(opened.conflicted_employers)) == (
        specialties, conflicted)
    assert [(e.expert_id, e.basis) for e in opened.exclusions] == exclusions
    body = json.loads((await _feed(clients))[0].body)["body"]
    assert body["candidates"] == expected and body["subject"] == "tender/ZB-2026-0001/experts"
    assert (body["specialties"], body["conflicted_employers"]) == (specialties, conflicted)
    assert body["exclusions"] == [{"expert_id": e, "basis": b} for e, b in exclusions]


async def test_given_or_too_few_candidates_are_refused_and_change_nothing(
        clients: Clients) -> None:
    platform, officer = clients.stub("trading-platform"), as_official(TRADING_OFFICER)
    given = _expert_request("DR-2026-0060", specialties=["法律"])
    given.candidates.extend(["EX-0001", "EX-0002", "EX-0003", "EX-0004", "EX-0005"])
    refused = await _refused(clients, platform.OpenDraw(given, metadata=officer),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert field_violations(refused) == ["candidates"]
    assert "the service builds them from the registry" in (refused.details() or "")

    land = _sample_expert_candidates(["土地估价"], (), ())
    too_many = await _refused(clients, platform.OpenDraw(_expert_request(
        "DR-2026-0060", specialties=["土地估价"], count=len(land) + 1), metadata=officer),
        grpc.StatusCode.FAILED_PRECONDITION)
    assert f"{len(land)} candidate(s) remain" in (too_many.details() or "")
    # The conflicts leave too few for the count.
    employers = sorted({e["employer"] for e in SAMPLE["experts"]
                        if "土地估价" in e["specialties"]})
    left = _sample_expert_candidates(["土地估价"], employers[1:], ())
    conflicted = await _refused(clients, platform.OpenDraw(_expert_request(
        "DR-2026-0060", specialties=["土地估价"], count=len(left) + 1,
        conflicted=employers[1:]), metadata=officer), grpc.StatusCode.FAILED_PRECONDITION)
    assert f"{len(left)} candidate(s) remain" in (conflicted.details() or "")
    unknown = await _refused(clients, platform.OpenDraw(_expert_request(
        "DR-2026-0060", specialties=["土地估价"], exclusions=[("EX-9999", "回避")]),
        metadata=officer), grpc.StatusCode.INVALID_ARGUMENT)
    assert field_violations(unknown) == ["exclusions[0].expert_id"]
    # An agency lottery takes everything from the registry: no specialties or conflicts.
    lottery = _open_request("DR-2026-0060")
    lottery.conflicted_employers.append("沈阳某公司")
    refused = await _refused(clients, platform.OpenDraw(lottery, metadata=officer),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert field_violations(refused) == ["conflicted_employers"]
