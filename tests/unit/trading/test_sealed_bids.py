"""Sealed bids (services/trading/domain/sealed_bids.py) with real AES-256-GCM, no server."""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Callable

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kernel.errors import InvalidArgument
from services.trading.domain.sealed_bids import (
    HEADER_BYTES,
    MAGIC,
    MAX_DOCUMENT_BYTES,
    MAX_ENVELOPE_BYTES,
    MAX_ID_BYTES,
    VERSION,
    CiphertextMismatch,
    DocumentTooLarge,
    KeyMismatch,
    MalformedBinding,
    MalformedCommitment,
    MalformedEnvelope,
    MalformedKey,
    SealedBid,
    SealedBidError,
    Tampered,
    TenderOpening,
    associated_data,
    check_key,
    check_submission,
    envelope_sha256,
    key_commitment_of,
    open_bid,
    seal_bid,
)

TENDER = "TD-2026-0001"
BIDDER = "91320100MA1XXXXX0X"
DOCUMENT = "投标报价：人民币 1,234,567.00 元；工期 180 日历天。".encode() + bytes(range(256))


def _open(sealed: SealedBid, key: bytes, **changes: object) -> bytes:
    values: dict[str, object] = {
        "tender_number": sealed.tender_number, "bidder_id": sealed.bidder_id,
        "ciphertext_sha256": sealed.ciphertext_sha256,
        "key_commitment": sealed.key_commitment}
    envelope = changes.pop("envelope", sealed.envelope)
    return open_bid(envelope, key, **(values | changes))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sealed() -> tuple[SealedBid, bytes]:
    return seal_bid(DOCUMENT, tender_number=TENDER, bidder_id=BIDDER)


def test_a_sealed_bid_opens_with_its_key_to_the_document(sealed: tuple[SealedBid, bytes]) -> None:
    bid, key = sealed
    assert len(key) == 32
    assert bid.envelope[:5] == MAGIC + bytes([VERSION])
    assert bid.ciphertext_sha256 == hashlib.sha256(bid.envelope).hexdigest()
    assert bid.key_commitment == key_commitment_of(
        key, tender_number=TENDER, bidder_id=BIDDER, ciphertext_sha256=bid.ciphertext_sha256)
    check_submission(bid.envelope, tender_number=TENDER, bidder_id=BIDDER,
                     ciphertext_sha256=bid.ciphertext_sha256, key_commitment=bid.key_commitment)
    assert _open(bid, key) == DOCUMENT


def test_each_sealing_has_its_own_key_and_nonce() -> None:
    (first, key_1), (second, key_2) = (
        seal_bid(DOCUMENT, tender_number=TENDER, bidder_id=BIDDER) for _ in range(2))
    assert key_1 != key_2
    assert first.envelope[5:HEADER_BYTES] != second.envelope[5:HEADER_BYTES]
    assert first.ciphertext_sha256 != second.ciphertext_sha256
    assert first.key_commitment != second.key_commitment


def test_a_wrong_key_is_refused_as_key_mismatch(sealed: tuple[SealedBid, bytes]) -> None:
    bid, key = sealed
    other = bytes([key[0] ^ 1]) + key[1:]
    with pytest.raises(KeyMismatch) as refused:
        _open(bid, other)
    assert refused.value.reason == "key_mismatch"
    assert isinstance(refused.value, InvalidArgument)
    with pytest.raises(KeyMismatch):
        check_key(other, tender_number=TENDER, bidder_id=BIDDER,
                  ciphertext_sha256=bid.ciphertext_sha256, key_commitment=bid.key_commitment)


def test_a_key_of_the_wrong_length_is_malformed(sealed: tuple[SealedBid, bytes]) -> None:
    bid, key = sealed
    for wrong in (b"", key[:16], key + b"\x00"):
        with pytest.raises(MalformedKey):
            _open(bid, wrong)


