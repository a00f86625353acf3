"""``python -m tools.verify_draw`` on a real feed: a genuine draw holds, every edit is caught.

The feed comes from the trading service over gRPC; the tampering is done on
its JSON export, as anyone holding a copy could. Edits are made twice: by
an outsider, who cannot sign (the trading service's signature fails), and by
a dishonest service that signs its lie with its own key (only the
recomputation from the published seeds and commitments can catch it, or the
rules across draws: one draw a subject that has not failed, re-draws naming
the failed draw they replace).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from kernel.signing import public_keys_dir, service_signer
from services.trading.main import DEFINITION
from tests.support import ServiceUnderTest, as_official, fresh_database_url, service_under_test

ROOT = Path(__file__).resolve().parents[3]
WITNESSES = {"JJZ-001": "supervision-system", "ZWFWZX-008": "trading-platform",
             "JJZ-002": "supervision-system"}
SPECIALTIES = ["市政工程"]
SAMPLE = json.loads((ROOT / "deploy" / "sample" / "trading.json").read_text("utf-8"))
#: The expert draws' candidates: the sample pool's experts of the specialty, by id.
CANDIDATES = sorted(e["id"] for e in SAMPLE["experts"] if set(e["specialties"]) & {*SPECIALTIES})
Entries = list[dict[str, Any]]


def _after(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC) + timedelta(seconds=seconds))
    return stamp


def _subject(draw_id: str) -> str:
    return f"tender/ZB-{draw_id[3:]}/experts"


async def _draw(channels: dict[str, grpc.aio.Channel], draw_id: str, *,
                reveal_seconds: float = 3600, commit_seconds: float = 0,
                subject: str = "", replaces: str = "",
                witnesses: tuple[str, ...] = tuple(WITNESSES)) -> None:
    """Open an expert draw, have every witness commit and reveal: it is drawn (when only
    some ``witnesses`` take part, it waits for the others)."""
    seeds = {w: os.urandom(24) for w in WITNESSES}
    await trading_pb2_grpc.TradingServiceStub(channels["trading-platform"]).OpenDraw(
        pb.OpenDrawRequest(
            draw_id=draw_id, purpose=pb.DRAW_PURPOSE_EXPERT_DRAW,
            title="某道路改造工程评标委员会专家抽取", specialties=SPECIALTIES,
            subject=subject or _subject(draw_id), replaces_draw_id=replaces,
            witness_ids=list(WITNESSES), count=5,
            commit_deadline=_after(commit_seconds or reveal_seconds / 2),
            reveal_deadline=_after(reveal_seconds)),
        metadata=as_official("ZWFWZX-007"))
    # The witness the opening system speaks for reveals first; the independent ones last.
    reveal_order = ["ZWFWZX-008", "JJZ-001", "JJZ-002"]
    for step in ("commit", "reveal"):
        if len(witnesses) < len(WITNESSES) and step == "reveal":
            return
        for witness in witnesses if step == "commit" else reveal_order:
            system = WITNESSES[witness]
            stub = trading_pb2_grpc.TradingServiceStub(channels[system])
            if step == "commit":
                await stub.CommitSeed(pb.CommitSeedRequest(
                    draw_id=draw_id, commitment=hashlib.sha256(seeds[witness]).hexdigest()),
                    metadata=as_official(witness))
            else:
                await stub.RevealSeed(pb.RevealSeedRequest(
                    draw_id=draw_id, seed=seeds[witness].hex()), metadata=as_official(witness))


async def _exported(service: ServiceUnderTest, run: Callable[
        [dict[str, grpc.aio.Channel]], Awaitable[None]]) -> Entries:
    channels = {s: service.channel(s) for s in {*WITNESSES.values(), "hotline-12345"}}
    try:
        await run(channels)
        page = await trading_pb2_grpc.TradingServiceStub(
            channels["hotline-12345"]).ListFeed(pb.ListFeedRequest())
    finally:
        for channel in channels.values():
            await channel.close(None)
    return [json_format.MessageToDict(e) for e in page.entries]


@pytest.fixture(scope="module")
async def genuine(pki_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Entries:
    """The feed, exported, of one expert draw drawn with every witness's seed."""
    directory = tmp_path_factory.mktemp("verify-draw")
    async with service_under_test(
            DEFINITION, database_url=fresh_database_url("sqlite", "trading", directory),
            pki_dir=pki_dir) as service:
        return await _exported(service, lambda channels: _draw(channels, "DR-2026-0100"))


