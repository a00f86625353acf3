"""SQLAlchemy 2 engines and the unit of work every service builds on.

A unit of work is the only way to the database: it opens one transaction,
hands out repositories bound to it and rolls back unless committed.
SQLite (the embedded default) takes the write lock at the start of a
writing transaction (BEGIN IMMEDIATE) so that two writers never both read
the same state and then collide at commit; reading units of work use a
plain BEGIN and run beside writers under WAL.

Writers of one process also queue on a lock of the engine before BEGIN
IMMEDIATE. Without it, threads that find SQLite's write lock taken fall into
its busy handler, which sleeps in steps of up to 100 ms whether or not the
lock has been freed meanwhile: under a burst most of a writer's time went to
those sleeps. The queue hands the lock on the moment it is freed; the busy
timeout still covers writers in other processes.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite

#: The largest value of an Integer column on PostgreSQL (int4): no row id or version
#: beyond it can exist, and PostgreSQL refuses to compare an Integer column with one.
MAX_INTEGER = 2**31 - 1

SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000")


#: The in-process queue of each SQLite engine's writers (see the module's docstring).
_writers: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()


def make_engine(url: str) -> Engine:
    """An engine for a service's database, SQLite or PostgreSQL."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _take_over_sqlite_transactions(engine)
        _writers[engine] = threading.RLock()
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _take_over_sqlite_transactions(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own BEGIN handling is switched off so that ours is used.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        writing = connection.get_execution_options().get("govhall_write", True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


class UnitOfWork:
    """One transaction on a service's database; rolls back unless committed.

    Services subclass it and build their repositories in ``bind``. Repositories
    speak SQLAlchemy Core over the unit's connection: no ORM session, whose
    bookkeeping cost more than the queries on the services' hot paths.
    """

    connection: Connection

    def __init__(self, engine: Engine, *, write: bool = True) -> None:
        self._engine = engine.execution_options(govhall_write=write)
        self._committed = False
        self._queue = _writers.get(engine) if write else None

    def bind(self, connection: Connection) -> None:
        """Build the repositories on the connection; overridden by each service."""

    def __enter__(self) -> Self:
        if self._queue is not None:
            self._queue.acquire()
        try:
            self.connection = self._engine.connect()
            self._committed = False
            self.bind(self.connection)
        except BaseException:
            if self._queue is not None:
                self._queue.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed:
                self.connection.rollback()
        finally:
            try:
                self.connection.close()
            finally:
                if self._queue is not None:
                    self._queue.release()

    def commit(self) -> None:
        self.connection.commit()
        self._committed = True

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name


# ---- bulk inserts ----------------------------------------------------------------------


#: The DBAPI placeholder of each paramstyle a service's driver uses (sqlite3: qmark;
#: psycopg: pyformat, which takes %s for positional values).
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


@lru_cache(maxsize=256)
def _insert_sql(quote: Any, paramstyle: str, table: Table, columns: tuple[str, ...]) -> str:
    unknown = [name for name in columns if name not in table.c]
    if unknown:
        raise ValueError(f"table {table.name} has no column {', '.join(unknown)}")
    placeholder = _PLACEHOLDERS[paramstyle]
    # Names from the Table (checked above) and quoted; every value is a bound parameter.
    return (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
            f"VALUES ({', '.join(placeholder for _ in columns)})")


def insert_rows(connection: Connection, table: Table, columns: Sequence[str],
                rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows``, tuples of values in the order of ``columns``, in one executemany.

    The rows go to the driver as they are, past SQLAlchemy's processing of each row's
    parameters, which on a hot path cost more than the insert itself: each value must
    already be what the column stores, so an instant is given as its stored text
    (``kernel.instants.utc_text``), JSON as its text, and every column with a Python-side
    default is given its value. Errors are SQLAlchemy's (IntegrityError and the rest),
    as for any statement.
    """
    if not rows:
        return
    dialect = connection.dialect
    sql = _insert_sql(dialect.identifier_preparer.quote, dialect.paramstyle, table,
                      tuple(columns))
    connection.exec_driver_sql(sql, list(rows))


# ---- running numbers ----------------------------------------------------------------------


def sequences_table(metadata: MetaData, name: str = "sequences") -> Table:
    """A service's counters: one row per counter name, holding the last number taken."""
    return Table(name, metadata,
                 Column("name", String(20), primary_key=True),
                 Column("last", BigInteger, nullable=False))


#: RunningNumbers.take's upsert for each (dialect, table).
_TAKE_STATEMENTS: dict[tuple[str, Table], Any] = {}


class RunningNumbers:
    """Each call of ``next`` returns the next number of its counter, from 1."""

    def __init__(self, connection: Connection, table: Table) -> None:
        self._connection = connection
        self._t = table

    def next(self, name: str) -> int:
        return self.take(name, 1)[0]

    def _take_statement(self) -> Any:
        key = (self._connection.dialect.name, self._t)
        statement = _TAKE_STATEMENTS.get(key)
        if statement is None:
            dialect: Any = postgresql if key[0] == "postgresql" else sqlite
            # An upsert: concurrent callers queue on the row's lock, none reads a stale
            # value. Built once per table and dialect: building it for each call cost more
            # than running it.
            count = bindparam("count", type_=BigInteger)
            statement = _TAKE_STATEMENTS[key] = (
                dialect.insert(self._t).values(name=bindparam("name"), last=count)
                .on_conflict_do_update(index_elements=[self._t.c.name],
                                       set_={"last": self._t.c.last + count})
                .returning(self._t.c.last))
        return statement

    def take(self, name: str, count: int) -> list[int]:
        """The next ``count`` numbers of the counter, in order, in one statement."""
        if count < 1:
            raise ValueError(f"cannot take {count} numbers of counter {name}")
        statement = self._take_statement()
        last = int(self._connection.execute(statement, {"name": name, "count": count})
                   .scalar_one())
        return list(range(last - count + 1, last + 1))
