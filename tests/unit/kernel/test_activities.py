"""The activity error wrapper: what can never succeed fails for good, outages are retried."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg.errors
import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from temporalio.exceptions import ApplicationError

from kernel import errors
from kernel.activities import application_error, run_use_case

PERSONAL = "张三丰 110101199003077777"


def _raise(error: Exception) -> Callable[[], None]:
    def use_case() -> None:
        raise error
    return use_case


def _data_error() -> sa_exc.DataError:
    """What SQLAlchemy raises when PostgreSQL refuses a value (psycopg's NUL error)."""
    return sa_exc.DataError(
        "INSERT INTO decisions (opinion) VALUES (%(opinion)s)", {"opinion": PERSONAL + "\x00"},
        psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"))


async def test_a_data_error_fails_for_good_without_the_statement_or_its_values() -> None:
    with pytest.raises(ApplicationError) as failed:
        await run_use_case(_raise(_data_error()))
    assert failed.value.non_retryable
    assert failed.value.type == "DataError"
    # A failure's message and cause land in the workflow history: no parameters there.
    assert PERSONAL not in str(failed.value) and "INSERT" not in str(failed.value)
    assert failed.value.__cause__ is None


async def test_an_operational_error_is_left_to_be_retried() -> None:
    outage = sa_exc.OperationalError(
        "SELECT 1", {}, psycopg.OperationalError("connection refused"))
    with pytest.raises(sa_exc.OperationalError) as failed:
        await run_use_case(_raise(outage))
    assert failed.value is outage
    assert application_error(outage) is None


@pytest.mark.parametrize("error", [
    ConnectionResetError("peer went away"), TimeoutError("slow"),
    errors.Unavailable("Temporal cannot be reached"),
])
def test_transient_failures_stay_retryable(error: Exception) -> None:
    assert application_error(error) is None


@pytest.mark.parametrize("error_type", [
    errors.InvalidArgument, errors.NotFound, errors.AlreadyExists, errors.FailedPrecondition,
    errors.PermissionDenied, errors.Unauthenticated,
])
async def test_a_domain_refusal_fails_for_good_under_its_class_name(
        error_type: type[errors.GovhallError]) -> None:
    with pytest.raises(ApplicationError) as failed:
        await run_use_case(_raise(error_type("case AP-1 has no review task")))
    assert failed.value.non_retryable
    assert failed.value.type == error_type.__name__
    assert failed.value.message == "case AP-1 has no review task"


@pytest.mark.parametrize("error", [ValueError("bad date"), TypeError("not a str")])
def test_value_and_type_errors_fail_for_good(error: Exception) -> None:
    failure = application_error(error)
    assert failure is not None and failure.non_retryable
    assert failure.type == type(error).__name__


def test_a_value_a_column_type_cannot_convert_fails_for_good() -> None:
    converting = sa_exc.StatementError("cannot bind", "INSERT", {}, ValueError("naive"))
    failure = application_error(converting)
    assert failure is not None and failure.non_retryable and failure.type == "ValueError"


def test_an_application_error_passes_through_as_it_is() -> None:
    assert application_error(ApplicationError("decided", non_retryable=False)) is None


def _sqlite_integrity_error(tmp_path: Path, statement: str) -> sa_exc.IntegrityError:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'constraints.sqlite3'}")
    with engine.begin() as connection:
        connection.execute(sa.text(
            "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, u TEXT UNIQUE, n TEXT NOT NULL)"))
        connection.execute(sa.text("DELETE FROM t"))
        connection.execute(sa.text("INSERT INTO t VALUES ('a', 'x', 'v')"))
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement))
    except sa_exc.IntegrityError as error:
        return error
    finally:
        engine.dispose()
    raise AssertionError(f"{statement} broke no constraint")


@pytest.mark.parametrize("statement", [
    "INSERT INTO t VALUES ('a', 'y', 'v')",   # the same primary key
    "INSERT INTO t VALUES ('b', 'x', 'v')",   # the same unique value
])
def test_a_unique_clash_is_an_idempotency_race_and_is_retried(
        tmp_path: Path, statement: str) -> None:
    assert application_error(_sqlite_integrity_error(tmp_path, statement)) is None


def test_an_integrity_error_that_is_no_race_fails_for_good(tmp_path: Path) -> None:
    error = _sqlite_integrity_error(tmp_path, "INSERT INTO t VALUES ('b', 'y', NULL)")
    failure = application_error(error)
    assert failure is not None and failure.non_retryable
    assert failure.type == "IntegrityError"


def test_postgresql_integrity_errors_are_told_apart_by_sqlstate() -> None:
    unique = sa_exc.IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("dup"))
    not_null = sa_exc.IntegrityError("INSERT", {}, psycopg.errors.NotNullViolation("null"))
    assert application_error(unique) is None
    failure = application_error(not_null)
    assert failure is not None and failure.non_retryable and "23502" in failure.message


async def test_a_use_case_that_succeeds_returns_its_value() -> None:
    def add(a: int, *, b: int) -> int:
        return a + b

    assert await run_use_case(add, 2, b=3) == 5
