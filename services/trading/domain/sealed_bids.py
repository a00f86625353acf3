"""Sealed bids (DESIGN.md §2, issue #9 item 3): nobody, operators included, reads a bid
before the opening. Free of any framework; the scheme is docs/sealed-bids.md.

The bidder's side (``seal_bid``):

1. A fresh 32-byte key only the bidder holds and a random 96-bit nonce.
2. The bid document is encrypted with AES-256-GCM. The associated data binds
   the scheme, the envelope's format version, the tender number and the
   bidder id (each prefixed by its length), so an envelope copied into
   another tender or under another bidder does not open there.
3. The sealed envelope is ``MAGIC || VERSION || nonce || ciphertext || tag``.
4. Two commitments are submitted with it before the deadline:
   ``ciphertext_sha256`` = SHA-256 of the exact envelope bytes, and
   ``key_commitment`` = HMAC-SHA256(key, "govhall-bid-key/1" || tender ||
   bidder || raw ciphertext_sha256), the text parts prefixed by their length.

The venue's side: ``check_submission`` at submission (the envelope is well
formed and is the one committed to; the venue has no key), and ``open_bid``
at the opening, once the bidder has revealed its key. ``open_bid`` refuses,
in this order and each with its own error: a malformed envelope or input
(``MalformedEnvelope``, ``MalformedKey``, ``MalformedCommitment``), an
envelope that is not the committed one (``CiphertextMismatch``), a key that
is not the committed one (``KeyMismatch``), and an envelope that the
committed key does not authenticate under this tender and bidder
(``Tampered``). Each error is an ``InvalidArgument`` with a ``reason`` code a
tender can publish as the cause of an invalid bid.

Why the key commitment: AES-GCM is not key-committing. Its tag is a
polynomial MAC whose key (H = AES_K(0)) the key holder knows, so whoever
chooses two keys can compute one ciphertext and tag that both keys
authenticate, each opening it to a different plaintext ("Invisible
Salamanders", Dodis et al. 2018; Grubbs et al. 2017; Len et al. 2021). A
bidder could then submit one envelope, wait, and reveal whichever key opens
it to the bid it prefers; the SHA-256 of the envelope does not stop it, since
the envelope is the same. The key commitment does: the venue accepts only a
key K with HMAC-SHA256(K, ...) equal to the commitment published at the
deadline, and two keys with one commitment would be a collision of
HMAC-SHA256 (as hard as one of SHA-256). So exactly one key can open a
submitted envelope, and it is fixed before any key is revealed. The
commitment also binds the tender, the bidder and the envelope hash, so it
cannot be carried over to another envelope, tender or bidder. It reveals
nothing about the key or the document: HMAC-SHA256 under a secret uniform
256-bit key is a pseudo-random function.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kernel.errors import FieldViolation, InvalidArgument

#: The scheme's name, in the associated data.
SCHEME = "govhall-bid/1"
#: The key commitment's domain-separation label.
KEY_COMMITMENT_LABEL = "govhall-bid-key/1"
#: The envelope's first bytes: "govhall sealed bid".
MAGIC = b"GHSB"
#: The envelope format version this module writes and reads.
VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = len(MAGIC) + 1 + NONCE_BYTES
#: The largest bid document sealed: with the envelope's 33 bytes of overhead it stays well
#: inside the default gRPC message limit (4 MiB) a submission travels in.
MAX_DOCUMENT_BYTES = 3 * 1024 * 1024
MAX_ENVELOPE_BYTES = HEADER_BYTES + MAX_DOCUMENT_BYTES + TAG_BYTES
#: The smallest envelope: a document of one byte.
MIN_ENVELOPE_BYTES = HEADER_BYTES + 1 + TAG_BYTES
#: Tender numbers and bidder ids are at most this many bytes of UTF-8.
MAX_ID_BYTES = 128

DIGEST_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class SealedBidError(InvalidArgument):
    """A sealed bid refused; ``reason`` is a stable code naming why."""

    reason = "sealed_bid_refused"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, violations=[FieldViolation(field, message)])
        self.field = field


class MalformedEnvelope(SealedBidError):
    """The bytes are not a govhall sealed-bid envelope this version can read, or too large."""

    reason = "malformed_envelope"


class MalformedKey(SealedBidError):
    """The revealed key is not 32 bytes."""

    reason = "malformed_key"


class MalformedCommitment(SealedBidError):
    """A commitment is not 64 lower-case hex digits."""

    reason = "malformed_commitment"


class MalformedBinding(SealedBidError):
    """The tender number or the bidder id cannot be bound into a sealed bid."""

    reason = "malformed_binding"


class DocumentTooLarge(SealedBidError):
    """The document to seal is empty or larger than ``MAX_DOCUMENT_BYTES``."""

    reason = "document_size"


class CiphertextMismatch(SealedBidError):
    """The envelope's SHA-256 is not the committed ``ciphertext_sha256``."""

    reason = "ciphertext_mismatch"


