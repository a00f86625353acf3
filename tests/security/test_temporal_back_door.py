"""Temporal is a transport, not a source of authority: attacks through a bare Temporal client.

The intake and review services and the workflows worker run as the runner
runs them (tests/e2e/suite.py). The attacker holds no client certificate of
the center and no service's signing key; it reaches the Temporal frontend
only, like anyone on the network of the cluster could. It tries to

- decide a real case by sending ``decide`` updates itself: officials that do
  not exist, statements signed with its own key, a real-looking statement of
  review whose body it edited;
- seal a case still at review by running a workflow of its own that calls
  intake's seal activity, and record a decision by calling review's;
- wedge a case by signalling it payloads that claim to be encrypted but that
  no key decrypts (attacks/t_poison_signal.py): these once failed every later
  workflow task of the case.

Every attempt is refused, nothing is sealed or recorded, the case goes on as
if nothing happened, and the services keep a violation in their audit log
for what reached them; a forged update, refused by the workflow before any
service saw it, is reported by the workflows worker to review, which keeps
it too.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.codec import ENCODING, KEY_ID, Keyring, codec_dir
from kernel.signing import service_signer
from tests.e2e.suite import (
    REVIEW,
    SEAL,
    SIGN,
    ChainProcesses,
    decide_until_done,
    start_chain,
    submit,
    until_quiet,
    within,
)
from tests.security.rogue import RogueRecord, RogueSeal
from tests.unit.workflows.fakes import LEADER, REVIEWER, SEALER, Official, Signers
from workflows import approval_contract as c

pytestmark = pytest.mark.e2e

SECONDS = 90


@pytest.fixture(scope="module")
async def chain(tmp_path_factory: pytest.TempPathFactory,
                temporal_dev_server: WorkflowEnvironment) -> AsyncIterator[ChainProcesses]:
    processes = await start_chain(tmp_path_factory.mktemp("back-door"),
                                  temporal=temporal_dev_server.client)
    try:
        yield processes
    finally:
        await processes.close()


def _count(processes: ChainProcesses, service: str, sql: str, **values: str) -> int:
    engine = processes.read_only(service)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql), values).scalar_one())
    finally:
        engine.dispose()


def _violations(processes: ChainProcesses, service: str, case_number: str) -> list[str]:
    engine = processes.read_only(service)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT action, details FROM audit_log WHERE action LIKE 'violation.%' "
                "AND subject = :subject"), {"subject": f"case/{case_number}"})
            return [f"{action} {json.loads(details).get('what', '')}" for action, details in rows]
    finally:
        engine.dispose()


def _kept_refusals(processes: ChainProcesses,
                   case_number: str) -> list[tuple[str, str, dict[str, str]]]:
    """Review's violations for the case: (action, the system that reported it, details)."""
    engine = processes.read_only("review")
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT action, system, details FROM audit_log "
                "WHERE action LIKE 'violation.%' AND subject = :subject ORDER BY sequence"),
                {"subject": f"case/{case_number}"})
            return [(action, system, json.loads(details)) for action, system, details in rows]
    finally:
        engine.dispose()


def _attacker(tmp: Path) -> Signers:
    """Signing keys the attacker made: named review and intake, published nowhere the
    services look."""
    return Signers(tmp / "attacker-pki")


