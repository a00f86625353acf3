"""Helpers the integration and end-to-end tests share.

A service under test is started exactly as its process starts it
(``kernel.service.prepare`` then ``start``) on port 0, behind real mTLS,
over a real database: a SQLite file, or PostgreSQL when
GOVHALL_TEST_POSTGRES_URL names a server (see .ci/run).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from sqlalchemy import create_engine, text

from kernel.directory import Official, sample_officials
from kernel.grpcserver import secure_channel
from kernel.identity import OFFICIAL_METADATA_KEY, Caller
from kernel.pki import client_pair, issue
from kernel.service import RunningService, ServiceDefinition, prepare, start
from kernel.settings import ROOT
from kernel.systems import (
    EVERY,
    CallingSystem,
    DepartmentRole,
    Registry,
    RegistryUnitOfWork,
    sample_systems,
)

POSTGRES_URL = os.environ.get("GOVHALL_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
SAMPLE_DIR = ROOT / "deploy" / "sample"
#: The audit entries a service's sample data leaves: its directory, then the registry.
SAMPLE_AUDIT_ENTRIES = 2


@cache
def sample_registry() -> Registry:
    """The registry of calling systems every service loads on first start."""
    return Registry.of(sample_systems(SAMPLE_DIR))


@cache
def sample_staff() -> dict[str, Official]:
    return {o.id: o for o in sample_officials(SAMPLE_DIR)}


def sample_caller(system: str, official_id: str = "") -> Caller:
    """A caller as the interceptor makes it for ``system`` of the sample registry."""
    return Caller(system, official_id, sample_registry().scope_of(system))


def system_for(rpc: str, official_id: str = "") -> str:
    """The first sample system, by name, that may call ``rpc`` (``pkg.Service/Method``)
    and, if an official is given, speak for them in one of their roles."""
    official = sample_staff().get(official_id) if official_id else None
    registry = sample_registry()
    for name in sorted(registry.systems):
        scope = registry.scope_of(name)
        if scope is None or not scope.may_call(rpc):
            continue
        if official is None or any(scope.may_speak_for(official.department_code, role)
                                   for role in official.roles):
            return name
    raise LookupError(f"no sample system may call {rpc}"
                      + (f" for {official_id}" if official_id else ""))


def official_for(system: str, role: str = "") -> str:
    """The first sample official, by id, ``system`` may speak for (in ``role``); '' for none."""
    scope = sample_registry().scope_of(system)
    for official in sorted(sample_staff().values(), key=lambda o: o.id):
        roles = {role} & official.roles if role else official.roles
        if scope is not None and any(scope.may_speak_for(official.department_code, r)
                                     for r in roles):
            return official.id
    return ""


def registered_systems() -> list[str]:
    """The names of the sample systems that hold certificates."""
    return sorted(name for name in sample_registry().systems if name != EVERY)


def fresh_database_url(backend: str, service: str, tmp_path: Path) -> str:
    """An empty database for ``service``: a new SQLite file or a wiped PostgreSQL schema."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'{service}.sqlite3'}"
    url = f"{POSTGRES_URL.rstrip('/')}/govhall_{service}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@dataclass
class ServiceUnderTest:
    running: RunningService
    pki_dir: Path
    settings: Any

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    def channel(self, system: str = "operator") -> grpc.aio.Channel:
        return secure_channel(self.address, pki_dir=self.pki_dir, system=system)


def register_system(service: ServiceUnderTest, name: str, *, rpcs: Iterable[str],
                    speaks_for: Iterable[tuple[str, str]]) -> str:
    """A calling system of the test's own in ``service``'s registry, with a certificate.

    For a refusal the sample systems never reach: none of them may both call an
    RPC and speak for an official the RPC's own rule refuses, so the registry
    (or "may not speak for") answers first and the rule itself goes untested.
    """
    pair = client_pair(service.pki_dir, name)
    if not pair.cert.exists():
        issue(service.pki_dir, pair, common_name=name, server=False)
    with RegistryUnitOfWork(service.running.engine) as uow:
        uow.systems.put(CallingSystem(
            name, rpcs=frozenset(rpcs),
            speaks_for=frozenset(DepartmentRole(d, r) for d, r in speaks_for)),
            at=datetime.now(UTC), by="ZWFWZX-004")
        uow.commit()
    service.running.registry.invalidate()
    return name


