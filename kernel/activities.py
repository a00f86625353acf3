"""How an activity of any service tells Temporal whether trying again can help.

Temporal retries a failed activity by its retry policy, and the approval
chain's recording activities retry until they land. That is right for a
failure that passes (the database restarting, a lock held a moment, a lost
connection) and ruinous for one that cannot (text PostgreSQL refuses to
store, a row that breaks a constraint, a refused business rule): the
activity retries for ever and the case waits behind it.

``application_error`` sorts an exception into one or the other:

* a ``kernel.errors.GovhallError`` (the domain refused) becomes
  ``ApplicationError(message, type=<its class name>, non_retryable=True)``
  — except ``Unavailable``, an outage by definition, which stays retryable;
* SQLAlchemy's ``DataError``, an ``IntegrityError`` other than a unique-key
  clash, and a ``ValueError`` or ``TypeError`` (also when a column type
  raised it inside SQLAlchemy) become non-retryable ApplicationErrors typed
  ``DataError``, ``IntegrityError``, ``ValueError``, ``TypeError``. A
  unique-key clash stays retryable: it is how two executions of one
  idempotent activity racing each other look, and the retry finds the row
  the other one wrote;
* everything else (``OperationalError``, connection errors, timeouts,
  a bug to be fixed and redeployed) is left to Temporal's retry policy.

The database and value errors are raised without their cause: a driver's
message carries the statement's parameters, and a failure's cause lands in
the workflow's history, which must hold no personal data. Their
ApplicationError names the error class and the SQLSTATE or constraint kind
only; the place it was raised is logged.

Activities use it through ``run_use_case`` (a blocking use case run in a
worker thread) or the ``translated_failures`` context manager.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import ParamSpec, TypeVar

import structlog
from sqlalchemy import exc as sa_exc
from temporalio import activity
from temporalio.exceptions import ApplicationError

from kernel.errors import FailedPrecondition, GovhallError, Unavailable

P = ParamSpec("P")
R = TypeVar("R")

log = structlog.get_logger("govhall.activities")

#: PostgreSQL's unique_violation, and SQLite's names for the same clash.
_UNIQUE_SQLSTATE = "23505"
_UNIQUE_SQLITE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


def _driver_code(error: sa_exc.DBAPIError) -> str:
    """The driver's code for a database error (SQLSTATE or SQLite's name), or ''."""
    original = error.orig
    code = getattr(original, "sqlstate", None) or getattr(original, "sqlite_errorname", None)
    return code if isinstance(code, str) else ""


def is_unique_violation(error: sa_exc.IntegrityError) -> bool:
    """Whether ``error`` is a unique-key (or primary-key) clash."""
    code = _driver_code(error)
    return code == _UNIQUE_SQLSTATE or code in _UNIQUE_SQLITE


def application_error(error: Exception) -> ApplicationError | None:
    """The ApplicationError an activity raises in place of ``error``.

    None when Temporal should retry ``error`` as it is (see the module's
    docstring for which is which).
    """
    if isinstance(error, ApplicationError | Unavailable):
        return None
    if isinstance(error, GovhallError):
        return ApplicationError(error.message, type=type(error).__name__, non_retryable=True)
    if isinstance(error, sa_exc.DataError):
        return ApplicationError(
            f"the database refused the values given ({_driver_code(error) or 'no code'}); "
            "trying again cannot help", type="DataError", non_retryable=True)
    if isinstance(error, sa_exc.IntegrityError) and not is_unique_violation(error):
        return ApplicationError(
            f"the write breaks a database constraint ({_driver_code(error) or 'no code'}); "
            "trying again cannot help", type="IntegrityError", non_retryable=True)
    refused = error
    if isinstance(error, sa_exc.StatementError) and not isinstance(error, sa_exc.DBAPIError):
        # A value a column type could not convert, before the database saw it.
        refused = error.orig if isinstance(error.orig, Exception) else error
    if isinstance(refused, ValueError | TypeError):
        return ApplicationError(
            f"the activity's input was refused ({type(refused).__name__}); trying again cannot "
            "help", type=type(refused).__name__, non_retryable=True)
    return None


def _raised_at(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""


@contextmanager
def translated_failures() -> Iterator[None]:
    """Raise what ``application_error`` makes of an exception escaping the block."""
    try:
        yield
    except Exception as error:
        failure = application_error(error)
        if failure is None:
            raise
        if isinstance(error, GovhallError):
            raise failure from error
        # The driver's text (with the statement's parameters) stays out of the history.
        log.warning("activity.failed_for_good", error=type(error).__name__,
                    code=_driver_code(error) if isinstance(error, sa_exc.DBAPIError) else "",
                    at=_raised_at(error))
        raise failure from None


async def run_use_case(function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a blocking use case in a worker thread, its failures translated for Temporal."""
    with translated_failures():
        return await asyncio.to_thread(function, *args, **kwargs)


#: How far a clock-driven step's instant may run ahead of Temporal's own clock.
STEP_CLOCK_SKEW = timedelta(minutes=1)


def not_ahead_of_temporal(at: datetime, *, step: str) -> None:
    """Refuse a clock-driven step (a deadline passed, a window closed) whose instant ``at``
    is ahead of when Temporal scheduled this attempt.

    Such a step's instant comes from whoever scheduled the activity: the trade's workflow
    gives its own clock, which is the server's, but anyone who reaches Temporal could
    schedule the activity with an instant of their choice (close a window or expire a
    deadline days early). The scheduled time is stamped by the server, not the caller;
    also under the time-skipping test server. Raised as FailedPrecondition: non-retryable,
    nothing recorded.
    """
    scheduled = activity.info().current_attempt_scheduled_time
    if scheduled.tzinfo is None:
        scheduled = scheduled.replace(tzinfo=UTC)
    if at - scheduled > STEP_CLOCK_SKEW:
        refused = application_error(FailedPrecondition(
            f"the {step} step is dated {at.isoformat()}, ahead of Temporal's clock "
            f"({scheduled.isoformat()}): a step is taken when its instant has come"))
        assert refused is not None  # a GovhallError other than Unavailable always maps
        raise refused
