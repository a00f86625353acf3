"""Nobody can read a bid before the opening (issue #9 item 3): the attacker's test.

Four bidders submit sealed bids whose documents carry distinctive plaintext
markers and prices; the deadline passes and the tender opens (its
commitments published), and no key is revealed yet. The attacker then gets
everything the platform holds or wrote: the trading database (the SQLite
files with their journal, and on every backend a dump of every table, row by
row), every line the processes wrote to stdout and stderr (the services'
logs, the workers', Temporal's), and the tender's full Temporal history,
raw and decoded with the project's codec.

Shown: no plaintext marker or price appears anywhere in it, in any of the
forms a store could hold it, and no 32-byte value found anywhere in it (hex
or base64 text, or any 32 bytes in a row of a binary file) opens any stored
envelope as an AES-256-GCM key. The sweep proves itself each run: a key
planted in a copy of the material, in each form, is found.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, MetaData, select

from govhall.trading.v1 import trading_pb2 as pb
from services.trading.domain.sealed_bids import (
    HEADER_BYTES,
    MAGIC,
    associated_data,
    seal_bid,
)
from tests.history_text import decoded_history_text
from tests.integration.trading import test_tender_chain as chain
from workflows import tender_contract as t

venue = chain.venue
Venue = chain.Venue

HEX_KEY = re.compile(rb"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")
BASE64_KEY = re.compile(rb"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{43}=?(?![A-Za-z0-9+/_=-])")


def _forms(text: str) -> list[bytes]:
    """``text`` as a store or format could hold it: UTF-8, JSON-escaped, UTF-16."""
    return [text.encode(), json.dumps(text).strip('"').encode(), text.encode("utf-16-le")]


def candidate_keys(blob: bytes, *, binary: bool) -> set[bytes]:
    """Every 32-byte value in ``blob``: hex and base64 text, and for a binary file every 32
    bytes in a row."""
    found = {bytes.fromhex(m.group().decode()) for m in HEX_KEY.finditer(blob)}
    for match in BASE64_KEY.finditer(blob):
        text = match.group().decode()
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                value = decode(text + "=" * (-len(text) % 4))
            except ValueError:
                continue
            if len(value) == 32:
                found.add(value)
    if binary:
        found.update(blob[i:i + 32] for i in range(len(blob) - 31))
    return found


def opening_keys(candidates: Iterable[bytes], envelopes: dict[str, tuple[str, bytes]]
                 ) -> list[str]:
    """The bidders whose envelope one of ``candidates`` opens."""
    opened = []
    for bidder, (tender_no, envelope) in envelopes.items():
        nonce, body = envelope[len(MAGIC) + 1:HEADER_BYTES], envelope[HEADER_BYTES:]
        aad = associated_data(tender_number=tender_no, bidder_id=bidder)
        for key in candidates:
            try:
                AESGCM(key).decrypt(nonce, body, aad)
            except InvalidTag:
                continue
            opened.append(bidder)
            break
    return opened


def _table_dump(engine: Engine) -> bytes:
    """Every row of every table of the trading database, values as stored (bytes raw)."""
    reflected = MetaData()
    reflected.reflect(engine)
    out = []
    with engine.connect() as connection:
        for table in reflected.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    out.append(bytes(value) if isinstance(value, bytes | memoryview)
                               else str(value).encode())
    return b"\n".join(out)


def _files(directory: Path) -> Iterator[Path]:
    return (path for path in directory.rglob("*") if path.is_file())


async def test_before_any_key_is_revealed_no_bid_can_be_read_from_anything_the_platform_holds(
        venue: Venue, tmp_path: Path, backend: str, capfd: pytest.CaptureFixture[str]) -> None:
    tender = await venue.announce()
    number = tender.tender_no
    markers = {f"BD-000{n}": (f"SECRET-BID-MARKER-{uuid.uuid4().hex}", 487_654_321 + 1_111 * n)
               for n in range(1, 5)}
    envelopes: dict[str, tuple[str, bytes]] = {}
    keys: list[bytes] = []
    for bidder, (marker, price) in markers.items():
        document = json.dumps({"price_fen": price, "offer": marker,
                               "技术方案": f"{marker} 施工组织设计"}, ensure_ascii=False).encode()
        sealed, key = seal_bid(document, tender_number=number, bidder_id=bidder)
        await venue.via(f"bidder-system-bd{bidder[-4:]}").SubmitSealedBid(
            pb.SubmitSealedBidRequest(tender_no=number, bidder_id=bidder,
                                      ciphertext=sealed.envelope,
                                      ciphertext_sha256=sealed.ciphertext_sha256,
                                      key_commitment=sealed.key_commitment))
        envelopes[bidder] = (number, sealed.envelope)
        keys.append(key)
    await venue.skip(timedelta(days=20, minutes=11))
    opened = await venue.until_stage(number, pb.TENDER_STAGE_DECRYPTION)
    assert opened.bids == 4
    handle = venue.env.client.get_workflow_handle(t.workflow_id(number))
    history = await handle.fetch_history()

    # What the attacker holds.
    engine = venue.trading.running.engine
    dump = _table_dump(engine)
    files = {path.name: path.read_bytes() for path in _files(tmp_path)}
    if backend == "sqlite":
        assert any(name.startswith("trading.sqlite3") for name in files)
    captured = capfd.readouterr()
    logs = (captured.out + captured.err).encode()
    raw_history = history.to_json().encode()
    decoded_history = (await decoded_history_text(venue.env.client, history.events)).encode()
    material = {"database rows": dump, "logs": logs, "history (raw)": raw_history,
                "history (decoded)": decoded_history} | {
        f"file {name}": blob for name, blob in files.items()}
    # The material is real: the envelopes are in the database, the tender in the logs and
    # the history, and the decoded history holds the opening's step.
    for _, envelope in envelopes.values():
        assert envelope in dump
    assert number.encode() in logs and number.encode() in decoded_history
    assert b"deadline" in decoded_history

    # No plaintext anywhere.
    leaks = [f"{where}: {secret}" for where, blob in material.items()
             for marker, price in markers.values() for secret in (marker, str(price))
             if any(form in blob for form in _forms(secret))]
    assert leaks == []

    # No key anywhere: every 32-byte value found is tried on every envelope.
    candidates: set[bytes] = set()
    for where, blob in material.items():
        candidates |= candidate_keys(blob, binary=where.startswith(("file", "database")))
    assert len(candidates) > 1000  # the sweep saw the files' bytes, not nothing
    assert opening_keys(candidates, envelopes) == []

    # The sweep finds a key held in any form: planted in a copy of the logs, the text of the
    # history and a database file, each is found and opens its envelope.
    planted = {"hex": keys[0].hex().encode(), "base64": base64.b64encode(keys[1]),
               "base64url": base64.urlsafe_b64encode(keys[2]).rstrip(b"=")}
    for form, text in planted.items():
        assert opening_keys(candidate_keys(logs + b" key=" + text + b"\n", binary=False),
                            envelopes), form
    database = next(blob for name, blob in files.items() if name.endswith(("sqlite3", "-wal"))) \
        if backend == "sqlite" else dump
    raw = database[:4096] + keys[3] + database[4096:]
    assert opening_keys(candidate_keys(raw, binary=True), envelopes) == ["BD-0004"]
