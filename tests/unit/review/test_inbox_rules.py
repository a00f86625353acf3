"""Who sees which tasks, who may claim them, and how a deputy acts for a leader."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from kernel.directory import Official
from kernel.errors import FailedPrecondition, PermissionDenied
from services.review.domain.model import Delegation
from services.review.domain.tasks import (
    Task,
    acting_capacity,
    check_not_claimed_by_another,
    claim,
    inbox_scope,
)

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
REVIEWER = Official("SCJGJ-003", "甲", "SCJGJ", frozenset({"reviewer"}))
OTHER_REVIEWER = Official("SCJGJ-004", "乙", "SCJGJ", frozenset({"reviewer"}))
#: The department's other leader: a deputy holds the leader role itself.
DEPUTY = Official("SCJGJ-007", "丙", "SCJGJ", frozenset({"leader"}))
LEADER = Official("SCJGJ-006", "丁", "SCJGJ", frozenset({"leader"}))
SEALER = Official("ZWFWZX-001", "戊", "ZWFWZX", frozenset({"seal_custodian"}))
SUPERVISOR = Official("JJZ-001", "己", "JJZ", frozenset({"supervisor"}))
DELEGATION = Delegation(leader_id="SCJGJ-006", deputy_id="SCJGJ-007", department_code="SCJGJ",
                        valid_from=NOW - timedelta(hours=1), valid_until=NOW + timedelta(days=1),
                        reason="出差", granted_at=NOW - timedelta(hours=1), id=7)
REVIEW_TASK = Task(case_number="AP-1", stage="review", department_code="SCJGJ", role="reviewer",
                   item_code="012101000001000", due_at=NOW + timedelta(days=5), opened_at=NOW)


def test_a_reviewer_sees_the_review_tasks_of_their_department_only() -> None:
    scope = inbox_scope(REVIEWER, department_code="", stage="", delegations_in_force=[])
    assert scope.pairs == {("SCJGJ", "review")}
    assert not scope.oversight


def test_a_seal_custodian_sees_the_centers_seal_tasks() -> None:
    scope = inbox_scope(SEALER, department_code="", stage="", delegations_in_force=[])
    assert scope.pairs == {("ZWFWZX", "seal")}


def test_a_deputy_under_a_delegation_sees_the_sign_tasks_of_the_department() -> None:
    scope = inbox_scope(DEPUTY, department_code="", stage="", delegations_in_force=[DELEGATION])
    assert scope.pairs == {("SCJGJ", "sign")}


def test_a_supervisor_reads_any_department() -> None:
    scope = inbox_scope(SUPERVISOR, department_code="FGW", stage="sign",
                        delegations_in_force=[])
    assert scope.oversight
    assert (scope.oversight_department, scope.oversight_stages) == ("FGW", ("sign",))


@pytest.mark.parametrize(("department", "stage"), [("FGW", ""), ("", "sign"), ("", "seal")])
def test_asking_for_an_inbox_one_has_no_part_in_is_refused(department: str, stage: str) -> None:
    with pytest.raises(PermissionDenied):
        inbox_scope(REVIEWER, department_code=department, stage=stage, delegations_in_force=[])


def test_an_official_with_the_role_acts_in_their_own_right() -> None:
    capacity = acting_capacity(LEADER, role="leader", delegations_in_force=[DELEGATION])
    assert (capacity.on_behalf_of, capacity.delegation_id) == ("", 0)


def test_a_deputy_signs_for_the_leader_under_the_delegation() -> None:
    capacity = acting_capacity(DEPUTY, role="leader", delegations_in_force=[DELEGATION])
    assert capacity.on_behalf_of == "SCJGJ-006"
    assert capacity.delegation_id == 7
    assert "leader" in capacity.roles
    assert capacity.department_code == "SCJGJ"


def test_a_delegation_gives_no_other_role_than_the_leaders() -> None:
    capacity = acting_capacity(SUPERVISOR, role="reviewer", delegations_in_force=[DELEGATION])
    assert capacity.on_behalf_of == ""
    assert "reviewer" not in capacity.roles


def test_a_delegation_to_one_without_the_leader_role_gives_no_signature() -> None:
    # Such a delegation is refused when granted; one in the data still confers nothing.
    to_reviewer = replace(DELEGATION, deputy_id=REVIEWER.id)
    capacity = acting_capacity(REVIEWER, role="leader", delegations_in_force=[to_reviewer])
    assert (capacity.on_behalf_of, capacity.delegation_id) == ("", 0)
    assert "leader" not in capacity.roles


def test_a_claim_takes_an_unclaimed_task() -> None:
    capacity = acting_capacity(REVIEWER, role="reviewer", delegations_in_force=[])
    claimed = claim(REVIEW_TASK, capacity, now=NOW, earlier_deciders=[])
    assert (claimed.claimed_by, claimed.claimed_at) == ("SCJGJ-003", NOW)


def test_claiming_ones_own_task_again_changes_nothing() -> None:
    mine = replace(REVIEW_TASK, claimed_by="SCJGJ-003", claimed_at=NOW - timedelta(hours=1))
    capacity = acting_capacity(REVIEWER, role="reviewer", delegations_in_force=[])
    assert claim(mine, capacity, now=NOW, earlier_deciders=[]) == mine


def test_a_task_claimed_by_another_cannot_be_claimed() -> None:
    theirs = replace(REVIEW_TASK, claimed_by="SCJGJ-004", claimed_at=NOW)
    capacity = acting_capacity(REVIEWER, role="reviewer", delegations_in_force=[])
    with pytest.raises(FailedPrecondition, match="claimed by SCJGJ-004"):
        claim(theirs, capacity, now=NOW, earlier_deciders=[])


def test_a_closed_task_cannot_be_claimed() -> None:
    closed = replace(REVIEW_TASK, closed_at=NOW, closed_by="SCJGJ-004", outcome="approve")
    capacity = acting_capacity(REVIEWER, role="reviewer", delegations_in_force=[])
    with pytest.raises(FailedPrecondition, match="closed"):
        claim(closed, capacity, now=NOW, earlier_deciders=[])


def test_a_claim_needs_the_tasks_role_and_department() -> None:
    with pytest.raises(PermissionDenied, match="role reviewer"):
        claim(REVIEW_TASK, acting_capacity(LEADER, role="reviewer", delegations_in_force=[]),
              now=NOW, earlier_deciders=[])
    foreign = Official("FGW-003", "庚", "FGW", frozenset({"reviewer"}))
    with pytest.raises(PermissionDenied, match="belongs to SCJGJ"):
        claim(REVIEW_TASK, acting_capacity(foreign, role="reviewer", delegations_in_force=[]),
              now=NOW, earlier_deciders=[])


def test_someone_who_already_acted_on_the_case_cannot_claim_it() -> None:
    sign_task = replace(REVIEW_TASK, stage="sign", role="leader")
    capacity = acting_capacity(DEPUTY, role="leader", delegations_in_force=[DELEGATION])
    # The deputy acted on the case already: signing it too, even for the leader, is twice.
    with pytest.raises(PermissionDenied, match="acts once"):
        claim(sign_task, capacity, now=NOW, earlier_deciders=["SCJGJ-007"])
    # Nor may a deputy sign for a leader who already acted on the case.
    with pytest.raises(PermissionDenied, match="acts once"):
        claim(sign_task, capacity, now=NOW, earlier_deciders=["SCJGJ-006"])


def test_a_decision_is_refused_only_on_a_task_another_official_holds() -> None:
    check_not_claimed_by_another(None, "SCJGJ-003")
    check_not_claimed_by_another(REVIEW_TASK, "SCJGJ-003")
    check_not_claimed_by_another(replace(REVIEW_TASK, claimed_by="SCJGJ-003"), "SCJGJ-003")
    # A closed task is the workflow's to judge, so a replayed decision gets its receipt.
    check_not_claimed_by_another(
        replace(REVIEW_TASK, claimed_by="SCJGJ-004", closed_at=NOW), "SCJGJ-003")
    with pytest.raises(FailedPrecondition):
        check_not_claimed_by_another(replace(REVIEW_TASK, claimed_by="SCJGJ-004"), "SCJGJ-003")
