"""kernel.db.insert_rows: rows straight to the driver, stored as a Core insert stores them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from kernel.db import RunningNumbers, insert_rows, sequences_table
from kernel.instants import UtcDateTime, utc_text

metadata = MetaData()
things = Table("things", metadata,
               Column("id", Integer, primary_key=True, autoincrement=False),
               Column("name", String(20), nullable=False, unique=True),
               Column("done", Boolean, nullable=False),
               Column("at", UtcDateTime, nullable=False))
counters = sequences_table(metadata, "counters")
AT = datetime(2026, 1, 5, 1, 2, 3, tzinfo=UTC)


@pytest.fixture
def connection() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def test_rows_read_back_as_a_core_insert_of_the_same_values_does(
        connection: Connection) -> None:
    insert_rows(connection, things, ("id", "name", "done", "at"),
                [(1, "一", True, utc_text(AT)), (2, "two", False, utc_text(AT))])
    connection.execute(insert(things), [{"id": 3, "name": "三", "done": True, "at": AT}])
    rows = [tuple(r) for r in connection.execute(select(things).order_by(things.c.id))]
    assert rows == [(1, "一", True, AT), (2, "two", False, AT), (3, "三", True, AT)]
    raw = connection.exec_driver_sql("SELECT done, at FROM things ORDER BY id").all()
    assert raw[0] == raw[2] == (1, "2026-01-05T01:02:03.000000+00:00")


def test_a_taken_key_is_sqlalchemy_s_integrity_error_and_no_row_of_the_batch_stays(
        connection: Connection) -> None:
    insert_rows(connection, things, ("id", "name", "done", "at"), [(1, "a", True, "x")])
    connection.commit()
    with pytest.raises(IntegrityError):
        insert_rows(connection, things, ("id", "name", "done", "at"),
                    [(2, "b", True, "x"), (3, "a", True, "x")])
    connection.rollback()
    assert connection.execute(select(things.c.id)).scalars().all() == [1]


def test_a_column_the_table_lacks_is_refused_before_anything_runs(
        connection: Connection) -> None:
    with pytest.raises(ValueError, match="has no column colour"):
        insert_rows(connection, things, ("id", "colour"), [(1, "red")])


def test_no_rows_is_no_statement(connection: Connection) -> None:
    insert_rows(connection, things, ("id", "nothing"), [])
    assert connection.execute(select(things)).all() == []


def test_running_numbers_count_on_from_the_built_once_statement(
        connection: Connection) -> None:
    numbers = RunningNumbers(connection, counters)
    assert numbers.take("CP-20260105", 3) == [1, 2, 3]
    assert numbers.next("CP-20260105") == 4
    assert numbers.take("AP-20260105", 2) == [1, 2]
    assert numbers.take("CP-20260105", 32) == list(range(5, 37))
