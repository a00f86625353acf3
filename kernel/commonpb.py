"""Conversions between kernel types and govhall.common.v1 messages."""

from __future__ import annotations

from govhall.common.v1 import common_pb2
from kernel.audit import Verification
from kernel.directory import DEPARTMENT_KINDS, Department

_KINDS = {kind: index + 1 for index, kind in enumerate(DEPARTMENT_KINDS)}


def verification_to_proto(result: Verification) -> common_pb2.AuditLogVerification:
    return common_pb2.AuditLogVerification(
        intact=result.intact, entries=result.entries,
        first_broken_sequence=result.first_broken_sequence, reason=result.reason,
        head_hash=result.head_hash)


def department_to_proto(department: Department) -> common_pb2.Department:
    return common_pb2.Department(code=department.code, name=department.name,
                                 kind=_KINDS[department.kind])  # type: ignore[arg-type]


def department_kind_name(kind: int) -> str:
    """The directory's name of a DepartmentKind value; '' for unspecified."""
    return DEPARTMENT_KINDS[kind - 1] if 0 < kind <= len(DEPARTMENT_KINDS) else ""
