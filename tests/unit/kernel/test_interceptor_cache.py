"""The interceptor wraps each method's handler once, and still admits every call's caller."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from govhall.complaints.v1 import complaints_pb2 as pb
from kernel import errors
from kernel.grpcserver import GovhallInterceptor

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


async def _continuation(details: Any) -> Any:
    return HANDLER


async def test_a_method_is_wrapped_once_and_each_call_is_admitted_on_its_own() -> None:
    registry = Registry("hotline-12345")
    interceptor = GovhallInterceptor(registry)  # type: ignore[arg-type]
    first = await interceptor.intercept_service(_continuation, Details())  # type: ignore[arg-type]
    again = await interceptor.intercept_service(_continuation, Details())  # type: ignore[arg-type]
    assert first is again and first is not HANDLER
    behaviour: Any = again.unary_unary
    request = pb.GetComplaintRequest(case_number="CP-20260105-000001")
    allowed = Context("hotline-12345")
    assert isinstance(await behaviour(request, allowed), pb.GetComplaintResponse)
    refused = Context("someone-else")
    with pytest.raises(Aborted):
        await behaviour(request, refused)
    assert refused.aborted == grpc.StatusCode.PERMISSION_DENIED
    assert registry.asked == ["hotline-12345", "someone-else"]


async def test_a_new_handler_for_a_method_is_wrapped_afresh() -> None:
    interceptor = GovhallInterceptor(Registry("x"))  # type: ignore[arg-type]
    first = await interceptor.intercept_service(_continuation, Details())  # type: ignore[arg-type]
    other = grpc.unary_unary_rpc_method_handler(
        _answer, request_deserializer=pb.GetComplaintRequest.FromString,
        response_serializer=pb.GetComplaintResponse.SerializeToString)

    async def continuation(details: Any) -> Any:
        return other

    second = await interceptor.intercept_service(continuation, Details())  # type: ignore[arg-type]
    assert second is not first