def test_another_envelope_under_the_commitments_is_a_ciphertext_mismatch(
        sealed: tuple[SealedBid, bytes]) -> None:
    bid, key = sealed
    other, _ = seal_bid(DOCUMENT, tender_number=TENDER, bidder_id=BIDDER)
    with pytest.raises(CiphertextMismatch):
        check_submission(other.envelope, tender_number=TENDER, bidder_id=BIDDER,
                         ciphertext_sha256=bid.ciphertext_sha256,
                         key_commitment=bid.key_commitment)
    with pytest.raises(CiphertextMismatch):
        _open(bid, key, envelope=other.envelope)


def test_every_flipped_bit_of_the_envelope_is_caught(sealed: tuple[SealedBid, bytes]) -> None:
    """Against the committed hash: a ciphertext mismatch. Against a hash taken of the altered
    envelope and a commitment made with the real key (an operator who knows the key and
    rewrites the record): the tag fails, Tampered."""
    bid, key = sealed
    rng = random.Random(9)
    positions = [*range(HEADER_BYTES + 2), *rng.sample(range(len(bid.envelope)), 40),
                 len(bid.envelope) - 1]
    for position in positions:
        altered = bytearray(bid.envelope)
        altered[position] ^= 1 << rng.randrange(8)
        with pytest.raises((CiphertextMismatch, MalformedEnvelope)):
            _open(bid, key, envelope=bytes(altered))
        if position < 5:
            continue  # magic and version: refused as malformed before any hash
        digest = envelope_sha256(bytes(altered))
        with pytest.raises(Tampered):
            _open(bid, key, envelope=bytes(altered), ciphertext_sha256=digest,
                  key_commitment=key_commitment_of(key, tender_number=TENDER,
                                                   bidder_id=BIDDER, ciphertext_sha256=digest))


def test_a_truncated_or_extended_envelope_is_refused(sealed: tuple[SealedBid, bytes]) -> None:
    bid, key = sealed
    for envelope in (bid.envelope[:-1], bid.envelope + b"\x00", bid.envelope[:HEADER_BYTES + 16]):
        digest = envelope_sha256(envelope)
        with pytest.raises((Tampered, MalformedEnvelope)):
            _open(bid, key, envelope=envelope, ciphertext_sha256=digest,
                  key_commitment=key_commitment_of(key, tender_number=TENDER, bidder_id=BIDDER,
                                                   ciphertext_sha256=digest))


@pytest.mark.parametrize(("envelope", "says"), [
    (b"", "not a govhall"),
    (b"%PDF-1.7 a plain document" + bytes(40), "not a govhall"),
    (MAGIC, "version"),
    (MAGIC + bytes([2]) + bytes(40), "version"),
    (MAGIC + bytes([VERSION]) + bytes(HEADER_BYTES + 16 - 5), "at least"),
    (MAGIC + bytes([VERSION]) + bytes(MAX_ENVELOPE_BYTES - 4), "at most"),
])
def test_what_is_not_an_envelope_is_refused_as_malformed(envelope: bytes, says: str) -> None:
    with pytest.raises(MalformedEnvelope, match=says):
        check_submission(envelope, tender_number=TENDER, bidder_id=BIDDER,
                         ciphertext_sha256=envelope_sha256(envelope), key_commitment="0" * 64)


def test_malformed_commitments_are_refused(sealed: tuple[SealedBid, bytes]) -> None:
    bid, key = sealed
    for wrong in ("", "0" * 63, bid.ciphertext_sha256.upper(), "g" * 64):
        with pytest.raises(MalformedCommitment):
            _open(bid, key, ciphertext_sha256=wrong)
        with pytest.raises(MalformedCommitment):
            _open(bid, key, key_commitment=wrong)


def test_documents_of_no_or_too_many_bytes_are_not_sealed() -> None:
    with pytest.raises(DocumentTooLarge):
        seal_bid(b"", tender_number=TENDER, bidder_id=BIDDER)
    with pytest.raises(DocumentTooLarge):
        seal_bid(bytes(MAX_DOCUMENT_BYTES + 1), tender_number=TENDER, bidder_id=BIDDER)
    biggest, key = seal_bid(bytes(MAX_DOCUMENT_BYTES), tender_number=TENDER, bidder_id=BIDDER)
    assert len(biggest.envelope) == MAX_ENVELOPE_BYTES
    assert _open(biggest, key) == bytes(MAX_DOCUMENT_BYTES)


