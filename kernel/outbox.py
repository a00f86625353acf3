"""The workflow outbox every service starts its workflows through.

A service commits the thing a workflow is for (an accepted case, a pushed
complaint, an announced tender) with a ``workflow_started`` flag false: that
row is the outbox entry. A ``WorkflowOutbox`` starts the workflow of each
such entry exactly once, whenever Temporal answers, and sets the flag only
after the start succeeded (or the run under the id was found to be the
entry's own), so a crash between the commit and the start leaves the entry
pending and the next process starts it.

**Squatters.** Workflow ids follow the entries' numbers, so anyone who
reaches Temporal could start a run under the next id first. A start never
joins a run it did not make: when the id is held, the run is read; it is the
entry's own only if it has the workflow type, the workflow queue and the
very argument the service would start it with (the argument carries an
Ed25519-signed statement, and those signatures are deterministic). Anything
else is a squatter: recorded by the service (its audit log), terminated if it
still runs, and replaced by the entry's own run.

**What differs** between services is small, and is what a subclass gives:
how to list the pending entries, how to build an entry's start, how to mark
it started, how to record a squatter (all plain functions on the service's
database, run in a worker thread; a squatter's audit entry is
``record_squatted_run``'s, in every service), plus its log names. Everything else,
rounds, per-entry locks, bounded concurrency, the poll and the backoff, and
letting the service's own intake pass first under a burst, is here.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, Protocol

import structlog
from temporalio.common import TypedSearchAttributes

from kernel.audit import Actor, AuditLog
from kernel.errors import Unavailable
from kernel.workflow_gateway import ExistingRun, WorkflowGateway

log = structlog.get_logger("govhall.outbox")

#: What a service records when someone else's run held an entry's workflow id.
SQUATTED = "violation.squatted_workflow"


class SquattedWorkflowId(Exception):
    """The entry's workflow id was taken again and again by runs that are not the entry's."""


@dataclass(frozen=True)
class WorkflowStart:
    """Everything one entry's start needs: what to start, under which id, how it shows."""

    workflow: str
    argument: Any
    workflow_id: str
    search_attributes: TypedSearchAttributes
    summary: str


class AuditedWork(Protocol):
    """A service's unit of work, as much of it as recording a squatter needs."""

    @property
    def audit(self) -> AuditLog: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None, /) -> None: ...

    def commit(self) -> None: ...


def record_squatted_run(uow: AuditedWork, *, system: str, subject: str, run: ExistingRun,
                        why: str, now: datetime) -> None:
    """Keep, in the service's audit log (as ``system``, about ``subject``), a run someone
    else started under an entry's workflow id, and what made it not the entry's own.

    Only identifiers: the squatter chose its type, queue and input, which may
    hold anything.
    """
    with uow:
        uow.audit.append(actor=Actor(system), action=SQUATTED, subject=subject, at=now,
                         details={"workflow_id": run.workflow_id, "run_id": run.run_id,
                                  "running": run.running, "not_ours": why})
        uow.commit()


def not_ours(run: ExistingRun, *, start: WorkflowStart, workflow_queue: str) -> str:
    """What makes ``run`` another's than the entry's own ('' when it is the entry's own)."""
    if run.workflow_type != start.workflow:
        return "workflow_type"
    if run.task_queue != workflow_queue:
        return "task_queue"
    if run.argument != start.argument:
        return "input"
    return ""