async def test_forged_decision_updates_are_refused_and_the_case_goes_on(
        chain: ChainProcesses, tmp_path: Path) -> None:
    deadline = time.monotonic() + SECONDS
    await chain.ensure_running(deadline)
    case_number = await submit(chain)
    await until_quiet(chain, case_number, deadline)
    client = await chain.client()
    handle = client.get_workflow_handle(c.workflow_id(case_number))
    attacker = _attacker(tmp_path)
    nobody = Official("SCJGJ-999", "SCJGJ", ("reviewer", "leader", "seal_custodian"))
    # A statement review really signed, taken from somewhere, its official changed.
    genuine_key = service_signer(chain.pki_dir, "review")
    edited = attacker.decision(case_number, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE,
                               signer=genuine_key)
    edited = replace(edited, statement=replace(
        edited.statement, body={**edited.statement.body, "official_id": "SCJGJ-999"}))
    # A complete, well-formed decision under review's name and key id, left unsigned or
    # signed with 64 bytes that are no signature of review's.
    unsigned = attacker.decision(case_number, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE)
    under_review_key = replace(unsigned.statement, key_id=genuine_key.key_id)
    attempts = {
        "a made-up official, the attacker's key": attacker.decision(
            case_number, nobody, c.Stage.REVIEW, c.Outcome.APPROVE),
        "a real official, the attacker's key": attacker.decision(
            case_number, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE),
        "review's statement, edited": edited,
        "no signature at all": replace(unsigned, statement=replace(under_review_key,
                                                                   signature="")),
        "a wrong signature under review's key id": replace(unsigned, statement=replace(
            under_review_key, signature=base64.b64encode(os.urandom(64)).decode("ascii"))),
    }
    refusals = {}
    for what, decision in attempts.items():
        # Each reads as a decision: what refuses it is its signature, not its shape.
        assert c.StatementFacts.read(decision.statement.body).kind == c.StatementKind.DECISION
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await handle.execute_update(c.DECIDE, decision)
        assert isinstance(failure.value.cause, ApplicationError), what
        refusals[what] = (failure.value.cause.type, failure.value.cause.message)
    status = await handle.query(c.STATUS, result_type=c.ApprovalStatus)
    # Refused by the workflow's validator itself, before anything reached review.
    assert refusals == dict.fromkeys(attempts, (
        "PermissionDenied", "the decision is not one the review service signed: refused"))
    assert (status.stage, status.decisions) == (c.Stage.REVIEW, [])
    assert _count(chain, "review", "SELECT count(*) FROM decisions WHERE case_number = :c",
                  c=case_number) == 0

    # The worker reports each refusal to review, which keeps it (RecordRefusedAct): one
    # violation per forged update, none of them anything but a violation.
    async def all_kept() -> bool:
        return len(_violations(chain, "review", case_number)) >= len(attempts)

    await within(deadline, "review kept every forged update", all_kept)
    kept = _kept_refusals(chain, case_number)
    assert [action for action, _, _ in kept] == ["violation.forged_update"] * len(attempts)
    assert all(details["what"] == c.DECIDE and details["reason"] == (
        "the decision is not one the review service signed: refused")
        for _, _, details in kept)
    assert len({details["report_id"] for _, _, details in kept}) == len(attempts)
    assert {system for _, system, _ in kept} == {"workflows-worker"}
    # The case goes on through the real chain.
    reviewed = await decide_until_done(chain, case_number, REVIEW, str(uuid.uuid4()), deadline)
    assert reviewed.response.receipt.next_stage == SIGN


