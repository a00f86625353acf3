"""Signed checkpoints of a service's audit log: the head, vouched for by the service's key.

A checkpoint body is a JSON object::

    {"type": "govhall.audit_checkpoint.v1", "service": "intake", "checkpoint": 7,
     "sequence": 1234, "head_hash": "<hex>", "signed_at": "2026-03-05T02:00:00.000000Z"}

serialised by RFC 8785 and signed with the service's Ed25519 key
(kernel.signing). Checkpoints are numbered from 1 and appended to the
service's ``audit_checkpoints`` table, which nothing updates or deletes; the
``AuditCheckpointsService`` feed publishes them. The point of a checkpoint
is that it leaves the service: whoever keeps copies can later show that the
log was rewritten or cut after it (kernel.audit.verify_entries), even if the
table was rewritten too.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, Text, func, select
from sqlalchemy import text as sql_text

from kernel.audit import AuditLog, CheckpointClaim
from kernel.signing import BadSignature, ServiceSigner, Signed, TrustedKeys, canonical

CHECKPOINT_TYPE = "govhall.audit_checkpoint.v1"
_HASH = re.compile(r"^[0-9a-f]{64}$")


class BadCheckpoint(Exception):
    """A checkpoint that vouches for nothing: forged, from another signer, or malformed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def audit_checkpoints_table(metadata: MetaData) -> Table:
    """The checkpoint feed's table, added to a service's metadata."""
    return Table(
        "audit_checkpoints",
        metadata,
        Column("number", BigInteger, primary_key=True, autoincrement=False),
        Column("sequence", BigInteger, nullable=False),
        Column("head_hash", String(64), nullable=False),
        Column("signed_at", String(40), nullable=False),
        Column("key_id", String(16), nullable=False),
        #: The signed body, RFC 8785 canonical JSON, exactly as signed.
        Column("body", Text, nullable=False),
        #: The Ed25519 signature over the body, base64.
        Column("signature", String(100), nullable=False),
        #: What made it: "entries", "timer" or "operator:<official id>". Not signed.
        Column("published_by", String(40), nullable=False),
    )


def signed_at_text(moment: datetime) -> str:
    """A checkpoint's time as its body writes it: UTC, microseconds, 'Z'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as published. ``body`` and ``signature`` are what count."""

    number: int
    service: str
    sequence: int
    head_hash: str
    signed_at: datetime | None
    key_id: str
    body: bytes
    signature: bytes


def sign_checkpoint(signer: ServiceSigner, *, number: int, sequence: int, head_hash: str,
                    at: datetime) -> Checkpoint:
    body = {"type": CHECKPOINT_TYPE, "service": signer.service, "checkpoint": number,
            "sequence": sequence, "head_hash": head_hash, "signed_at": signed_at_text(at)}
    signed = signer.sign(body)
    return Checkpoint(number=number, service=signer.service, sequence=sequence,
                      head_hash=head_hash, signed_at=_moment(signed_at_text(at)),
                      key_id=signed.key_id, body=canonical(body),
                      signature=base64.b64decode(signed.signature))


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


