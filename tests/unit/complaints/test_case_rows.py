"""The rows intake writes past SQLAlchemy's parameter handling keep the table's defaults."""

from __future__ import annotations

from services.complaints.db import repository, tables


def test_a_new_case_row_gives_every_python_side_default_of_the_table() -> None:
    # insert_rows does not apply Column(default=...): add_all must give each such column
    # itself, the value the table's default gives, or a new default would be lost.
    defaults = {column.name: column.default.arg  # type: ignore[attr-defined]
                for column in tables.complaint_cases.c if column.default is not None}
    assert defaults == repository._NEW_CASE_DEFAULTS


def test_a_new_case_row_writes_only_columns_the_table_has() -> None:
    names = set(tables.complaint_cases.c.keys())
    assert set(repository._NEW_CASE_COLUMNS) <= names
    assert len(set(repository._NEW_CASE_COLUMNS)) == len(repository._NEW_CASE_COLUMNS)
