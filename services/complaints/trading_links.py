"""Trading's CheckTenderLink, called as the calling system complaints-service.

The same client certificate as for intake's CheckCaseLink
(``<pki_dir>/clients/complaints-service.pem`` in the embedded default);
trading's registry lets that system call CheckTenderLink and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from govhall.trading.v1 import trading_pb2, trading_pb2_grpc
from kernel.errors import FailedPrecondition, Unavailable
from kernel.grpcserver import channel_credentials
from services.complaints.app.links import TradingAnswer
from services.complaints.intake_links import CALL_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from govhall.trading.v1.trading_pb2_grpc import TradingServiceAsyncStub

#: Trading's answers worth trying again: it is down, restarting or slow.
_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                        grpc.StatusCode.RESOURCE_EXHAUSTED})
#: While trading is down the channel tries to reconnect at most this far apart, so a
#: retried check finds trading soon after it is back.
_CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 200),
                    ("grpc.min_reconnect_backoff_ms", 200),
                    ("grpc.max_reconnect_backoff_ms", 2000)]


def _lower(name: str, prefix: str) -> str:
    return name.removeprefix(prefix).lower()


class TradingLinks:
    """Asks trading about tender numbers; one channel, opened on first use."""

    def __init__(self, address: str, *, pki_dir: Path, system: str,
                 timeout_seconds: float = CALL_TIMEOUT_SECONDS) -> None:
        self._address = address
        self._pki_dir = pki_dir
        self._system = system
        self._timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None
        self._stub: TradingServiceAsyncStub | None = None

    def _trading(self) -> TradingServiceAsyncStub:
        # Opened in the activity worker's event loop, where every call runs.
        if self._stub is None:
            self._channel = grpc.aio.secure_channel(
                self._address, channel_credentials(self._pki_dir, self._system),
                options=_CHANNEL_OPTIONS)
            self._stub = trading_pb2_grpc.TradingServiceStub(self._channel)
        return self._stub

    async def __call__(self, tender_no: str) -> TradingAnswer:
        try:
            answer = await self._trading().CheckTenderLink(
                trading_pb2.CheckTenderLinkRequest(tender_no=tender_no),
                # Waits (within the timeout) for trading to be reachable, instead of
                # failing at once on a channel still backing off from an outage.
                timeout=self._timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as error:
            if error.code() in _TRANSIENT:
                raise Unavailable(f"trading at {self._address} did not answer "
                                  f"({error.code().name}): the link is checked again later"
                                  ) from error
            # A refusal (the registry, a malformed number) does not pass by itself.
            raise FailedPrecondition(
                f"trading refused to check the link ({error.code().name}: {error.details()})"
            ) from error
        if not answer.found:
            return TradingAnswer(found=False)
        return TradingAnswer(
            found=True,
            category=_lower(trading_pb2.TradingCategory.Name(answer.category),
                            "TRADING_CATEGORY_"),
            department_code=answer.department_code,
            stage=_lower(trading_pb2.TenderStage.Name(answer.stage), "TENDER_STAGE_"))

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = self._stub = None
