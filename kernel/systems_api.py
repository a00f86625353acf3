"""The registry of calling systems over gRPC: ``govhall.common.v1.CallingSystemsService``.

Implemented once here and mounted by every service on its own database;
a change made through it is read by this process's interceptor at once
(``SystemRegistry.invalidate``) and by other replicas within the cache's
time to live.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Engine

from govhall.common.v1 import common_pb2, systems_pb2, systems_pb2_grpc
from kernel import systems
from kernel.directory import ROLES
from kernel.identity import current_caller
from kernel.systems import CallingSystem, DepartmentRole, RegistryUnitOfWork, SystemRegistry

_ROLES = {name: common_pb2.Role.Value(f"ROLE_{name.upper()}") for name in ROLES}
_ROLE_NAMES = {value: name for name, value in _ROLES.items()}


def system_to_proto(system: CallingSystem) -> systems_pb2.CallingSystem:
    message = systems_pb2.CallingSystem(
        name=system.name, description=system.description, rpcs=sorted(system.rpcs),
        speaks_for=[systems_pb2.DepartmentRole(department_code=p.department_code,
                                               role=_ROLES[p.role])
                    for p in sorted(system.speaks_for)],
        updated_by=system.updated_by)
    if system.updated_at is not None:
        stamp = Timestamp()
        stamp.FromDatetime(system.updated_at.astimezone(UTC))
        message.updated_at.CopyFrom(stamp)
    return message


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CallingSystemsServicer(systems_pb2_grpc.CallingSystemsServiceServicer):
    def __init__(self, engine: Engine, registry: SystemRegistry, *,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self._engine = engine
        self._registry = registry
        self._clock = clock

    def _reading(self) -> RegistryUnitOfWork:
        return RegistryUnitOfWork(self._engine, write=False)

    def _writing(self) -> RegistryUnitOfWork:
        return RegistryUnitOfWork(self._engine)

    async def ListCallingSystems(self, request: systems_pb2.ListCallingSystemsRequest,
                                 context: grpc.aio.ServicerContext[Any, Any],
                                 ) -> systems_pb2.ListCallingSystemsResponse:
        page = await asyncio.to_thread(systems.list_systems, uow=self._reading(),
                                       requested_size=request.page_size,
                                       page_token=request.page_token)
        return systems_pb2.ListCallingSystemsResponse(
            systems=[system_to_proto(s) for s in page.systems],
            next_page_token=page.next_page_token)

    async def GetCallingSystem(self, request: systems_pb2.GetCallingSystemRequest,
                               context: grpc.aio.ServicerContext[Any, Any],
                               ) -> systems_pb2.GetCallingSystemResponse:
        found = await asyncio.to_thread(systems.get_system, uow=self._reading(),
                                        name=request.name)
        return systems_pb2.GetCallingSystemResponse(system=system_to_proto(found))

    async def SetCallingSystem(self, request: systems_pb2.SetCallingSystemRequest,
                               context: grpc.aio.ServicerContext[Any, Any],
                               ) -> systems_pb2.SetCallingSystemResponse:
        entry = CallingSystem(
            name=request.name, description=request.description, rpcs=frozenset(request.rpcs),
            speaks_for=frozenset(DepartmentRole(p.department_code, _ROLE_NAMES[p.role])
                                 for p in request.speaks_for))
        result = await asyncio.to_thread(systems.set_system, uow=self._writing(),
                                         caller=current_caller(), system=entry,
                                         now=self._clock())
        if result.changed:
            self._registry.invalidate()
        return systems_pb2.SetCallingSystemResponse(
            system=system_to_proto(result.system), created=result.created,
            changed=result.changed)

    async def RemoveCallingSystem(self, request: systems_pb2.RemoveCallingSystemRequest,
                                  context: grpc.aio.ServicerContext[Any, Any],
                                  ) -> systems_pb2.RemoveCallingSystemResponse:
        removed = await asyncio.to_thread(systems.remove_system, uow=self._writing(),
                                          caller=current_caller(), name=request.name,
                                          now=self._clock())
        self._registry.invalidate()
        return systems_pb2.RemoveCallingSystemResponse(removed=system_to_proto(removed))
