"""The activity worker that connects in the background never stops its process meanwhile."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from kernel.temporal import BackgroundWorker


async def test_retrying_the_connection_leaves_the_event_loop_free() -> None:
    """While Temporal cannot be reached, the process goes on serving (gRPC, health, outbox).

    The connection fails at once three times, then hangs. Between attempts the
    worker must wait with asyncio, not time.sleep: with a blocking wait the
    three back-offs (0.1 s + 0.2 s + 0.4 s at least, plus jitter) run without
    the loop ever getting control back, and the ticks below stop for that long.
    """
    attempts = 0
    hang = asyncio.Event()

    async def connect() -> Client:
        nonlocal attempts
        attempts += 1
        if attempts <= 3:
            raise RuntimeError("Failed client connect: connection refused")
        await hang.wait()
        raise AssertionError("never connects")

    def make_worker(client: Client) -> Worker:
        raise AssertionError("never connects")

    worker = BackgroundWorker(name="test", connect=connect, make_worker=make_worker,
                              retry_wait_max=timedelta(seconds=0.5))
    gaps: list[float] = []
    last = time.monotonic()
    deadline = last + 30
    try:
        while attempts < 4:
            assert time.monotonic() < deadline, "the worker stopped trying to connect"
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now
    finally:
        await worker.shutdown()
    assert max(gaps) < 0.5, f"the event loop stood still for {max(gaps):.2f} s"
