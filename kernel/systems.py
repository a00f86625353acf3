"""The registry of calling systems: what each system may call, and whom it may speak for.

A system is known by the common name of its client certificate. Its entry
lists the RPCs it may call (``package.Service/Method``, or
``package.Service/*`` for a whole service) and the kinds of official it may
name as the acting official: (department, role) pairs, the department
``*`` standing for every department. The entry named ``*`` lists the RPCs
every registered system may call (the public reads) and speaks for nobody.

Every service keeps its own copy in its database (table
``calling_systems``, loaded from ``deploy/sample/systems.json`` on first
start, changed by an operator through ``CallingSystemsService``). The gRPC
interceptor checks each call against it before anything else
(``SystemRegistry.admit``), and the caller's entry travels with the
``Caller`` so that ``kernel.directory`` refuses an official the system may
not speak for. Each process caches the registry, reads it again after a
change it made and at least every few seconds, so other replicas' changes
reach it too.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)

from govhall.common.v1 import audit_pb2, systems_pb2
from govhall.complaints.v1 import complaints_pb2
from govhall.intake.v1 import intake_pb2
from govhall.review.v1 import review_pb2
from govhall.trading.v1 import trading_pb2
from kernel.audit import Actor, AuditLog, audit_table
from kernel.db import UnitOfWork
from kernel.directory import (
    ROLES,
    Departments,
    StaffDirectory,
    departments_table,
    officials_table,
    read_sample,
    require_official,
)
from kernel.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from kernel.identity import Caller
from kernel.instants import UtcDateTime
from kernel.paging import after_text, page_size, rows_to_fetch, take_page

#: The department code meaning every department, and the name of the entry every system shares.
EVERY = "*"
#: The service every govhall service mounts to read and change its registry.
SERVICE_NAME = systems_pb2.DESCRIPTOR.services_by_name["CallingSystemsService"].full_name
SET_RPC = f"{SERVICE_NAME}/SetCallingSystem"

#: Roles a system may speak for in every department at once: the hall's windows
#: take applications for every department, the supervision desk watches every
#: department, and complaint handlers answer through the platforms. A
#: department's own decisions (review, signature) and the center's offices
#: (seal, operations, trading, dispatch) are spoken for by department name only.
EVERY_DEPARTMENT_ROLES = frozenset({"window_clerk", "supervisor", "complaint_handler"})

#: The kind of department whose operators may change the registry.
CENTER_KIND = "center"

NAME_PATTERN = re.compile(r"^(\*|[a-z0-9][a-z0-9.-]{0,99})$")

#: The generated API an entry may name; the registry is shared plumbing, so it knows all of it.
_API = (intake_pb2, review_pb2, trading_pb2, complaints_pb2, systems_pb2, audit_pb2)


#: RPCs a ``Service/*`` wildcard does not cover: one service asking another about a record
#: it names (codes only) is for the one system an entry names explicitly, not for every
#: system that may call the rest of that service (the operator, the trading platform).
NAMED_ONLY_RPCS = frozenset({"govhall.trading.v1.TradingService/CheckTenderLink"})


@cache
def api_rpcs() -> frozenset[str]:
    """Every RPC of govhall's API, as ``package.Service/Method``."""
    return frozenset(f"{service.full_name}/{method.name}"
                     for module in _API
                     for service in module.DESCRIPTOR.services_by_name.values()
                     for method in service.methods)


@dataclass(frozen=True, order=True)
class DepartmentRole:
    """Officials holding ``role`` in ``department_code`` (``*``: in any department)."""

    department_code: str
    role: str


@dataclass(frozen=True)
class CallingSystem:
    """One entry of the registry."""

    name: str
    description: str = ""
    rpcs: frozenset[str] = frozenset()
    speaks_for: frozenset[DepartmentRole] = frozenset()
    updated_at: datetime | None = field(default=None, compare=False)
    updated_by: str = field(default="", compare=False)

    def may_call(self, rpc: str) -> bool:
        """Whether the entry lists ``rpc`` (``/pkg.Service/Method`` or ``pkg.Service/Method``)."""
        name = rpc.lstrip("/")
        return name in self.rpcs or (name not in NAMED_ONLY_RPCS
                                     and f"{name.split('/', 1)[0]}/*" in self.rpcs)

    def may_speak_for(self, department_code: str, role: str) -> bool:
        return (DepartmentRole(department_code, role) in self.speaks_for
                or DepartmentRole(EVERY, role) in self.speaks_for)


