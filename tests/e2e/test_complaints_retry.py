"""A handling act retried after its first answer was lost gets the first answer, once.

The act went through (Temporal took the update, the recording activity wrote it) but
the answer never reached the handled_requests row (the process died between the two, or
the caller's deadline passed): the row is left unanswered, as it would be. The same
request again must not be refused by the desk's pre-check (the case has moved on: the
act moved it); it is sent again under the same update id and Temporal answers with the
first result. One act recorded, one event. The chain runs as in
tests/e2e/test_complaints_chain.py (the same fixtures).
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from sqlalchemy import create_engine, text
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.service import RPCError, RPCStatusCode

from govhall.complaints.v1 import complaints_pb2 as pb
from tests.e2e import test_complaints_chain as chain_tests
from tests.e2e.suite import within
from tests.e2e.test_complaints_chain import Desk, _rid
from workflows.complaint_contract import workflow_id

pytestmark = pytest.mark.e2e
#: The chain's fixtures (its processes, module-wide; the desk, per test).
chain = chain_tests.chain
desk = chain_tests.desk


def _lose_the_answer(desk: Desk, request_id: str) -> None:
    """The handled request as a crash between the act and its answer leaves it."""
    engine = create_engine(f"sqlite:///{desk.processes.database('complaints')}")
    try:
        with engine.begin() as connection:
            changed = connection.execute(text(
                "UPDATE handled_requests SET response = '' WHERE request_id = :r"),
                {"r": request_id}).rowcount
    finally:
        engine.dispose()
    assert changed == 1


def _recorded(desk: Desk, number: str) -> tuple[list[Any], list[Any]]:
    """The case's recorded acts (kinds) and events (codes), in order."""
    acts = desk.rows("SELECT kind FROM complaint_acts WHERE case_number = :n "
                     "ORDER BY recorded_at", n=number)
    events = desk.rows("SELECT code FROM complaint_events WHERE case_number = :n "
                       "ORDER BY sequence", n=number)
    return acts, events


async def test_a_sign_for_and_a_reply_retried_after_a_lost_answer_answer_as_the_first_time(
        desk: Desk) -> None:
    number = await desk.submit("SCJGJ", f"E2E-{uuid.uuid4().hex[:8]}")
    await desk.started(number)
    sign_for = pb.SignForComplaintRequest(request_id=_rid(), case_number=number)
    signed = await desk.handler("SCJGJ", "SignForComplaint", sign_for)
    assert signed.status == pb.COMPLAINT_STATUS_HANDLING
    before = _recorded(desk, number)
    _lose_the_answer(desk, sign_for.request_id)
    assert await desk.handler("SCJGJ", "SignForComplaint", sign_for) == signed
    assert _recorded(desk, number) == before
    # Answered now: a third time comes from the stored answer.
    assert await desk.handler("SCJGJ", "SignForComplaint", sign_for) == signed

    reply = pb.ReplyToComplaintRequest(request_id=_rid(), case_number=number,
                                       text="已责令超市下架过期食品")
    replied = await desk.handler("SCJGJ", "ReplyToComplaint", reply)
    assert replied.status == pb.COMPLAINT_STATUS_REPLIED
    before = _recorded(desk, number)
    assert [kind for (kind,) in before[0]].count("complaint_reply") == 1
    _lose_the_answer(desk, reply.request_id)
    assert await desk.handler("SCJGJ", "ReplyToComplaint", reply) == replied
    assert _recorded(desk, number) == before
    assert len(desk.rows("SELECT * FROM complaint_replies WHERE case_number = :n",
                         n=number)) == 1


async def _forget_the_workflow(desk: Desk, number: str) -> None:
    """The ended workflow's history gone, as the namespace's retention removes it: Temporal
    can no longer answer an update id it took (it answers one on a closed workflow only
    while the history is kept)."""
    client = await desk.processes.client()
    await client.workflow_service.delete_workflow_execution(DeleteWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=workflow_id(number))))

    async def gone() -> bool:
        try:
            await client.get_workflow_handle(workflow_id(number)).describe()
        except RPCError as error:
            return error.status == RPCStatusCode.NOT_FOUND
        return False
    await within(desk.deadline, f"{number}'s workflow deleted", gone)