class KeyMismatch(SealedBidError):
    """The revealed key is not the one committed to by ``key_commitment``."""

    reason = "key_mismatch"


class Tampered(SealedBidError):
    """The committed key does not authenticate the envelope under this tender and bidder."""

    reason = "tampered"


@dataclass(frozen=True)
class SealedBid:
    """What a bidder submits before the deadline; the key stays with the bidder."""

    tender_number: str
    bidder_id: str
    envelope: bytes
    #: SHA-256 of ``envelope``, lower-case hex.
    ciphertext_sha256: str
    #: HMAC-SHA256 of the binding under the key, lower-case hex.
    key_commitment: str


def _framed(text: str) -> bytes:
    part = text.encode("utf-8")
    return len(part).to_bytes(2, "big") + part


def _check_binding(tender_number: str, bidder_id: str) -> None:
    _check_bound("tender_number", tender_number)
    _check_bound("bidder_id", bidder_id)


def _check_bound(field: str, value: str) -> None:
    if not value or value != value.strip() or not value.isprintable():
        raise MalformedBinding(
            f"{field} must be non-blank printable text without surrounding spaces",
            field=field)
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise MalformedBinding(f"{field} is not valid Unicode text", field=field) from None
    if size > MAX_ID_BYTES:
        raise MalformedBinding(
            f"{field} is {size} bytes of UTF-8, at most {MAX_ID_BYTES}", field=field)


def associated_data(*, tender_number: str, bidder_id: str, version: int = VERSION) -> bytes:
    """The AES-GCM associated data: scheme, envelope header, tender and bidder, framed."""
    _check_binding(tender_number, bidder_id)
    return (_framed(SCHEME) + MAGIC + bytes([version])
            + _framed(tender_number) + _framed(bidder_id))


def envelope_sha256(envelope: bytes) -> str:
    """The commitment to an envelope: SHA-256 of its exact bytes, lower-case hex."""
    return hashlib.sha256(envelope).hexdigest()


def key_commitment_of(key: bytes, *, tender_number: str, bidder_id: str,
                      ciphertext_sha256: str) -> str:
    """HMAC-SHA256(key, label || tender || bidder || raw ciphertext_sha256), lower-case hex."""
    _check_key(key)
    _check_binding(tender_number, bidder_id)
    _check_digest(ciphertext_sha256, "ciphertext_sha256")
    message = (_framed(KEY_COMMITMENT_LABEL) + _framed(tender_number) + _framed(bidder_id)
               + bytes.fromhex(ciphertext_sha256))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise MalformedKey(f"a bid key is {KEY_BYTES} bytes, {len(key)} given", field="key")


def _check_digest(value: str, field: str) -> None:
    if not DIGEST_PATTERN.fullmatch(value):
        raise MalformedCommitment(f"{field} must be 64 lower-case hex digits", field=field)


def _check_envelope(envelope: bytes) -> None:
    if len(envelope) > MAX_ENVELOPE_BYTES:
        raise MalformedEnvelope(
            f"the envelope is {len(envelope)} bytes, at most {MAX_ENVELOPE_BYTES}",
            field="envelope")
    if envelope[:len(MAGIC)] != MAGIC:
        raise MalformedEnvelope("not a govhall sealed-bid envelope", field="envelope")
    if len(envelope) <= len(MAGIC) or envelope[len(MAGIC)] != VERSION:
        raise MalformedEnvelope(
            f"envelope format version not readable here (this venue reads version {VERSION})",
            field="envelope")
    if len(envelope) < MIN_ENVELOPE_BYTES:
        raise MalformedEnvelope(
            f"the envelope is {len(envelope)} bytes, at least {MIN_ENVELOPE_BYTES}",
            field="envelope")


def seal_bid(document: bytes, *, tender_number: str, bidder_id: str) -> tuple[SealedBid, bytes]:
    """The bidder's side: the sealed bid to submit, and the key to keep until the reveal."""
    if not 1 <= len(document) <= MAX_DOCUMENT_BYTES:
        raise DocumentTooLarge(
            f"a bid document is 1 to {MAX_DOCUMENT_BYTES} bytes, {len(document)} given",
            field="document")
    aad = associated_data(tender_number=tender_number, bidder_id=bidder_id)
    key = AESGCM.generate_key(bit_length=8 * KEY_BYTES)
    nonce = os.urandom(NONCE_BYTES)
    envelope = MAGIC + bytes([VERSION]) + nonce + AESGCM(key).encrypt(nonce, document, aad)
    digest = envelope_sha256(envelope)
    sealed = SealedBid(
        tender_number=tender_number, bidder_id=bidder_id, envelope=envelope,
        ciphertext_sha256=digest,
        key_commitment=key_commitment_of(key, tender_number=tender_number, bidder_id=bidder_id,
                                         ciphertext_sha256=digest))
    return sealed, key


