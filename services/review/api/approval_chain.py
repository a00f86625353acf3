"""The running approval workflows, as the review service speaks to them through Temporal.

Human decisions and changes to a case's clock are Temporal updates: the
workflow's validator refuses a wrong one before anything is recorded, and
its refusal (an ApplicationError whose ``type`` names a gRPC status) is
turned into the kernel error of that name, so the caller gets that status.
Each update is sent with an id made of its name and the caller's
request_id, so a retried request is answered by Temporal with the first
result instead of being applied twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar

import structlog
from temporalio.client import (
    Client,
    RPCError,
    RPCTimeoutOrCancelledError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCStatusCode

from kernel import errors
from kernel.temporal import TemporalSecurity, connect
from workflows.approval_contract import (
    DECIDE,
    RECOMPUTE_DEADLINES,
    STATUS,
    WORKFLOW_NAME,
    ApprovalStatus,
    ChangeReceipt,
    Decision,
    DecisionReceipt,
    Recompute,
    workflow_id,
)

log = structlog.get_logger("govhall.review.chain")

T = TypeVar("T")

#: Refusal types the approval workflow's validators raise, by the error they become.
REFUSALS: dict[str, type[errors.GovhallError]] = {
    "FailedPrecondition": errors.FailedPrecondition,
    "PermissionDenied": errors.PermissionDenied,
    "InvalidArgument": errors.InvalidArgument,
    "NotFound": errors.NotFound,
}

RUNNING_APPROVALS = f"WorkflowType = '{WORKFLOW_NAME}' AND ExecutionStatus = 'Running'"

#: Statuses meaning Temporal could not be asked now, not that the request is wrong.
_OUTAGES = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
            RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.CANCELLED, RPCStatusCode.ABORTED)


class ChainUnavailable(errors.Unavailable):
    """Temporal could not be reached or did not answer in time; the call may be retried."""


class ApprovalChain:
    """Updates, queries and signals to approval workflows, over one lazily made client."""

    def __init__(self, *, address: str, namespace: str, call_timeout: timedelta,
                 security: TemporalSecurity) -> None:
        self._address = address
        self._namespace = namespace
        self._security = security
        self._call_timeout = call_timeout
        self._client: Client | None = None
        self._connecting = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is None:
            async with self._connecting:
                if self._client is None:
                    try:
                        self._client = await connect(self._address, self._namespace,
                                                     security=self._security)
                    except Exception as error:  # the SDK raises RuntimeError and others
                        raise ChainUnavailable(
                            f"the workflow service at {self._address} cannot be reached: "
                            "try again later") from error
        return self._client

    async def _handle(self, case_number: str) -> WorkflowHandle[Any, Any]:
        return (await self.client()).get_workflow_handle(workflow_id(case_number))

    async def _gone(self, case_number: str) -> errors.GovhallError:
        """NOT_FOUND from an update: the case is unknown, or its workflow has finished."""
        handle = await self._handle(case_number)
        try:
            await handle.describe()
        except RPCError as described:
            if described.status == RPCStatusCode.NOT_FOUND:
                return errors.NotFound(f"case {case_number} is unknown")
            raise
        return errors.FailedPrecondition(f"case {case_number} is finished")

    async def _call(self, case_number: str, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._call_timeout.total_seconds()):
                return await call
        except WorkflowUpdateFailedError as failure:
            cause = failure.cause
            if isinstance(cause, ApplicationError) and cause.type in REFUSALS:
                raise REFUSALS[cause.type](cause.message) from failure
            raise
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError,
                RPCTimeoutOrCancelledError) as error:
            raise ChainUnavailable(
                f"case {case_number} did not answer in time: send the same request again "
                "(with the same request_id) later") from error
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise await self._gone(case_number) from error
            if error.status in _OUTAGES:
                raise ChainUnavailable(
                    f"the workflow service did not take the call for case {case_number}: "
                    "try again later") from error
            raise

    async def decide(self, case_number: str, decision: Decision,
                     request_id: str) -> DecisionReceipt:
        handle = await self._handle(case_number)
        receipt: DecisionReceipt = await self._call(case_number, handle.execute_update(
            DECIDE, decision, id=f"{DECIDE}/{request_id}", result_type=DecisionReceipt))
        return receipt

    async def change(self, case_number: str, update: str, argument: Any,
                     request_id: str) -> ChangeReceipt:
        """Send a change to a case's clock (special procedure, extension)."""
        handle = await self._handle(case_number)
        receipt: ChangeReceipt = await self._call(case_number, handle.execute_update(
            update, argument, id=f"{update}/{request_id}", result_type=ChangeReceipt))
        return receipt

    async def status(self, case_number: str) -> ApprovalStatus:
        handle = await self._handle(case_number)
        status: ApprovalStatus = await self._call(case_number, handle.query(
            STATUS, result_type=ApprovalStatus))
        return status

    async def recompute_running(self, reason: str) -> int:
        """Signal every running approval workflow to recompute its deadlines; how many were."""
        client = await self.client()
        signalled = 0
        try:
            async with asyncio.timeout(self._call_timeout.total_seconds()):
                async for execution in client.list_workflows(RUNNING_APPROVALS, page_size=200):
                    handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
                    try:
                        await handle.signal(RECOMPUTE_DEADLINES, Recompute(reason))
                    except RPCError as error:
                        if error.status != RPCStatusCode.NOT_FOUND:
                            raise
                        continue  # it finished since it was listed: nothing to recompute
                    signalled += 1
        except (TimeoutError, RPCTimeoutOrCancelledError) as error:
            raise ChainUnavailable(
                f"told {signalled} running cases to recompute their deadlines, then the "
                "workflow service stopped answering: load the schedule again to tell the "
                "rest") from error
        except RPCError as error:
            if error.status in _OUTAGES:
                raise ChainUnavailable(
                    f"told {signalled} running cases to recompute their deadlines, then the "
                    "workflow service stopped answering: load the schedule again to tell "
                    "the rest") from error
            raise
        log.info("deadlines.recompute_requested", cases=signalled)
        return signalled
