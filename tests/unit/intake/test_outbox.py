"""The outbox's rounds, with the database and Temporal faked: who is started, who waits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kernel.errors import Unavailable
from kernel.signing import service_signer
from kernel.workflow_gateway import ExistingRun
from services.intake.app import cases
from services.intake.app import chain as outbox
from tests.unit.workflows.fakes import Signers
from workflows.approval_contract import ApprovalInput


@dataclass
class FakeGateway:
    """Starts what it is asked to, except cases it is told fail, or everything in an outage;
    the ids of ``squatted`` cases are held by someone else's run, started again each time it
    is ended."""

    broken: set[str] = field(default_factory=set)
    outage: bool = False
    squatted: set[str] = field(default_factory=set)
    started: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)

    async def start(self, workflow: str, argument: Any, *, workflow_id: str, **_: Any) -> bool:
        number = workflow_id.removeprefix("approval/")
        if self.outage:
            raise Unavailable("Temporal is down")
        if number in self.broken:
            raise RuntimeError("a bug in the start of this one case")
        if number in self.squatted:
            return False
        self.started.append(number)
        return True

    async def existing_run(self, workflow_id: str, argument_type: type[Any]) -> ExistingRun:
        return ExistingRun(workflow_id=workflow_id, run_id=f"run-{len(self.terminated)}",
                           workflow_type="ApprovalWorkflowV2", task_queue="squat-q",
                           running=True, argument=None)

    async def terminate(self, workflow_id: str, *, run_id: str, reason: str) -> bool:
        self.terminated.append(run_id)
        return True


@pytest.fixture
def pending(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Accepted cases waiting in the outbox; starting one takes it out."""
    waiting = ["AP-1", "AP-2", "AP-3"]
    signers = Signers(tmp_path)

    def approval_input(*, uow: object, case_number: str, signer: object) -> ApprovalInput:
        return ApprovalInput(signers.acceptance(case_number, accepted_at=datetime.now(UTC)))

    def mark_workflow_started(*, uow: object, case_number: str, **_: Any) -> bool:
        waiting.remove(case_number)
        return True

    monkeypatch.setattr(cases, "approval_input", approval_input)
    monkeypatch.setattr(cases, "unstarted_cases", lambda *, uow: list(waiting))
    monkeypatch.setattr(cases, "mark_workflow_started", mark_workflow_started)
    return waiting


def _starter(gateway: FakeGateway, tmp_path: Path) -> outbox.ChainStarter:
    return outbox.ChainStarter(reading=lambda: None, writing=lambda: None,  # type: ignore[arg-type,return-value]
                               signer=service_signer(tmp_path, "intake"),
                               gateway=gateway)  # type: ignore[arg-type]


async def test_a_case_that_cannot_start_does_not_hold_up_the_others(
        pending: list[str], tmp_path: Path) -> None:
    gateway = FakeGateway(broken={"AP-1"})
    assert await _starter(gateway, tmp_path).start_pending() == 2
    assert gateway.started == ["AP-2", "AP-3"]
    assert pending == ["AP-1"]  # still in the outbox for the next round


async def test_an_outage_ends_the_round_and_leaves_every_case_pending(
        pending: list[str], tmp_path: Path) -> None:
    gateway = FakeGateway(outage=True)
    assert await _starter(gateway, tmp_path).start_pending() == 0
    assert pending == ["AP-1", "AP-2", "AP-3"]
    gateway.outage = False
    assert await _starter(gateway, tmp_path).start_pending() == 3
    assert pending == []


async def test_a_window_call_gets_pending_not_an_error_whatever_fails(
        pending: list[str], tmp_path: Path) -> None:
    starter = _starter(FakeGateway(broken={"AP-1"}), tmp_path)
    assert await starter.start("AP-1", waiting=True) is False
    assert await starter.start("AP-2", waiting=True) is True


async def test_a_case_whose_id_is_squatted_again_and_again_waits_for_the_next_round(
        pending: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded: list[tuple[str, str, str]] = []

    def record(*, uow: object, case_number: str, run: ExistingRun, why: str,
               now: datetime) -> None:
        recorded.append((case_number, run.run_id, why))

    monkeypatch.setattr(outbox, "record_squatted_workflow", record)
    gateway = FakeGateway(squatted={"AP-1"})
    assert await _starter(gateway, tmp_path).start_pending() == 2
    # Each squatter is recorded and ended, three times; then the case is passed over.
    assert recorded == [("AP-1", f"run-{n}", "task_queue") for n in range(3)]
    assert gateway.terminated == ["run-0", "run-1", "run-2"]
    assert gateway.started == ["AP-2", "AP-3"]
    assert pending == ["AP-1"]
