from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import MetaData, create_engine

from kernel.directory import (
    Official,
    StaffDirectory,
    acting_official,
    official_from_record,
    officials_table,
    require_official,
    require_voice,
)
from kernel.errors import PermissionDenied, Unauthenticated
from kernel.identity import Caller
from kernel.systems import EVERY, CallingSystem, DepartmentRole

#: A system speaking for SCJGJ's reviewers and leaders, and for window clerks everywhere.
SCJGJ_SYSTEM = CallingSystem("sys", speaks_for=frozenset({
    DepartmentRole("SCJGJ", "reviewer"), DepartmentRole("SCJGJ", "leader"),
    DepartmentRole(EVERY, "window_clerk")}))


def _caller(official_id: str = "", scope: CallingSystem | None = SCJGJ_SYSTEM) -> Caller:
    return Caller("sys", official_id, scope)

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
            Official("FGW-006", "丙", "FGW", frozenset({"leader"})),
            Official("FGW-001", "丁", "FGW", frozenset({"window_clerk", "reviewer"})),
        ])
        yield directory


def test_an_official_with_the_role_passes(staff: StaffDirectory) -> None:
    official = require_official(staff, _caller("SCJGJ-006"), role="leader",
                                department_code="SCJGJ")
    assert official.id == "SCJGJ-006"


def test_the_wrong_role_the_wrong_department_and_strangers_are_denied(
        staff: StaffDirectory) -> None:
    with pytest.raises(PermissionDenied, match="role leader"):
        require_official(staff, _caller("SCJGJ-001"), role="leader")
    with pytest.raises(PermissionDenied, match="belongs to SCJGJ"):
        require_official(staff, _caller("SCJGJ-006"), role="leader",
                         department_code="FGW")
    with pytest.raises(PermissionDenied, match="not in the staff directory"):
        require_official(staff, _caller("ABC-123"), role="leader")
    with pytest.raises(Unauthenticated):
        require_official(staff, _caller(), role="leader")


def test_an_official_the_system_may_not_speak_for_is_denied(staff: StaffDirectory) -> None:
    # FGW's leader holds the role, but the system speaks for SCJGJ's leaders only.
    refusal = r"system sys may not speak for official FGW-006 \(leader of FGW\)"
    with pytest.raises(PermissionDenied, match=refusal):
        require_official(staff, _caller("FGW-006"), role="leader")
    with pytest.raises(PermissionDenied, match=refusal):
        acting_official(staff, _caller("FGW-006"))
    # Asked for a role they do not hold, they are refused for the system first.
    with pytest.raises(PermissionDenied, match=refusal):
        require_official(staff, _caller("FGW-006"), role="operator")
    # A caller made outside an RPC carries no registry entry: it speaks for nobody.
    with pytest.raises(PermissionDenied, match="may not speak for official SCJGJ-006"):
        require_official(staff, _caller("SCJGJ-006", scope=None), role="leader")


def test_the_official_acts_with_the_roles_the_system_speaks_for(
        staff: StaffDirectory) -> None:
    # FGW-001 is a clerk and a reviewer; the system speaks for FGW's clerks (everywhere) only.
    acting = acting_official(staff, _caller("FGW-001"))
    assert acting.roles == frozenset({"window_clerk"})
    assert require_official(staff, _caller("FGW-001"), role="window_clerk").roles == \
        frozenset({"window_clerk"})
    with pytest.raises(PermissionDenied, match="may not speak for a reviewer of FGW"):
        require_official(staff, _caller("FGW-001"), role="reviewer")
    # A role held by delegation, not in the directory, is checked on its own.
    require_voice(_caller(), "SCJGJ", "leader")
    with pytest.raises(PermissionDenied, match="may not speak for a leader of FGW"):
        require_voice(_caller(), "FGW", "leader")


def test_unknown_roles_in_the_directory_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown roles"):
        official_from_record({"id": "A-001", "name": "x", "department_code": "A",
                              "roles": ["king"]})