@pytest.mark.parametrize("wrong", ["", " TD-1", "TD-1 ", "TD\n1", "TD\x001",
                                   "标" * (MAX_ID_BYTES // 3 + 1)])
def test_a_tender_number_or_bidder_id_that_cannot_be_bound_is_refused(wrong: str) -> None:
    with pytest.raises(MalformedBinding):
        seal_bid(DOCUMENT, tender_number=wrong, bidder_id=BIDDER)
    with pytest.raises(MalformedBinding):
        seal_bid(DOCUMENT, tender_number=TENDER, bidder_id=wrong)


def test_the_binding_is_framed_so_no_two_bindings_share_associated_data() -> None:
    assert (associated_data(tender_number="TD-1", bidder_id="2B")
            != associated_data(tender_number="TD-12", bidder_id="B"))


def test_an_envelope_replayed_into_another_tender_or_under_another_bidder_does_not_open(
        sealed: tuple[SealedBid, bytes]) -> None:
    """Copied with its commitments, the key commitment (bound to tender and bidder) refuses
    the real key. Copied by someone who learnt the key and made fresh commitments for the
    new place, the associated data refuses it."""
    bid, key = sealed
    for place in ({"tender_number": "TD-2026-0002"}, {"bidder_id": "91320100MA1YYYYY0Y"}):
        with pytest.raises(KeyMismatch):
            _open(bid, key, **place)
        binding = {"tender_number": TENDER, "bidder_id": BIDDER} | place
        recommitted = key_commitment_of(key, ciphertext_sha256=bid.ciphertext_sha256,
                                        **binding)
        with pytest.raises(Tampered):
            _open(bid, key, key_commitment=recommitted, **place)


def test_every_refusal_is_a_sealed_bid_error_with_its_own_reason() -> None:
    reasons = {cls.reason for cls in (MalformedEnvelope, MalformedKey, MalformedCommitment,
                                      MalformedBinding, DocumentTooLarge, CiphertextMismatch,
                                      KeyMismatch, Tampered)}
    assert len(reasons) == 8
    assert all(issubclass(cls, SealedBidError) and issubclass(cls, InvalidArgument)
               for cls in (MalformedEnvelope, KeyMismatch, CiphertextMismatch, Tampered))


# --- The GCM key-commitment gap, shown with a real two-key ciphertext ---------------------------

_R = 0xE1 << 120


def _gf_mul(x: int, y: int) -> int:
    """Multiplication in GCM's GF(2^128) (NIST SP 800-38D, algorithm 1)."""
    z, v = 0, y
    for bit in range(127, -1, -1):
        if (x >> bit) & 1:
            z ^= v
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def _gf_pow(x: int, n: int) -> int:
    result = 1 << 127  # the field's one, in GCM's reflected bit order
    while n:
        if n & 1:
            result = _gf_mul(result, x)
        x = _gf_mul(x, x)
        n >>= 1
    return result


def _aes(key: bytes, block: bytes) -> int:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305
    return int.from_bytes(encryptor.update(block) + encryptor.finalize(), "big")


def _blocks(data: bytes) -> list[int]:
    padded = data + bytes(-len(data) % 16)
    return [int.from_bytes(padded[i:i + 16], "big") for i in range(0, len(padded), 16)]


def _keystream(key: bytes, nonce: bytes, blocks: int) -> list[int]:
    return [_aes(key, nonce + (2 + i).to_bytes(4, "big")) for i in range(blocks)]


def _two_key_ciphertext(key_1: bytes, key_2: bytes, nonce: bytes, aad: bytes, bid_1: bytes,
                        bid_2: bytes) -> bytes:
    """One GCM ciphertext+tag that both keys authenticate: block 1 reads ``bid_1`` under
    ``key_1``, block 2 reads ``bid_2`` under ``key_2``, block 3 is solved for so that the two
    tags agree (tag_k = AES_k(J0) xor GHASH_{H_k}(aad, c) is affine in each block of c)."""
    stream_1, stream_2 = _keystream(key_1, nonce, 3), _keystream(key_2, nonce, 3)
    c1 = int.from_bytes(bid_1.ljust(16), "big") ^ stream_1[0]
    c2 = int.from_bytes(bid_2.ljust(16), "big") ^ stream_2[1]
    a_blocks = _blocks(aad)
    length = ((len(aad) * 8) << 64) | (3 * 16 * 8)
    hashes = [_aes(k, bytes(16)) for k in (key_1, key_2)]
    masks = [_aes(k, nonce + (1).to_bytes(4, "big")) for k in (key_1, key_2)]

    def tag_without_c3(h: int, mask: int) -> int:
        blocks = [*a_blocks, c1, c2, 0, length]
        total = mask
        for i, block in enumerate(blocks):
            total ^= _gf_mul(block, _gf_pow(h, len(blocks) - i))
        return total

    difference = tag_without_c3(hashes[0], masks[0]) ^ tag_without_c3(hashes[1], masks[1])
    # c3 sits second from the end, so it is multiplied by H^2 in each tag.
    coefficient = _gf_pow(hashes[0], 2) ^ _gf_pow(hashes[1], 2)
    c3 = _gf_mul(difference, _gf_pow(coefficient, 2**128 - 2))
    tag = tag_without_c3(hashes[0], masks[0]) ^ _gf_mul(c3, _gf_pow(hashes[0], 2))
    return b"".join(c.to_bytes(16, "big") for c in (c1, c2, c3, tag))


def _gcm_only_open(envelope: bytes, key: bytes, digest: str) -> bytes:
    """A venue without the key commitment: it checks the envelope hash and the GCM tag."""
    if envelope_sha256(envelope) != digest:
        raise CiphertextMismatch("not the committed envelope", field="envelope")
    aad = associated_data(tender_number=TENDER, bidder_id=BIDDER)
    try:
        return AESGCM(key).decrypt(envelope[5:HEADER_BYTES], envelope[HEADER_BYTES:], aad)
    except InvalidTag:
        raise Tampered("tag", field="envelope") from None


def test_gcm_alone_lets_a_second_key_open_the_same_envelope_to_another_bid_but_the_key_commitment_refuses_it() -> None:  # noqa: E501
    rng = random.Random(2026)
    key_1, key_2 = rng.randbytes(32), rng.randbytes(32)
    nonce = rng.randbytes(12)
    body = _two_key_ciphertext(key_1, key_2, nonce,
                               associated_data(tender_number=TENDER, bidder_id=BIDDER),
                               b"PRICE=1000000", b"PRICE=9000000")
    envelope = MAGIC + bytes([VERSION]) + nonce + body
    digest = envelope_sha256(envelope)
    # The crafted envelope is a well-formed submission, committed to key_1.
    commitment = key_commitment_of(key_1, tender_number=TENDER, bidder_id=BIDDER,
                                   ciphertext_sha256=digest)
    check_submission(envelope, tender_number=TENDER, bidder_id=BIDDER, ciphertext_sha256=digest,
                     key_commitment=commitment)
    # Without the key commitment both keys pass, each opening its own bid.
    opened_1 = _gcm_only_open(envelope, key_1, digest)
    opened_2 = _gcm_only_open(envelope, key_2, digest)
    assert opened_1.startswith(b"PRICE=1000000")
    assert opened_2[16:].startswith(b"PRICE=9000000")
    # With it, only the committed key opens the envelope; the second key is refused.
    assert open_bid(envelope, key_1, tender_number=TENDER, bidder_id=BIDDER,
                    ciphertext_sha256=digest, key_commitment=commitment) == opened_1
    with pytest.raises(KeyMismatch):
        open_bid(envelope, key_2, tender_number=TENDER, bidder_id=BIDDER,
                 ciphertext_sha256=digest, key_commitment=commitment)


# --- Properties over random documents -----------------------------------------------------------


def test_random_documents_round_trip_and_only_their_key_opens_them() -> None:
    rng = random.Random(20261201)
    sizes = [1, 15, 16, 17, 255, 4096, *(rng.randrange(1, 70_000) for _ in range(40))]
    keys: list[bytes] = []
    for size in sizes:
        document = rng.randbytes(size)
        tender = f"TD-2026-{rng.randrange(10_000):04d}"
        bid, key = seal_bid(document, tender_number=tender, bidder_id=BIDDER)
        assert len(bid.envelope) == size + HEADER_BYTES + 16
        assert _open(bid, key) == document
        for other in keys[-3:]:
            with pytest.raises(KeyMismatch):
                _open(bid, other)
        keys.append(key)
    assert len(set(keys)) == len(keys)


def test_what_the_venue_holds_before_the_reveal_gives_no_bid_content_away() -> None:
    """Envelope and both commitments: the document, and every 16-byte window of it, is absent
    from all of them; no key but the bidder's opens it (not even one derived from what is
    held: the commitments, the envelope's hash, zeros)."""
    rng = random.Random(7)
    documents = [DOCUMENT, b"A" * 4096, b"price 100000000\n" * 64,
                 *(rng.randbytes(rng.randrange(16, 5000)) for _ in range(20))]
    for document in documents:
        bid, key = seal_bid(document, tender_number=TENDER, bidder_id=BIDDER)
        held = b"".join((bid.envelope, bid.ciphertext_sha256.encode(), bid.key_commitment.encode(),
                         bytes.fromhex(bid.ciphertext_sha256),
                         bytes.fromhex(bid.key_commitment)))
        assert document not in held
        windows = {document[i:i + 16] for i in range(len(document) - 15)}
        assert not any(window in held for window in windows)
        assert key not in held and key.hex().encode() not in held
        for guess in (bytes(32), bytes.fromhex(bid.ciphertext_sha256),
                      bytes.fromhex(bid.key_commitment), hashlib.sha256(bid.envelope).digest()):
            with pytest.raises(KeyMismatch):
                _open(bid, guess)
            aad = associated_data(tender_number=TENDER, bidder_id=BIDDER)
            with pytest.raises(InvalidTag):
                AESGCM(guess).decrypt(bid.envelope[5:HEADER_BYTES],
                                      bid.envelope[HEADER_BYTES:], aad)


def _refusal(call: Callable[..., bytes], *args: bytes,
             **named: str) -> tuple[str, str, str] | bytes:
    try:
        return call(*args, **named)
    except SealedBidError as refused:
        return type(refused).__name__, refused.reason, refused.field


def _framed_ref(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def _reference_open(envelope: bytes, key: bytes, *, tender_number: str, bidder_id: str,
                    ciphertext_sha256: str, key_commitment: str) -> bytes | str:
    """The opening as docs/sealed-bids.md states it, written again here from the standard
    library and ``cryptography`` alone (not the product's code): the document, or the name
    of the first check that fails, in the documented order."""
    for value in (tender_number, bidder_id):
        if not value.strip() or value != value.strip() or not value.isprintable() \
                or len(value.encode()) > 128:
            return "MalformedBinding"
    for digest in (ciphertext_sha256, key_commitment):
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            return "MalformedCommitment"
    if envelope[:4] != b"GHSB" or envelope[4:5] != b"\x01" \
            or not 34 <= len(envelope) <= 3 * 1024 * 1024 + 33:
        return "MalformedEnvelope"
    if hashlib.sha256(envelope).hexdigest() != ciphertext_sha256:
        return "CiphertextMismatch"
    if len(key) != 32:
        return "MalformedKey"
    message = (_framed_ref("govhall-bid-key/1") + _framed_ref(tender_number)
               + _framed_ref(bidder_id) + bytes.fromhex(ciphertext_sha256))
    if not hmac.compare_digest(hmac.new(key, message, hashlib.sha256).hexdigest(),
                               key_commitment):
        return "KeyMismatch"
    aad = (_framed_ref("govhall-bid/1") + b"GHSB\x01" + _framed_ref(tender_number)
           + _framed_ref(bidder_id))
    try:
        return AESGCM(key).decrypt(envelope[5:17], envelope[17:], aad)
    except InvalidTag:
        return "Tampered"


def test_a_tender_opening_gives_open_bid_s_document_or_refusal_for_every_case() -> None:
    bids = [seal_bid(DOCUMENT + bytes([n]), tender_number=TENDER, bidder_id=f"BD-{n:04d}")
            for n in range(3)]
    (first, key), (second, second_key), (third, third_key) = bids
    elsewhere, elsewhere_key = seal_bid(DOCUMENT, tender_number="TD-2026-0002",
                                        bidder_id=BIDDER)
    flipped = bytearray(third.envelope)
    flipped[-1] ^= 1
    tampered = bytes(flipped)
    cases: list[tuple[bytes, bytes, str, str, str]] = [
        (first.envelope, key, first.bidder_id, first.ciphertext_sha256, first.key_commitment),
        (second.envelope, second_key, second.bidder_id, second.ciphertext_sha256,
         second.key_commitment),
        # Each refusal, in open_bid's order of checks.
        (first.envelope, key, " BD-0000", first.ciphertext_sha256, first.key_commitment),
        (first.envelope, key, first.bidder_id, first.ciphertext_sha256.upper(),
         first.key_commitment),
        (first.envelope, key, first.bidder_id, first.ciphertext_sha256, "00" * 31),
        (b"XXXX" + first.envelope[4:], key, first.bidder_id, first.ciphertext_sha256,
         first.key_commitment),
        (second.envelope, key, first.bidder_id, first.ciphertext_sha256,
         first.key_commitment),
        (first.envelope, key[:16], first.bidder_id, first.ciphertext_sha256,
         first.key_commitment),
        (first.envelope, second_key, first.bidder_id, first.ciphertext_sha256,
         first.key_commitment),
        (first.envelope, key, second.bidder_id, first.ciphertext_sha256,
         first.key_commitment),
        (tampered, third_key, third.bidder_id, envelope_sha256(tampered),
         key_commitment_of(third_key, tender_number=TENDER, bidder_id=third.bidder_id,
                           ciphertext_sha256=envelope_sha256(tampered))),
        # Sealed for another tender: its key commitment binds that tender.
        (elsewhere.envelope, elsewhere_key, BIDDER, elsewhere.ciphertext_sha256,
         elsewhere.key_commitment),
    ]
    opening = TenderOpening(TENDER)
    seen: list[object] = []
    for envelope, key_, bidder, digest, commitment in cases:
        named = {"bidder_id": bidder, "ciphertext_sha256": digest,
                 "key_commitment": commitment}
        given = _refusal(opening.open, envelope, key_, **named)
        expected = _reference_open(envelope, key_, tender_number=TENDER, **named)
        assert (given if isinstance(given, bytes) else given[0]) == expected
        seen.append(given if isinstance(given, tuple) else given[-1])
    assert seen[:2] == [0, 1]
    assert [s[0] for s in seen[2:] if isinstance(s, tuple)] == [
        "MalformedBinding", "MalformedCommitment", "MalformedCommitment", "MalformedEnvelope",
        "CiphertextMismatch", "MalformedKey", "KeyMismatch", "KeyMismatch", "Tampered",
        "KeyMismatch"]


@pytest.mark.parametrize("wrong", ["", " TD-1", "TD\n1", "T" * (MAX_ID_BYTES + 1)])
def test_a_tender_opening_for_a_number_that_cannot_be_bound_refuses_every_bid(
        wrong: str, sealed: tuple[SealedBid, bytes]) -> None:
    bid, key = sealed
    opening = TenderOpening(wrong)
    for _ in range(2):
        with pytest.raises(MalformedBinding) as refused:
            opening.open(bid.envelope, key, bidder_id=bid.bidder_id,
                         ciphertext_sha256=bid.ciphertext_sha256,
                         key_commitment=bid.key_commitment)
        assert refused.value.field == "tender_number"
        with pytest.raises(MalformedBinding) as directly:
            open_bid(bid.envelope, key, tender_number=wrong, bidder_id=bid.bidder_id,
                     ciphertext_sha256=bid.ciphertext_sha256, key_commitment=bid.key_commitment)
        assert directly.value.message == refused.value.message
