"""The directory every service keeps: departments and the staff it checks callers against.

The review service owns the staff directory and serves it, the complaints
service the department directory; every service keeps its own copy of
both in its own database (tables ``departments`` and ``officials``) so that
it can name departments and authorise a call without asking another
process. The copies are loaded from the same directory files.

An acting official counts only as far as the calling system may speak for
them: ``acting_official`` and ``require_official`` check the official's
department and role against the system's entry in the registry of calling
systems (``kernel.systems``), which the caller carries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    Select,
    String,
    Table,
    Text,
    bindparam,
    delete,
    insert,
    select,
)

from kernel.errors import PermissionDenied, Unauthenticated
from kernel.identity import OFFICIAL_METADATA_KEY, Caller

ROLES = (
    "window_clerk",
    "reviewer",
    "leader",
    "seal_custodian",
    "supervisor",
    "operator",
    "trading_officer",
    "complaint_dispatcher",
    "complaint_handler",
)


@dataclass(frozen=True)
class Official:
    id: str
    name: str
    department_code: str
    roles: frozenset[str]


DEPARTMENT_KINDS = (
    "municipal_department",
    "district_government",
    "street_office",
    "public_utility",
    "center",
    "supervision",
)


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    kind: str


def departments_table(metadata: MetaData) -> Table:
    return Table(
        "departments",
        metadata,
        Column("code", String(12), primary_key=True),
        Column("name", String(100), nullable=False),
        Column("kind", String(30), nullable=False),
    )


#: Departments.of_codes's statement for each service's departments table.
_OF_CODES: dict[Table, Select[Any]] = {}


class Departments:
    """Repository of the departments table."""

    def __init__(self, connection: Connection, table: Table) -> None:
        self._connection = connection
        self._table = table

    def get(self, code: str) -> Department | None:
        row = self._connection.execute(
            select(self._table).where(self._table.c.code == code)).first()
        return Department(row.code, row.name, row.kind) if row else None

    def of_codes(self, codes: Iterable[str]) -> dict[str, Department]:
        """The departments of ``codes`` that are in the directory, by code, in one query."""
        statement = _OF_CODES.get(self._table)
        if statement is None:
            # Built once per table: building it anew for each call cost more than running it.
            statement = _OF_CODES[self._table] = select(self._table).where(
                self._table.c.code.in_(bindparam("codes", expanding=True)))
        rows = self._connection.execute(statement, {"codes": list(set(codes))})
        return {row.code: Department(row.code, row.name, row.kind) for row in rows}

    def names(self, codes: Iterable[str]) -> dict[str, str]:
        """The name of each department code; '' for a code not in the directory."""
        wanted = set(codes)
        rows = self._connection.execute(
            select(self._table.c.code, self._table.c.name).where(self._table.c.code.in_(wanted)))
        found = {row.code: row.name for row in rows}
        return {code: found.get(code, "") for code in wanted}

    def list(self, *, kind: str = "", after: str = "", limit: int = 1000) -> list[Department]:
        query = select(self._table).where(self._table.c.code > after)
        if kind:
            query = query.where(self._table.c.kind == kind)
        rows = self._connection.execute(query.order_by(self._table.c.code).limit(limit))
        return [Department(r.code, r.name, r.kind) for r in rows]

    def replace_all(self, departments: Iterable[Department]) -> None:
        self._connection.execute(delete(self._table))
        rows = [{"code": d.code, "name": d.name, "kind": d.kind} for d in departments]
        if rows:
            self._connection.execute(insert(self._table), rows)


def read_sample(sample_dir: Path, name: str) -> Any:
    """One JSON file of the sample directory data."""
    return json.loads((sample_dir / name).read_text(encoding="utf-8"))


def sample_departments(sample_dir: Path) -> list[Department]:
    records = read_sample(sample_dir, "departments.json")["departments"]
    departments = [Department(r["code"], r["name"], r["kind"]) for r in records]
    for d in departments:
        if d.kind not in DEPARTMENT_KINDS:
            raise ValueError(f"department {d.code} has unknown kind {d.kind}")
    return departments


def sample_officials(sample_dir: Path) -> list[Official]:
    return [official_from_record(r) for r in read_sample(sample_dir, "staff.json")["officials"]]


def officials_table(metadata: MetaData) -> Table:
    return Table(
        "officials",
        metadata,
        Column("id", String(20), primary_key=True),
        Column("name", String(50), nullable=False),
        Column("department_code", String(12), nullable=False, index=True),
        Column("roles", Text, nullable=False),
    )


def official_from_record(record: dict[str, Any]) -> Official:
    roles = record["roles"]
    if isinstance(roles, str):
        roles = json.loads(roles)
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"official {record['id']} has unknown roles {sorted(unknown)}")
    return Official(record["id"], record["name"], record["department_code"], frozenset(roles))


class StaffDirectory:
    """Repository of the officials table."""

    def __init__(self, connection: Connection, table: Table) -> None:
        self._connection = connection
        self._table = table

    def get(self, official_id: str) -> Official | None:
        row = self._connection.execute(
            select(self._table).where(self._table.c.id == official_id)).first()
        return official_from_record(dict(row._mapping)) if row else None

    def count(self) -> int:
        return len(self._connection.execute(select(self._table.c.id)).all())

    def replace_all(self, officials: Iterable[Official]) -> None:
        self._connection.execute(delete(self._table))
        rows = [{"id": o.id, "name": o.name, "department_code": o.department_code,
                 "roles": json.dumps(sorted(o.roles))} for o in officials]
        if rows:
            self._connection.execute(insert(self._table), rows)


def _asserted(directory: StaffDirectory, caller: Caller) -> Official:
    if not caller.official_id:
        raise Unauthenticated(
            f"this call changes something: name the acting official in the "
            f"{OFFICIAL_METADATA_KEY} metadata entry")
    official = directory.get(caller.official_id)
    if official is None:
        raise PermissionDenied(f"official {caller.official_id} is not in the staff directory")
    return official


def spoken_roles(caller: Caller, department_code: str, roles: Iterable[str]) -> frozenset[str]:
    """Of ``roles`` in ``department_code``, those the calling system may speak for."""
    scope = caller.scope
    if scope is None:
        return frozenset()
    return frozenset(r for r in roles if scope.may_speak_for(department_code, r))


def require_voice(caller: Caller, department_code: str, role: str) -> None:
    """Refuse unless the calling system may speak for a ``role`` of ``department_code``."""
    if not spoken_roles(caller, department_code, (role,)):
        raise PermissionDenied(
            f"system {caller.system} may not speak for a {role} of {department_code}")


def _spoken_official(directory: StaffDirectory, caller: Caller) -> tuple[Official, frozenset[str]]:
    """The asserted official and the roles the system may speak for; refused if none."""
    official = _asserted(directory, caller)
    spoken = spoken_roles(caller, official.department_code, official.roles)
    if not spoken:
        held = ", ".join(sorted(official.roles))
        raise PermissionDenied(
            f"system {caller.system} may not speak for official {official.id} "
            f"({held} of {official.department_code})")
    return official, spoken


def acting_official(directory: StaffDirectory, caller: Caller) -> Official:
    """The official the caller asserts, holding those of their roles the system may speak for.

    An official the calling system may speak for in none of their roles is
    refused, and the roles it may not speak for are not theirs in this call.
    """
    official, spoken = _spoken_official(directory, caller)
    return replace(official, roles=spoken)


def require_official(directory: StaffDirectory, caller: Caller, *, role: str | Sequence[str],
                     department_code: str | None = None) -> Official:
    """The acting official, if it holds ``role`` (or one of several), in ``department_code``,
    and the calling system may speak for it in that role.

    An official the system may speak for in no role at all is refused before
    anything is said about their roles.
    """
    roles = (role,) if isinstance(role, str) else tuple(role)
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    official, spoken = _spoken_official(directory, caller)
    held = official.roles & set(roles)
    wanted = roles[0] if len(roles) == 1 else f"any of {', '.join(roles)}"
    if not held:
        raise PermissionDenied(f"official {official.id} does not hold the role {wanted}")
    if department_code is not None and official.department_code != department_code:
        raise PermissionDenied(
            f"official {official.id} belongs to {official.department_code}, "
            f"not to {department_code}")
    if not held & spoken:
        raise PermissionDenied(
            f"system {caller.system} may not speak for a {' or '.join(sorted(held))} of "
            f"{official.department_code}")
    return replace(official, roles=spoken)
