"""The way a refused act takes out of the workflow: ids, printable reasons, the reporter's
bound, and the sender's retries while review is unreachable (a stand-in stub)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
import stamina

from govhall.review.v1 import review_pb2 as pb
from workflows import refused_acts
from workflows.refused_acts import RefusedAct, Reporter, printable, report_id
from workflows.worker import review_sender

ACT = RefusedAct("AP-20261201-000042", report_id("approval/AP-20261201-000042", "r", "u"),
                 "decide", "refused", datetime(2026, 12, 1, tzinfo=UTC))


@pytest.fixture(autouse=True)
def no_waits() -> Any:
    stamina.set_testing(True, attempts=5)
    yield
    stamina.set_testing(False)


def test_a_report_id_names_the_run_and_the_update_and_nothing_else() -> None:
    ids = {report_id("approval/A", "run", "u1"), report_id("approval/A", "run", "u2"),
           report_id("approval/A", "run2", "u1"), report_id("approval/B", "run", "u1"),
           report_id("approval/A", "run\nu1", "")}
    assert len(ids) == 5
    assert report_id("approval/A", "run", "u1") == report_id("approval/A", "run", "u1")
    assert all(len(i) == 64 and set(i) <= set("0123456789abcdef") for i in ids)
    # An update id whoever sent the update chose, even one no UTF-8 can carry.
    assert len(report_id("approval/A", "run", "\ud800\x00")) == 64


def test_a_reason_is_made_printable_and_short() -> None:
    assert printable("official \x00X\x1b[2J\u202e is not\ta reviewer") == (
        "official ?X?[2J? is not?a reviewer")
    assert printable("审查意见不是审查服务签发的") == "审查意见不是审查服务签发的"
    assert printable("x" * 1000) == "x" * refused_acts.REASON_LIMIT
    assert printable("") == "?"


def test_a_report_with_nobody_listening_is_dropped_and_a_failing_listener_is_contained(
        ) -> None:
    heard: list[RefusedAct] = []
    refused_acts.listen(heard.append)
    refused_acts.report(ACT)
    refused_acts.listen(None)
    refused_acts.report(ACT)  # nobody listens: nothing happens, nothing raises
    tried: list[RefusedAct] = []

    def broken(act: RefusedAct) -> None:
        tried.append(act)
        raise RuntimeError("the reporter's loop is closed")

    refused_acts.listen(broken)
    try:
        refused_acts.report(ACT)  # the workflow's validator goes on
    finally:
        refused_acts.listen(None)
    assert heard == [ACT] and tried == [ACT]


async def test_the_reporter_keeps_at_most_its_capacity_and_counts_the_rest() -> None:
    sent: list[RefusedAct] = []
    release = asyncio.Event()

    async def send(act: RefusedAct) -> None:
        await release.wait()
        sent.append(act)

    reporter = Reporter(send, loop=asyncio.get_running_loop(), capacity=3)
    running = asyncio.create_task(reporter.run())
    reporter.take(ACT)
    await asyncio.sleep(0.05)  # the first is taken out, its sending held
    for _ in range(5):
        reporter.take(ACT)
    await asyncio.sleep(0.05)
    # One is being sent, three wait, two were dropped.
    assert reporter.dropped == 2
    release.set()
    await asyncio.wait_for(reporter.drained(), timeout=5)
    running.cancel()
    assert len(sent) == 4 and reporter.sent == 4


async def test_a_report_that_review_refuses_is_given_up_and_the_next_goes_on() -> None:
    outcomes: list[BaseException | None] = [ValueError("refused"), None]
    sent: list[RefusedAct] = []

    async def send(act: RefusedAct) -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        sent.append(act)

    reporter = Reporter(send, loop=asyncio.get_running_loop())
    running = asyncio.create_task(reporter.run())
    reporter.take(ACT)
    reporter.take(ACT)
    await asyncio.sleep(0.05)
    await asyncio.wait_for(reporter.drained(), timeout=5)
    running.cancel()
    assert sent == [ACT] and reporter.sent == 1


def _error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="x",
                                debug_error_string="")


class Review:
    """A stand-in for review's stub: answers with the queued errors, then records."""

    def __init__(self, *errors: grpc.aio.AioRpcError) -> None:
        self.errors = list(errors)
        self.requests: list[pb.RecordRefusedActRequest] = []

    async def RecordRefusedAct(self, request: pb.RecordRefusedActRequest,
                               **options: Any) -> pb.RecordRefusedActResponse:
        assert options.get("timeout")
        self.requests.append(request)
        if self.errors:
            raise self.errors.pop(0)
        return pb.RecordRefusedActResponse(recorded=True)


async def test_the_sender_retries_while_review_is_unreachable() -> None:
    review = Review(_error(grpc.StatusCode.UNAVAILABLE),
                    _error(grpc.StatusCode.DEADLINE_EXCEEDED))
    await review_sender(review, retry_seconds=60)(ACT)  # type: ignore[arg-type]
    assert len(review.requests) == 3
    sent = review.requests[-1]
    assert (sent.case_number, sent.report_id, sent.update_name, sent.reason) == (
        ACT.case_number, ACT.report_id, ACT.update_name, ACT.reason)
    assert sent.refused_at.ToDatetime(tzinfo=UTC) == ACT.refused_at


async def test_the_sender_does_not_retry_a_refusal() -> None:
    review = Review(_error(grpc.StatusCode.INVALID_ARGUMENT))
    with pytest.raises(grpc.aio.AioRpcError):
        await review_sender(review, retry_seconds=60)(ACT)  # type: ignore[arg-type]
    assert len(review.requests) == 1
