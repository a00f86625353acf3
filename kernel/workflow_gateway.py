"""The one way a service speaks to its workflows through Temporal.

Starting, updating, querying and signalling go through ``WorkflowGateway``,
which turns every answer Temporal can give into a kernel error, so the gRPC
status a caller gets is the same from every service:

- a refusal by a workflow (an ``ApplicationError`` whose ``type`` names a
  status: FailedPrecondition, PermissionDenied, InvalidArgument, NotFound,
  AlreadyExists), also when an activity inside the update raised it, becomes
  that error;
- an unknown workflow is NOT_FOUND, a finished one FAILED_PRECONDITION;
- Temporal out of reach, slow or overloaded is UNAVAILABLE, and the caller
  may send the same request again (updates carry ids made of the caller's
  request id, so a repeat is answered with the first result).

A start never joins a run it did not make: whoever reaches Temporal can start
a workflow under an id the service will use. When the id is held (by a run
still going, or one closed), ``start`` says so, and the service reads that
run (``existing_run``: its type, task queue and decoded input) to tell its
own run from a squatter's, which it may ``terminate`` and replace.

The client is made on first use, so a service starts and serves reads while
Temporal is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import structlog
from temporalio.client import (
    Client,
    RPCError,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCStatusCode

from kernel import errors

log = structlog.get_logger("govhall.workflows")

T = TypeVar("T")

#: Refusal types workflows (and the activities inside their updates) raise.
REFUSALS: dict[str, type[errors.GovhallError]] = {
    "FailedPrecondition": errors.FailedPrecondition,
    "PermissionDenied": errors.PermissionDenied,
    "InvalidArgument": errors.InvalidArgument,
    "NotFound": errors.NotFound,
    "AlreadyExists": errors.AlreadyExists,
}

#: Statuses meaning Temporal could not be asked now, not that the request is wrong.
OUTAGES = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
           RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.CANCELLED, RPCStatusCode.ABORTED,
           RPCStatusCode.UNKNOWN)


class WorkflowsUnavailable(errors.Unavailable):
    """Temporal could not be reached or did not answer in time; the call may be retried."""


@dataclass(frozen=True)
class ExistingRun:
    """The run holding a workflow id, as Temporal keeps it: what started it, with what."""

    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    #: Still running (else closed: completed, failed, terminated, timed out, ...).
    running: bool
    #: Its one start argument, read by the client's data converter as the type asked
    #: for; None when it cannot be read as one (another shape, an undecodable payload,
    #: no argument or several).
    argument: object | None


def refusal_of(failure: BaseException | None) -> errors.GovhallError | None:
    """The kernel error a workflow's failure stands for: the first refusal in its causes."""
    seen = 0
    while failure is not None and seen < 10:
        if isinstance(failure, ApplicationError) and failure.type in REFUSALS:
            return REFUSALS[failure.type](failure.message)
        failure = failure.__cause__
        seen += 1
    return None


