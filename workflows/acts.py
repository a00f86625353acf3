"""What every workflow's updates share: refusals that carry a gRPC status, a signed
statement's signature checked (and a refused one reported), a recording the service
refused or could not do.

The approval, complaint and tender workflows (and every later trade) refuse an update the
same way: an ``ApplicationError`` whose type is the gRPC status the service answers with,
raised in the validator before anything is written to the history, or raised from the
update when the service's recording activity refused the act. These helpers are pure and
deterministic, so they run in the workflow sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from kernel.signing import BadSignature, Signed, verify_in_workflow
    from workflows.approval_contract import SignedStatement
    from workflows.arguments import well_typed

    # By the module's full name, so the sandbox hands over the worker's own module.
    from workflows.refused_acts import RefusedAct, printable, report, report_id

PERMISSION_DENIED = "PermissionDenied"
INVALID_ARGUMENT = "InvalidArgument"
FAILED_PRECONDITION = "FailedPrecondition"


def refuse(status: str, message: str) -> ApplicationError:
    """An update refusal; ``status`` is the gRPC status the service answers with."""
    return ApplicationError(message, type=status, non_retryable=True)


def shaped(update: str, value: object, shape: type, *, called: str = "") -> None:
    """Refuse at once an update argument of the wrong shape (a JSON null, a wrong type)."""
    if not well_typed(value, shape):
        raise refuse(INVALID_ARGUMENT,
                     f"the {update} argument is not {called or 'a ' + shape.__name__}")


def refused_by_activity(error: ActivityError, *, service: str = "service") -> ApplicationError:
    """An act the service refused when the workflow asked it to record it: refused here too."""
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return refuse(cause.type, cause.message)
    return refuse(FAILED_PRECONDITION, f"the {service} did not record it; try again")


def stuck(subject: str, what: str, error: ActivityError) -> RuntimeError:
    """A record the workflow cannot do without failed for good: a bug or a misconfiguration.

    Not a business outcome, so the case or trade must not end: the workflow task fails
    instead (shown in the UI, retried), until an operator fixes the cause.
    """
    cause = error.cause.message if isinstance(error.cause, ApplicationError) else str(error)
    return RuntimeError(f"the {subject} {what}: {cause}")


class Facts(Protocol):
    """A contract's strictly read statement facts: each names its kind."""

    @property
    def kind(self) -> str: ...


F = TypeVar("F", bound=Facts)


def read_statement(statement: SignedStatement, kind: str, *,
                   read: Callable[[dict[str, Any]], F], malformed: type[Exception]) -> F:
    """The statement's facts, read strictly and of the expected kind; refused otherwise."""
    try:
        facts = read(statement.body)
    except malformed as error:
        raise refuse(INVALID_ARGUMENT, str(error)) from error
    if facts.kind != kind:
        raise refuse(INVALID_ARGUMENT, f"a {facts.kind} statement is not a {kind}")
    return facts


def check_signature(statement: SignedStatement, kind: str, *, signer: str) -> None:
    """Refuse (PermissionDenied) a statement the ``signer`` service did not sign, and log
    the forgery's reason (never its contents)."""
    try:
        # The signature check raises from native code, which imports its exception type:
        # that import must reach the real module, not the sandbox's copy.
        with workflow.unsafe.imports_passed_through():
            verify_in_workflow(Signed(statement.body, statement.signer, statement.key_id,
                                      statement.signature), signer=signer)
    except BadSignature as error:
        workflow.logger.warning(f"violation.forged_statement: {error}", extra={
            "kind": str(kind), "reason": str(error)})
        raise refuse(PERMISSION_DENIED,
                     f"the {kind} is not one the {signer} service signed: refused") from error


@contextmanager
def reported(update: str, *, case_number: str) -> Iterator[None]:
    """A refusal raised inside is reported (workflows/refused_acts.py: on its way to
    review's audit log) for the workflow's own ``case_number``, then raised on.

    Only in a validator: a report issues no workflow command, so it changes no history.
    """
    try:
        yield
    except ApplicationError as refused:
        info = workflow.info()
        update_info = workflow.current_update_info()
        report(RefusedAct(
            case_number=case_number,
            report_id=report_id(info.workflow_id, info.run_id,
                                update_info.id if update_info else ""),
            update_name=update, reason=printable(refused.message),
            refused_at=workflow.now()))
        raise


class Act(Protocol):
    """An update's argument that carries one signed statement."""

    @property
    def statement(self) -> SignedStatement: ...


def authored(update: str, act: Act, *, shape: type, kind: str,
             read: Callable[[dict[str, Any]], F], malformed: type[Exception], signer: str,
             subject: str, own_number: str, number_of: Callable[[F], str],
             also: Callable[[F], None] | None = None) -> F:
    """The statement's facts if ``signer`` signed it, of ``kind``, about this workflow's
    ``subject`` ``own_number`` (and ``also`` finds nothing wrong with it); refused
    otherwise, and reported (nothing but a forger sends anything else)."""
    with reported(update, case_number=own_number):
        shaped(update, act, shape, called="an act")
        statement = act.statement
        facts = read_statement(statement, kind, read=read, malformed=malformed)
        check_signature(statement, kind, signer=signer)
        if number_of(facts) != own_number:
            raise refuse(PERMISSION_DENIED, f"the statement is about {subject} "
                         f"{number_of(facts)}, not {own_number}")
        if also is not None:
            also(facts)
    return facts
