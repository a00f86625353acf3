"""A JSON null or a wrong-typed argument, sent by a bare Temporal client (no codec) to
every signal and update of the complaint, approval and tender workflows: the signals are
dropped, the updates refused at once, and the workflow still takes a genuine act after.

Before the fix a null signal argument reached the handler (the ``binary/null`` payload
skips the type hint), the handler raised, and the workflow task failed on every retry:
the case was wedged for ever.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from tests.integration.workflows.complaint_fakes import HANDLER, ComplaintSigners
from tests.integration.workflows.test_complaint_workflow import cases
from tests.unit.workflows.fakes import REVIEWER, Signers
from tests.unit.workflows.test_approval_workflow import approval_case
from tests.unit.workflows.test_tender_workflow import TradingSigner, tender
from workflows import approval_contract as a
from workflows import complaint_contract as c
from workflows import tender_contract as t

#: What a bare client may put where a dataclass is expected.
JUNK: list[Any] = [
    None, 5, "x", [], {"case_number": 5}, {"reason": None}, {"statement": 5},
    {"statement": None, "texts": {}},
    {"statement": {"body": 5, "signer": "x", "key_id": "k", "signature": "s"}},
    {"statement": {"body": {"kind": 5}, "signer": 1, "key_id": "k", "signature": "s"}},
    {"statement": {"body": {}, "signer": "x", "key_id": "k", "signature": "s"},
     "texts": {"reply": 5}, "text": 5, "opinion": None, "reason": 7},
]

#: Long enough for a healthy workflow, short enough to fail a wedged one quickly.
GENUINE = 30.0


async def junk_everywhere(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], *,
                          signals: list[str], updates: list[str]) -> list[str]:
    """Send every junk value to every signal and update from a bare client (the SDK's
    default converter, no codec); the refusals' types."""
    bare = Client(env.client.service_client, namespace=env.client.namespace)
    target = bare.get_workflow_handle(handle.id)
    refused: list[str] = []
    for name in updates:
        for junk in JUNK:
            with pytest.raises(WorkflowUpdateFailedError) as failure:
                await target.execute_update(name, junk)
            cause = failure.value.cause
            refused.append(cause.type if isinstance(cause, ApplicationError) and cause.type
                           else type(cause).__name__)
            if junk is None:
                assert isinstance(cause, ApplicationError) and \
                    cause.type == "InvalidArgument", (name, cause)
    # The signals last: a handler that raised on one would wedge the workflow.
    for name in signals:
        for junk in JUNK:
            await target.signal(name, junk)
    return refused



COMPLAINT_UPDATES = [c.SIGN_FOR, c.RETURN_CASE, c.DISPATCH, c.SET_CO_HANDLERS, c.CONTRIBUTE,
                     c.REPLY, c.REQUEST_EXTENSION, c.DECIDE_EXTENSION, c.MERGE, c.RATE]
APPROVAL_UPDATES = [a.DECIDE, a.WITHDRAW, a.START_SPECIAL_PROCEDURE, a.END_SPECIAL_PROCEDURE,
                    a.EXTEND_TIME_LIMIT]
TENDER_UPDATES = [t.AMEND, t.OBJECT, t.ANSWER_OBJECTION, t.EVALUATE, t.AWARD,
                  t.RECORD_CONTRACT]


async def test_junk_to_the_complaint_workflow_leaves_it_working(
        time_skipping: WorkflowEnvironment, tmp_path: Path) -> None:
    signers = ComplaintSigners(tmp_path / "pki")
    async with cases(time_skipping, signers) as start:
        case = await start()
        refused = await junk_everywhere(time_skipping, case.handle, signals=[c.MERGED_CASE],
                                        updates=COMPLAINT_UPDATES)
        receipt = await asyncio.wait_for(case.act(c.SIGN_FOR, c.StatementKind.SIGN_FOR,
                                                  HANDLER), GENUINE)
        status = await case.status()
        await case.handle.terminate("test over")
    assert len(refused) == len(JUNK) * len(COMPLAINT_UPDATES)
    assert receipt.stage == c.Stage.HANDLING
    assert status.merged_cases == []
    assert case.fake.acts == [(case.number, c.StatementKind.SIGN_FOR)]


async def test_junk_to_the_approval_workflow_leaves_it_working(
        time_skipping: WorkflowEnvironment, tmp_path: Path) -> None:
    signers = Signers(tmp_path / "pki")
    async with approval_case(time_skipping, signers) as case:
        refused = await junk_everywhere(time_skipping, case.handle, signals=[a.RECOMPUTE_DEADLINES],
                                        updates=APPROVAL_UPDATES)
        reviewed = await asyncio.wait_for(
            case.decide(REVIEWER, a.Stage.REVIEW, a.Outcome.APPROVE), GENUINE)
        await case.handle.terminate("test over")
    assert len(refused) == len(JUNK) * len(APPROVAL_UPDATES)
    assert reviewed.next_stage == a.Stage.SIGN
    assert len(case.center.transitions) == 1


async def test_junk_to_the_tender_workflow_leaves_it_working(
        time_skipping: WorkflowEnvironment, tmp_path: Path) -> None:
    signer = TradingSigner(tmp_path / "pki")
    async with tender(time_skipping, signer) as case:
        refused = await junk_everywhere(time_skipping, case.handle, signals=[],
                                        updates=TENDER_UPDATES)
        amended = await asyncio.wait_for(
            case.act(t.AMEND, t.StatementKind.AMENDMENT, text="澄清"), GENUINE)
        await case.handle.terminate("test over")
    assert len(refused) == len(JUNK) * len(TENDER_UPDATES)
    assert amended.bid_deadline is not None
    assert case.trading.step_names() == ["announced", "amended"]
