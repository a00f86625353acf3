"""Gap tests (s17 test reading): the tender workflow's own answer to an act under a request id
it took already, in its update handlers (``TenderWorkflow._again``), not only its validators.

The servicer answers a recorded request from trading's record before sending anything, and
the validators refuse another content under a taken request; so none of
test_one_tender_act_per_request's tests reaches the handlers' check: removing it (or the
``tender-one-act-per-request`` patch gate always answering "not patched") left them green.

- the same amendment signed again and sent straight to the workflow (as a retried update
  whose first id Temporal no longer remembers would be) is answered with the first receipt,
  and the workflow counts one amendment, publishes one entry;
- two amendments with other contents under one request id, sent straight to the workflow at
  once: one is taken, the other is ALREADY_EXISTS naming the content, never "busy". Here the
  two arrive in separate workflow tasks, so this reaches the validators' check (it fails with
  it removed), not the handlers' (it passes with ``_again`` removed): the handlers' refusal
  of another content is reached only when both validators run in one task, which no test
  forces;
- an act trading's recording step refuses leaves its request id free (``_record_act`` lets
  it go): another content under it is then taken, not ALREADY_EXISTS. Nothing tested this;
- an objection retried through the servicer is answered with its first number and due date
  (``tenders.recorded_again`` gives back the act as recorded): only amendments were retried
  in test_one_tender_act_per_request, so answering with the retry's own prepared act (a new
  number, OB-2) left every test green;
- score sheets with other scores under one request id, sent at once, are refused naming the
  terms: test_one_tender_act_per_request's score-sheet test only asks ALREADY_EXISTS, which
  the older rule "a score sheet is not replaced" answers as well, and it stayed green with
  the workflow's one-act-per-request checks (validator and handler) both removed.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import select, update
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from govhall.trading.v1 import trading_pb2 as pb
from kernel.signing import service_signer
from services.trading.db import tables
from tests.integration.trading.test_tender_chain import OFFICER, Venue, _until
from tests.integration.trading.test_tender_chain import venue as venue  # the fixture
from tests.integration.trading.test_tender_evaluation import (
    EXPERT_SYSTEMS,
    _sheet,
    _to_evaluation,
)
from workflows import tender_contract as tc
from workflows.approval_contract import as_statement, content_digest


def _amended(venue: Venue, tender_no: str) -> list[Any]:
    with venue.trading.running.engine.connect() as connection:
        return list(connection.execute(select(tables.tender_steps).where(
            (tables.tender_steps.c.tender_no == tender_no)
            & (tables.tender_steps.c.step == "amended"))))


def _amendment(venue: Venue, tender_no: str, request_id: str, text: str,
               at: datetime) -> tc.OfficialAct:
    """An amendment by the officer of ``OFFICER``, signed with trading's own key as the
    servicer signs one."""
    body = tc.tender_statement_body(
        kind=tc.StatementKind.AMENDMENT, tender_no=tender_no, official_id="ZWFWZX-007",
        department_code="ZWFWZX", roles=["trading_officer"], system="trading-platform",
        issued_at=at, request_id=request_id, content_sha256=content_digest(text=text))
    signer = service_signer(venue.trading.pki_dir, "trading")
    return tc.OfficialAct(as_statement(signer.sign(body)), text)


async def _announced(venue: Venue) -> str:
    tender = await venue.announce()
    number = str(tender.tender_no)
    await _until(lambda: venue.feed(number), lambda f: len(f) == 1, "announcement published")
    return number


async def _status(venue: Venue, tender_no: str) -> tc.TenderStatus:
    handle = venue.env.client.get_workflow_handle(tc.workflow_id(tender_no))
    status: tc.TenderStatus = await handle.query(tc.STATUS, result_type=tc.TenderStatus)
    return status


async def test_the_workflow_answers_the_same_amendment_signed_again_with_its_receipt(
        venue: Venue) -> None:
    number = await _announced(venue)
    shared = str(uuid.uuid4())
    first = await venue.via().AmendTender(pb.AmendTenderRequest(
        request_id=shared, tender_no=number, content="第3章技术参数更正"), metadata=OFFICER)
    before = await _status(venue, number)
    assert before.amendments == 1

    handle = venue.env.client.get_workflow_handle(tc.workflow_id(number))
    again = await handle.execute_update(
        tc.AMEND, _amendment(venue, number, shared, "第3章技术参数更正",
                             await venue.env.get_current_time()),
        result_type=tc.ActReceipt)

    assert again.feed_sequence == first.result.feed_sequence
    after = await _status(venue, number)
    # Taken once: not counted, published or its deadline worked out again.
    assert (after.amendments, after.feed_sequences, after.bid_deadline) == \
        (1, before.feed_sequences, before.bid_deadline)
    assert len(_amended(venue, number)) == 1


async def test_two_contents_under_one_request_sent_to_the_workflow_at_once_take_one(
        venue: Venue) -> None:
    number = await _announced(venue)
    shared = str(uuid.uuid4())
    handle = venue.env.client.get_workflow_handle(tc.workflow_id(number))
    at = await venue.env.get_current_time()
    results = await asyncio.gather(
        *(handle.execute_update(tc.AMEND, _amendment(venue, number, shared, text, at),
                                result_type=tc.ActReceipt)
          for text in ("第3章技术参数更正", "第4章技术参数更正")),
        return_exceptions=True)
    taken = [r for r in results if isinstance(r, tc.ActReceipt)]
    refused = [r for r in results if isinstance(r, WorkflowUpdateFailedError)]

    assert len(taken) == 1 and len(refused) == 1, results
    cause = refused[0].cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, "other terms (content_sha256)" in cause.message) == \
        ("AlreadyExists", True), (cause.type, cause.message)
    (step,) = _amended(venue, number)
    assert step.feed_sequence == taken[0].feed_sequence
    assert (await _status(venue, number)).amendments == 1



def _set_stage(venue: Venue, tender_no: str, stage: str) -> str:
    """Trading's record of the tender put at ``stage``; the stage it had."""
    with venue.trading.running.engine.begin() as connection:
        (was,) = connection.execute(select(tables.tenders.c.stage).where(
            tables.tenders.c.tender_no == tender_no)).one()
        connection.execute(update(tables.tenders).where(
            tables.tenders.c.tender_no == tender_no).values(stage=stage))
    return str(was)