def _body(checkpoint: Checkpoint, service: str) -> dict[str, Any]:
    # Whoever verifies may hand in any bytes: nesting past the parser's depth is refused
    # like any other body that is not JSON.
    try:
        body = json.loads(checkpoint.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise BadCheckpoint("its body is not JSON") from error
    if not isinstance(body, dict):
        raise BadCheckpoint("its body is not a JSON object")
    # Python's JSON reads what RFC 8785 cannot write (1e400 as infinity, NaN, integers
    # beyond 2^53, lone surrogates): no signer made such a body.
    try:
        written = canonical(body)
    except (rfc8785.CanonicalizationError, RecursionError) as error:
        raise BadCheckpoint("its body holds what RFC 8785 cannot write: a number beyond "
                            "2^53 or not finite, a lone surrogate, or nesting too deep") \
            from error
    if written != checkpoint.body:
        raise BadCheckpoint("its body is not in RFC 8785 canonical form")
    if body.get("type") != CHECKPOINT_TYPE:
        raise BadCheckpoint(f"its body is not of type {CHECKPOINT_TYPE}")
    if body.get("service") != service:
        raise BadCheckpoint(f"it is a checkpoint of {body.get('service')!r}, not of {service!r}")
    number, sequence = body.get("checkpoint"), body.get("sequence")
    if not (isinstance(number, int) and not isinstance(number, bool) and number >= 1):
        raise BadCheckpoint("its body has no checkpoint number")
    if not (isinstance(sequence, int) and not isinstance(sequence, bool) and sequence >= 0):
        raise BadCheckpoint("its body has no audit sequence")
    if not (isinstance(body.get("head_hash"), str) and _HASH.fullmatch(body["head_hash"])):
        raise BadCheckpoint("its body has no head hash")
    try:
        _moment(str(body.get("signed_at")))
    except ValueError as error:
        raise BadCheckpoint("its body has no signing time") from error
    return body


def check_checkpoint(checkpoint: Checkpoint, *, service: str,
                     keys: TrustedKeys) -> CheckpointClaim:
    """What ``checkpoint`` vouches for, if ``service`` signed it; BadCheckpoint otherwise."""
    body = _body(checkpoint, service)
    signed = Signed(body=body, signer=service, key_id=checkpoint.key_id,
                    signature=base64.b64encode(checkpoint.signature).decode("ascii"))
    try:
        keys.verify(signed, signer=service)
    except BadSignature as error:
        raise BadCheckpoint(f"it is not signed by {service}'s key: {error}") from error
    claim = CheckpointClaim(number=body["checkpoint"], sequence=body["sequence"],
                            head_hash=body["head_hash"], signed_at=body["signed_at"])
    stated = {"number": (checkpoint.number, claim.number),
              "sequence": (checkpoint.sequence, claim.sequence),
              "head_hash": (checkpoint.head_hash, claim.head_hash),
              "service": (checkpoint.service, service)}
    for name, (given, in_body) in stated.items():
        if given and given != in_body:
            raise BadCheckpoint(f"its {name} {given!r} is not the signed {in_body!r}")
    if checkpoint.signed_at is not None and checkpoint.signed_at != _moment(claim.signed_at):
        raise BadCheckpoint("its signed_at is not the signed time")
    return claim


def _checkpoint(row: Any, service: str) -> Checkpoint:
    return Checkpoint(number=int(row.number), service=service, sequence=int(row.sequence),
                      head_hash=row.head_hash, signed_at=_moment(row.signed_at),
                      key_id=row.key_id, body=row.body.encode("utf-8"),
                      signature=_signature(row.signature))


def _signature(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""  # a stored signature that is not base64 verifies as nothing


class CheckpointFeed:
    """Repository of a service's published checkpoints, inside a unit of work."""

    def __init__(self, connection: Connection, table: Table, audit: AuditLog,
                 service: str) -> None:
        self._connection = connection
        self._t = table
        self._audit = audit
        self._service = service

    def latest(self) -> Checkpoint | None:
        row = self._connection.execute(
            select(self._t).order_by(self._t.c.number.desc()).limit(1)).first()
        return _checkpoint(row, self._service) if row else None

    def after(self, cursor: int, *, limit: int) -> list[Checkpoint]:
        rows = self._connection.execute(select(self._t).where(self._t.c.number > cursor)
                                        .order_by(self._t.c.number).limit(limit))
        return [_checkpoint(r, self._service) for r in rows]

    def all(self) -> list[Checkpoint]:
        rows = self._connection.execute(select(self._t).order_by(self._t.c.number))
        return [_checkpoint(r, self._service) for r in rows]

    def publish(self, signer: ServiceSigner, *, at: datetime, published_by: str) -> Checkpoint:
        """Sign the log's head as it is now and append the checkpoint."""
        if self._connection.dialect.name == "postgresql":
            # Numbers are taken under a lock held to commit, so a reader
            # continuing after the last number it read misses nothing.
            self._connection.execute(
                sql_text("SELECT pg_advisory_xact_lock(hashtext('govhall_audit_checkpoints'))"))
        last = self._connection.execute(select(func.max(self._t.c.number))).scalar_one()
        sequence, head_hash = self._audit.head()
        checkpoint = sign_checkpoint(signer, number=int(last or 0) + 1, sequence=sequence,
                                     head_hash=head_hash, at=at)
        self._connection.execute(self._t.insert().values(
            number=checkpoint.number, sequence=checkpoint.sequence,
            head_hash=checkpoint.head_hash, signed_at=signed_at_text(at),
            key_id=checkpoint.key_id, body=checkpoint.body.decode("utf-8"),
            signature=base64.b64encode(checkpoint.signature).decode("ascii"),
            published_by=published_by))
        return checkpoint


@dataclass(frozen=True)
class CheckpointPolicy:
    """When a service publishes a checkpoint on its own."""

    #: Once the log is this many entries past the last checkpoint (0: never by count).
    every_entries: int
    #: Once the log moved and the last checkpoint is this old, in seconds (0: never by time).
    interval_seconds: float
    #: How often the service looks at its log's head, in seconds.
    poll_seconds: float

    @property
    def active(self) -> bool:
        return self.every_entries > 0 or self.interval_seconds > 0

    def due(self, *, head_sequence: int, latest: Checkpoint | None, now: datetime) -> str:
        """Why a checkpoint is due now ("entries" or "timer"), or '' when it is not."""
        last_sequence = latest.sequence if latest else 0
        if head_sequence <= last_sequence and latest is not None:
            return ""
        if self.every_entries and head_sequence - last_sequence >= self.every_entries:
            return "entries"
        if self.interval_seconds and head_sequence > last_sequence and (
                latest is None or latest.signed_at is None
                or (now - latest.signed_at).total_seconds() >= self.interval_seconds):
            return "timer"
        return ""