async def test_a_rogue_workflow_cannot_seal_or_record(
        chain: ChainProcesses, tmp_path: Path) -> None:
    deadline = time.monotonic() + SECONDS
    await chain.ensure_running(deadline)
    case_number = await submit(chain)
    await until_quiet(chain, case_number, deadline)
    client = await chain.client()
    attacker = _attacker(tmp_path)
    made_up = [attacker.decision(case_number, who, stage, outcome)
               for who, stage, outcome in ((REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE),
                                           (LEADER, c.Stage.SIGN, c.Outcome.APPROVE),
                                           (SEALER, c.Stage.SEAL, c.Outcome.SEAL))]
    taken = [c.DecisionTaken(c.StatementFacts.read(d.statement.body).stage,
                             c.StatementFacts.read(d.statement.body).outcome,
                             c.StatementFacts.read(d.statement.body).official_id, "", "",
                             "attacker", datetime.now(UTC), d.statement, d.opinion,
                             d.legal_basis) for d in made_up]
    queue = f"rogue-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[RogueSeal, RogueRecord]):
        with pytest.raises(WorkflowFailureError) as sealing:
            await client.execute_workflow(
                RogueSeal.run, c.SealRequest(case_number, taken), id=f"rogue-seal-{queue}",
                task_queue=queue)
        with pytest.raises(WorkflowFailureError) as recording:
            await client.execute_workflow(
                RogueRecord.run, c.Transition(case_number, taken[0], c.Stage.SIGN, "SCJGJ",
                                              "leader"),
                id=f"rogue-record-{queue}", task_queue=queue)
    for failure in (sealing.value, recording.value):
        assert isinstance(failure.cause, ActivityError)
        assert isinstance(failure.cause.cause, ApplicationError)
        assert failure.cause.cause.type == "PermissionDenied"
    assert _count(chain, "intake", "SELECT count(*) FROM sealed_decisions WHERE case_number = :c",
                  c=case_number) == 0
    assert _count(chain, "review", "SELECT count(*) FROM decisions WHERE case_number = :c",
                  c=case_number) == 0
    assert _violations(chain, "intake", case_number) == ["violation.refused_seal statements"]
    assert _violations(chain, "review", case_number) == ["violation.refused_statement decision"]
    handle = client.get_workflow_handle(c.workflow_id(case_number))
    status = await handle.query(c.STATUS, result_type=c.ApprovalStatus)
    assert status.stage == c.Stage.REVIEW




def _poisons(pki_dir: Path) -> dict[str, Payload]:
    """Payloads that say they are encrypted and that no key of the suite decrypts."""
    real_key = Keyring.load(codec_dir(pki_dir)).current.encode()
    return {
        "an unknown key id": Payload(metadata={"encoding": ENCODING, KEY_ID: b"9999"},
                                     data=b"\x00" * 40),
        "garbage under the real key id": Payload(
            metadata={"encoding": ENCODING, KEY_ID: real_key}, data=os.urandom(60)),
        "no key id": Payload(metadata={"encoding": ENCODING}, data=os.urandom(60)),
    }


async def _events(client: Client, workflow_id: str) -> list[EventType.ValueType]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return [event.event_type for event in history.events]


async def test_signals_no_key_decrypts_are_dropped_and_the_case_is_sealed(
        chain: ChainProcesses) -> None:
    """A bare client (no payload keys) signals a real case ``recompute_deadlines`` with
    payloads claiming ``binary/encrypted``. The worker marks each undecodable and drops the
    signal; no workflow task fails, the case takes its three decisions and is sealed."""
    deadline = time.monotonic() + SECONDS
    await chain.ensure_running(deadline)
    case_number = await submit(chain)
    await until_quiet(chain, case_number, deadline)
    client = await chain.client()
    identifier = c.workflow_id(case_number)
    # Raw gRPC, as an attacker without govhall's data converter sends it.
    for poison in _poisons(chain.pki_dir).values():
        await client.workflow_service.signal_workflow_execution(SignalWorkflowExecutionRequest(
            namespace=chain.namespace, workflow_execution=WorkflowExecution(
                workflow_id=identifier), signal_name=c.RECOMPUTE_DEADLINES,
            input=Payloads(payloads=[poison]), identity="attacker",
            request_id=str(uuid.uuid4())))

    async def taken() -> bool:
        """The worker has run a workflow task since the last poisoned signal (or failed)."""
        events = await _events(client, identifier)
        last_signal = max(i for i, e in enumerate(events)
                          if e == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
        return any(e in (EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
                         EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
                   for e in events[last_signal:])

    await within(deadline, f"{case_number} took the poisoned signals", taken)
    after_the_signals = await _events(client, identifier)
    assert after_the_signals.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) == 3
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in after_the_signals
    receipts = [await decide_until_done(chain, case_number, stage, str(uuid.uuid4()), deadline)
                for stage in (REVIEW, SIGN, SEAL)]
    events = await _events(client, identifier)
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in events
    assert receipts[-1].response.receipt.certificate_number
    assert _count(chain, "intake", "SELECT count(*) FROM sealed_decisions WHERE case_number = :c",
                  c=case_number) == 1