class RoutedStub:
    """A stub that sends each call the way the sample systems would: through the system that
    may call the RPC for the official named in the call's metadata.

    ``default_system`` is used when it may (and for a call no sample system may make, so
    that the service's refusal is what the test sees). The channels are closed on leaving
    the ``routed_stub`` block.
    """

    def __init__(self, service: ServiceUnderTest, stub_type: Any, service_name: str,
                 default_system: str) -> None:
        self._service = service
        self._stub_type = stub_type
        self._service_name = service_name
        self._default = default_system
        self.channels: dict[str, grpc.aio.Channel] = {}

    def system_of(self, rpc: str, official_id: str) -> str:
        """The system a call of ``rpc`` for ``official_id`` goes through."""
        name = f"{self._service_name}/{rpc}"
        scope = sample_registry().scope_of(self._default)
        official = sample_staff().get(official_id)
        if scope is not None and scope.may_call(name) and (
                official is None
                or any(scope.may_speak_for(official.department_code, r) for r in official.roles)):
            return self._default
        try:
            return system_for(name, official_id if official else "")
        except LookupError:
            return self._default

    def __getattr__(self, rpc: str) -> Any:
        def call(request: Any, *, metadata: Any = (), **options: Any) -> Any:
            official = dict(metadata or ()).get(OFFICIAL_METADATA_KEY, "")
            system = self.system_of(rpc, official)
            if system not in self.channels:
                self.channels[system] = self._service.channel(system)
            stub = self._stub_type(self.channels[system])
            return getattr(stub, rpc)(request, metadata=metadata, **options)
        return call


@asynccontextmanager
async def routed_stub(service: ServiceUnderTest, stub_type: Any, service_name: str, *,
                      default_system: str) -> AsyncIterator[Any]:
    """A ``RoutedStub`` for ``service`` (``stub_type`` of the gRPC service ``service_name``)."""
    routed = RoutedStub(service, stub_type, service_name, default_system)
    try:
        yield routed
    finally:
        for channel in routed.channels.values():
            await channel.close(None)


@asynccontextmanager
async def service_under_test(definition: ServiceDefinition, *, database_url: str,
                             pki_dir: Path, **overrides: Any) -> AsyncIterator[ServiceUnderTest]:
    # open311_port: the complaints service's HTTPS façade on a free port too, never on its
    # default, which ``make run`` or another suite may hold (other services ignore it).
    values: dict[str, Any] = {"port": 0, "open311_port": 0, "run_activity_worker": False,
                              "shutdown_grace_seconds": 0.5}
    settings = definition.settings_type(
        database_url=database_url, pki_dir=pki_dir, **(values | overrides))
    prepare(definition, settings)
    running = await start(definition, settings)
    try:
        yield ServiceUnderTest(running, pki_dir, settings)
    finally:
        await running.stop(0.5)


def as_official(official_id: str) -> tuple[tuple[str, str], ...]:
    """Call metadata asserting the acting official."""
    return ((OFFICIAL_METADATA_KEY, official_id),)


def field_violations(error: grpc.aio.AioRpcError) -> list[str]:
    """The fields named in an error's google.rpc.BadRequest details."""
    trailing: Any = error.trailing_metadata() or ()
    for key, value in trailing:
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            fields: list[str] = []
            for detail in status.details:
                bad_request = error_details_pb2.BadRequest()
                if detail.Unpack(bad_request):
                    fields += [v.field for v in bad_request.field_violations]
            return fields
    return []
