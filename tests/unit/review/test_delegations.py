"""The rules of leaders' delegations, without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from kernel.directory import Official
from kernel.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.review.domain.model import (
    CLOCK_TOLERANCE,
    MAX_DELEGATION,
    Delegation,
    grant_delegation,
    revoke_delegation,
)

NOW = datetime(2026, 5, 11, 2, 0, tzinfo=UTC)
LEADER = Official("SCJGJ-006", "甲", "SCJGJ", frozenset({"leader"}))
DEPUTY = Official("SCJGJ-007", "乙", "SCJGJ", frozenset({"leader"}))
OTHER_LEADER = Official("FGW-006", "丙", "FGW", frozenset({"leader"}))
CLERK = Official("SCJGJ-001", "丁", "SCJGJ", frozenset({"window_clerk"}))
OPERATOR = Official("ZWFWZX-004", "戊", "ZWFWZX", frozenset({"operator"}))


def _grant(*, leader: Official = LEADER, deputy: Official = DEPUTY,
           valid_from: datetime | None = None, days: float = 5, reason: str = "出差",
           existing: tuple[Delegation, ...] = ()) -> Delegation:
    start = valid_from or NOW
    return grant_delegation(leader=leader, deputy=deputy, valid_from=valid_from,
                            valid_until=start + timedelta(days=days), reason=reason, now=NOW,
                            leaders_delegations=existing)


def test_a_grant_without_start_begins_now_in_the_leaders_department() -> None:
    delegation = _grant()
    assert delegation.valid_from == NOW
    assert delegation.granted_at == NOW
    assert delegation.department_code == "SCJGJ"
    assert (delegation.leader_id, delegation.deputy_id) == ("SCJGJ-006", "SCJGJ-007")
    assert delegation.in_force_at(NOW)
    assert delegation.state_at(NOW) == "in_force"


def test_only_a_leader_can_delegate() -> None:
    with pytest.raises(PermissionDenied):
        _grant(leader=CLERK)


def test_a_deputy_of_another_department_is_refused() -> None:
    with pytest.raises(FailedPrecondition, match="FGW"):
        _grant(deputy=OTHER_LEADER)


@pytest.mark.parametrize("deputy", [
    Official("SCJGJ-003", "己", "SCJGJ", frozenset({"reviewer"})), CLERK])
def test_signing_is_delegated_only_to_another_leader(deputy: Official) -> None:
    with pytest.raises(FailedPrecondition, match="holds no leader role"):
        _grant(deputy=deputy)


def test_a_leader_cannot_be_their_own_deputy() -> None:
    with pytest.raises(InvalidArgument) as refused:
        _grant(deputy=LEADER)
    assert [v.field for v in refused.value.violations] == ["deputy_id"]


def test_a_delegation_must_end_after_it_begins() -> None:
    with pytest.raises(InvalidArgument) as refused:
        _grant(days=0)
    assert [v.field for v in refused.value.violations] == ["period"]


def test_a_delegation_lasts_at_most_ninety_days() -> None:
    assert _grant(days=90).valid_until - NOW == MAX_DELEGATION
    with pytest.raises(InvalidArgument, match="90 days"):
        _grant(days=90 + 1 / 24)


def test_a_delegation_cannot_be_backdated_beyond_clock_tolerance() -> None:
    assert _grant(valid_from=NOW - CLOCK_TOLERANCE).valid_from == NOW - CLOCK_TOLERANCE
    with pytest.raises(InvalidArgument) as refused:
        _grant(valid_from=NOW - CLOCK_TOLERANCE - timedelta(seconds=1))
    assert [v.field for v in refused.value.violations] == ["period.valid_from"]


@pytest.mark.parametrize("reason", ["", "   ", "长" * 201])
def test_a_reason_is_required_and_bounded(reason: str) -> None:
    with pytest.raises(InvalidArgument):
        _grant(reason=reason)


def test_overlapping_delegations_of_one_leader_are_refused() -> None:
    first = replace(_grant(valid_from=NOW + timedelta(days=10), days=5), id=7)
    with pytest.raises(FailedPrecondition, match="delegation 7"):
        _grant(valid_from=NOW + timedelta(days=14), days=5, existing=(first,))
    with pytest.raises(FailedPrecondition):
        _grant(valid_from=NOW + timedelta(days=5), days=20, existing=(first,))


def test_back_to_back_delegations_do_not_overlap() -> None:
    first = replace(_grant(valid_from=NOW + timedelta(days=10), days=5), id=7)
    second = _grant(valid_from=first.valid_until, days=5, existing=(first,))
    before = _grant(valid_from=NOW + timedelta(days=5), days=5, existing=(first,))
    assert second.valid_from == first.valid_until
    assert before.valid_until == first.valid_from


def test_a_revoked_delegation_frees_the_rest_of_its_time() -> None:
    first = replace(_grant(days=30), id=7)
    revoked = revoke_delegation(first, by=LEADER, reason="提前返岗",
                                now=NOW + timedelta(days=2))
    again = _grant(valid_from=NOW + timedelta(days=3), days=10, existing=(revoked,))
    assert again.valid_from == NOW + timedelta(days=3)
    with pytest.raises(FailedPrecondition):
        _grant(valid_from=NOW + timedelta(days=1), days=10, existing=(revoked,))


def test_in_force_covers_valid_from_but_not_valid_until() -> None:
    delegation = _grant(valid_from=NOW + timedelta(hours=1), days=1)
    assert delegation.state_at(NOW) == "scheduled"
    assert not delegation.in_force_at(NOW)
    assert delegation.in_force_at(delegation.valid_from)
    assert not delegation.in_force_at(delegation.valid_until)
    assert delegation.state_at(delegation.valid_until) == "ended"


def test_the_leader_revokes_and_the_delegation_is_kept_marked() -> None:
    delegation = replace(_grant(days=10), id=3)
    later = NOW + timedelta(days=1)
    revoked = revoke_delegation(delegation, by=LEADER, reason="提前返岗", now=later)
    assert revoked.revoked_at == later
    assert revoked.revoked_by == "SCJGJ-006"
    assert revoked.revocation_reason == "提前返岗"
    assert revoked.in_force_at(later - timedelta(seconds=1))
    assert not revoked.in_force_at(later)
    assert revoked.state_at(later) == "revoked"
    assert revoked.valid_until == delegation.valid_until


def test_an_operator_may_revoke_but_nobody_else() -> None:
    delegation = replace(_grant(days=10), id=3)
    assert revoke_delegation(delegation, by=OPERATOR, reason="领导返岗",
                             now=NOW).revoked_by == "ZWFWZX-004"
    for stranger in (DEPUTY, OTHER_LEADER, CLERK):
        with pytest.raises(PermissionDenied):
            revoke_delegation(delegation, by=stranger, reason="x", now=NOW)


def test_a_delegation_is_revoked_once_and_never_after_it_ended() -> None:
    delegation = replace(_grant(days=1), id=3)
    revoked = revoke_delegation(delegation, by=LEADER, reason="返岗", now=NOW)
    with pytest.raises(FailedPrecondition, match="already revoked"):
        revoke_delegation(revoked, by=LEADER, reason="返岗", now=NOW)
    with pytest.raises(FailedPrecondition, match="ended"):
        revoke_delegation(delegation, by=LEADER, reason="返岗",
                          now=delegation.valid_until)


def test_a_scheduled_delegation_revoked_early_is_never_in_force() -> None:
    delegation = replace(_grant(valid_from=NOW + timedelta(days=3), days=2), id=3)
    revoked = revoke_delegation(delegation, by=LEADER, reason="取消出差", now=NOW)
    assert not revoked.in_force_at(NOW + timedelta(days=4))
    assert revoked.state_at(NOW + timedelta(days=4)) == "revoked"


def test_times_without_a_zone_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        Delegation(leader_id="SCJGJ-006", deputy_id="SCJGJ-007", department_code="SCJGJ",
                   valid_from=datetime(2026, 5, 1), valid_until=datetime(2026, 5, 2),
                   reason="出差", granted_at=NOW)
