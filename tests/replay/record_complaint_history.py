"""Record a history of ComplaintWorkflow as it is now, for the replay test.

Run before a change to the workflow's shape, and commit the files:
``python -m tests.replay.record_complaint_history [recording]`` (starts its
own time-skipping server). The activities are the fakes of the workflow's
tests: a history records their results, so a replay needs no service. The
workflow verifies its start statement on replay too, so the public key that
signed it is kept beside the history (``complaint-keys/``).

The case (``complaint-<recording>-closed.json``): the sign-for deadline
passes (escalated), the department signs for it, a co-handler contributes,
an extension is asked and granted, the reply is rated unsatisfied
(reopened), replied again and rated 4 (closed); the first delivery of each
platform event fails once.

``python -m tests.replay.record_complaint_history <recording> deadlines``
records ``complaint-<recording>-deadlines-changed.json``: signed for, then
the service recomputes the reply due two days later and signals
``deadlines_changed``; the workflow reads the dues (``read_dues``), the old
due passes without an escalation, the new one is escalated; replied and
rated 5 (closed).

Each recording signs with a fresh key; its public key is added to
``complaint-keys/`` beside the keys of the histories recorded before.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.signing import public_keys_dir
from kernel.temporal import SEARCH_ATTRIBUTES
from tests.integration.workflows.complaint_fakes import (
    CO_HANDLER,
    DISPATCHER,
    HANDLER,
    PLATFORM,
    ComplaintSigners,
    FakeComplaints,
    Person,
)
from workflows import complaint_contract as c
from workflows.complaint import ComplaintWorkflow

HISTORIES = Path(__file__).parent / "histories"
KEYS = HISTORIES / "complaint-keys"
K = c.StatementKind


async def record(recording: str, scenario: str = "closed") -> Path:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=pydantic_data_converter)
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace, search_attributes={
            key.name: IndexedValueType.ValueType(key.indexed_value_type)
            for key in SEARCH_ATTRIBUTES}))
    pki = Path(tempfile.mkdtemp()) / "pki"
    signers = ComplaintSigners(pki)
    fake = FakeComplaints(signers.keys, failures_before_success=1)
    prefix = f"record{uuid.uuid4().hex[:8]}-"
    number = "CP-20261201-000042"
    try:
        async with (
            Worker(env.client, task_queue=f"{prefix}workflows", workflows=[ComplaintWorkflow]),
            Worker(env.client, task_queue=f"{prefix}complaints",
                   activities=fake.activities()),
        ):
            handle = await env.client.start_workflow(
                ComplaintWorkflow.run, c.ComplaintInput(signers.received(
                    number, at=await env.get_current_time())),
                id=c.workflow_id(number), task_queue=f"{prefix}workflows")

            async def act(update: str, kind: c.StatementKind, who: Person,
                          texts: dict[str, str] | None = None, **facts: Any) -> None:
                await handle.execute_update(update, signers.act(
                    kind, number, who, texts=texts, **facts))

            async def status_when(check: Callable[[c.ComplaintStatusView], bool]
                                  ) -> c.ComplaintStatusView:
                for _ in range(400):
                    status: c.ComplaintStatusView = await handle.query(
                        c.STATUS, result_type=c.ComplaintStatusView)
                    if check(status):
                        return status
                    await asyncio.sleep(0.025)
                raise AssertionError("the workflow never got there")

            if scenario == "deadlines":
                await deadlines_changed(env, handle, fake, number, act, status_when)
                history = await handle.fetch_history()
            else:
                history = await closed(env, handle, act, status_when)
    finally:
        await env.shutdown()
    name = "deadlines-changed" if scenario == "deadlines" else "closed"
    path = HISTORIES / f"complaint-{recording}-{name}.json"
    path.write_text(history.to_json(), encoding="utf-8")
    # The public key only: the private one stays in the temporary folder. The keys of the
    # histories recorded before stay: they still replay.
    (KEYS / "complaints").mkdir(parents=True, exist_ok=True)
    for public in (public_keys_dir(pki) / "complaints").glob("*.pub"):
        shutil.copy(public, KEYS / "complaints" / public.name)
    return path


Act = Callable[..., Awaitable[None]]
StatusWhen = Callable[[Callable[[c.ComplaintStatusView], bool]],
                      Awaitable[c.ComplaintStatusView]]


async def deadlines_changed(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any],
                            fake: FakeComplaints, number: str, act: Act,
                            status_when: StatusWhen) -> None:
    await status_when(lambda s: bool(s.sign_for_due))
    await act(c.SIGN_FOR, K.SIGN_FOR, HANDLER)
    signed = await status_when(lambda s: bool(s.reply_due) and s.stage == c.Stage.HANDLING)
    old_due = datetime.fromisoformat(signed.reply_due)
    new_due = old_due + timedelta(days=2)
    # The service recomputed the reply due (a holiday schedule loaded) and tells the case.
    fake.cases[number].reply_due = new_due
    await handle.signal(c.DEADLINES_CHANGED, c.DeadlinesChanged(number))
    await status_when(lambda s: s.reply_due == c.iso_instant(new_due))
    await env.sleep(old_due + timedelta(minutes=1) - await env.get_current_time())
    await env.sleep(new_due + timedelta(minutes=1) - await env.get_current_time())
    await status_when(lambda s: s.escalations == 1)
    await act(c.REPLY, K.REPLY, HANDLER, {"reply": "答复"})
    await act(c.RATE, K.RATING, PLATFORM, {"comment": ""}, level=5)
    await handle.result()


async def closed(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], act: Act,
                 status_when: StatusWhen) -> WorkflowHistory:
    status = await status_when(lambda s: bool(s.sign_for_due))
    await env.sleep(datetime.fromisoformat(status.sign_for_due) + timedelta(minutes=1)
                    - await env.get_current_time())
    await status_when(lambda s: s.escalations == 1)
    await act(c.SIGN_FOR, K.SIGN_FOR, HANDLER)
    await act(c.SET_CO_HANDLERS, K.CO_HANDLERS, DISPATCHER, co_handlers=["ZJJ"])
    await act(c.CONTRIBUTE, K.CONTRIBUTION, CO_HANDLER, {"contribution": "会办"})
    await act(c.REQUEST_EXTENSION, K.EXTENSION_REQUEST, HANDLER, {"basis": "核查"},
              days=5)
    await act(c.DECIDE_EXTENSION, K.EXTENSION_DECISION, DISPATCHER,
              outcome="granted", days=5)
    await act(c.REPLY, K.REPLY, HANDLER, {"reply": "答复"})
    await act(c.RATE, K.RATING, PLATFORM, {"comment": "不满意"}, level=1)
    await act(c.REPLY, K.REPLY, HANDLER, {"reply": "再次答复"})
    await act(c.RATE, K.RATING, PLATFORM, {"comment": ""}, level=4)
    await handle.result()
    return await handle.fetch_history()


if __name__ == "__main__":
    print(asyncio.run(record(sys.argv[1] if len(sys.argv) > 1 else "r1",
                             sys.argv[2] if len(sys.argv) > 2 else "closed")))