class WorkflowGateway:
    """Starts, updates, queries and signals workflows over one lazily made client."""

    def __init__(self, connect: Callable[[], Awaitable[Client]], *,
                 call_timeout: timedelta = timedelta(seconds=10)) -> None:
        self._connect = connect
        self._call_timeout = call_timeout.total_seconds()
        self._client: Client | None = None
        self._connecting = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is None:
            async with self._connecting:
                if self._client is None:
                    try:
                        async with asyncio.timeout(self._call_timeout):
                            self._client = await self._connect()
                    except Exception as error:  # the SDK raises RuntimeError and others
                        raise WorkflowsUnavailable(
                            "the workflow service (Temporal) cannot be reached now: "
                            "try again later") from error
        return self._client

    async def handle(self, workflow_id: str) -> WorkflowHandle[Any, Any]:
        return (await self.client()).get_workflow_handle(workflow_id)

    async def start(self, workflow: str, argument: Any, *, workflow_id: str, task_queue: str,
                    search_attributes: TypedSearchAttributes, summary: str,
                    answer_within: float | None = None, replacing: bool = False) -> bool:
        """Start the workflow; True if this call started it, False if the id is held.

        The id is held by any run under it, running or closed: the caller reads
        that run (``existing_run``) to know whether it is its own. ``replacing``
        starts over a closed run (after the caller ended one that was not its
        own); a running one still holds the id. ``answer_within`` (seconds)
        bounds this call when less than the gateway's own.
        """
        client = await self.client()
        limit = min(answer_within or self._call_timeout, self._call_timeout)
        try:
            async with asyncio.timeout(limit):
                await client.start_workflow(
                    workflow, argument, id=workflow_id, task_queue=task_queue,
                    search_attributes=search_attributes, static_summary=summary,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE if replacing
                    else WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:
            log.info("workflow.id_held", workflow_id=workflow_id)
            return False
        except (TimeoutError, RPCTimeoutOrCancelledError) as error:
            raise WorkflowsUnavailable(
                f"the workflow {workflow_id} could not be started now: try again later") \
                from error
        except RPCError as error:
            if error.status in OUTAGES:
                raise WorkflowsUnavailable(
                    f"the workflow {workflow_id} could not be started now "
                    f"({error.status.name}): try again later") from error
            raise
        return True

    async def existing_run(self, workflow_id: str, argument_type: type[Any]
                           ) -> ExistingRun | None:
        """The latest run under ``workflow_id`` and how it was started; None if there is none.

        Its start input is read with this client's data converter (payloads
        decrypted, then read as ``argument_type``); whatever cannot be read so
        is given as None, never raised: the run was not started by the code
        that starts with that type.
        """
        client = await self.client()
        try:
            async with asyncio.timeout(self._call_timeout):
                description = await client.get_workflow_handle(workflow_id).describe()
                run = client.get_workflow_handle(workflow_id, run_id=description.run_id)
                started = None
                async for event in run.fetch_history_events(page_size=1):
                    started = event.workflow_execution_started_event_attributes
                    break
        except (TimeoutError, RPCTimeoutOrCancelledError) as error:
            raise WorkflowsUnavailable(
                f"the workflow {workflow_id} could not be looked up now: try again later") \
                from error
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            if error.status in OUTAGES:
                raise WorkflowsUnavailable(
                    f"the workflow {workflow_id} could not be looked up now "
                    f"({error.status.name}): try again later") from error
            raise
        argument: object | None = None
        if started is not None and len(started.input.payloads) == 1:
            try:
                [argument] = await client.data_converter.decode(
                    started.input.payloads, [argument_type])
            except Exception:  # any shape the converter cannot read is not the one asked for
                argument = None
        return ExistingRun(
            workflow_id=workflow_id, run_id=description.run_id,
            workflow_type=started.workflow_type.name if started is not None else "",
            task_queue=started.task_queue.name if started is not None else "",
            running=description.status == WorkflowExecutionStatus.RUNNING,
            argument=argument)

    async def terminate(self, workflow_id: str, *, run_id: str, reason: str) -> bool:
        """End that very run (never a later one); False if it had closed already."""
        handle = (await self.client()).get_workflow_handle(workflow_id, run_id=run_id)
        try:
            async with asyncio.timeout(self._call_timeout):
                await handle.terminate(reason=reason)
        except (TimeoutError, RPCTimeoutOrCancelledError) as error:
            raise WorkflowsUnavailable(
                f"the workflow {workflow_id} could not be ended now: try again later") \
                from error
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False  # closed meanwhile
            if error.status in OUTAGES:
                raise WorkflowsUnavailable(
                    f"the workflow {workflow_id} could not be ended now "
                    f"({error.status.name}): try again later") from error
            raise
        return True

    async def update(self, workflow_id: str, name: str, argument: Any, *, update_id: str,
                     result_type: type[T]) -> T:
        handle = await self.handle(workflow_id)
        result: T = await self._call(workflow_id, handle.execute_update(
            name, argument, id=update_id, result_type=result_type))
        return result

    async def query(self, workflow_id: str, name: str, *, result_type: type[T]) -> T:
        handle = await self.handle(workflow_id)
        result: T = await self._call(workflow_id, handle.query(name, result_type=result_type))
        return result

    async def signal_all(self, query: str, name: str, argument: Any) -> int:
        """Signal every workflow ``query`` lists; how many were signalled."""
        client = await self.client()
        signalled = 0
        try:
            async with asyncio.timeout(self._call_timeout * 3):
                async for execution in client.list_workflows(query, page_size=200):
                    handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
                    try:
                        await handle.signal(name, argument)
                    except RPCError as error:
                        if error.status != RPCStatusCode.NOT_FOUND:
                            raise
                        continue  # it finished since it was listed
                    signalled += 1
        except (TimeoutError, RPCTimeoutOrCancelledError) as error:
            raise WorkflowsUnavailable(
                f"signalled {signalled} workflows, then the workflow service stopped "
                "answering: send the request again to reach the rest") from error
        except RPCError as error:
            if error.status in OUTAGES:
                raise WorkflowsUnavailable(
                    f"signalled {signalled} workflows, then the workflow service stopped "
                    "answering: send the request again to reach the rest") from error
            raise
        return signalled

    async def _call(self, workflow_id: str, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._call_timeout):
                return await call
        except WorkflowUpdateFailedError as failure:
            refusal = refusal_of(failure.cause)
            if refusal is not None:
                raise refusal from failure
            log.warning("workflow.update_failed", workflow_id=workflow_id,
                        cause=type(failure.cause).__name__ if failure.cause else "")
            raise errors.FailedPrecondition(
                f"the workflow {workflow_id} did not take the change") from failure
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError,
                RPCTimeoutOrCancelledError) as error:
            raise WorkflowsUnavailable(
                f"the workflow {workflow_id} did not answer in time: send the same request "
                "again (with the same request id) later") from error
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise await self._gone(workflow_id) from error
            if error.status == RPCStatusCode.FAILED_PRECONDITION:
                # E.g. "Workflow Task in failed state": the workflow cannot take anything
                # until an operator sees why in the Temporal UI.
                log.warning("workflow.cannot_take", workflow_id=workflow_id,
                            status=error.status.name)
                raise errors.FailedPrecondition(
                    f"the workflow {workflow_id} cannot take changes now: its last task "
                    "failed and is being retried; the operators can see why") from error
            log.warning("workflow.call_refused", workflow_id=workflow_id,
                        status=error.status.name)
            raise WorkflowsUnavailable(
                f"the workflow service did not take the call for {workflow_id} "
                f"({error.status.name}): try again later") from error

    async def _gone(self, workflow_id: str) -> errors.GovhallError:
        """NOT_FOUND from a call: the workflow is unknown, or it has finished."""
        handle = await self.handle(workflow_id)
        try:
            async with asyncio.timeout(self._call_timeout):
                description = await handle.describe()
        except RPCError as described:
            if described.status == RPCStatusCode.NOT_FOUND:
                return errors.NotFound(f"{workflow_id} is unknown")
            return WorkflowsUnavailable(f"{workflow_id} cannot be looked up now: try again")
        except TimeoutError:
            return WorkflowsUnavailable(f"{workflow_id} cannot be looked up now: try again")
        if description.status != WorkflowExecutionStatus.RUNNING:
            return errors.FailedPrecondition(f"{workflow_id} is finished")
        return errors.FailedPrecondition(f"{workflow_id} did not take the change; try again")