@pytest.fixture(scope="module")
async def overtaken(pki_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Entries:
    """A feed where draw 0101 (reveal deadline in six seconds) was drawn, and draw 0102 was
    published after 0101's reveal deadline. The deadlines leave room for a loaded machine:
    the three commits have four seconds, the three reveals six."""
    directory = tmp_path_factory.mktemp("verify-draw-overtaken")
    async with service_under_test(
            DEFINITION, database_url=fresh_database_url("sqlite", "trading", directory),
            pki_dir=pki_dir) as service:
        async def run(channels: dict[str, grpc.aio.Channel]) -> None:
            await _draw(channels, "DR-2026-0101", reveal_seconds=6.0, commit_seconds=4.0)
            stub = trading_pb2_grpc.TradingServiceStub(channels["hotline-12345"])
            first = (await stub.GetDraw(pb.GetDrawRequest(draw_id="DR-2026-0101"))).draw
            passed = first.reveal_deadline.ToDatetime(tzinfo=UTC)
            # Until the deadline lies in the past.
            await asyncio.sleep((passed - datetime.now(UTC)).total_seconds() + 0.05)
            await _draw(channels, "DR-2026-0102")

        return await _exported(service, run)


def _run(entries: Entries, pki_dir: Path, tmp_path: Path, *, key: Path | None = None
         ) -> tuple[int, str]:
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps({"entries": entries}, ensure_ascii=False), "utf-8")
    keys = [key] if key else sorted((public_keys_dir(pki_dir) / "trading").glob("*.pub"))
    done = subprocess.run(
        [sys.executable, "-m", "tools.verify_draw", "--feed", str(feed),
         *[a for k in keys for a in ("--key", str(k))]],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, done.stdout + done.stderr


def _edited(entries: Entries, sequence: int, change: Callable[[dict[str, Any]], None], *,
            pki_dir: Path | None = None) -> Entries:
    """A copy with entry ``sequence``'s signed body changed; signed again with the service's
    own key when ``pki_dir`` is given (a dishonest service), else left with the old signature
    (an outsider); the entry's SHA-256 is recomputed either way."""
    edited = copy.deepcopy(entries)
    entry = next(e for e in edited if int(e["sequence"]) == sequence)
    document = json.loads(entry["body"])
    change(document["body"])
    _resign(entry, document, pki_dir)
    return edited


def _resign(entry: dict[str, Any], document: dict[str, Any], pki_dir: Path | None) -> None:
    if pki_dir is not None:
        document = service_signer(pki_dir, "trading").sign(document["body"]).as_dict()
    entry["body"] = rfc8785.dumps(document).decode()
    entry["bodySha256"] = hashlib.sha256(entry["body"].encode()).hexdigest()


def _result(entries: Entries) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(entries[1]["body"])["body"]
    return body


def test_the_genuine_draw_verifies(genuine: Entries, pki_dir: Path, tmp_path: Path) -> None:
    assert [e["kind"] for e in genuine] == ["draw.opened", "draw.drawn"]
    status, out = _run(genuine, pki_dir, tmp_path)
    assert status == 0, out
    drawn = _result(genuine)["drawn"]
    assert (f"draw DR-2026-0100: VALID — drew {', '.join(drawn)} of {len(CANDIDATES)} "
            "candidates") in out
    assert json.loads(genuine[0]["body"])["body"]["candidates"] == CANDIDATES


def _other_seed(result: dict[str, Any]) -> None:
    result["revealed"][1]["seed"] = "00" + result["revealed"][1]["seed"][2:]


def test_a_changed_seed_is_caught(genuine: Entries, pki_dir: Path, tmp_path: Path) -> None:
    status, out = _run(_edited(genuine, 2, _other_seed), pki_dir, tmp_path)
    assert status == 1 and "signature does not hold" in out, out
    status, out = _run(_edited(genuine, 2, _other_seed, pki_dir=pki_dir), pki_dir, tmp_path)
    assert status == 1, out
    assert "the seed of ZWFWZX-008 does not hash to the commitment" in out
    assert ("the randomness is not SHA-256 over the scheme, the draw id and the revealed "
            "seeds") in out


def test_a_changed_candidate_list_is_caught(genuine: Entries, pki_dir: Path,
                                            tmp_path: Path) -> None:
    def swap_candidate(opened: dict[str, Any]) -> None:
        opened["candidates"][0] = "EX-0099"

    status, out = _run(_edited(genuine, 1, swap_candidate), pki_dir, tmp_path)
    assert status == 1 and "entry 1 (draw.opened): the trading service's signature" in out, out
    lie = _edited(genuine, 1, swap_candidate, pki_dir=pki_dir)
    status, out = _run(lie, pki_dir, tmp_path)
    assert status == 1 and "does not name the opening entry it follows" in out, out

    # The result made to point at the changed opening too: the order no longer holds.
    def follow(result: dict[str, Any]) -> None:
        result["opened_entry"]["body_sha256"] = lie[0]["bodySha256"]

    status, out = _run(_edited(lie, 2, follow, pki_dir=pki_dir), pki_dir, tmp_path)
    assert status == 1, out
    assert "does not name the opening entry" not in out
    assert "the order is not the candidates sorted by HMAC-SHA256" in out


def test_a_changed_commitment_is_caught(genuine: Entries, pki_dir: Path,
                                        tmp_path: Path) -> None:
    def commit_otherwise(opened: dict[str, Any]) -> None:
        opened["witnesses"][2]["commitment"] = hashlib.sha256(b"another seed").hexdigest()

    lie = _edited(genuine, 1, commit_otherwise, pki_dir=pki_dir)

    def follow(result: dict[str, Any]) -> None:
        result["opened_entry"]["body_sha256"] = lie[0]["bodySha256"]

    status, out = _run(_edited(lie, 2, follow, pki_dir=pki_dir), pki_dir, tmp_path)
    assert status == 1 and "the seed of JJZ-002 does not hash to the commitment" in out, out


def test_a_changed_order_drawn_or_randomness_is_caught(genuine: Entries, pki_dir: Path,
                                                       tmp_path: Path) -> None:
    def swap_order(result: dict[str, Any]) -> None:
        order = result["order"]
        order[0], order[-1] = order[-1], order[0]

    def swap_drawn(result: dict[str, Any]) -> None:
        result["drawn"][0] = result["order"][-1]

    def other_randomness(result: dict[str, Any]) -> None:
        result["randomness"] = hashlib.sha256(b"chosen").hexdigest()

    for change, caught in ((swap_order, "the order is not the candidates sorted"),
                           (swap_drawn, "the drawn candidates are not the first 5"),
                           (other_randomness, "the randomness is not SHA-256")):
        status, out = _run(_edited(genuine, 2, change), pki_dir, tmp_path)
        assert status == 1 and "signature does not hold" in out, (change, out)
        status, out = _run(_edited(genuine, 2, change, pki_dir=pki_dir), pki_dir, tmp_path)
        assert status == 1 and caught in out, (change, out)


def test_a_dropped_witness_is_caught(genuine: Entries, pki_dir: Path, tmp_path: Path) -> None:
    """A service leaving out a seed it got, before the deadline, to steer the result."""
    def drop(result: dict[str, Any]) -> None:
        del result["revealed"][0]
        result["missing"] = ["JJZ-001"]

    status, out = _run(_edited(genuine, 2, drop, pki_dir=pki_dir), pki_dir, tmp_path)
    assert status == 1, out
    assert "closed before its reveal deadline without every seed" in out


def test_an_entry_edited_without_its_hash_or_removed_or_another_key(
        genuine: Entries, pki_dir: Path, tmp_path: Path) -> None:
    edited = copy.deepcopy(genuine)
    edited[0]["body"] = edited[0]["body"].replace("EX-0001", "EX-0091")
    status, out = _run(edited, pki_dir, tmp_path)
    assert status == 1 and "its body is not the one its SHA-256 names" in out, out

    # A result whose opening was cut from the feed proves nothing.
    status, out = _run(genuine[1:], pki_dir, tmp_path)
    assert status == 3 and "the feed holds no draw" in out, out

    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    status, out = _run(genuine, pki_dir, tmp_path, key=stranger)
    assert status == 1 and "which is not among the keys given" in out, out


def test_a_forged_entry_gets_a_verdict_never_a_traceback(
        genuine: Entries, pki_dir: Path, tmp_path: Path) -> None:
    """A body whose signature fails is not recomputed; a malformed body signed with the
    service's key is reported malformed."""
    def unhashable(result: dict[str, Any]) -> None:
        result["revealed"][0]["official_id"] = ["JJZ-001"]

    status, out = _run(_edited(genuine, 2, unhashable), pki_dir, tmp_path)
    assert status == 1 and "signature does not hold" in out, out
    assert "Traceback" not in out
    status, out = _run(_edited(genuine, 2, unhashable, pki_dir=pki_dir), pki_dir, tmp_path)
    assert status == 1 and "is malformed" in out, out
    assert "Traceback" not in out
    broken = copy.deepcopy(genuine)
    broken[0]["sequence"] = {"not": "a number"}
    status, out = _run(broken, pki_dir, tmp_path)
    assert status == 3 and "UNREADABLE" in out and "Traceback" not in out, out


def test_the_feed_is_a_chain(genuine: Entries, pki_dir: Path, tmp_path: Path) -> None:
    links = [json.loads(e["body"])["body"]["feed"] for e in genuine]
    assert [link["sequence"] for link in links] == [1, 2]
    assert [link["previous_sha256"] for link in links] == ["0" * 64, genuine[0]["bodySha256"]]

    # Renumbered by an outsider: the signed number says otherwise.
    renumbered = copy.deepcopy(genuine)
    renumbered[1]["sequence"] = "3"
    status, out = _run(renumbered, pki_dir, tmp_path)
    assert status == 1 and "entry 3 is signed as entry 2: the feed was renumbered" in out, out
    # A result cut off by an outsider: its opening, still before its deadline, is open.
    status, out = _run(genuine[:1], pki_dir, tmp_path)
    assert status == 0 and "draw DR-2026-0100: OPEN" in out, out


def test_a_result_cut_off_is_caught_by_a_later_entry(
        overtaken: Entries, pki_dir: Path, tmp_path: Path) -> None:
    assert [(e["kind"], e["subject"]) for e in overtaken] == [
        ("draw.opened", "draw/DR-2026-0101"), ("draw.drawn", "draw/DR-2026-0101"),
        ("draw.opened", "draw/DR-2026-0102"), ("draw.drawn", "draw/DR-2026-0102")]
    status, out = _run(overtaken, pki_dir, tmp_path)
    assert status == 0 and out.count("VALID") == 2, out
    # Exported from the middle: the chain is checked from where the export starts.
    status, out = _run(overtaken[2:], pki_dir, tmp_path)
    assert status == 0 and "draw DR-2026-0102: VALID" in out, out

    # An outsider cuts 0101's result: the gap and the broken chain show.
    cut = [overtaken[0], *overtaken[2:]]
    status, out = _run(cut, pki_dir, tmp_path)
    assert status == 1 and "entry 3 follows entry 1" in out, out

    # A dishonest service renumbers and re-chains the rest, signing with its own key:
    # the chain holds, but draw 0101 is still open past its deadline in this feed.
    forged = copy.deepcopy(cut)
    previous = forged[0]["bodySha256"]
    for sequence, entry in enumerate(forged[1:], start=2):
        document = json.loads(entry["body"])
        document["body"]["feed"] |= {"sequence": sequence, "previous_sha256": previous}
        if "opened_entry" in document["body"]:
            document["body"]["opened_entry"]["sequence"] = sequence - 1
            document["body"]["opened_entry"]["body_sha256"] = previous
        entry["sequence"] = str(sequence)
        _resign(entry, document, pki_dir)
        previous = entry["bodySha256"]
    status, out = _run(forged, pki_dir, tmp_path)
    assert "feed: INVALID" not in out, out
    assert "draw DR-2026-0102: VALID" in out, out
    assert status == 1 and "draw DR-2026-0101: INVALID — the draw is still open" in out, out

    # Cut at the tail with nothing after it, the draw is just open: nothing shows that.
    status, out = _run(overtaken[:1], pki_dir, tmp_path)
    assert status == 0 and "draw DR-2026-0101: OPEN" in out, out


def test_entries_are_sorted_into_draws_by_their_signed_body(
        genuine: Entries, pki_dir: Path, tmp_path: Path) -> None:
    """The export's kind and subject are not signed: relabelling them neither passes an
    entry off as another kind nor hides it from its draw."""
    relabelled = copy.deepcopy(genuine)
    relabelled[1]["kind"] = "draw.failed"
    status, out = _run(relabelled, pki_dir, tmp_path)
    assert status == 1 and "draw DR-2026-0100: INVALID" in out, out
    assert "exported as 'draw.failed'" in out and "signed body is 'draw.drawn'" in out, out

    moved = copy.deepcopy(genuine)
    moved[1]["subject"] = "draw/DR-2026-0999"
    status, out = _run(moved, pki_dir, tmp_path)
    assert status == 1 and "draw DR-2026-0100: INVALID" in out, out
    assert "'draw/DR-2026-0999'" in out and "DR-2026-0999:" not in out, out
    # Hidden from its draw, the result would have left the draw OPEN (status 0).
    assert "OPEN" not in out, out


def test_the_randomness_is_bound_to_the_draw(
        genuine: Entries, pki_dir: Path, tmp_path: Path) -> None:
    """The same seeds concatenated without the scheme and the draw id (the old scheme) do
    not verify, even signed by the service."""
    def unbound(result: dict[str, Any]) -> None:
        seeds = b"".join(bytes.fromhex(r["seed"]) for r in result["revealed"])
        randomness = hashlib.sha256(seeds).digest()
        candidates = json.loads(genuine[0]["body"])["body"]["candidates"]
        order = sorted(candidates, key=lambda label: hmac.new(
            randomness, label.encode(), hashlib.sha256).hexdigest())
        result |= {"randomness": randomness.hex(), "order": order, "drawn": order[:5]}

    status, out = _run(_edited(genuine, 2, unbound, pki_dir=pki_dir), pki_dir, tmp_path)
    assert status == 1 and "the randomness is not SHA-256 over the scheme" in out, out

    def old_scheme(opened: dict[str, Any]) -> None:
        opened["scheme"] = "govhall-draw/3"

    edited = _edited(genuine, 1, old_scheme, pki_dir=pki_dir)
    status, out = _run(edited, pki_dir, tmp_path)
    assert status == 1 and "this tool verifies govhall-draw/4" in out, out


# ---- subjects: one draw a subject that has not failed, re-draws naming the failed one ------


@pytest.fixture(scope="module")
async def redrawn(pki_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Entries:
    """A feed where draw 0200 failed (a witness did not commit by its deadline) and draw
    0201, for the same subject, replaced it and was drawn: an honest re-draw."""
    directory = tmp_path_factory.mktemp("verify-draw-redrawn")
    async with service_under_test(
            DEFINITION, database_url=fresh_database_url("sqlite", "trading", directory),
            pki_dir=pki_dir, draw_close_poll_seconds=0.05) as service:
        async def run(channels: dict[str, grpc.aio.Channel]) -> None:
            subject = _subject("DR-2026-0200")
            await _draw(channels, "DR-2026-0200", commit_seconds=3.0,
                        witnesses=("JJZ-001", "ZWFWZX-008"))
            stub = trading_pb2_grpc.TradingServiceStub(channels["hotline-12345"])
            give_up = time.monotonic() + 20
            while True:  # until the service has published the failure
                draw = (await stub.GetDraw(pb.GetDrawRequest(draw_id="DR-2026-0200"))).draw
                if draw.state == pb.DRAW_STATE_FAILED or time.monotonic() > give_up:
                    break
                await asyncio.sleep(0.05)
            await _draw(channels, "DR-2026-0201", subject=subject, replaces="DR-2026-0200")

        return await _exported(service, run)


def _forged(entries: Entries, changes: dict[int, Callable[[dict[str, Any]], None]],
            pki_dir: Path) -> Entries:
    """A copy with the signed bodies of the entries in ``changes`` changed, and the chain
    after them (each entry's previous SHA-256, a result's opening SHA-256) made to hold
    again, all signed with the service's own key: what a dishonest service can publish."""
    forged = copy.deepcopy(entries)
    renamed: dict[str, str] = {}
    previous = ""
    for entry in forged:
        document = json.loads(entry["body"])
        body = document["body"]
        touched = int(entry["sequence"]) in changes
        if touched:
            changes[int(entry["sequence"])](body)
        if previous and body["feed"]["previous_sha256"] != previous:
            body["feed"]["previous_sha256"] = previous
            touched = True
        opened = body.get("opened_entry")
        if opened and opened["body_sha256"] in renamed:
            opened["body_sha256"] = renamed[opened["body_sha256"]]
            touched = True
        old = entry["bodySha256"]
        if touched:
            _resign(entry, document, pki_dir)
        renamed[old] = previous = entry["bodySha256"]
    return forged


def test_an_honest_redraw_after_a_public_failure_verifies(
        redrawn: Entries, pki_dir: Path, tmp_path: Path) -> None:
    bodies = [json.loads(e["body"])["body"] for e in redrawn]
    assert [(b["kind"], b["draw_id"], b["subject"], b["replaces_draw_id"]) for b in bodies] == [
        ("draw.failed", "DR-2026-0200", "tender/ZB-2026-0200/experts", ""),
        ("draw.opened", "DR-2026-0201", "tender/ZB-2026-0200/experts", "DR-2026-0200"),
        ("draw.drawn", "DR-2026-0201", "tender/ZB-2026-0200/experts", "DR-2026-0200")]
    status, out = _run(redrawn, pki_dir, tmp_path)
    assert status == 0 and out.count(": VALID") == 2, out
    assert "draw DR-2026-0200: VALID — failed before it was opened" in out


def test_two_completed_draws_of_one_subject_are_caught(
        overtaken: Entries, pki_dir: Path, tmp_path: Path) -> None:
    """Draw shopping: a dishonest service publishes, and signs, a second draw for the
    subject of a drawn one, to keep the result it likes. Each draw verifies on its own;
    the feed shows two live draws of one subject."""
    subject = json.loads(overtaken[0]["body"])["body"]["subject"]

    def same_subject(body: dict[str, Any]) -> None:
        body["subject"] = subject

    status, out = _run(overtaken, pki_dir, tmp_path)
    assert status == 0, out
    shopped = _forged(overtaken, {3: same_subject, 4: same_subject}, pki_dir)
    status, out = _run(shopped, pki_dir, tmp_path)
    assert status == 1 and "feed: INVALID" not in out, out
    for draw_id in ("DR-2026-0101", "DR-2026-0102"):
        assert f"draw {draw_id}: INVALID" in out, out
    assert (f"draws DR-2026-0101, DR-2026-0102 are all for {subject} and none of them "
            "failed") in out, out
    assert "does not name the draw of" in out, out

    # Made to look like a re-draw: it names a draw that did not fail.
    def replacing(body: dict[str, Any]) -> None:
        body |= {"subject": subject, "replaces_draw_id": "DR-2026-0101"}

    status, out = _run(_forged(overtaken, {3: replacing, 4: replacing}, pki_dir), pki_dir,
                       tmp_path)
    assert status == 1 and "it replaces DR-2026-0101, which did not fail" in out, out


def test_a_redraw_not_naming_the_failed_draw_or_a_draw_without_subject_is_caught(
        redrawn: Entries, genuine: Entries, pki_dir: Path, tmp_path: Path) -> None:
    def names(replaces: str) -> Callable[[dict[str, Any]], None]:
        def change(body: dict[str, Any]) -> None:
            body["replaces_draw_id"] = replaces
        return change

    for replaces, caught in (
            ("", "it does not name the draw of tender/ZB-2026-0200/experts before it, "
                 "DR-2026-0200"),
            ("DR-2026-0999", "it replaces DR-2026-0999, which is not in the feed")):
        forged = _forged(redrawn, {2: names(replaces), 3: names(replaces)}, pki_dir)
        status, out = _run(forged, pki_dir, tmp_path)
        assert status == 1 and "draw DR-2026-0201: INVALID" in out and caught in out, out
        assert "feed: INVALID" not in out, out
    # A first draw of a subject replaces nothing: in a feed read from its start, naming
    # a draw that is not there is caught.
    forged = _forged(genuine, {1: names("DR-2026-0099"), 2: names("DR-2026-0099")}, pki_dir)
    status, out = _run(forged, pki_dir, tmp_path)
    assert status == 1 and "it replaces DR-2026-0099, which is not in the feed" in out, out

    def no_subject(body: dict[str, Any]) -> None:
        del body["subject"]

    status, out = _run(_forged(genuine, {1: no_subject, 2: no_subject}, pki_dir), pki_dir,
                       tmp_path)
    assert status == 1 and "the draw names no subject" in out, out


def test_candidates_out_of_the_registry_order_or_excluded_are_caught(
        genuine: Entries, pki_dir: Path, tmp_path: Path) -> None:
    """The candidates are the service's sorted list: a hand-picked order, or an excluded
    expert among them, shows even when the service signs it."""
    def reordered(body: dict[str, Any]) -> None:
        if body["kind"] == "draw.opened":
            body["candidates"] = list(reversed(body["candidates"]))

    status, out = _run(_forged(genuine, {1: reordered}, pki_dir), pki_dir, tmp_path)
    assert status == 1 and "the candidates are not in the order the service builds" in out, out

    def excluded(body: dict[str, Any]) -> None:
        body["exclusions"] = [{"expert_id": body["candidates"][0], "basis": "回避"}]

    status, out = _run(_forged(genuine, {1: excluded}, pki_dir), pki_dir, tmp_path)
    assert status == 1, out
    assert f"excluded expert(s) {CANDIDATES[0]} are among the candidates" in out, out
