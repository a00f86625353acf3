"""The guard wraps each method's handler once, when the server is built, and still admits
every call's caller."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from govhall.complaints.v1 import complaints_pb2 as pb
from kernel import errors
from kernel.grpcserver import GovhallGuard, GuardedServer

METHOD = "/govhall.complaints.v1.ComplaintsService/GetComplaint"


class Registry:
    """Admits only ``allowed``; counts the admissions it was asked for."""

    def __init__(self, allowed: str) -> None:
        self.allowed = allowed
        self.asked: list[str] = []

    async def admit(self, system: str, rpc: str) -> object:
        self.asked.append(system)
        if system != self.allowed:
            raise errors.PermissionDenied(f"system {system} may not call {rpc}")
        return None


class Aborted(Exception):
    pass


class Context:
    def __init__(self, system: str) -> None:
        self.system = system
        self.aborted: grpc.StatusCode | None = None

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_common_name": [self.system.encode()]}

    def invocation_metadata(self) -> tuple[()]:
        return ()

    async def abort(self, code: grpc.StatusCode, message: str, **_: Any) -> None:
        self.aborted = code
        raise Aborted(message)


class Details:
    method = METHOD


async def _answer(request: Any, context: Any) -> pb.GetComplaintResponse:
    return pb.GetComplaintResponse()


HANDLER = grpc.unary_unary_rpc_method_handler(
    _answer, request_deserializer=pb.GetComplaintRequest.FromString,
    response_serializer=pb.GetComplaintResponse.SerializeToString)


class Recorder:
    """Stands in for grpc's server: keeps what is added to it."""

    def __init__(self) -> None:
        self.generic: list[Any] = []
        self.registered: dict[str, dict[str, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.registered[service] = handlers


def _guarded(registry: Any, handler: Any = HANDLER) -> tuple[Recorder, GuardedServer]:
    recorder = Recorder()
    server = GuardedServer(recorder, GovhallGuard(registry))  # type: ignore[arg-type]
    service, name = METHOD.lstrip("/").split("/")
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(service, {name: handler})])
    server.add_registered_method_handlers(service, {name: handler})
    return recorder, server


async def _admits_each_call(registry: Registry, behaviour: Any) -> None:
    request = pb.GetComplaintRequest(case_number="CP-20260105-000001")
    assert isinstance(await behaviour(request, Context("hotline-12345")),
                      pb.GetComplaintResponse)
    refused = Context("someone-else")
    with pytest.raises(Aborted):
        await behaviour(request, refused)
    assert refused.aborted == grpc.StatusCode.PERMISSION_DENIED
    assert registry.asked == ["hotline-12345", "someone-else"]


async def test_a_generic_handler_s_method_is_wrapped_once_and_each_call_is_admitted() -> None:
    registry = Registry("hotline-12345")
    recorder, _ = _guarded(registry)
    first = recorder.generic[0].service(Details())
    again = recorder.generic[0].service(Details())
    assert first is again and first is not HANDLER
    await _admits_each_call(registry, again.unary_unary)


async def test_a_registered_method_is_wrapped_when_added_and_each_call_is_admitted() -> None:
    registry = Registry("hotline-12345")
    recorder, _ = _guarded(registry)
    wrapped = recorder.registered["govhall.complaints.v1.ComplaintsService"]["GetComplaint"]
    assert wrapped is not HANDLER
    await _admits_each_call(registry, wrapped.unary_unary)


def test_a_method_the_generic_handler_does_not_serve_has_no_handler() -> None:
    recorder, _ = _guarded(Registry("x"))

    class Unknown:
        method = "/govhall.complaints.v1.ComplaintsService/NoSuchRpc"

    assert recorder.generic[0].service(Unknown()) is None


def test_health_and_reflection_are_not_guarded() -> None:
    guard = GovhallGuard(Registry("x"))  # type: ignore[arg-type]
    assert guard.wrap("/grpc.health.v1.Health/Check", HANDLER) is HANDLER
    assert guard.wrap(METHOD, HANDLER) is not HANDLER


async def test_the_case_number_of_a_request_that_has_one_is_bound_to_its_log_lines() -> None:
    import structlog

    seen: dict[str, object] = {}

    async def look(request: Any, context: Any) -> pb.GetComplaintResponse:
        seen.update(structlog.contextvars.get_contextvars())
        return pb.GetComplaintResponse()

    behaviour: Any = GovhallGuard(Registry("hotline-12345"))._unary(  # type: ignore[arg-type]
        METHOD, look)
    structlog.contextvars.clear_contextvars()
    await behaviour(pb.GetComplaintRequest(case_number="CP-20260105-000001"),
                    Context("hotline-12345"))
    assert seen == {"system": "hotline-12345", "rpc": METHOD,
                    "case_number": "CP-20260105-000001"}
    seen.clear()
    structlog.contextvars.clear_contextvars()
    await behaviour(pb.ListCategoriesRequest(), Context("hotline-12345"))
    assert seen == {"system": "hotline-12345", "rpc": METHOD}
