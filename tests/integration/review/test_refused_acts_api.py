"""RecordRefusedAct: review keeps, once, the forged acts the workflows worker reports.

The worker's own reporter (workflows/refused_acts.py, workflows/worker.py) is
driven here against the real review service over gRPC, from another thread
as the workflows' validators call it; the end-to-end path (a bare Temporal
client's forged update, refused by the workflow and kept by review) is in
tests/security/test_temporal_back_door.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from sqlalchemy import text

from govhall.review.v1 import review_pb2 as pb
from govhall.review.v1 import review_pb2_grpc
from tests.support import ServiceUnderTest
from workflows.refused_acts import RefusedAct, Reporter, printable, report_id
from workflows.worker import review_sender

WORKER = "workflows-worker"
CASE = "AP-20261201-000042"


def _kept(review: ServiceUnderTest) -> list[tuple[str, str, str, dict[str, Any]]]:
    with review.running.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT system, action, subject, details FROM audit_log "
            "WHERE action LIKE 'violation.%' ORDER BY sequence"))
        return [(system, action, subject, json.loads(details))
                for system, action, subject, details in rows]


def _request(report: str, reason: str = "the decision is not one the review service signed"
             ) -> pb.RecordRefusedActRequest:
    request = pb.RecordRefusedActRequest(case_number=CASE, report_id=report,
                                         update_name="decide", reason=reason)
    request.refused_at.FromDatetime(datetime(2026, 12, 1, 4, 0, tzinfo=UTC))
    return request


async def test_a_reported_refusal_is_kept_once_as_a_violation(review: ServiceUnderTest) -> None:
    first = report_id("approval/" + CASE, "run-1", "update-1")
    other = report_id("approval/" + CASE, "run-1", "update-2")
    async with review.channel(WORKER) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        kept = await stub.RecordRefusedAct(_request(first))
        again = await stub.RecordRefusedAct(_request(first))
        second = await stub.RecordRefusedAct(_request(other))
    async with review.channel() as channel:
        audit = (await review_pb2_grpc.ReviewServiceStub(channel).VerifyAuditLog(
            pb.VerifyAuditLogRequest())).verification
    assert (kept.recorded, again.recorded, second.recorded) == (True, False, True)
    assert _kept(review) == [
        (WORKER, "violation.forged_update", f"case/{CASE}", {
            "what": "decide", "reason": "the decision is not one the review service signed",
            "refused_at": "2026-12-01T04:00:00+00:00", "report_id": report})
        for report in (first, other)]
    assert audit.intact


async def test_no_other_system_may_report_and_a_bad_report_changes_nothing(
        review: ServiceUnderTest) -> None:
    report = report_id("approval/" + CASE, "run-1", "update-1")
    async with review.channel("department-system-scjgj") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as not_the_worker:
            await review_pb2_grpc.ReviewServiceStub(channel).RecordRefusedAct(_request(report))
    async with review.channel(WORKER) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as control_character:
            await stub.RecordRefusedAct(_request(report, reason="official \x00 forged"))
        with pytest.raises(grpc.aio.AioRpcError) as not_an_id:
            await stub.RecordRefusedAct(_request("update-1"))
    assert not_the_worker.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert control_character.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not_an_id.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _kept(review) == []


async def test_the_workers_reporter_delivers_refusals_taken_on_other_threads(
        review: ServiceUnderTest) -> None:
    """As the worker runs it: validators hand refusals over from the workflows' threads, the
    reporter sends them to review; a reason with a control character is made printable
    first (review would refuse it), and a refusal seen twice is kept once."""
    acts = [RefusedAct(CASE, report_id("approval/" + CASE, "run-1", f"update-{i}"), "decide",
                       printable(f"official SCJGJ-99{i}\x1b[31m is not a reviewer"),
                       datetime(2026, 12, 1, 4, i, tzinfo=UTC)) for i in range(3)]
    async with review.channel(WORKER) as channel:
        reporter = Reporter(review_sender(review_pb2_grpc.ReviewServiceStub(channel),
                                          retry_seconds=30),
                            loop=asyncio.get_running_loop())
        running = asyncio.create_task(reporter.run())
        threads = [threading.Thread(target=reporter.take, args=(act,))
                   for act in [*acts, acts[0]]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        await asyncio.sleep(0)  # the threads' call_soon_threadsafe callbacks run
        await asyncio.wait_for(reporter.drained(), timeout=60)
        running.cancel()
    kept = _kept(review)
    assert reporter.sent == 4 and reporter.dropped == 0
    assert sorted(details["reason"] for _, _, _, details in kept) == [
        f"official SCJGJ-99{i}?[31m is not a reviewer" for i in range(3)]
    assert {details["report_id"] for _, _, _, details in kept} == {a.report_id for a in acts}