def entry_violations(system: CallingSystem, *,
                     rpcs: Collection[str] | None = None) -> list[FieldViolation]:
    """What is wrong with an entry, by field; empty when it may be stored.

    ``rpcs`` is the API the entry may name (all of govhall's by default).
    """
    known = api_rpcs() if rpcs is None else frozenset(rpcs)
    services = {rpc.split("/", 1)[0] for rpc in known}
    found: list[FieldViolation] = []
    if not NAME_PATTERN.fullmatch(system.name):
        found.append(FieldViolation(
            "name", "a certificate's common name: lower-case letters, digits, dots and dashes"))
    for rpc in sorted(system.rpcs):
        service, _, method = rpc.partition("/")
        if not (rpc in known or (method == "*" and service in services)):
            found.append(FieldViolation("rpcs", f"{rpc} is not an RPC of govhall's API"))
    if system.name == EVERY and system.speaks_for:
        found.append(FieldViolation(
            "speaks_for", "the entry every system shares speaks for nobody"))
    for pair in sorted(system.speaks_for):
        if pair.role not in ROLES:
            found.append(FieldViolation("speaks_for", f"{pair.role} is not a role"))
        elif pair.department_code == EVERY and pair.role not in EVERY_DEPARTMENT_ROLES:
            found.append(FieldViolation(
                "speaks_for", f"a {pair.role} is spoken for in a named department, not in "
                "every department (*)"))
    return found


@dataclass(frozen=True)
class Registry:
    """The entries of one service's registry, by name."""

    systems: Mapping[str, CallingSystem]

    @classmethod
    def of(cls, systems: Iterable[CallingSystem]) -> Registry:
        return cls({s.name: s for s in systems})

    def scope_of(self, system: str) -> CallingSystem | None:
        """``system``'s entry with the RPCs every system may call; None if unregistered."""
        entry = self.systems.get(system)
        if entry is None or system == EVERY:
            return None
        shared = self.systems.get(EVERY)
        return replace(entry, rpcs=entry.rpcs | shared.rpcs) if shared else entry

    def admit(self, system: str, rpc: str) -> CallingSystem:
        """``system``'s scope if it may call ``rpc``; PermissionDenied naming both otherwise."""
        name = rpc.lstrip("/")
        scope = self.scope_of(system)
        if scope is None:
            raise PermissionDenied(
                f"system {system} is not in the registry of calling systems: it may not "
                f"call {name}")
        if not scope.may_call(name):
            raise PermissionDenied(f"system {system} may not call {name}")
        return scope

    def can_change_registry(self, center_codes: Collection[str]) -> bool:
        """Whether some system may change the registry for an operator of the center."""
        for name in self.systems:
            scope = self.scope_of(name)
            if scope is not None and scope.may_call(SET_RPC) and any(
                    scope.may_speak_for(code, "operator") for code in center_codes):
                return True
        return False


# ---- storage --------------------------------------------------------------------------


