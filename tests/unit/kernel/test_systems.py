"""The registry of calling systems: its rules, its sample, its cache."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, delete, insert

from kernel.audit import audit_table
from kernel.db import make_engine
from kernel.directory import departments_table, officials_table
from kernel.errors import PermissionDenied, Unavailable
from kernel.pki import sample_system_names
from kernel.systems import (
    EVERY,
    SET_RPC,
    CallingSystem,
    DepartmentRole,
    Registry,
    RegistryUnitOfWork,
    SystemRegistry,
    api_rpcs,
    calling_systems_table,
    entry_violations,
    load_sample_systems,
)
from tests.support import SAMPLE_DIR, sample_registry, sample_staff

INTAKE = "govhall.intake.v1.IntakeService"
REVIEW = "govhall.review.v1.ReviewService"
TRADING = "govhall.trading.v1.TradingService"

WINDOW = CallingSystem(
    "hall-window-system", rpcs=frozenset({f"{INTAKE}/SubmitApplication"}),
    speaks_for=frozenset({DepartmentRole(EVERY, "window_clerk")}))
PLATFORM = CallingSystem("trading-platform", rpcs=frozenset({f"{TRADING}/*"}))
SHARED = CallingSystem(EVERY, rpcs=frozenset({f"{INTAKE}/VerifyDecision"}))


def test_a_system_calls_the_rpcs_it_lists_and_every_rpc_of_a_service_it_lists_whole() -> None:
    assert WINDOW.may_call(f"/{INTAKE}/SubmitApplication")
    assert WINDOW.may_call(f"{INTAKE}/SubmitApplication")
    assert not WINDOW.may_call(f"/{INTAKE}/RevokeDecision")
    assert PLATFORM.may_call(f"/{TRADING}/RegisterExpert")
    assert not PLATFORM.may_call(f"/{INTAKE}/SubmitApplication")


def test_every_registered_system_calls_the_shared_rpcs_and_nobody_else_does() -> None:
    registry = Registry.of([WINDOW, PLATFORM, SHARED])
    assert registry.admit("trading-platform", f"/{INTAKE}/VerifyDecision").name == \
        "trading-platform"
    with pytest.raises(PermissionDenied,
                       match=f"system stranger is not in the registry.*{INTAKE}/VerifyDecision"):
        registry.admit("stranger", f"/{INTAKE}/VerifyDecision")
    with pytest.raises(PermissionDenied,
                       match=f"system trading-platform may not call {INTAKE}/GetCase"):
        registry.admit("trading-platform", f"/{INTAKE}/GetCase")
    # A certificate named "*" is not the shared entry.
    with pytest.raises(PermissionDenied, match="not in the registry"):
        registry.admit(EVERY, f"/{INTAKE}/VerifyDecision")


def test_a_system_speaks_for_named_departments_or_every_department() -> None:
    department = CallingSystem("department-system-scjgj", speaks_for=frozenset({
        DepartmentRole("SCJGJ", "reviewer")}))
    assert department.may_speak_for("SCJGJ", "reviewer")
    assert not department.may_speak_for("FGW", "reviewer")
    assert not department.may_speak_for("SCJGJ", "leader")
    assert WINDOW.may_speak_for("FGW", "window_clerk")
    assert not WINDOW.may_speak_for("FGW", "reviewer")


def test_an_entry_names_real_rpcs_roles_and_wildcards_only_where_they_belong() -> None:
    assert entry_violations(WINDOW) == []
    assert entry_violations(PLATFORM) == []
    wrong = CallingSystem(
        "Bad Name", rpcs=frozenset({f"{INTAKE}/Nope", "govhall.nope.v1.NopeService/*"}),
        speaks_for=frozenset({DepartmentRole(EVERY, "leader"), DepartmentRole("SCJGJ", "king")}))
    found = {(v.field, v.description) for v in entry_violations(wrong)}
    assert found == {
        ("name", "a certificate's common name: lower-case letters, digits, dots and dashes"),
        ("rpcs", f"{INTAKE}/Nope is not an RPC of govhall's API"),
        ("rpcs", "govhall.nope.v1.NopeService/* is not an RPC of govhall's API"),
        ("speaks_for", "a leader is spoken for in a named department, not in every "
                       "department (*)"),
        ("speaks_for", "king is not a role"),
    }
    speaking_shared = CallingSystem(EVERY, speaks_for=frozenset({
        DepartmentRole("SCJGJ", "reviewer")}))
    assert [v.field for v in entry_violations(speaking_shared)] == ["speaks_for"]


def test_the_registry_stays_changeable_only_with_a_system_for_the_centers_operators() -> None:
    console = CallingSystem("operator", rpcs=frozenset({SET_RPC}),
                            speaks_for=frozenset({DepartmentRole("ZWFWZX", "operator")}))
    assert Registry.of([console, WINDOW]).can_change_registry({"ZWFWZX"})
    assert not Registry.of([WINDOW]).can_change_registry({"ZWFWZX"})
    # Calling the RPC is not enough: the system must speak for an operator of the center.
    mute = CallingSystem("operator", rpcs=frozenset({SET_RPC}))
    assert not Registry.of([mute]).can_change_registry({"ZWFWZX"})
    # The shared entry may grant the RPC.
    shared = CallingSystem(EVERY, rpcs=frozenset({SET_RPC}))
    voice = CallingSystem("operator", speaks_for=frozenset({DepartmentRole("ZWFWZX",
                                                                           "operator")}))
    assert Registry.of([shared, voice]).can_change_registry({"ZWFWZX"})


# ---- the sample registry ---------------------------------------------------------------


def _pairs_of_staff() -> dict[str, set[str]]:
    roles: dict[str, set[str]] = defaultdict(set)
    for official in sample_staff().values():
        for role in official.roles:
            roles[role].add(official.department_code)
    return roles


def test_the_sample_has_a_system_for_each_of_three_departments_speaking_for_its_own() -> None:
    registry = sample_registry()
    staff_roles = _pairs_of_staff()
    deciding = staff_roles["reviewer"] & staff_roles["leader"] & staff_roles["window_clerk"]
    department_systems = {}
    for system in registry.systems.values():
        roles = {p.role for p in system.speaks_for}
        if {"reviewer", "leader"} <= roles:
            departments = {p.department_code for p in system.speaks_for}
            assert len(departments) == 1, system.name
            department_systems[system.name] = departments.pop()
    assert len(department_systems) >= 3
    assert set(department_systems.values()) <= deciding
    assert len(set(department_systems.values())) == len(department_systems)
    for name in department_systems:
        scope = registry.scope_of(name)
        assert scope is not None
        assert scope.may_call(f"{REVIEW}/DecideCase") and scope.may_call(f"{REVIEW}/ListInbox")
        assert not scope.may_call(f"{INTAKE}/SubmitApplication")


def test_the_sample_gives_each_system_its_part_only() -> None:
    registry = sample_registry()

    def scope(name: str) -> CallingSystem:
        found = registry.scope_of(name)
        assert found is not None, name
        return found

    assert "department-review-system" not in registry.systems
    window = scope("hall-window-system")
    assert window.speaks_for == {DepartmentRole(EVERY, "window_clerk")}
    assert window.may_call(f"{INTAKE}/SubmitApplication")
    assert not window.may_call(f"{REVIEW}/DecideCase")
    seal = scope("center-seal-system")
    assert seal.speaks_for == {DepartmentRole("ZWFWZX", "seal_custodian")}
    assert seal.may_call(f"{REVIEW}/DecideCase")
    for platform in ("provincial-complaint-portal", "hotline-12345"):
        own = registry.systems[platform]
        assert own.speaks_for == frozenset()
        assert all(rpc.startswith("govhall.complaints.v1.") for rpc in own.rpcs)
    trading = registry.systems["trading-platform"]
    assert all(rpc.startswith("govhall.trading.v1.") for rpc in trading.rpcs)
    supervision = scope("supervision-system")
    assert supervision.speaks_for == {DepartmentRole("JJZ", "supervisor")}
    assert supervision.may_call(f"{REVIEW}/ListEscalations")
    assert not any(supervision.may_call(rpc) for rpc in (
        f"{REVIEW}/DecideCase", f"{INTAKE}/SubmitApplication", SET_RPC))
    operator = scope("operator")
    assert operator.may_call(SET_RPC) and operator.may_speak_for("ZWFWZX", "operator")
    assert not operator.may_speak_for("ZWFWZX", "seal_custodian")
    # Public reads are everyone's without being listed for each system.
    for name in registry.systems:
        if name != EVERY:
            assert scope(name).may_call(f"{INTAKE}/VerifyDecision")
            assert f"{INTAKE}/VerifyDecision" not in registry.systems[name].rpcs


def test_every_sample_system_gets_a_certificate_and_names_real_rpcs() -> None:
    registry = sample_registry()
    assert set(sample_system_names()) == set(registry.systems) - {EVERY}
    named = {rpc for s in registry.systems.values() for rpc in s.rpcs if not rpc.endswith("*")}
    assert named <= api_rpcs()


# ---- storage and the cache -------------------------------------------------------------


def _database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    metadata = MetaData()
    for table in (calling_systems_table, audit_table, officials_table, departments_table):
        table(metadata)
    engine = make_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    return url


def test_the_sample_registry_is_loaded_once_and_not_again_once_emptied(tmp_path: Path) -> None:
    engine = make_engine(_database(tmp_path))
    assert load_sample_systems(uow=RegistryUnitOfWork(engine), sample_dir=SAMPLE_DIR)
    with RegistryUnitOfWork(engine) as uow:
        loaded = uow.systems.all()
        uow.connection.execute(delete(calling_systems_table(MetaData())))
        uow.commit()
    assert {s.name for s in loaded} == set(sample_registry().systems)
    assert not load_sample_systems(uow=RegistryUnitOfWork(engine), sample_dir=SAMPLE_DIR)
    with RegistryUnitOfWork(engine, write=False) as uow:
        assert uow.systems.count() == 0
        assert [e["action"] for e in uow.audit.entries()] == ["calling_systems.loaded"]
    engine.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_cache_reads_a_change_after_its_time_or_when_told(tmp_path: Path) -> None:
    engine = make_engine(_database(tmp_path))
    with RegistryUnitOfWork(engine) as uow:
        uow.systems.put(PLATFORM, at=datetime.now(UTC), by="")
        uow.commit()
    clock = Clock()
    registry = SystemRegistry(engine, ttl_seconds=5, clock=clock)
    rpc = f"/{INTAKE}/SubmitApplication"
    with pytest.raises(PermissionDenied):
        await registry.admit("hall-window-system", rpc)
    # Another replica registers the window system.
    with engine.begin() as connection:
        connection.execute(insert(calling_systems_table(MetaData())), [{
            "name": WINDOW.name, "description": "",
            "updated_at": datetime(2026, 12, 1, tzinfo=UTC),
            "rpcs": f'["{INTAKE}/SubmitApplication"]', "speaks_for": '[["*", "window_clerk"]]',
            "updated_by": "ZWFWZX-004"}])
    clock.now += 4.9
    with pytest.raises(PermissionDenied):
        await registry.admit("hall-window-system", rpc)
    clock.now += 0.2
    assert (await registry.admit("hall-window-system", rpc)) == WINDOW
    with engine.begin() as connection:
        connection.execute(delete(calling_systems_table(MetaData())))
    assert (await registry.admit("hall-window-system", rpc)) == WINDOW
    registry.invalidate()
    with pytest.raises(PermissionDenied):
        await registry.admit("hall-window-system", rpc)
    engine.dispose()


class HeldRead(SystemRegistry):
    """A registry whose reads wait, after reading, until the test lets them finish."""

    def __init__(self, engine: Any) -> None:
        super().__init__(engine, ttl_seconds=60)
        self.read_done = threading.Event()
        self.finish = threading.Event()

    def read(self) -> Registry:
        registry = super().read()
        self.read_done.set()
        self.finish.wait(10)
        return registry


async def test_a_read_that_began_before_a_change_is_not_kept_as_fresh(tmp_path: Path) -> None:
    engine = make_engine(_database(tmp_path))
    registry = HeldRead(engine)
    rpc = f"/{TRADING}/ListAgencies"
    pending = asyncio.create_task(registry.admit("trading-platform", rpc))
    await asyncio.to_thread(registry.read_done.wait, 10)
    # A change is made (through this process) while that read is still under way.
    with RegistryUnitOfWork(engine) as uow:
        uow.systems.put(PLATFORM, at=datetime.now(UTC), by="ZWFWZX-004")
        uow.commit()
    registry.invalidate()
    registry.finish.set()
    with pytest.raises(PermissionDenied):
        await pending
    assert (await registry.admit("trading-platform", rpc)) == PLATFORM
    engine.dispose()


async def test_an_unreadable_registry_is_unavailable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    with pytest.raises(Unavailable, match="cannot be read now"):
        await SystemRegistry(engine).admit("operator", f"/{INTAKE}/GetCase")
    engine.dispose()
