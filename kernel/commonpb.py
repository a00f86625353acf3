"""Conversions between kernel types and govhall.common.v1 messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from govhall.common.v1 import audit_pb2, common_pb2
from kernel.audit import Verification
from kernel.authority import PROBLEMS
from kernel.checkpoints import Checkpoint
from kernel.directory import DEPARTMENT_KINDS, Department
from kernel.errors import InvalidArgument

_KINDS = {kind: index + 1 for index, kind in enumerate(DEPARTMENT_KINDS)}
_PROBLEMS = {problem: index + 1 for index, problem in enumerate(PROBLEMS)}


def verification_to_proto(result: Verification) -> common_pb2.AuditLogVerification:
    return common_pb2.AuditLogVerification(
        intact=result.intact, entries=result.entries,
        first_broken_sequence=result.first_broken_sequence, reason=result.reason,
        head_hash=result.head_hash, checkpoints_checked=result.checkpoints_checked,
        checkpointed_sequence=result.checkpointed_sequence,
        refused_checkpoints=[common_pb2.RefusedAuditCheckpoint(
            number=r.number, sequence=r.sequence, key_id=r.key_id, reason=r.reason)
            for r in result.refused_checkpoints],
        suspect_from_sequence=result.suspect_from_sequence,
        authority_rows_checked=result.authority_rows_checked,
        mismatched_rows=[common_pb2.AuthorityRowMismatch(
            table=m.table, key=m.key, audit_sequence=m.audit_sequence,
            problem=_PROBLEMS[m.problem],  # type: ignore[arg-type]
            reason=m.reason) for m in result.mismatched_rows])


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def checkpoint_to_proto(checkpoint: Checkpoint) -> audit_pb2.AuditCheckpoint:
    return audit_pb2.AuditCheckpoint(
        number=checkpoint.number, service=checkpoint.service, sequence=checkpoint.sequence,
        head_hash=checkpoint.head_hash, signed_at=_timestamp(checkpoint.signed_at),
        key_id=checkpoint.key_id, body=checkpoint.body, signature=checkpoint.signature)


def checkpoint_from_proto(message: audit_pb2.AuditCheckpoint) -> Checkpoint:
    """A checkpoint as the caller gave it; only its body and signature are trusted."""
    signed_at = None
    if message.HasField("signed_at"):
        try:
            signed_at = message.signed_at.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError) as error:
            raise InvalidArgument(
                f"checkpoint #{message.number}: signed_at is not a time") from error
    return Checkpoint(number=message.number, service=message.service,
                      sequence=message.sequence, head_hash=message.head_hash,
                      signed_at=signed_at, key_id=message.key_id, body=message.body,
                      signature=message.signature)


def audit_entry_to_proto(entry: dict[str, Any]) -> audit_pb2.AuditLogEntry:
    return audit_pb2.AuditLogEntry(**{name: entry[name] for name in (
        "sequence", "recorded_at", "system", "official_id", "action", "subject", "details",
        "previous_hash", "entry_hash")})


def department_to_proto(department: Department) -> common_pb2.Department:
    return common_pb2.Department(code=department.code, name=department.name,
                                 kind=_KINDS[department.kind])  # type: ignore[arg-type]


def department_kind_name(kind: int) -> str:
    """The directory's name of a DepartmentKind value; '' for unspecified."""
    return DEPARTMENT_KINDS[kind - 1] if 0 < kind <= len(DEPARTMENT_KINDS) else ""
