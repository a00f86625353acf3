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
from services.review.app.chain import REFUSED_ACTS_PER_CASE
from tests.integration.review.test_approval_activities import CASE, open_case, opening
from tests.support import ServiceUnderTest
from tests.unit.workflows.fakes import Signers
from workflows import refused_acts
from workflows.refused_acts import RefusedAct, Reporter, printable, report_id
from workflows.worker import WorkerSettings, reporting_refusals, review_sender

WORKER = "workflows-worker"


@pytest.fixture
async def opened(review: ServiceUnderTest, signers: Signers) -> ServiceUnderTest:
    """Review with CASE opened by its workflow (review's open_case activity)."""
    await open_case(review, signers, opening(signers))
    return review


def _handled(review: ServiceUnderTest) -> int:
    with review.running.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM handled_requests")).scalar_one())


def _kept(review: ServiceUnderTest) -> list[tuple[str, str, str, dict[str, Any]]]:
    with review.running.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT system, action, subject, details FROM audit_log "
            "WHERE action LIKE 'violation.%' ORDER BY sequence"))
        return [(system, action, subject, json.loads(details))
                for system, action, subject, details in rows]


def _request(report: str, reason: str = "the decision is not one the review service signed",
             case_number: str = CASE) -> pb.RecordRefusedActRequest:
    request = pb.RecordRefusedActRequest(case_number=case_number, report_id=report,
                                         update_name="decide", reason=reason)
    request.refused_at.FromDatetime(datetime(2026, 12, 1, 4, 0, tzinfo=UTC))
    return request


async def test_a_reported_refusal_is_kept_once_as_a_violation(opened: ServiceUnderTest) -> None:
    review = opened
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
        opened: ServiceUnderTest) -> None:
    review = opened
    report = report_id("approval/" + CASE, "run-1", "update-1")
    handled = _handled(review)
    async with review.channel("department-system-scjgj") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as not_the_worker:
            await review_pb2_grpc.ReviewServiceStub(channel).RecordRefusedAct(_request(report))
    async with review.channel(WORKER) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as control_character:
            await stub.RecordRefusedAct(_request(report, reason="official \x00 forged"))
        with pytest.raises(grpc.aio.AioRpcError) as not_an_id:
            await stub.RecordRefusedAct(_request("update-1"))
        with pytest.raises(grpc.aio.AioRpcError) as unknown_case:
            await stub.RecordRefusedAct(_request(report, case_number="AP-20261201-999999"))
    assert not_the_worker.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert control_character.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not_an_id.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert unknown_case.value.code() == grpc.StatusCode.NOT_FOUND
    assert unknown_case.value.details() == "case AP-20261201-999999 is not in review's record"
    assert _kept(review) == []
    assert _handled(review) == handled


async def test_one_report_sent_at_once_many_times_is_kept_once(
        opened: ServiceUnderTest) -> None:
    """The worker retries a report whose answer it lost while the first call may still run:
    the copies race, one is kept, the others answer recorded=false (never INTERNAL). On
    SQLite the single writer settles it; on PostgreSQL the copies collide on the key."""
    report = report_id("approval/" + CASE, "run-1", "race")
    async with opened.channel(WORKER) as first, opened.channel(WORKER) as second:
        stubs = [review_pb2_grpc.ReviewServiceStub(first),
                 review_pb2_grpc.ReviewServiceStub(second)]
        answers = await asyncio.gather(*(stubs[i % 2].RecordRefusedAct(_request(report))
                                         for i in range(8)))
    assert sorted(a.recorded for a in answers) == [False] * 7 + [True]
    assert len(_kept(opened)) == 1


async def test_a_flood_of_forged_updates_keeps_a_bounded_number_per_case(
        opened: ServiceUnderTest) -> None:
    async with opened.channel(WORKER) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        answers = [(await stub.RecordRefusedAct(_request(
            report_id("approval/" + CASE, "run-1", f"flood-{i}")))).recorded
            for i in range(REFUSED_ACTS_PER_CASE + 5)]
    assert answers == [True] * REFUSED_ACTS_PER_CASE + [False] * 5
    assert len(_kept(opened)) == REFUSED_ACTS_PER_CASE


async def test_the_workers_reporter_delivers_refusals_taken_on_other_threads(
        opened: ServiceUnderTest) -> None:
    """As the worker runs it: validators hand refusals over from the workflows' threads, the
    reporter sends them to review; a reason with a control character is made printable
    first (review would refuse it), and a refusal seen twice is kept once."""
    acts = [RefusedAct(CASE, report_id("approval/" + CASE, "run-1", f"update-{i}"), "decide",
                       printable(f"official SCJGJ-99{i}\x1b[31m is not a reviewer"),
                       datetime(2026, 12, 1, 4, i, tzinfo=UTC)) for i in range(3)]
    review = opened
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


async def test_the_worker_reports_while_it_runs_and_drains_what_waits_when_it_stops(
        opened: ServiceUnderTest) -> None:
    """The worker's own wiring (its settings, its certificate as workflows-worker): what the
    validators report reaches review, the reports still waiting when the worker stops
    included; after the stop nothing listens."""
    settings = WorkerSettings(review_address=opened.address, pki_dir=opened.pki_dir)
    acts = [RefusedAct(CASE, report_id("approval/" + CASE, "run-2", f"stop-{i}"), "withdraw",
                       "the withdrawal is not one the intake service signed: refused",
                       datetime(2026, 12, 1, 5, i, tzinfo=UTC)) for i in range(5)]
    async with reporting_refusals(settings, drain_seconds=60):
        for act in acts:
            refused_acts.report(act)
    refused_acts.report(RefusedAct(CASE, report_id("approval/" + CASE, "run-2", "late"),
                                   "withdraw", "after the stop", datetime.now(UTC)))
    await asyncio.sleep(0.1)
    kept = _kept(opened)
    assert sorted(details["report_id"] for _, _, _, details in kept) == sorted(
        a.report_id for a in acts)
    assert {system for system, _, _, _ in kept} == {WORKER}
