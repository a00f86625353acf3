"""Gap tests (s17 test reading): a generic handler's wrapped method is kept only while the
handler it wraps is the one the inner generic handler gives.

test_interceptor_cache.py had this case (``a new handler for a method is wrapped afresh``);
test_guard_cache.py, which replaced it, has not: dropping ``cached[0] is handler`` from
``_GuardedGenericHandler.service`` left every test green, and a call would then run the
behaviour of a handler the service no longer gives.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from govhall.complaints.v1 import complaints_pb2 as pb
from kernel.grpcserver import GovhallGuard, GuardedServer
from tests.unit.kernel.test_guard_cache import (
    METHOD,
    Aborted,
    Context,
    Details,
    Recorder,
    Registry,
)


class Swappable(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    """Gives ``current`` for every method."""

    def __init__(self, current: Any) -> None:
        self.current = current

    def service(self, handler_call_details: Any) -> Any:
        return self.current


def _handler(answer: str) -> Any:
    async def behaviour(request: Any, context: Any) -> pb.GetComplaintResponse:
        response = pb.GetComplaintResponse()
        response.complaint.case_number = answer
        return response

    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=pb.GetComplaintRequest.FromString,
        response_serializer=pb.GetComplaintResponse.SerializeToString)


async def test_a_new_handler_for_a_method_is_wrapped_afresh_and_its_behaviour_runs() -> None:
    recorder = Recorder()
    server = GuardedServer(recorder, GovhallGuard(Registry("hotline-12345")))  # type: ignore[arg-type]
    inner = Swappable(_handler("CP-20260105-000001"))
    server.add_generic_rpc_handlers([inner])
    (guarded,) = recorder.generic
    first = guarded.service(Details())
    inner.current = _handler("CP-20260105-000002")
    second = guarded.service(Details())

    assert second is not first
    request = pb.GetComplaintRequest(case_number="CP-20260105-000009")
    answered = await second.unary_unary(request, Context("hotline-12345"))
    assert answered.complaint.case_number == "CP-20260105-000002"


async def test_a_case_number_the_text_rules_refuse_is_not_bound_to_the_log_lines() -> None:
    """The guard binds a request's case number only once its text passed the rules (its
    comment says so): bound before ``check_request``, a control character in it reached the
    refusal's log line, and every test stayed green."""
    import structlog


    async def never(request: Any, context: Any) -> Any:
        raise AssertionError("a refused request reached the servicer")

    behaviour: Any = GovhallGuard(Registry("hotline-12345"))._unary(  # type: ignore[arg-type]
        METHOD, never)
    structlog.contextvars.clear_contextvars()
    refused = Context("hotline-12345")
    with pytest.raises(Aborted):
        await behaviour(pb.GetComplaintRequest(case_number="CP-20260105-00000\x00"),
                        refused)
    assert refused.aborted == grpc.StatusCode.INVALID_ARGUMENT
    assert "case_number" not in structlog.contextvars.get_contextvars()
