#!/usr/bin/env python3
"""Verify a sealed govhall decision offline, with nothing but the center's public key.

    python tools/verify_decision.py DOCUMENT SIGNATURE PUBLIC_KEY

DOCUMENT is the decision document exactly as issued (its canonical JSON
bytes); SIGNATURE is its Ed25519 signature, raw (64 bytes) or base64;
PUBLIC_KEY is the seal's public key as PEM, raw (32 bytes) or base64.
The algorithm is docs/seal-verification.md. Only the standard library and
``cryptography`` are used: no database, no server.

Exit status: 0 valid; 1 the signature does not match (tampered); 2 the
document names another key; 3 the files cannot be read. A valid seal says
the center issued this document; whether it was revoked since is told by
the public register or the VerifyDecision RPC, not by the files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

VALID, TAMPERED, OTHER_KEY, UNREADABLE = 0, 1, 2, 3


def _raw_or_base64(data: bytes, size: int) -> bytes:
    if len(data) == size:
        return data
    try:
        decoded = base64.b64decode(data.strip(), validate=True)
    except binascii.Error as error:
        raise ValueError(f"expected {size} raw bytes or their base64") from error
    if len(decoded) != size:
        raise ValueError(f"expected {size} bytes, found {len(decoded)}")
    return decoded


def load_public_key(data: bytes) -> Ed25519PublicKey:
    if b"-----BEGIN" in data:
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        return key
    return Ed25519PublicKey.from_public_bytes(_raw_or_base64(data, 32))


def key_id(key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw 32-byte public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def canonical(content: object) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def verify(document: bytes, signature: bytes, key: Ed25519PublicKey) -> tuple[int, str]:
    """The exit status and a line saying why."""
    try:
        key.verify(signature, document)
    except InvalidSignature:
        return TAMPERED, "TAMPERED: the signature does not match these exact bytes"
    content = json.loads(document.decode("utf-8"))
    if not isinstance(content, dict):
        return TAMPERED, "TAMPERED: the signed bytes are not a decision document"
    if content.get("key_id") != key_id(key):
        return OTHER_KEY, (f"OTHER KEY: the document names key {content.get('key_id')}, "
                           f"this public key is {key_id(key)}")
    note = "" if canonical(content) == document else " (but not in canonical form)"
    return VALID, (f"VALID{note}: certificate {content.get('certificate_number')}, "
                   f"case {content.get('case_number')}, decision {content.get('decision')}, "
                   f"issued {content.get('issued_at')}, key {content.get('key_id')}")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return UNREADABLE
    try:
        document = Path(argv[0]).read_bytes()
        signature = _raw_or_base64(Path(argv[1]).read_bytes(), 64)
        key = load_public_key(Path(argv[2]).read_bytes())
    except (OSError, ValueError) as error:
        print(f"UNREADABLE: {error}", file=sys.stderr)
        return UNREADABLE
    status, line = verify(document, signature, key)
    print(line)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
