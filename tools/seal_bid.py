#!/usr/bin/env python3
"""Seal a bid document for a govhall tender, and check a sealed bid, on the bidder's machine.

    python -m tools.seal_bid seal   --tender T --bidder B bid.pdf
    python -m tools.seal_bid reveal --tender T --bidder B bid.sealed bid.key
                                    [--ciphertext-sha256 HEX --key-commitment HEX]
    python -m tools.seal_bid open   --tender T --bidder B bid.sealed bid.key
                                    --ciphertext-sha256 HEX --key-commitment HEX [-o FILE]

``seal`` writes ``bid.sealed`` (the envelope to submit) and ``bid.key`` (the
key, 64 hex digits, readable by you only: keep it until the decryption
window) beside the document, never over an existing file, and prints the
two commitments to submit with the envelope. ``reveal`` checks that the key
opens the envelope and matches the commitments, and prints the key to reveal.
``open`` does exactly what the venue does at the opening and writes the
document (to ``FILE``, default ``bid.opened``).

The scheme is docs/sealed-bids.md. This file re-implements it with the
standard library and ``cryptography`` only, apart from the service's code
(services/trading/domain/sealed_bids.py), so a bidder can read all of it and
a fault in one is not repeated in the other; the tests hold the two to one
format.

Exit status: 0 done; 1 the sealed bid is refused (the reason is printed);
2 wrong usage; 3 a file cannot be read or written. Never a traceback.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEME = b"govhall-bid/1"
KEY_COMMITMENT_LABEL = b"govhall-bid-key/1"
MAGIC = b"GHSB"
VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = len(MAGIC) + 1 + NONCE_BYTES
MAX_DOCUMENT_BYTES = 3 * 1024 * 1024
MAX_ID_BYTES = 128


class Refused(Exception):
    """The sealed bid does not hold; ``reason`` is the venue's code for it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Unreadable(Exception):
    """A file cannot be read or written."""


def _framed(part: bytes) -> bytes:
    return len(part).to_bytes(2, "big") + part


def _binding(text: str, name: str) -> bytes:
    if not text or text != text.strip() or not text.isprintable():
        raise Refused("malformed_binding",
                      f"{name} must be non-blank printable text without surrounding spaces")
    part = text.encode("utf-8")
    if len(part) > MAX_ID_BYTES:
        raise Refused("malformed_binding", f"{name} is at most {MAX_ID_BYTES} bytes of UTF-8")
    return _framed(part)


def associated_data(tender: str, bidder: str) -> bytes:
    return (_framed(SCHEME) + MAGIC + bytes([VERSION])
            + _binding(tender, "tender") + _binding(bidder, "bidder"))


def key_commitment(key: bytes, tender: str, bidder: str, ciphertext_sha256: str) -> str:
    message = (_framed(KEY_COMMITMENT_LABEL) + _binding(tender, "tender")
               + _binding(bidder, "bidder") + bytes.fromhex(ciphertext_sha256))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def seal(document: bytes, tender: str, bidder: str) -> tuple[bytes, bytes, str, str]:
    """The envelope, the key, ciphertext_sha256 and key_commitment."""
    if not 1 <= len(document) <= MAX_DOCUMENT_BYTES:
        raise Refused("document_size", f"a bid document is 1 to {MAX_DOCUMENT_BYTES} bytes")
    aad = associated_data(tender, bidder)
    key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    envelope = MAGIC + bytes([VERSION]) + nonce + AESGCM(key).encrypt(nonce, document, aad)
    digest = hashlib.sha256(envelope).hexdigest()
    return envelope, key, digest, key_commitment(key, tender, bidder, digest)


def _digest_argument(value: str, name: str) -> str:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise Refused("malformed_commitment", f"{name} must be 64 lower-case hex digits")
    return value


def open_envelope(envelope: bytes, key: bytes, tender: str, bidder: str,
                  ciphertext_sha256: str, committed_key: str) -> bytes:
    """The document, after the venue's checks in the venue's order."""
    _digest_argument(ciphertext_sha256, "ciphertext_sha256")
    _digest_argument(committed_key, "key_commitment")
    aad = associated_data(tender, bidder)
    if (len(envelope) > HEADER_BYTES + MAX_DOCUMENT_BYTES + TAG_BYTES
            or envelope[:len(MAGIC)] != MAGIC or len(envelope) <= len(MAGIC)
            or envelope[len(MAGIC)] != VERSION
            or len(envelope) < HEADER_BYTES + 1 + TAG_BYTES):
        raise Refused("malformed_envelope", "not a version-1 govhall sealed-bid envelope")
    if not hmac.compare_digest(hashlib.sha256(envelope).hexdigest(), ciphertext_sha256):
        raise Refused("ciphertext_mismatch", "the envelope is not the committed one")
    if len(key) != KEY_BYTES:
        raise Refused("malformed_key", f"a bid key is {KEY_BYTES} bytes")
    if not hmac.compare_digest(key_commitment(key, tender, bidder, ciphertext_sha256),
                               committed_key):
        raise Refused("key_mismatch", "the key does not match the key commitment")
    try:
        return AESGCM(key).decrypt(envelope[len(MAGIC) + 1:HEADER_BYTES],
                                   envelope[HEADER_BYTES:], aad)
    except InvalidTag:
        raise Refused("tampered", "the committed key does not authenticate this envelope "
                      "for this tender and bidder") from None


