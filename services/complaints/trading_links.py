"""Trading's CheckTenderLink, called as the calling system complaints-service.

The same client certificate as for intake's CheckCaseLink
(``<pki_dir>/clients/complaints-service.pem`` in the embedded default);
trading's registry lets that system call CheckTenderLink and nothing else.
The channel, the retries and the refusals are the kernel's ``LinkedLookup``
(kernel/linked_lookup.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import grpc

from govhall.trading.v1 import trading_pb2, trading_pb2_grpc
from kernel.linked_lookup import LinkedLookup, code_of
from services.complaints.app.links import TradingAnswer

if TYPE_CHECKING:
    from govhall.trading.v1.trading_pb2_grpc import TradingServiceAsyncStub


class TradingLinks(LinkedLookup["TradingServiceAsyncStub"]):
    """Asks trading about tender numbers; one channel, opened on first use."""

    service: ClassVar[str] = "trading"

    def stub_of(self, channel: grpc.aio.Channel) -> TradingServiceAsyncStub:
        return trading_pb2_grpc.TradingServiceStub(channel)

    async def __call__(self, tender_no: str) -> TradingAnswer:
        answer = await self.ask(lambda trading: trading.CheckTenderLink,
                                trading_pb2.CheckTenderLinkRequest(tender_no=tender_no))
        if not answer.found:
            return TradingAnswer(found=False)
        return TradingAnswer(
            found=True,
            category=code_of(trading_pb2.TradingCategory.Name(answer.category),
                             "TRADING_CATEGORY_"),
            department_code=answer.department_code,
            stage=code_of(trading_pb2.TenderStage.Name(answer.stage), "TENDER_STAGE_"))
