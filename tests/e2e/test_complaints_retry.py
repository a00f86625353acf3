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

import pytest
from sqlalchemy import create_engine, text

from govhall.complaints.v1 import complaints_pb2 as pb
from tests.e2e import test_complaints_chain as chain_tests
from tests.e2e.test_complaints_chain import Desk, _rid

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