def calling_systems_table(metadata: MetaData) -> Table:
    """The registry's table, added to a service's metadata."""
    return Table(
        "calling_systems",
        metadata,
        Column("name", String(100), primary_key=True),
        Column("description", String(200), nullable=False),
        #: JSON list of "package.Service/Method".
        Column("rpcs", Text, nullable=False),
        #: JSON list of [department code, role].
        Column("speaks_for", Text, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        Column("updated_by", String(20), nullable=False),
    )


def _from_row(row: Any) -> CallingSystem:
    return CallingSystem(
        name=row.name, description=row.description, rpcs=frozenset(json.loads(row.rpcs)),
        speaks_for=frozenset(DepartmentRole(d, r) for d, r in json.loads(row.speaks_for)),
        updated_at=row.updated_at, updated_by=row.updated_by)


def _to_row(system: CallingSystem, *, at: datetime, by: str) -> dict[str, Any]:
    return {"name": system.name, "description": system.description,
            "rpcs": json.dumps(sorted(system.rpcs)),
            "speaks_for": json.dumps([[p.department_code, p.role]
                                      for p in sorted(system.speaks_for)]),
            "updated_at": at, "updated_by": by}


class CallingSystems:
    """Repository of the calling_systems table."""

    def __init__(self, connection: Connection, table: Table) -> None:
        self._connection = connection
        self._table = table

    def get(self, name: str) -> CallingSystem | None:
        row = self._connection.execute(
            select(self._table).where(self._table.c.name == name)).first()
        return _from_row(row) if row else None

    def all(self) -> list[CallingSystem]:
        return [_from_row(r) for r in self._connection.execute(
            select(self._table).order_by(self._table.c.name))]

    def list(self, *, after: str, limit: int) -> list[CallingSystem]:
        rows = self._connection.execute(select(self._table).where(self._table.c.name > after)
                                        .order_by(self._table.c.name).limit(limit))
        return [_from_row(r) for r in rows]

    def count(self) -> int:
        return len(self._connection.execute(select(self._table.c.name)).all())

    def put(self, system: CallingSystem, *, at: datetime, by: str) -> CallingSystem:
        """Store ``system``'s entry in place of any earlier one; the entry as stored."""
        self._connection.execute(delete(self._table).where(self._table.c.name == system.name))
        self._connection.execute(insert(self._table), [_to_row(system, at=at, by=by)])
        return replace(system, updated_at=at, updated_by=by)

    def remove(self, name: str) -> None:
        self._connection.execute(delete(self._table).where(self._table.c.name == name))


#: The registry's view of a service's tables; every service has these four, the same.
_metadata = MetaData()
_systems_table = calling_systems_table(_metadata)
_audit_table = audit_table(_metadata)
_officials_table = officials_table(_metadata)
_departments_table = departments_table(_metadata)


class RegistryUnitOfWork(UnitOfWork):
    """What the registry's use cases need of a service's database."""

    systems: CallingSystems
    audit: AuditLog
    staff: StaffDirectory
    departments: Departments

    def bind(self, connection: Connection) -> None:
        self.systems = CallingSystems(connection, _systems_table)
        self.audit = AuditLog(connection, _audit_table)
        self.staff = StaffDirectory(connection, _officials_table)
        self.departments = Departments(connection, _departments_table)


# ---- the cache the interceptor reads ----------------------------------------------------


class SystemRegistry:
    """One process's view of its service's registry.

    Read from the database when first needed, again right after a change
    made through this process, and whenever the copy is older than
    ``ttl_seconds``, so a change made through another replica holds here
    within that time.
    """

    def __init__(self, engine: Engine, *, ttl_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        self._clock = clock
        self._registry: Registry | None = None
        self._read_at = -math.inf
        #: Counts invalidations, so a read that began before a change is not taken as fresh.
        self._generation = 0
        self._reading = asyncio.Lock()

    def read(self) -> Registry:
        with RegistryUnitOfWork(self._engine, write=False) as uow:
            return Registry.of(uow.systems.all())

    def _fresh(self) -> bool:
        return self._registry is not None and self._clock() - self._read_at < self._ttl

    async def current(self) -> Registry:
        if not self._fresh():
            async with self._reading:
                if not self._fresh():
                    generation = self._generation
                    try:
                        registry = await asyncio.to_thread(self.read)
                    except Exception as error:  # the database is out of reach
                        raise Unavailable(
                            "the registry of calling systems cannot be read now: try again "
                            "later") from error
                    self._registry = registry
                    self._read_at = (self._clock() if generation == self._generation
                                     else -math.inf)
        assert self._registry is not None
        return self._registry

    async def admit(self, system: str, rpc: str) -> CallingSystem:
        """``system``'s scope if it may call ``rpc``; PermissionDenied otherwise."""
        return (await self.current()).admit(system, rpc)

    def invalidate(self) -> None:
        """Read the registry again before the next call is admitted."""
        self._generation += 1
        self._read_at = -math.inf


# ---- use cases ------------------------------------------------------------------------

#: Who loads the sample registry, in the audit log.
LOADER = "govhall-runner"
_LOADED_SUBJECT = "calling_systems"


@dataclass(frozen=True)
class SystemPage:
    systems: list[CallingSystem]
    next_page_token: str


@dataclass(frozen=True)
class SetResult:
    system: CallingSystem
    created: bool
    changed: bool


def system_from_record(record: Mapping[str, Any]) -> CallingSystem:
    return CallingSystem(
        name=record["name"], description=record.get("description", ""),
        rpcs=frozenset(record.get("rpcs", [])),
        speaks_for=frozenset(DepartmentRole(p["department_code"], p["role"])
                             for p in record.get("speaks_for", [])))


def sample_systems(sample_dir: Path) -> list[CallingSystem]:
    """The sample registry (``systems.json``), every entry checked."""
    systems = [system_from_record(r) for r in read_sample(sample_dir, "systems.json")["systems"]]
    for system in systems:
        wrong = entry_violations(system)
        if wrong:
            raise ValueError(f"sample system {system.name}: "
                             + "; ".join(v.description for v in wrong))
    return systems


def load_sample_systems(*, uow: RegistryUnitOfWork, sample_dir: Path,
                        now: datetime | None = None) -> bool:
    """Load the sample registry into a service's database, once; True if it did."""
    at = now or datetime.now(UTC)
    with uow:
        if uow.systems.count() or uow.audit.entries(subject=_LOADED_SUBJECT):
            return False
        systems = sample_systems(sample_dir)
        for system in systems:
            uow.systems.put(system, at=at, by="")
        uow.audit.append(actor=Actor(LOADER), action="calling_systems.loaded",
                         subject=_LOADED_SUBJECT, at=at, details={"systems": len(systems)})
        uow.commit()
        return True


def list_systems(*, uow: RegistryUnitOfWork, requested_size: int,
                 page_token: str) -> SystemPage:
    size = page_size(requested_size)
    with uow:
        found = uow.systems.list(after=after_text(page_token), limit=rows_to_fetch(size))
    page = take_page(found, size, lambda system: (system.name,))
    return SystemPage(page.items, page.next_page_token)


def get_system(*, uow: RegistryUnitOfWork, name: str) -> CallingSystem:
    with uow:
        found = uow.systems.get(name)
    if found is None:
        raise NotFound(f"system {name} is not in the registry")
    return found


def _registry_operator(uow: RegistryUnitOfWork, caller: Caller) -> tuple[str, frozenset[str]]:
    """The acting operator of the center, and the center's department codes."""
    official = require_official(uow.staff, caller, role="operator")
    centers = frozenset(d.code for d in uow.departments.list(kind=CENTER_KIND))
    if official.department_code not in centers:
        raise PermissionDenied(
            f"official {official.id} is an operator of {official.department_code}: only the "
            "center's operators change the registry of calling systems")
    return official.id, centers


def _keeps_the_registry_changeable(centers: frozenset[str], registry: Registry) -> None:
    if not registry.can_change_registry(centers):
        raise FailedPrecondition(
            "after this change no system could change the registry for an operator of the "
            "center: keep one that may call SetCallingSystem and speaks for the center's "
            "operators")


def set_system(*, uow: RegistryUnitOfWork, caller: Caller, system: CallingSystem,
               now: datetime) -> SetResult:
    """Register ``system`` or replace its entry; an unchanged entry records nothing."""
    wrong = entry_violations(system)
    if wrong:
        raise InvalidArgument(
            "the entry cannot be stored: " + "; ".join(v.description for v in wrong[:5]),
            violations=wrong)
    with uow:
        official_id, centers = _registry_operator(uow, caller)
        named = {p.department_code for p in system.speaks_for} - {EVERY}
        unknown = sorted(code for code, name in uow.departments.names(named).items()
                         if not name)
        if unknown:
            raise InvalidArgument(
                f"departments {', '.join(unknown)} are not in the directory",
                violations=[FieldViolation("speaks_for", f"{code} is not a department")
                            for code in unknown])
        before = uow.systems.get(system.name)
        if before == system:
            return SetResult(before, created=False, changed=False)
        entries = {s.name: s for s in uow.systems.all()} | {system.name: system}
        _keeps_the_registry_changeable(centers, Registry(entries))
        stored = uow.systems.put(system, at=now, by=official_id)
        uow.audit.append(
            actor=Actor(caller.system, official_id),
            action="calling_system.registered" if before is None else "calling_system.changed",
            subject=f"calling_system/{system.name}", at=now,
            details={"rpcs": sorted(system.rpcs),
                     "speaks_for": [f"{p.department_code}:{p.role}"
                                    for p in sorted(system.speaks_for)]})
        uow.commit()
        return SetResult(stored, created=before is None, changed=True)


def remove_system(*, uow: RegistryUnitOfWork, caller: Caller, name: str,
                  now: datetime) -> CallingSystem:
    with uow:
        official_id, centers = _registry_operator(uow, caller)
        before = uow.systems.get(name)
        if before is None:
            raise NotFound(f"system {name} is not in the registry")
        entries = {s.name: s for s in uow.systems.all() if s.name != name}
        _keeps_the_registry_changeable(centers, Registry(entries))
        uow.systems.remove(name)
        uow.audit.append(actor=Actor(caller.system, official_id),
                         action="calling_system.removed", subject=f"calling_system/{name}",
                         at=now, details={})
        uow.commit()
        return before
