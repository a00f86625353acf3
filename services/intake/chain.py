"""The intake service's side of the approval workflow: start it, withdraw through it.

The workflow of a case is ``approval/<case number>``. Starting is
idempotent: a workflow already running under that id is used as it is, and
one that ran to its end is never started again (only a failed or terminated
run may be replaced). A refusal of an update by the workflow's validator
becomes the kernel error of the same name, so the gRPC status follows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from kernel import errors
from kernel.temporal import (
    CASE_KIND,
    CASE_NUMBER,
    DEPARTMENT,
    ITEM_CODE,
    SLA_STATE,
    STAGE,
    WORKFLOW_TASK_QUEUE,
)
from workflows.approval_contract import (
    CASE_KIND as APPROVAL_KIND,
)
from workflows.approval_contract import (
    WITHDRAW,
    WORKFLOW_NAME,
    ApprovalInput,
    ChangeReceipt,
    SlaState,
    Stage,
    Withdrawal,
    workflow_id,
)

log = structlog.get_logger("govhall.intake.chain")

#: The workflow's refusal types and the errors they become.
REFUSALS: dict[str, type[errors.GovhallError]] = {
    "FailedPrecondition": errors.FailedPrecondition,
    "PermissionDenied": errors.PermissionDenied,
    "InvalidArgument": errors.InvalidArgument,
    "NotFound": errors.NotFound,
}


class ChainUnavailable(errors.FailedPrecondition):
    """Temporal cannot be reached now; the caller may try again."""


def summary(case: ApprovalInput) -> str:
    """What the Temporal UI shows for the workflow: codes and the item, no personal data."""
    return f"Approval {case.item_code} {case.item_name} — {case.department_code}"


def search_attributes(case: ApprovalInput) -> TypedSearchAttributes:
    return TypedSearchAttributes([
        SearchAttributePair(CASE_NUMBER, case.case_number),
        SearchAttributePair(ITEM_CODE, case.item_code),
        SearchAttributePair(DEPARTMENT, case.department_code),
        SearchAttributePair(STAGE, str(Stage.REVIEW)),
        SearchAttributePair(SLA_STATE, str(SlaState.ON_TIME)),
        SearchAttributePair(CASE_KIND, APPROVAL_KIND),
    ])


def update_refusal(case_number: str, error: WorkflowUpdateFailedError) -> errors.GovhallError:
    """The kernel error a refused update stands for."""
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type in REFUSALS:
        return REFUSALS[cause.type](cause.message)
    log.warning("chain.update_failed", case_number=case_number,
                cause=type(cause).__name__ if cause else "")
    return errors.FailedPrecondition(
        f"the approval workflow of case {case_number} did not take the change")


class ApprovalChain:
    """Starts and changes approval workflows through one lazily connected client."""

    def __init__(self, connect: Callable[[], Awaitable[Client]]) -> None:
        self._connect = connect
        self._client: Client | None = None
        self._connecting = asyncio.Lock()

    async def client(self) -> Client:
        async with self._connecting:
            if self._client is None:
                try:
                    self._client = await self._connect()
                except Exception as error:  # the SDK reports a refused connection as RuntimeError
                    raise ChainUnavailable(
                        "the approval chain (Temporal) cannot be reached now; try again"
                    ) from error
            return self._client

    async def start(self, case: ApprovalInput) -> None:
        """Start the case's workflow unless it runs or ran already."""
        client = await self.client()
        try:
            await client.start_workflow(
                WORKFLOW_NAME, case, id=workflow_id(case.case_number),
                task_queue=WORKFLOW_TASK_QUEUE, search_attributes=search_attributes(case),
                static_summary=summary(case),
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
        except WorkflowAlreadyStartedError:
            # It ran to its end before: that run is the case's chain.
            log.info("chain.already_ran", case_number=case.case_number)

    async def withdraw(self, case_number: str, withdrawal: Withdrawal) -> ChangeReceipt:
        client = await self.client()
        handle = client.get_workflow_handle(workflow_id(case_number))
        try:
            receipt: ChangeReceipt = await handle.execute_update(
                WITHDRAW, withdrawal, result_type=ChangeReceipt)
        except WorkflowUpdateFailedError as error:
            raise update_refusal(case_number, error) from error
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise ChainUnavailable(
                    f"the approval workflow of case {case_number} cannot be reached now "
                    f"({error.status.name}); try again") from error
            raise await self._absent(case_number) from error
        return receipt

    async def _absent(self, case_number: str) -> errors.GovhallError:
        """Why an update found no workflow to change: it finished, or there is none."""
        client = await self.client()
        try:
            description = await client.get_workflow_handle(workflow_id(case_number)).describe()
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            return errors.NotFound(f"case {case_number} is unknown to the approval chain")
        if description.status != WorkflowExecutionStatus.RUNNING:
            return errors.FailedPrecondition(f"case {case_number} is finished")
        return errors.FailedPrecondition(
            f"the approval workflow of case {case_number} did not take the change; try again")