async def test_an_act_trading_refused_to_record_leaves_its_request_id_free(
        venue: Venue) -> None:
    number = await _announced(venue)
    shared = str(uuid.uuid4())
    handle = venue.env.client.get_workflow_handle(tc.workflow_id(number))
    # Trading's record says the tender is over (the workflow does not): its recording step
    # refuses the amendment (FAILED_PRECONDITION), nothing is recorded.
    was = _set_stage(venue, number, "failed")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            tc.AMEND, _amendment(venue, number, shared, "第3章技术参数更正",
                                 await venue.env.get_current_time()),
            result_type=tc.ActReceipt)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "FailedPrecondition", (cause.type, cause.message)
    assert _amended(venue, number) == []
    _set_stage(venue, number, was)

    taken = await handle.execute_update(
        tc.AMEND, _amendment(venue, number, shared, "第4章技术参数更正",
                             await venue.env.get_current_time()),
        result_type=tc.ActReceipt)

    (step,) = _amended(venue, number)
    assert step.content == "第4章技术参数更正"
    assert taken.feed_sequence == step.feed_sequence
    assert (await _status(venue, number)).amendments == 1


async def test_an_objection_retried_is_answered_with_its_first_number_and_due_date(
        venue: Venue) -> None:
    number = await _announced(venue)
    request = pb.ObjectToTenderRequest(request_id=str(uuid.uuid4()), tender_no=number,
                                       target=pb.OBJECTION_TARGET_DOCUMENTS,
                                       grounds="资格条件排斥潜在投标人")
    objected = await venue.via().ObjectToTender(request, metadata=OFFICER)
    await venue.skip(timedelta(hours=1))
    again = await venue.via().ObjectToTender(request, metadata=OFFICER)

    assert objected.objection_id == "OB-1"
    assert (again.objection_id, again.answer_due, again.result.feed_sequence) == \
        (objected.objection_id, objected.answer_due, objected.result.feed_sequence)
    with venue.trading.running.engine.connect() as connection:
        steps = connection.execute(select(tables.tender_steps.c.step).where(
            tables.tender_steps.c.tender_no == number)).scalars().all()
    assert sorted(steps) == ["announced", "objected"]
    assert (await _status(venue, number)).objections == 1


async def test_score_sheets_with_other_scores_under_one_request_are_refused_naming_them(
        venue: Venue) -> None:
    number = await _to_evaluation(venue)
    members, _ = await venue.draw_committee(number)
    await venue.via().SeatEvaluationCommittee(pb.SeatEvaluationCommitteeRequest(
        request_id=str(uuid.uuid4()), tender_no=number), metadata=OFFICER)
    shared = str(uuid.uuid4())

    def sheet(technical: int) -> pb.SubmitScoreSheetRequest:
        request = _sheet(number, members[0], "BD-0001", technical, 80)
        request.request_id = shared
        return request

    expert = venue.via(EXPERT_SYSTEMS[members[0]])
    results = await asyncio.gather(*(expert.SubmitScoreSheet(sheet(60 + i)) for i in range(4)),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]

    assert len(refused) == 3, results
    assert all(e.code() == grpc.StatusCode.ALREADY_EXISTS
               and f"request id {shared} was used for a" in (e.details() or "")
               and "other terms (" in (e.details() or "") for e in refused), \
        [e.details() for e in refused]