async def test_acts_retried_after_the_case_closed_answer_as_the_first_time(desk: Desk) -> None:
    """The answers of a sign-for, a reply and the closing rating all lost; the case closed
    and its workflow ended since, its history past retention. Each retry gets its first
    answer (from the record: the retry is checked before the case's state); nothing is
    recorded again. A new act (a new request id) on the closed case is still refused."""
    number = await desk.submit("SCJGJ", f"E2E-{uuid.uuid4().hex[:8]}")
    await desk.started(number)
    sign_for = pb.SignForComplaintRequest(request_id=_rid(), case_number=number)
    signed = await desk.handler("SCJGJ", "SignForComplaint", sign_for)
    reply = pb.ReplyToComplaintRequest(request_id=_rid(), case_number=number,
                                       text="已责令超市下架过期食品")
    replied = await desk.handler("SCJGJ", "ReplyToComplaint", reply)
    rating = pb.RateComplaintRequest(request_id=_rid(), case_number=number, level=5,
                                     comment="满意")
    rated = (await desk.call(chain_tests.HOTLINE, "RateComplaint", rating)).receipt
    assert rated.status == pb.COMPLAINT_STATUS_CLOSED
    assert (await desk.ended(number)).stage == "closed"
    await _forget_the_workflow(desk, number)
    before = _recorded(desk, number)
    for request in (sign_for, reply, rating):
        _lose_the_answer(desk, request.request_id)
    assert await desk.handler("SCJGJ", "SignForComplaint", sign_for) == signed
    assert await desk.handler("SCJGJ", "ReplyToComplaint", reply) == replied
    assert (await desk.call(chain_tests.HOTLINE, "RateComplaint", rating)).receipt == rated
    assert _recorded(desk, number) == before
    # Answered now: the stored answers.
    assert await desk.handler("SCJGJ", "ReplyToComplaint", reply) == replied
    # A new act on the closed case: refused, nothing changed.
    again = pb.ReplyToComplaintRequest(request_id=_rid(), case_number=number, text="补充答复")
    code, _ = await desk.refused(chain_tests.HANDLERS["SCJGJ"][0], "ReplyToComplaint", again,
                                 chain_tests.HANDLERS["SCJGJ"][1])
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert _recorded(desk, number) == before


async def test_acts_of_a_reopened_case_retried_after_it_closed_answer_as_the_first_time(
        desk: Desk) -> None:
    """The receipt says whether the case had been reopened when the act was taken: the
    sign-for before the reopening says no, the reopening rating and the reply after it
    say yes, also when rebuilt from the record after the case closed."""
    number = await desk.submit("SCJGJ", f"E2E-{uuid.uuid4().hex[:8]}")
    await desk.started(number)
    sign_for = pb.SignForComplaintRequest(request_id=_rid(), case_number=number)
    signed = await desk.handler("SCJGJ", "SignForComplaint", sign_for)
    await desk.handler("SCJGJ", "ReplyToComplaint", pb.ReplyToComplaintRequest(
        request_id=_rid(), case_number=number, text="已督促整改"))
    unhappy = pb.RateComplaintRequest(request_id=_rid(), case_number=number, level=1,
                                      comment="不满意")
    reopened = (await desk.call(chain_tests.HOTLINE, "RateComplaint", unhappy)).receipt
    second = pb.ReplyToComplaintRequest(request_id=_rid(), case_number=number,
                                        text="再次核查并处理")
    replied = await desk.handler("SCJGJ", "ReplyToComplaint", second)
    closed = await desk.rate(number, 2)
    assert closed.status == pb.COMPLAINT_STATUS_CLOSED
    assert (signed.reopened, reopened.reopened, replied.reopened) == (False, True, True)
    assert (await desk.ended(number)).stage == "closed"
    await _forget_the_workflow(desk, number)
    before = _recorded(desk, number)
    for request_id in (sign_for.request_id, unhappy.request_id, second.request_id):
        _lose_the_answer(desk, request_id)
    assert await desk.handler("SCJGJ", "SignForComplaint", sign_for) == signed
    assert (await desk.call(chain_tests.HOTLINE, "RateComplaint", unhappy)).receipt \
        == reopened
    assert await desk.handler("SCJGJ", "ReplyToComplaint", second) == replied
    assert _recorded(desk, number) == before
