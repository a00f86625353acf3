#!/usr/bin/env python3
"""Verify an exported govhall audit log offline, against checkpoints kept by an outsider.

    python tools/verify_audit.py --service intake --log LOG.json \\
        --checkpoints CHECKPOINTS.json --key intake.pem [--key older.pem ...]

LOG holds the audit log's entries as ``ExportAuditLog`` returns them: one or
more JSON values (for example grpcurl's output of each page), each a page
(``{"entries": [...]}``), a list of entries, or one entry. CHECKPOINTS holds
checkpoints as ``ListAuditCheckpoints`` returns them, the same way. Each KEY
is one of the service's checkpoint public keys as PEM (``ListAuditSigningKeys``).
Protobuf JSON (lowerCamelCase names, int64 as strings, bytes as base64) and
plain snake_case JSON are both read.

The algorithm is docs/audit-verification.md; only the standard library and
``cryptography`` are used: no database, no server, no govhall code.

Exit status: 0 the log is intact and reaches every checkpoint; 1 the log is
broken (an entry edited, removed, reordered, rewritten with recomputed
hashes, or the tail cut), naming the first broken entry; 2 the log holds but
a checkpoint was refused (forged, another service's, or malformed); 3 the
files cannot be read.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

INTACT, BROKEN, REFUSED, UNREADABLE = 0, 1, 2, 3
GENESIS = "0" * 64
CHECKPOINT_TYPE = "govhall.audit_checkpoint.v1"
HASHED = ("sequence", "recorded_at", "system", "official_id", "action", "subject", "details",
          "previous_hash")
_HASH = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Claim:
    number: int
    sequence: int
    head_hash: str
    signed_at: str


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _values(path: Path) -> Iterator[Any]:
    """Every JSON value in the file, one after another."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return
        value, position = decoder.raw_decode(text, position)
        yield value


def _items(path: Path, plural: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for value in _values(path):
        if isinstance(value, dict) and plural in value:
            value = value[plural]
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, dict):
                raise ValueError(f"{path}: expected objects, found {item!r}")
            found.append({_snake(k): v for k, v in item.items()})
    return found


def key_id(key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of SHA-256 over the raw 32-byte public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_keys(paths: list[Path]) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path} is not an Ed25519 public key")
        keys[key_id(key)] = key
    return keys


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of the eight hashed fields (RFC 8785 for these values)."""
    content = {name: entry[name] for name in HASHED}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def check_checkpoint(item: dict[str, Any], service: str,
                     keys: dict[str, Ed25519PublicKey]) -> Claim:
    """What the checkpoint vouches for; ValueError saying why it is refused."""
    try:
        body = base64.b64decode(item.get("body", ""), validate=True)
        signature = base64.b64decode(item.get("signature", ""), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("its body or signature is not base64") from error
    key = keys.get(str(item.get("key_id", "")))
    if key is None:
        raise ValueError(f"no key given with id {item.get('key_id')!r}")
    try:
        key.verify(signature, body)
    except InvalidSignature as error:
        raise ValueError(f"the signature does not hold: not signed by {service}'s key") from error
    content = json.loads(body.decode("utf-8"))
    if not isinstance(content, dict) or content.get("type") != CHECKPOINT_TYPE:
        raise ValueError(f"its body is not a {CHECKPOINT_TYPE}")
    if content.get("service") != service:
        raise ValueError(f"it is a checkpoint of {content.get('service')!r}, not of {service!r}")
    number, sequence, head = (content.get("checkpoint"), content.get("sequence"),
                              content.get("head_hash"))
    if not (isinstance(number, int) and isinstance(sequence, int) and sequence >= 0
            and isinstance(head, str) and _HASH.fullmatch(head)):
        raise ValueError("its body lacks a checkpoint number, a sequence or a head hash")
    return Claim(number, sequence, head, str(content.get("signed_at")))


def verify(entries: list[dict[str, Any]], claims: list[Claim]) -> tuple[int, str]:
    """0 and a summary, or the first broken entry and why."""
    signed: dict[int, list[Claim]] = {}
    for claim in claims:
        signed.setdefault(claim.sequence, []).append(claim)
    for claim in signed.get(0, []):
        if claim.head_hash != GENESIS:
            return 1, f"checkpoint #{claim.number} says the log was empty, with another hash"
    previous, expected, confirmed = GENESIS, 1, 0
    for entry in entries:
        sequence = int(entry["sequence"])
        entry = entry | {"sequence": sequence}
        if sequence != expected:
            return expected if sequence > expected else sequence, (
                f"entry {sequence} follows entry {expected - 1}: entries are missing or "
                "renumbered")
        if entry["previous_hash"] != previous:
            return sequence, f"it does not link to the hash of entry {sequence - 1}"
        if entry_hash(entry) != entry["entry_hash"]:
            return sequence, "it was changed after it was written"
        for claim in signed.get(sequence, []):
            if claim.head_hash != entry["entry_hash"]:
                return sequence, (
                    f"it is not the entry checkpoint #{claim.number} signed at "
                    f"{claim.signed_at}; the log was rewritten somewhere in entries "
                    f"{confirmed + 1} to {sequence}, hashes recomputed")
        if sequence in signed:
            confirmed = sequence
        previous = entry["entry_hash"]
        expected += 1
    newest = max(claims, key=lambda c: c.sequence, default=None)
    if newest is not None and newest.sequence >= expected:
        return expected, (
            f"the log ends at entry {expected - 1} but checkpoint #{newest.number} signed "
            f"entry {newest.sequence} at {newest.signed_at}: entries {expected} to "
            f"{newest.sequence} were cut off")
    return 0, (f"{expected - 1} entries, head {previous}, checkpoints vouch up to entry "
               f"{newest.sequence if newest else 0} ({len(claims)} checkpoints)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", required=True, help="whose log: intake, review, ...")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--checkpoints", type=Path, required=True)
    parser.add_argument("--key", type=Path, action="append", required=True)
    args = parser.parse_args(argv)
    try:
        keys = load_keys(args.key)
        entries = _items(args.log, "entries")
        checkpoints = _items(args.checkpoints, "checkpoints")
        for entry in entries:
            if "sequence" not in entry:
                raise ValueError("an entry has no sequence")
            for name in (*HASHED, "entry_hash"):
                entry.setdefault(name, "")  # protobuf JSON leaves out empty strings
    except (OSError, ValueError) as error:
        print(f"UNREADABLE: {error}")
        return UNREADABLE
    claims: list[Claim] = []
    refused = 0
    for item in checkpoints:
        try:
            claims.append(check_checkpoint(item, args.service, keys))
        except (ValueError, UnicodeDecodeError) as error:
            refused += 1
            print(f"REFUSED: checkpoint #{item.get('number', '?')}: {error}")
    broken, reason = verify(entries, claims)
    if broken:
        print(f"BROKEN at entry {broken}: {reason}")
        return BROKEN
    print(f"INTACT: {reason}")
    return REFUSED if refused else INTACT


if __name__ == "__main__":
    sys.exit(main())