def check_submission(envelope: bytes, *, tender_number: str, bidder_id: str,
                     ciphertext_sha256: str, key_commitment: str) -> None:
    """The venue's check at submission, without the key: the envelope is well formed and
    is exactly the committed one, and both commitments are well formed."""
    _check_binding(tender_number, bidder_id)
    _check_digest(ciphertext_sha256, "ciphertext_sha256")
    _check_digest(key_commitment, "key_commitment")
    _check_envelope(envelope)
    if not hmac.compare_digest(envelope_sha256(envelope), ciphertext_sha256):
        raise CiphertextMismatch(
            "the envelope's SHA-256 is not the committed ciphertext_sha256",
            field="ciphertext_sha256")


def check_key(key: bytes, *, tender_number: str, bidder_id: str, ciphertext_sha256: str,
              key_commitment: str) -> None:
    """The revealed key is the committed one (``KeyMismatch`` otherwise)."""
    _check_digest(key_commitment, "key_commitment")
    expected = key_commitment_of(key, tender_number=tender_number, bidder_id=bidder_id,
                                 ciphertext_sha256=ciphertext_sha256)
    if not hmac.compare_digest(expected, key_commitment):
        raise KeyMismatch(
            "the revealed key does not match the bidder's key commitment", field="key")


def open_bid(envelope: bytes, key: bytes, *, tender_number: str, bidder_id: str,
             ciphertext_sha256: str, key_commitment: str) -> bytes:
    """The venue's side at the opening: the bid document, or a precise refusal."""
    return TenderOpening(tender_number).open(
        envelope, key, bidder_id=bidder_id, ciphertext_sha256=ciphertext_sha256,
        key_commitment=key_commitment)


class TenderOpening:
    """The opening of one tender's bids: ``open`` is ``open_bid`` for this tender, with
    what every bid shares (the tender number checked and framed) done once.

    ``open`` makes each of ``open_bid``'s checks once, in its order, with its errors: the
    binding, both commitments' form and the envelope's (``MalformedBinding``,
    ``MalformedCommitment``, ``MalformedEnvelope``), the envelope's SHA-256 against
    ``ciphertext_sha256`` (``CiphertextMismatch``), the key's length (``MalformedKey``),
    the key commitment (``KeyMismatch``; both compares in constant time), and AES-GCM's
    tag under the associated data (``Tampered``).
    """

    def __init__(self, tender_number: str) -> None:
        self.tender_number = tender_number
        #: Why no bid of this tender can open (its number cannot be bound), else None.
        self._unbound: MalformedBinding | None = None
        try:
            _check_bound("tender_number", tender_number)
        except MalformedBinding as refused:
            self._unbound = refused
            return
        tender = _framed(tender_number)
        self._commitment_prefix = _framed(KEY_COMMITMENT_LABEL) + tender
        self._aad_prefix = _framed(SCHEME) + MAGIC + bytes([VERSION]) + tender

    def open(self, envelope: bytes, key: bytes, *, bidder_id: str, ciphertext_sha256: str,
             key_commitment: str) -> bytes:
        """The bid document, or the refusal ``open_bid`` gives."""
        if self._unbound is not None:
            raise MalformedBinding(self._unbound.message, field=self._unbound.field)
        _check_bound("bidder_id", bidder_id)
        _check_digest(ciphertext_sha256, "ciphertext_sha256")
        _check_digest(key_commitment, "key_commitment")
        _check_envelope(envelope)
        committed = bytes.fromhex(ciphertext_sha256)
        if not hmac.compare_digest(hashlib.sha256(envelope).digest(), committed):
            raise CiphertextMismatch(
                "the envelope's SHA-256 is not the committed ciphertext_sha256",
                field="ciphertext_sha256")
        _check_key(key)
        bidder = _framed(bidder_id)
        expected = hmac.digest(key, self._commitment_prefix + bidder + committed, "sha256")
        if not hmac.compare_digest(expected, bytes.fromhex(key_commitment)):
            raise KeyMismatch(
                "the revealed key does not match the bidder's key commitment", field="key")
        try:
            return AESGCM(key).decrypt(envelope[len(MAGIC) + 1:HEADER_BYTES],
                                       envelope[HEADER_BYTES:], self._aad_prefix + bidder)
        except InvalidTag:
            raise Tampered(
                "the committed key does not authenticate this envelope for this tender and "
                "bidder", field="envelope") from None
