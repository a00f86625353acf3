"""A trade stream's caller is admitted again before each message: a system taken out of the
registry ("its certificate then reaches nothing but the health check", systems.proto) stops
receiving the WatchTrades stream it opened before, which ends PERMISSION_DENIED (attack s17
LOW 4: it kept every later step, monitoring alerts included, for as long as the service ran).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import grpc
from sqlalchemy import func, insert, select

from govhall.common.v1 import systems_pb2, systems_pb2_grpc
from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from services.trading.db import tables
from services.trading.main import DEFINITION
from tests.support import as_official, fresh_database_url, official_for, service_under_test

WATCHER = "supervision-system"


def _step(engine: object, trade: str) -> None:
    with engine.begin() as connection:  # type: ignore[attr-defined]
        last = connection.execute(
            select(func.coalesce(func.max(tables.trade_steps.c.sequence), 0))).scalar_one()
        connection.execute(insert(tables.trade_steps).values(
            sequence=last + 1, trade=trade, kind="tender", step="awarded", stage="awarded",
            at=datetime.now(UTC), feed_sequence=0, details="{}"))


async def test_a_system_taken_out_of_the_registry_receives_nothing_more_of_its_stream(
        backend: str, tmp_path: Path, pki_dir: Path) -> None:
    async with service_under_test(DEFINITION, database_url=fresh_database_url(
            backend, "trading", tmp_path), pki_dir=pki_dir, temporal_address="127.0.0.1:1",
            watch_poll_seconds=0.1) as trading:
        watcher, operator = trading.channel(WATCHER), trading.channel("operator")
        try:
            received: list[str] = []
            first = asyncio.Event()
            stream = trading_pb2_grpc.TradingServiceStub(watcher).WatchTrades(
                pb.WatchTradesRequest(follow=True))

            async def read() -> grpc.StatusCode:
                try:
                    async for response in stream:
                        received.append(response.step.trade)
                        first.set()
                except grpc.aio.AioRpcError as ended:
                    return ended.code()
                return grpc.StatusCode.OK

            reader = asyncio.create_task(read())
            engine = trading.running.engine
            await asyncio.to_thread(_step, engine, "tender/TD-20261201-000098")
            async with asyncio.timeout(30):
                await first.wait()
            await systems_pb2_grpc.CallingSystemsServiceStub(operator).RemoveCallingSystem(
                systems_pb2.RemoveCallingSystemRequest(name=WATCHER),
                metadata=as_official(official_for("operator")))
            await asyncio.to_thread(_step, engine, "tender/TD-20261201-000099")
            async with asyncio.timeout(30):
                ended = await reader

            # Admitted while it was registered; after its removal the next step is not sent.
            assert received == ["tender/TD-20261201-000098"]
            assert ended == grpc.StatusCode.PERMISSION_DENIED
        finally:
            await watcher.close(None)
            await operator.close(None)
