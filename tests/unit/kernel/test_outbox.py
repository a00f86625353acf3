"""The kernel's workflow outbox with the database and Temporal faked: who is started, once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.common import TypedSearchAttributes

from kernel.errors import Unavailable
from kernel.outbox import WorkflowOutbox, WorkflowStart, not_ours
from kernel.workflow_gateway import ExistingRun

QUEUE = "workflows-q"


@dataclass
class FakeGateway:
    """Starts what it is asked to; ``held`` ids are taken by the given runs; counts what is
    in flight at once. ``release`` (when set) holds every start until it is set."""

    held: dict[str, ExistingRun] = field(default_factory=dict)
    outage: bool = False
    started: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    release: asyncio.Event | None = None
    #: Set once ``in_flight`` reaches ``awaited_in_flight``.
    awaited_in_flight: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, workflow: str, argument: Any, *, workflow_id: str,
                    replacing: bool = False, **_: Any) -> bool:
        if self.outage:
            raise Unavailable("Temporal is down")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self.awaited_in_flight and self.in_flight >= self.awaited_in_flight:
            self.reached.set()
        try:
            if self.release is not None:
                await self.release.wait()
            if workflow_id in self.held and not replacing:
                return False
            self.held.pop(workflow_id, None)
            self.started.append(workflow_id)
            return True
        finally:
            self.in_flight -= 1

    async def existing_run(self, workflow_id: str, argument_type: type[Any]) -> ExistingRun:
        return self.held[workflow_id]

    async def terminate(self, workflow_id: str, *, run_id: str, reason: str) -> bool:
        self.terminated.append(run_id)
        return True


@dataclass
class LetterOutbox(WorkflowOutbox):
    """Entries are letters kept in a dict: key -> started."""

    gateway: FakeGateway  # type: ignore[assignment]
    entries: dict[str, bool] = field(default_factory=dict)
    squatters: list[tuple[str, str]] = field(default_factory=list)
    workflow_queue: str = QUEUE
    poll_seconds: float = 0.05
    backoff_seconds: float = 0.05
    replacements: int = 3
    concurrency: int = 1
    intake_quiet: Callable[[], float] | None = None
    quiet_seconds: float = 0.2
    most_deferral_seconds: float = 5.0
    marked: asyncio.Event = field(default_factory=asyncio.Event)

    def pending(self) -> list[str]:
        return [key for key, started in sorted(self.entries.items()) if not started]

    def prepare(self, key: str) -> WorkflowStart:
        return WorkflowStart("LetterWorkflow", {"letter": key}, f"letter/{key}",
                             TypedSearchAttributes([]), f"Letter {key}")

    def mark_started(self, key: str, *, started_at: datetime) -> None:
        self.entries[key] = True
        self.marked.set()

    def record_squatter(self, key: str, *, run: ExistingRun, why: str,
                        now: datetime) -> None:
        self.squatters.append((key, why))

    def squatter_ended(self, key: str) -> str:
        return f"not letter {key}'s"


def _run(key: str, *, workflow: str = "LetterWorkflow", queue: str = QUEUE,
         argument: Any = None, run_id: str = "r1") -> ExistingRun:
    return ExistingRun(workflow_id=f"letter/{key}", run_id=run_id, workflow_type=workflow,
                       task_queue=queue, running=True,
                       argument={"letter": key} if argument is None else argument)


def test_a_run_is_the_entrys_own_only_with_its_type_queue_and_argument() -> None:
    start = LetterOutbox(FakeGateway()).prepare("a")
    assert not_ours(_run("a"), start=start, workflow_queue=QUEUE) == ""
    assert not_ours(_run("a", workflow="Other"), start=start,
                    workflow_queue=QUEUE) == "workflow_type"
    assert not_ours(_run("a", queue="q2"), start=start, workflow_queue=QUEUE) == "task_queue"
    assert not_ours(_run("a", argument={"letter": "b"}), start=start,
                    workflow_queue=QUEUE) == "input"


async def test_each_pending_entry_is_started_once_and_marked() -> None:
    gateway = FakeGateway()
    outbox = LetterOutbox(gateway, entries={"a": False, "b": True, "c": False})
    assert await outbox.start_pending() == 2
    assert await outbox.start_pending() == 0
    assert gateway.started == ["letter/a", "letter/c"]
    assert outbox.entries == {"a": True, "b": True, "c": True}


async def test_the_entrys_own_run_is_marked_without_a_second_start() -> None:
    gateway = FakeGateway(held={"letter/a": _run("a")})
    outbox = LetterOutbox(gateway, entries={"a": False})
    assert await outbox.start_pending() == 1
    assert gateway.started == [] and gateway.terminated == []
    assert outbox.entries["a"] and outbox.squatters == []


async def test_a_squatter_is_recorded_ended_and_replaced() -> None:
    gateway = FakeGateway(held={"letter/a": _run("a", queue="elsewhere", run_id="bad")})
    outbox = LetterOutbox(gateway, entries={"a": False})
    assert await outbox.start_pending() == 1
    assert outbox.squatters == [("a", "task_queue")]
    assert gateway.terminated == ["bad"]
    assert gateway.started == ["letter/a"] and outbox.entries["a"]


async def test_an_outage_ends_the_round_and_leaves_the_entries_pending() -> None:
    gateway = FakeGateway(outage=True)
    outbox = LetterOutbox(gateway, entries={"a": False, "b": False})
    assert await outbox.start_pending() == 0
    assert outbox.pending() == ["a", "b"]
    assert await outbox.start("a", waiting=True) is False


async def test_no_more_than_concurrency_starts_are_in_flight() -> None:
    gateway = FakeGateway(release=asyncio.Event(), awaited_in_flight=4)
    outbox = LetterOutbox(gateway, entries={f"e{n:02d}": False for n in range(10)},
                          concurrency=4)
    round_ = asyncio.create_task(outbox.start_pending())
    await asyncio.wait_for(gateway.reached.wait(), timeout=5)
    assert gateway.in_flight == 4
    gateway.release.set()  # type: ignore[union-attr]
    assert await asyncio.wait_for(round_, timeout=5) == 10
    assert gateway.most_in_flight == 4


async def test_starts_wait_while_intake_is_busy_and_go_once_it_is_quiet() -> None:
    asked: list[float] = []

    def intake_quiet() -> float:
        """Busy for the outbox's first three looks, quiet from then on."""
        asked.append(0.0 if len(asked) < 3 else 1.0)
        return asked[-1]

    looks_at_start: list[int] = []

    class Watching(FakeGateway):
        async def start(self, workflow: str, argument: Any, **kwargs: Any) -> bool:
            looks_at_start.append(len(asked))
            return await super().start(workflow, argument, **kwargs)

    gateway = Watching()
    outbox = LetterOutbox(gateway, entries={"a": False}, quiet_seconds=0.01,
                          most_deferral_seconds=60, intake_quiet=intake_quiet)
    assert await asyncio.wait_for(outbox.start_pending(), timeout=5) == 1
    # Started only once intake was found quiet, after the three busy looks.
    assert looks_at_start == [4]
    assert gateway.started == ["letter/a"]


async def test_a_burst_that_never_ends_still_has_its_workflows_started() -> None:
    gateway = FakeGateway()
    outbox = LetterOutbox(gateway, entries={"a": False}, quiet_seconds=10,
                          most_deferral_seconds=0.05, intake_quiet=lambda: 0.0)
    assert await asyncio.wait_for(outbox.start_pending(), timeout=5) == 1


async def test_a_wake_starts_a_round_before_the_poll() -> None:
    gateway = FakeGateway()
    outbox = LetterOutbox(gateway, poll_seconds=3600)
    running = asyncio.create_task(outbox.run())
    try:
        await asyncio.sleep(0)
        outbox.entries["a"] = False
        outbox.wake()
        await asyncio.wait_for(outbox.marked.wait(), timeout=5)
    finally:
        running.cancel()
    assert gateway.started == ["letter/a"]