@dataclass
class _Starting:
    """One entry being started: its lock, and how many hold it or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class WorkflowOutbox(ABC):
    """Starts the workflow of every pending entry, once, whenever Temporal can be reached.

    A subclass is a dataclass giving the settings below as fields and the four
    database functions as methods; its ``start``, ``start_pending``, ``run`` and
    ``wake`` are these.
    """

    #: What the log lines of this outbox begin with ("chain", "complaint", "tender").
    log_name: ClassVar[str] = "outbox"
    #: The log event of a start ("<log_name>.started" unless a service named it otherwise).
    started_event: ClassVar[str] = ""

    gateway: WorkflowGateway
    #: The task queue of the workflows.
    workflow_queue: str
    #: Seconds between looks for pending entries (also while Temporal is out of reach).
    poll_seconds: float
    #: Seconds to wait after the outbox itself failed (a database outage, a bug).
    backoff_seconds: float
    #: Squatters replaced in one attempt before the entry is left to the next round.
    replacements: int

    #: Seconds a caller that waits for a start (``waiting=True``) waits at most.
    answer_within_seconds: float = 2.0
    #: Entries started at once in a round. With 1, a round ends at the first start that
    #: finds Temporal away, so an outage costs one attempt a round.
    concurrency: int = 1
    #: Seconds since the service last took something in (``GroupCommit.quiet_seconds``);
    #: None when the outbox never waits for intake.
    intake_quiet: Callable[[], float] | None = None
    #: How long intake must have been quiet before a round's next starts go ahead...
    quiet_seconds: float = 0.2
    #: ... waiting at most this long, so a burst that never ends still has its workflows.
    most_deferral_seconds: float = 5.0

    # ---- what a service gives (plain functions on its database, run in a thread) ----

    @abstractmethod
    def pending(self) -> list[str]:
        """The keys of the entries without a workflow, oldest first."""

    @abstractmethod
    def prepare(self, key: str) -> WorkflowStart:
        """The start of the entry ``key``: its workflow, argument, id and how it shows."""

    @abstractmethod
    def mark_started(self, key: str, *, started_at: datetime) -> None:
        """Note that the entry's own run exists (only once: a repeat changes nothing)."""

    @abstractmethod
    def record_squatter(self, key: str, *, run: ExistingRun, why: str,
                        now: datetime) -> None:
        """Keep, in the service's audit log, a run someone else started under the key's id."""

    @abstractmethod
    def squatter_ended(self, key: str) -> str:
        """The reason a squatter of ``key``'s id is terminated with."""

    # ---- the machinery ----

    @property
    def _starting(self) -> dict[str, _Starting]:
        return self.__dict__.setdefault("_outbox_starting", {})  # type: ignore[no-any-return]

    @property
    def _wake(self) -> asyncio.Event:
        return self.__dict__.setdefault("_outbox_wake", asyncio.Event())  # type: ignore[no-any-return]

    def wake(self) -> None:
        """An entry was committed: look for pending entries now, not at the next poll."""
        self._wake.set()

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, key: str, within: float | None) -> AsyncIterator[None]:
        """A waiting caller and the outbox may start the same entry at once: one after the
        other, so a squatter is recorded and replaced once, not by both. A caller that
        waits for the answer waits ``within`` seconds at most (then the start is pending)."""
        starting = self._starting.setdefault(key, _Starting())
        starting.users += 1
        try:
            try:
                async with asyncio.timeout(within):
                    await starting.lock.acquire()
            except TimeoutError as error:
                raise Unavailable(f"the workflow of {key} is being started by the outbox") \
                    from error
            try:
                yield
            finally:
                starting.lock.release()
        finally:
            starting.users -= 1
            if not starting.users:
                del self._starting[key]

    async def start(self, key: str, *, waiting: bool = False) -> bool:
        """Start the entry's workflow now; False (it stays pending) when it cannot be.

        ``waiting``: a caller waits for the answer, so give up after
        ``answer_within_seconds`` and leave the start to the outbox.
        """
        try:
            await self._start(key, waiting=waiting)
        except Unavailable as error:
            log.warning(f"{self.log_name}.start_pending", key=key, reason=error.message)
            return False
        except Exception:
            # The entry is committed either way: whatever went wrong, the outbox tries again.
            log.exception(f"{self.log_name}.start_failed", key=key)
            return False
        return True

    async def _start(self, key: str, *, waiting: bool) -> None:
        async with self._one_at_a_time(key, self.answer_within_seconds if waiting else None):
            started_at = datetime.now(UTC)
            start = await asyncio.to_thread(self.prepare, key)
            if not await self.gateway.start(
                    start.workflow, start.argument, workflow_id=start.workflow_id,
                    task_queue=self.workflow_queue, search_attributes=start.search_attributes,
                    summary=start.summary,
                    answer_within=self.answer_within_seconds if waiting else None):
                await self._claim(key, start)
            await asyncio.to_thread(self.mark_started, key, started_at=started_at)
        log.info(self.started_event or f"{self.log_name}.started", key=key)

    async def _claim(self, key: str, start: WorkflowStart) -> None:
        """The entry's workflow id is held: by its own run (done), or by a squatter's."""
        identifier = start.workflow_id
        for _ in range(self.replacements):
            # None: the run is gone since (its history was deleted), so start afresh.
            run = await self.gateway.existing_run(identifier, type(start.argument))
            if run is not None:
                why = not_ours(run, start=start, workflow_queue=self.workflow_queue)
                if not why:
                    log.info(f"{self.log_name}.own_run_found", key=key, running=run.running)
                    return
                await asyncio.to_thread(self.record_squatter, key, run=run, why=why,
                                        now=datetime.now(UTC))
                log.warning(f"{self.log_name}.squatted_workflow", key=key,
                            workflow_id=identifier, run_id=run.run_id, not_ours=why,
                            running=run.running)
                if run.running:
                    await self.gateway.terminate(identifier, run_id=run.run_id,
                                                 reason=self.squatter_ended(key))
            if await self.gateway.start(
                    start.workflow, start.argument, workflow_id=identifier,
                    task_queue=self.workflow_queue, search_attributes=start.search_attributes,
                    summary=start.summary, replacing=run is not None):
                return
        raise SquattedWorkflowId(
            f"the workflow id {identifier} was taken {self.replacements} times by runs that "
            "are not the entry's: the outbox tries again")

    async def _let_intake_pass(self) -> None:
        """Under a burst, wait (a while at most) until intake is quiet: the starts compete
        with it for the database and the processor, and they can wait; its callers cannot."""
        if self.intake_quiet is None:
            return
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.most_deferral_seconds
        while True:
            # Until it would be quiet enough, were nothing to come meanwhile.
            wait = min(self.quiet_seconds - self.intake_quiet(), give_up - loop.time())
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def start_pending(self) -> int:
        """Start every pending entry; how many were started.

        The round ends when Temporal is out of reach. An entry that fails for another
        reason (a bug) is logged and passed over until the next round, so it never holds
        up the entries behind it.
        """
        started = 0
        passed_over: set[str] = set()
        while True:
            pending = [key for key in await asyncio.to_thread(self.pending)
                       if key not in passed_over]
            if not pending:
                return started
            for at in range(0, len(pending), self.concurrency):
                await self._let_intake_pass()
                chunk = pending[at:at + self.concurrency]
                outcomes = await asyncio.gather(
                    *(self._start(key, waiting=False) for key in chunk), return_exceptions=True)
                away = False
                for key, outcome in zip(chunk, outcomes, strict=True):
                    if isinstance(outcome, asyncio.CancelledError):
                        raise outcome
                    if isinstance(outcome, Unavailable):
                        log.warning(f"{self.log_name}.start_pending", key=key,
                                    reason=outcome.message)
                        away = True
                    elif isinstance(outcome, BaseException):
                        log.error(f"{self.log_name}.start_failed", key=key, exc_info=outcome)
                        passed_over.add(key)
                    else:
                        started += 1
                if away:
                    return started

    async def run(self) -> None:
        """Until cancelled: start pending entries when woken, or every ``poll_seconds``.

        A round ends at the first start Temporal does not take, so an outage costs one
        attempt a round, not a tight loop of them.
        """
        while True:
            self._wake.clear()
            try:
                await self.start_pending()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug or a database outage: keep the outbox alive
                log.exception(f"{self.log_name}.outbox_failed")
                await asyncio.sleep(self.backoff_seconds)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