def _read(path: Path, limit: int, *, reason: str = "document_size") -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        raise Unreadable(f"cannot read {path}: {error.strerror}") from None
    if len(data) > limit:
        raise Refused(reason, f"{path} is larger than {limit} bytes")
    return data


def _read_key(path: Path) -> bytes:
    text = _read(path, 4 * KEY_BYTES, reason="malformed_key").decode("ascii", "replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise Refused("malformed_key", f"{path} does not hold a key in hex") from None
    if len(key) != KEY_BYTES:
        raise Refused("malformed_key", f"{path} does not hold a {KEY_BYTES}-byte key")
    return key


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a file that must not exist yet, created with ``mode`` (never wider)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise Unreadable(f"{path} exists already: move it away first") from None
    except OSError as error:
        raise Unreadable(f"cannot create {path}: {error.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(data)


def _seal(args: argparse.Namespace) -> None:
    document_path: Path = args.document
    document = _read(document_path, MAX_DOCUMENT_BYTES)
    envelope, key, digest, commitment = seal(document, args.tender, args.bidder)
    sealed_path = document_path.with_suffix(".sealed")
    key_path = document_path.with_suffix(".key")
    for path in (sealed_path, key_path):
        if path.exists():
            raise Unreadable(f"{path} exists already: move it away first")
    _write_new(key_path, key.hex().encode("ascii") + b"\n", 0o600)
    _write_new(sealed_path, envelope, 0o644)
    print(f"sealed: {sealed_path}")
    print(f"key: {key_path} (keep it secret until the decryption window)")
    print(f"ciphertext_sha256: {digest}")
    print(f"key_commitment: {commitment}")


def _reveal(args: argparse.Namespace) -> None:
    envelope = _read(args.sealed, HEADER_BYTES + MAX_DOCUMENT_BYTES + TAG_BYTES,
                     reason="malformed_envelope")
    key = _read_key(args.key)
    digest = args.ciphertext_sha256 or hashlib.sha256(envelope).hexdigest()
    _digest_argument(digest, "ciphertext_sha256")
    commitment = args.key_commitment or key_commitment(key, args.tender, args.bidder, digest)
    open_envelope(envelope, key, args.tender, args.bidder, digest, commitment)
    print(f"ciphertext_sha256: {digest}")
    print(f"key_commitment: {commitment}")
    print(f"key: {key.hex()}")


def _open(args: argparse.Namespace) -> None:
    envelope = _read(args.sealed, HEADER_BYTES + MAX_DOCUMENT_BYTES + TAG_BYTES,
                     reason="malformed_envelope")
    key = _read_key(args.key)
    document = open_envelope(envelope, key, args.tender, args.bidder,
                             args.ciphertext_sha256, args.key_commitment)
    out: Path = args.output or args.sealed.with_suffix(".opened")
    _write_new(out, document, 0o600)
    print(f"opened: {out} ({len(document)} bytes, "
          f"sha256 {hashlib.sha256(document).hexdigest()})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.seal_bid",
        description="Seal a govhall bid document, or check a sealed bid (docs/sealed-bids.md).")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, about in (("seal", "encrypt a bid document under a fresh key"),
                        ("reveal", "check the key opens the envelope and print it"),
                        ("open", "open a sealed bid exactly as the venue does")):
        command = commands.add_parser(name, help=about, description=about)
        command.add_argument("--tender", required=True, help="the tender number")
        command.add_argument("--bidder", required=True, help="the bidder id")
        if name == "seal":
            command.add_argument("document", type=Path, help="the bid document")
            continue
        command.add_argument("sealed", type=Path, help="the sealed envelope (.sealed)")
        command.add_argument("key", type=Path, help="the key file (.key)")
        command.add_argument("--ciphertext-sha256", required=name == "open",
                             help="the published commitment to the envelope")
        command.add_argument("--key-commitment", required=name == "open",
                             help="the published commitment to the key")
        if name == "open":
            command.add_argument("-o", "--output", type=Path, default=None,
                                 help="where to write the document (a new file)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run = {"seal": _seal, "reveal": _reveal, "open": _open}[args.command]
    try:
        run(args)
    except Refused as refusal:
        print(f"refused ({refusal.reason}): {refusal}", file=sys.stderr)
        return 1
    except Unreadable as problem:
        print(str(problem), file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
