"""Intake's CheckCaseLink, called as the calling system complaints-service.

The complaints process holds a client certificate of the center's CA for
that system (``<pki_dir>/clients/complaints-service.pem`` in the embedded
default); intake's registry lets it call CheckCaseLink and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from govhall.intake.v1 import intake_pb2, intake_pb2_grpc
from kernel.errors import FailedPrecondition, Unavailable
from kernel.grpcserver import channel_credentials
from services.complaints.app.links import IntakeAnswer

if TYPE_CHECKING:
    from govhall.intake.v1.intake_pb2_grpc import IntakeServiceAsyncStub

#: Intake's answers worth trying again: it is down, restarting or slow.
_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                        grpc.StatusCode.RESOURCE_EXHAUSTED})
#: Longest one question to intake may take, waiting for intake to be reachable included.
CALL_TIMEOUT_SECONDS = 10.0
#: While intake is down the channel tries to reconnect at most this far apart, so a retried
#: check finds intake soon after it is back (gRPC's default waits up to two minutes).
_CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 200),
                    ("grpc.min_reconnect_backoff_ms", 200),
                    ("grpc.max_reconnect_backoff_ms", 2000)]


class IntakeLinks:
    """Asks intake about approval case numbers; one channel, opened on first use."""

    def __init__(self, address: str, *, pki_dir: Path, system: str,
                 timeout_seconds: float = CALL_TIMEOUT_SECONDS) -> None:
        self._address = address
        self._pki_dir = pki_dir
        self._system = system
        self._timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None
        self._stub: IntakeServiceAsyncStub | None = None

    def _intake(self) -> IntakeServiceAsyncStub:
        # Opened in the activity worker's event loop, where every call runs.
        if self._stub is None:
            self._channel = grpc.aio.secure_channel(
                self._address, channel_credentials(self._pki_dir, self._system),
                options=_CHANNEL_OPTIONS)
            self._stub = intake_pb2_grpc.IntakeServiceStub(self._channel)
        return self._stub

    async def __call__(self, case_number: str) -> IntakeAnswer:
        try:
            answer = await self._intake().CheckCaseLink(
                intake_pb2.CheckCaseLinkRequest(case_number=case_number),
                # Waits (within the timeout) for intake to be reachable, instead of failing
                # at once on a channel still backing off from an outage.
                timeout=self._timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as error:
            if error.code() in _TRANSIENT:
                raise Unavailable(f"intake at {self._address} did not answer "
                                  f"({error.code().name}): the link is checked again later"
                                  ) from error
            # A refusal (the registry, a malformed number) does not pass by itself.
            raise FailedPrecondition(
                f"intake refused to check the link ({error.code().name}: {error.details()})"
            ) from error
        if not answer.found:
            return IntakeAnswer(found=False)
        return IntakeAnswer(
            found=True, item_code=answer.item_code, department_code=answer.department_code,
            case_status=intake_pb2.CaseStatus.Name(answer.status)
            .removeprefix("CASE_STATUS_").lower())

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = self._stub = None
