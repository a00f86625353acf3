"""kernel.instants.UtcDateTime on a real SQLite file and PostgreSQL: one storage, time order,
naive datetimes refused, and every service's existing rows still readable after the change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import StatementError

from kernel.audit import Actor, AuditLog, CheckpointClaim, entry_hash
from kernel.chinatime import CHINA
from kernel.db import make_engine
from kernel.instants import UtcDateTime, utc_text
from kernel.migrations import alembic_config, upgrade
from services.complaints.db import tables as complaints_tables
from services.review.db import tables as review_tables
from services.review.main import DEFINITION as REVIEW
from services.trading.db import tables as trading_tables
from services.trading.main import DEFINITION as TRADING
from tests.support import fresh_database_url

metadata = sa.MetaData()
moments = sa.Table("moments", metadata, sa.Column("id", sa.Integer, primary_key=True),
                   sa.Column("at", UtcDateTime, nullable=True))

#: One instant given in three zones, and instants with and without a fraction of a second.
SAME = datetime(2026, 1, 5, 1, 2, 3, tzinfo=UTC)
INSTANTS = [SAME.astimezone(CHINA), SAME.astimezone(timezone(timedelta(hours=-5))),
            datetime(2026, 1, 5, 1, 2, 3, 500, tzinfo=UTC), datetime(2025, 12, 31, 23, 0,
                                                                      tzinfo=CHINA)]


@pytest.fixture
def engine(backend: str, tmp_path: Path) -> sa.Engine:
    url = fresh_database_url(backend, "trading", tmp_path)
    engine = make_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    return engine


def test_instants_read_back_in_utc_as_the_same_instant(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        for n, instant in enumerate(INSTANTS, 1):
            connection.execute(moments.insert().values(id=n, at=instant))
        read = connection.execute(sa.select(moments.c.at).order_by(moments.c.id)).scalars().all()
    assert read == INSTANTS
    assert all(r.utcoffset() == timedelta(0) for r in read)


def test_the_stored_text_is_the_same_on_every_database(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(moments.insert().values(id=1, at=INSTANTS[0]))
        stored = connection.execute(
            sa.select(sa.type_coerce(moments.c.at, sa.String))).scalar_one()
    assert stored == "2026-01-05T01:02:03.000000+00:00" == utc_text(INSTANTS[1])


def test_sql_compares_and_orders_instants_in_time(engine: sa.Engine) -> None:
    instants = [SAME + timedelta(microseconds=m) for m in (999_999, 0, 1, -1)]
    instants.append(SAME.astimezone(CHINA) - timedelta(hours=1))
    with engine.begin() as connection:
        for n, instant in enumerate(instants, 1):
            connection.execute(moments.insert().values(id=n, at=instant))
        ordered = connection.execute(
            sa.select(moments.c.at).order_by(moments.c.at)).scalars().all()
        later = connection.execute(
            sa.select(moments.c.id).where(moments.c.at > SAME.astimezone(CHINA))
            .order_by(moments.c.id)).scalars().all()
    assert ordered == sorted(instants)
    assert later == [1, 3]


def test_a_naive_datetime_is_refused_before_anything_is_written(engine: sa.Engine) -> None:
    with engine.begin() as connection, pytest.raises(StatementError, match="time zone"):
        connection.execute(moments.insert().values(id=1, at=datetime(2026, 1, 5, 1, 2, 3)))
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(moments)).scalar() == 0


def test_text_written_before_the_type_reads_back(backend: str, tmp_path: Path) -> None:
    """Trading, complaints and the audit log stored ``isoformat()`` text: no fraction when zero."""
    url = fresh_database_url(backend, "trading", tmp_path)
    upgrade(migrations_dir=TRADING.migrations_dir, url=url)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO experts (id, name, employer, available, unavailable_reason, "
            "registered_at) VALUES ('E1', 'x', 'y', true, '', '2026-01-05T01:02:03+00:00')"))
        connection.execute(sa.text(
            "INSERT INTO experts (id, name, employer, available, unavailable_reason, "
            "registered_at) VALUES ('E2', 'x', 'y', true, '', "
            "'2026-01-05T01:02:03.000001+00:00')"))
        read = connection.execute(sa.select(trading_tables.experts.c.registered_at)
                                  .order_by(trading_tables.experts.c.registered_at)
                                  ).scalars().all()
    assert read == [SAME, SAME + timedelta(microseconds=1)]
    assert complaints_tables.routing_rules.c.valid_from.type.__class__ is UtcDateTime


def test_an_audit_chain_hashed_over_the_old_text_still_verifies(backend: str,
                                                                tmp_path: Path) -> None:
    url = fresh_database_url(backend, "trading", tmp_path)
    upgrade(migrations_dir=TRADING.migrations_dir, url=url)
    engine = make_engine(url)
    table = trading_tables.audit_log
    with engine.begin() as connection:
        log = AuditLog(connection, table)
        log.append(actor=Actor("operator", "ZWFWZX-004"), action="a", subject="s",
                   at=SAME.astimezone(CHINA))
        # An entry as the log wrote it before: recorded_at from isoformat(), in China's zone.
        old_text = SAME.astimezone(CHINA).isoformat()
        connection.execute(sa.text("UPDATE audit_log SET recorded_at = :old WHERE sequence = 1"),
                           {"old": old_text})
        head = connection.execute(sa.select(table)).one()._mapping
        old = dict(head) | {"recorded_at": old_text}
        connection.execute(table.update().values(entry_hash=entry_hash(old)))
        log.append(actor=Actor("operator", "ZWFWZX-004"), action="b", subject="s")
        verification = log.verify()
        sequence, head_hash = log.head()
        checkpointed = log.verify(checkpoints=[CheckpointClaim(1, sequence, head_hash, "t")])
        entries = log.entries()
        exported = log.after(0, limit=10)
    assert verification.intact, verification.reason
    assert checkpointed.intact and checkpointed.checkpointed_sequence == 2, checkpointed.reason
    assert entries[0]["recorded_at"] == SAME
    # The export gives the text the hash covers, so an outsider verifies the old entry too.
    assert exported[0]["recorded_at"] == old_text
    new_text = exported[1]["recorded_at"]
    assert isinstance(new_text, str) and len(new_text) == 32 and new_text.endswith("+00:00")
    assert all(entry_hash(e) == e["entry_hash"] for e in exported)


def _old_review_table(name: str) -> sa.Table:
    """A review table as revision 0002 made it: instants as DateTime(timezone=True).

    Review's former column type wrote UTC (naive UTC on SQLite); so do the tests.
    """
    old = sa.MetaData()
    current = review_tables.metadata.tables[name]
    return sa.Table(name, old, *[
        sa.Column(c.name, sa.DateTime(timezone=True) if isinstance(c.type, UtcDateTime)
                  else c.type, primary_key=c.primary_key) for c in current.columns])


def test_review_instants_survive_their_migration_to_text(backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, "review", tmp_path)
    command.upgrade(alembic_config(migrations_dir=REVIEW.migrations_dir, url=url), "0002")
    engine = make_engine(url)
    due = [SAME + timedelta(days=1), SAME, SAME + timedelta(microseconds=7)]
    old_tasks = _old_review_table("tasks")
    with engine.begin() as connection:
        for n, instant in enumerate(due):
            connection.execute(old_tasks.insert().values(
                case_number=f"AP-20260105-00000{n}", stage="review", department_code="SCJGJ",
                role="reviewer", item_code="x", due_at=instant, opened_at=SAME,
                claimed_by="", claimed_at=None, closed_at=None, closed_by="", outcome=""))
        connection.execute(_old_review_table("holiday_schedules").insert().values(
            year=2027, loaded_at=SAME, loaded_by="ZWFWZX-004"))
    engine.dispose()
    upgrade(migrations_dir=REVIEW.migrations_dir, url=url)
    engine = make_engine(url)
    tasks = review_tables.tasks
    with engine.connect() as connection:
        read = connection.execute(sa.select(tasks.c.due_at, tasks.c.claimed_at)
                                  .order_by(tasks.c.due_at)).all()
        overdue = connection.execute(sa.select(sa.func.count()).select_from(tasks).where(
            tasks.c.due_at < SAME + timedelta(hours=1))).scalar()
        loaded = connection.execute(sa.select(review_tables.holiday_schedules.c.loaded_at)
                                    ).scalar_one()
        stored = connection.execute(sa.select(sa.type_coerce(tasks.c.due_at, sa.String))
                                    .order_by(tasks.c.due_at)).scalars().all()
    assert [r.due_at for r in read] == sorted(due)
    assert [r.claimed_at for r in read] == [None, None, None]
    assert overdue == 2
    assert loaded == SAME
    assert stored == [utc_text(d) for d in sorted(due)]
