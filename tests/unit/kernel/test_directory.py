from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import MetaData, create_engine

from kernel.directory import (
    Official,
    StaffDirectory,
    official_from_record,
    officials_table,
    require_official,
)
from kernel.errors import PermissionDenied, Unauthenticated
from kernel.identity import Caller

metadata = MetaData()
table = officials_table(metadata)


@pytest.fixture
def staff() -> Iterator[StaffDirectory]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.connect() as session:
        directory = StaffDirectory(session, table)
        directory.replace_all([
            Official("SCJGJ-001", "甲", "SCJGJ", frozenset({"reviewer"})),
            Official("SCJGJ-006", "乙", "SCJGJ", frozenset({"leader"})),
        ])
        yield directory


def test_an_official_with_the_role_passes(staff: StaffDirectory) -> None:
    official = require_official(staff, Caller("sys", "SCJGJ-006"), role="leader",
                                department_code="SCJGJ")
    assert official.id == "SCJGJ-006"


def test_the_wrong_role_the_wrong_department_and_strangers_are_denied(
        staff: StaffDirectory) -> None:
    with pytest.raises(PermissionDenied, match="role leader"):
        require_official(staff, Caller("sys", "SCJGJ-001"), role="leader")
    with pytest.raises(PermissionDenied, match="belongs to SCJGJ"):
        require_official(staff, Caller("sys", "SCJGJ-006"), role="leader",
                         department_code="FGW")
    with pytest.raises(PermissionDenied, match="not in the staff directory"):
        require_official(staff, Caller("sys", "ABC-123"), role="leader")
    with pytest.raises(Unauthenticated):
        require_official(staff, Caller("sys"), role="leader")


def test_unknown_roles_in_the_directory_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown roles"):
        official_from_record({"id": "A-001", "name": "x", "department_code": "A",
                              "roles": ["king"]})
