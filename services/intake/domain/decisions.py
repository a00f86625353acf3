"""Sealed decisions: the canonical document, its Ed25519 seal, and how it is checked.

A decision document is a JSON object serialised canonically and signed,
byte for byte, with the center's Ed25519 seal key. Since format 2
(``"format": "govhall-decision/2"``) the canonical form is RFC 8785 (JSON
Canonicalization Scheme) and the document embeds the signed statements of
its whole chain (acceptance by intake; review, signature and seal by
review), so anyone can check who decided, in which capacity and in which
order. Documents sealed before (format 1: keys sorted, no whitespace,
UTF-8) keep verifying: a signature is over the bytes, whatever made them.
The key is named by its id, the first 16 hex digits of the SHA-256 of the
raw 32-byte public key, so a verifier holding only the public keys can
check a document offline (docs/seal-verification.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ALGORITHM = "Ed25519"
CERTIFICATE_NUMBER_PATTERN = re.compile(r"^SY-[0-9]{4}-[0-9]{6}$")


class Verdict(StrEnum):
    VALID = "valid"
    TAMPERED = "tampered"
    REVOKED = "revoked"
    UNKNOWN_KEY = "unknown_key"
    UNKNOWN_CERTIFICATE = "unknown_certificate"


FORMAT = "govhall-decision/2"


def canonical_json(content: Mapping[str, Any]) -> bytes:
    """Format 1's canonical form (keys sorted, no whitespace, UTF-8); for fingerprints too."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def canonical_document(content: Mapping[str, Any]) -> bytes:
    """Format 2's canonical form: RFC 8785."""
    return rfc8785.dumps(dict(content))


def key_id(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def certificate_number(year: int, sequence: int) -> str:
    """SY-YYYY-NNNNNN: the year's running number, counting from 1."""
    if not 1 <= sequence <= 999_999:
        raise ValueError(f"certificate sequence {sequence} is out of range for one year")
    return f"SY-{year:04d}-{sequence:06d}"


def iso_utc(moment: datetime) -> str:
    """A moment as the document writes it: ISO 8601, UTC, whole seconds, 'Z'."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class DecisionDocument:
    """What the seal is applied to. The licence names its holder (applicant_name)."""

    certificate_number: str
    case_number: str
    item_code: str
    item_version: int
    item_name: str
    department_code: str
    #: "approved" or "refused".
    decision: str
    decided_at: str
    applicant_name: str
    legal_basis: str
    opinion: str
    reviewer_id: str
    signer_id: str
    sealed_by: str
    key_id: str
    issued_at: str

    def canonical(self) -> bytes:
        return canonical_json(asdict(self))


#: Letters and digits a person reads off paper without confusing them.
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def verification_code() -> str:
    """The code printed on a document, asked for by the public view of the decision."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))


@dataclass(frozen=True)
class ChainDocument:
    """Format 2: what the seal is applied to, with the chain's signed statements.

    ``chain`` holds the statements (as kernel/signing.py writes them) of the
    acceptance, review, signature and seal; ``texts`` the opinion and legal
    basis each decision's statement covers by its content digest.
    """

    certificate_number: str
    case_number: str
    item_code: str
    item_version: int
    item_name: str
    department_code: str
    #: "approved" or "refused".
    decision: str
    decided_at: str
    applicant_name: str
    legal_basis: str
    opinion: str
    reviewer_id: str
    signer_id: str
    sealed_by: str
    key_id: str
    issued_at: str
    verification_code: str
    chain: list[dict[str, Any]]
    texts: dict[str, dict[str, str]]

    def canonical(self) -> bytes:
        return canonical_document({"format": FORMAT, **asdict(self)})


def document_fields(document: bytes) -> dict[str, Any]:
    """The document's fields, or {} when it is not a JSON object."""
    return _fields(document)


@dataclass(frozen=True)
class SignatureCheck:
    """What the bytes and the signature alone tell, before the register is consulted."""

    #: The key whose signature matches; '' when none does.
    signed_by: str
    #: The key the document names; '' when the document cannot be read.
    named_key: str
    certificate_number: str
    case_number: str


def _fields(document: bytes) -> dict[str, Any]:
    # Anyone may hand in a document to verify: one nested past the parser's depth is as
    # unreadable as one that is not JSON.
    try:
        content = json.loads(document.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return content if isinstance(content, dict) else {}


def _text(content: Mapping[str, Any], key: str) -> str:
    value = content.get(key, "")
    return value if isinstance(value, str) else ""


def check_signature(document: bytes, signature: bytes,
                    public_keys: Mapping[str, bytes]) -> SignatureCheck:
    """Which of ``public_keys`` (by key id) sealed exactly these bytes, if any."""
    content = _fields(document)
    named = _text(content, "key_id")
    signed_by = ""
    if named in public_keys:
        try:
            Ed25519PublicKey.from_public_bytes(public_keys[named]).verify(signature, document)
            signed_by = named
        except (InvalidSignature, ValueError):
            signed_by = ""
    return SignatureCheck(signed_by, named, _text(content, "certificate_number"),
                          _text(content, "case_number"))


def verdict_without_record(check: SignatureCheck, public_keys: Mapping[str, bytes]) -> Verdict:
    """The verdict on a signature that does not match the key the document names.

    A document that cannot be read is not one the center sealed as it stands:
    it was altered. Only a readable document naming a key the center never had
    is foreign.
    """
    if check.named_key and check.named_key not in public_keys:
        return Verdict.UNKNOWN_KEY
    return Verdict.TAMPERED


@dataclass(frozen=True)
class SealKey:
    """A public seal key the center has used; only the active one seals new decisions."""

    key_id: str
    public_key: bytes
    created_at: datetime
    active: bool


@dataclass(frozen=True)
class SealedDecision:
    certificate_number: str
    case_number: str
    key_id: str
    decision: str
    document: bytes
    signature: bytes
    document_sha256: str
    issued_at: datetime
    revoked: bool = False
    revocation_reason: str = ""
    revoked_at: datetime | None = None
    revoked_by: str = ""


class RegisterEntryKind(StrEnum):
    SEALED = "sealed"
    REVOKED = "revoked"


@dataclass(frozen=True)
class RegisterEntry:
    """One line of the public register; the holder's name is masked ("张*")."""

    kind: RegisterEntryKind
    certificate_number: str
    case_number: str
    item_code: str
    item_name: str
    department_code: str
    decision: str
    holder: str
    decided_at: str
    issued_at: str
    reason: str
    recorded_at: datetime
    sequence: int = 0
