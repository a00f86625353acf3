"""Projects, tenders and sealed bids (DESIGN.md §2), free of any framework.

The catalogue decides which projects must enter the venue
(``entry_requiring_venue``); a project it names may be traded only through a
tender in the venue, and ``refuse_outside_venue`` is the one refusal every
other path gives, naming the entry and its threshold.

A sealed bid is kept as the bidder sent it: the ciphertext, its SHA-256 and
the commitment to the key, which stays with the bidder until the decryption
window. Nothing here reads a bid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from kernel.errors import FailedPrecondition, FieldViolation, InvalidArgument
from services.trading.domain.model import CatalogueEntry
from services.trading.domain.sealed_bids import MAX_ENVELOPE_BYTES

FUNDING_SOURCES = ("public", "state_owned", "mixed", "private")
#: Largest sealed bid taken, in bytes: the sealed-bid scheme's largest envelope.
MAX_CIPHERTEXT_BYTES = MAX_ENVELOPE_BYTES
#: Largest amount the platform takes, in fen (one trillion yuan): more is a typing mistake.
MAX_AMOUNT_FEN = 10**14


class TenderStage(StrEnum):
    BIDDING = "bidding"
    DECRYPTION = "decryption"
    EVALUATION = "evaluation"
    CANDIDATES = "candidates"
    AWARDED = "awarded"
    CONTRACTED = "contracted"
    FAILED = "failed"


@dataclass(frozen=True)
class Project:
    project_no: str
    category: str
    title: str
    estimated_value_fen: int
    funding_source: str
    department_code: str
    #: The catalogue entry that makes the project enter the venue; None when none does.
    entry: CatalogueEntry | None
    registered_at: datetime

    @property
    def must_enter(self) -> bool:
        return self.entry is not None


@dataclass(frozen=True)
class Tender:
    tender_no: str
    project_no: str
    category: str
    stage: TenderStage
    announced_at: datetime
    bid_deadline: datetime
    documents_until: datetime | None
    objections_until: datetime | None
    decryption_window_seconds: int
    workflow_started: bool
    paused: bool
    winner: str
    entry_code: str
    bids: int = 0


@dataclass(frozen=True)
class Bidder:
    bidder_id: str
    #: The company's registered name.
    name: str
    #: The one calling system that acts for the bidder.
    system: str


@dataclass(frozen=True)
class SealedBid:
    tender_no: str
    bidder_id: str
    ciphertext: bytes
    ciphertext_sha256: str
    key_commitment: str
    system: str
    submitted_at: datetime
    #: The key revealed in the decryption window; None before.
    revealed_key: bytes | None = None
    #: After the decryption window: "valid" or why the bid is invalid; '' before.
    validity: str = ""
    revealed_at: datetime | None = None
    #: The network origin (IP address) the bid came from; '' when unknown.
    origin: str = ""


class Envelope(NamedTuple):
    """A sealed bid as the opening checks it: the envelope, its commitments, the key."""

    bidder_id: str
    ciphertext: bytes
    ciphertext_sha256: str
    key_commitment: str
    #: The key revealed in the decryption window; None when none was.
    revealed_key: bytes | None


@dataclass(frozen=True)
class Committee:
    """A tender's evaluation committee: its expert draw, size and the tenderer's
    representatives; ``members`` (experts as drawn, then the representatives) once seated."""

    tender_no: str
    draw_id: str
    size: int
    representatives: tuple[str, ...]
    members: tuple[str, ...] = ()
    seated_at: datetime | None = None

    @property
    def experts(self) -> int:
        return self.size - len(self.representatives)


def check_amount(amount_fen: int, *, field: str) -> None:
    if not 0 < amount_fen <= MAX_AMOUNT_FEN:
        raise InvalidArgument(
            f"{field} must be positive and at most {MAX_AMOUNT_FEN} fen",
            violations=[FieldViolation(field, "out of range")])


def refuse_outside_venue(project: Project, *, amount_fen: int,
                         entry: CatalogueEntry | None) -> None:
    """Refuse to record ``project`` as traded outside the venue when the catalogue makes it
    enter, at its estimated value or at the amount awarded (``entry``: the entry the amount
    reaches), naming the rule."""
    rule = project.entry or entry
    if rule is None:
        return
    value = max(project.estimated_value_fen, amount_fen)
    raise FailedPrecondition(
        f"project {project.project_no} must enter the venue: catalogue entry {rule.code} "
        f"({rule.name}) covers {rule.category} projects of {rule.threshold_fen} fen or more, "
        f"and this one is worth {value} fen; announce a tender instead")


def check_sealed_bid(*, ciphertext: bytes, ciphertext_sha256: str,
                     key_commitment: str) -> None:
    """The shape of a sealed bid; InvalidArgument naming every field that is wrong."""
    problems: list[FieldViolation] = []
    if not ciphertext:
        problems.append(FieldViolation("ciphertext", "must not be empty"))
    elif len(ciphertext) > MAX_CIPHERTEXT_BYTES:
        problems.append(FieldViolation("ciphertext",
                                       f"is larger than {MAX_CIPHERTEXT_BYTES} bytes"))
    elif hashlib.sha256(ciphertext).hexdigest() != ciphertext_sha256:
        problems.append(FieldViolation("ciphertext_sha256",
                                       "is not the SHA-256 of the ciphertext"))
    if len(key_commitment) != 64 or any(c not in "0123456789abcdef" for c in key_commitment):
        problems.append(FieldViolation("key_commitment", "must be 64 lower-case hex digits"))
    if problems:
        raise InvalidArgument("the sealed bid is not valid: " + "; ".join(
            f"{p.field} {p.description}" for p in problems), violations=problems)
