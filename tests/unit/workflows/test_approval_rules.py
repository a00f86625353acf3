"""The chain's rules (workflows/approval_rules.py) without a server: pure functions on facts.

Each refusal below breaks exactly one rule and keeps every other one, so the
act is taken when that rule is gone; the expected status is written out here,
not read from the module under test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from workflows.approval_contract import SlaState, Stage, StatementFacts, StatementKind
from workflows.approval_rules import (
    ChainState,
    RuleBroken,
    check_chain,
    check_decision,
    check_extension,
    check_procedure_end,
    check_procedure_start,
    check_withdrawal,
    next_stage,
    outcome_of,
    sla_state,
)

K = StatementKind
CASE = "AP-20261201-000001"
ACCEPTED_AT = "2026-12-01T01:00:00.000000Z"


def facts(kind: StatementKind = K.DECISION, *, official: str = "SCJGJ-003",
          department: str = "SCJGJ", roles: tuple[str, ...] = ("reviewer",),
          stage: str = Stage.REVIEW, outcome: str = "approve", on_behalf_of: str = "",
          issued_at: str = "2026-12-01T02:00:00.000000Z", case_number: str = CASE,
          procedure: str = "", days: int = 0) -> StatementFacts:
    return StatementFacts(
        kind=kind, case_number=case_number, official_id=official,
        department_code=department, roles=roles, system="department-system-scjgj",
        issued_at=issued_at, stage=stage, outcome=outcome, on_behalf_of=on_behalf_of,
        procedure=procedure, days=days)


# Who acts on the sample case (department SCJGJ, accepted by clerk SCJGJ-001).
REVIEWER = facts()
LEADER = facts(official="SCJGJ-006", roles=("leader",), stage=Stage.SIGN)
#: The department's other leader, signing for SCJGJ-006 under a delegation.
DEPUTY = replace(LEADER, official_id="SCJGJ-007", on_behalf_of="SCJGJ-006")
SEALER = facts(official="ZWFWZX-001", department="ZWFWZX", roles=("seal_custodian",),
               stage=Stage.SEAL, outcome="seal")
CLERK_WITHDRAWS = facts(K.WITHDRAWAL, official="SCJGJ-001", roles=("window_clerk",),
                        stage="", outcome="")


def state(stage: str = Stage.REVIEW, *, acted: frozenset[str] = frozenset({"SCJGJ-001"}),
          paused_for: str = "", extended: bool = False, deciding: bool = False) -> ChainState:
    return ChainState(case_number=CASE, department_code="SCJGJ", stage=stage, acted=acted,
                      special_procedures=("expert_review", "hearing"), paused_for=paused_for,
                      extended=extended, deciding=deciding)


def broken(check: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(RuleBroken) as refused:
        check()
    return refused.value.status, refused.value.message


# ---- next_stage, outcome_of -----------------------------------------------------------------

def test_each_stage_leads_to_the_next_and_the_end_takes_none() -> None:
    assert [next_stage(s) for s in ("review", "sign", "seal")] == [
        Stage.SIGN, Stage.SEAL, Stage.COMPLETED]
    for not_deciding in ("completed", "withdrawn", "approve", ""):
        assert broken(partial(next_stage, not_deciding))[0] == "InvalidArgument"


def test_the_leaders_signature_is_the_outcome() -> None:
    assert outcome_of([("review", "refuse"), ("sign", "approve")]) == "approved"
    assert outcome_of([("review", "approve"), ("sign", "refuse")]) == "refused"
    assert outcome_of([("review", "approve"), ("sign", "approve"), ("seal", "seal")]) == (
        "approved")
    assert broken(lambda: outcome_of([("review", "approve")])) == (
        "FailedPrecondition", "no leader has signed the case")


# ---- check_decision -------------------------------------------------------------------------

def test_a_decision_in_order_by_the_stages_role_and_department_is_taken() -> None:
    check_decision(state(), REVIEWER)
    check_decision(state(Stage.REVIEW), replace(REVIEWER, outcome="refuse"))
    check_decision(state(Stage.SIGN, acted=frozenset({"SCJGJ-001", "SCJGJ-003"})), LEADER)
    check_decision(state(Stage.SIGN, acted=frozenset({"SCJGJ-001", "SCJGJ-003"})), DEPUTY)
    check_decision(state(Stage.SEAL, acted=frozenset({"SCJGJ-001", "SCJGJ-003", "SCJGJ-006"})),
                   SEALER)


@pytest.mark.parametrize(("label", "chain_state", "decision", "status", "says"), [
    ("the case is finished", state(Stage.COMPLETED), replace(REVIEWER, stage=Stage.SEAL,
                                                             outcome="seal"),
     "FailedPrecondition", f"case {CASE} is finished (completed)"),
    ("the case was withdrawn", state(Stage.WITHDRAWN), REVIEWER,
     "FailedPrecondition", f"case {CASE} is finished (withdrawn)"),
    ("not a decision", state(), replace(REVIEWER, kind=K.EXTENSION),
     "InvalidArgument", "a extension statement is not a decision"),
    ("another case", state(), replace(REVIEWER, case_number="AP-20261201-000002"),
     "PermissionDenied", "the statement is about case AP-20261201-000002"),
    ("no deciding stage", state(), replace(REVIEWER, stage="completed"),
     "InvalidArgument", "completed is not a stage that takes a decision"),
    ("another stage", state(Stage.SIGN, acted=frozenset({"SCJGJ-001", "SCJGJ-003"})),
     replace(LEADER, stage=Stage.REVIEW, roles=("leader", "reviewer")),
     "FailedPrecondition", f"case {CASE} is at sign, not at review"),
    ("another decision is being taken", state(deciding=True), REVIEWER,
     "FailedPrecondition", f"case {CASE} is at review"),
    ("seal at review", state(), replace(REVIEWER, outcome="seal"),
     "InvalidArgument", "at review the decision is one of approve, refuse"),
    ("approve at the seal", state(Stage.SEAL), replace(SEALER, outcome="approve"),
     "InvalidArgument", "at seal the decision is one of seal"),
    ("a leader reviews", state(), replace(LEADER, stage=Stage.REVIEW),
     "PermissionDenied", "official SCJGJ-006 is not a reviewer"),
    ("a reviewer signs", state(Stage.SIGN), replace(REVIEWER, stage=Stage.SIGN,
                                                     official_id="SCJGJ-004"),
     "PermissionDenied", "official SCJGJ-004 is not a leader"),
    ("a reviewer of another department", state(),
     replace(REVIEWER, official_id="FGW-003", department_code="FGW"),
     "PermissionDenied", f"case {CASE} is decided by SCJGJ, not by FGW"),
    ("a seal custodian outside the center", state(Stage.SEAL),
     replace(SEALER, official_id="SCJGJ-009", department_code="SCJGJ"),
     "PermissionDenied", f"case {CASE} is decided by ZWFWZX, not by SCJGJ"),
    ("the clerk reviews", state(), replace(REVIEWER, official_id="SCJGJ-001",
                                           roles=("reviewer", "window_clerk")),
     "PermissionDenied", "one person acts once on a case"),
    ("the reviewer signs too", state(Stage.SIGN, acted=frozenset({"SCJGJ-001", "SCJGJ-006"})),
     LEADER, "PermissionDenied", "official SCJGJ-006 has already acted"),
    ("a deputy for a leader who acted",
     state(Stage.SIGN, acted=frozenset({"SCJGJ-001", "SCJGJ-006"})), DEPUTY,
     "PermissionDenied", "official SCJGJ-007 has already acted"),
    ("a deputy who acted", state(Stage.SIGN, acted=frozenset({"SCJGJ-001", "SCJGJ-007"})),
     DEPUTY, "PermissionDenied", "official SCJGJ-007 has already acted"),
    ("the clock is paused", state(paused_for="expert_review"), REVIEWER,
     "FailedPrecondition", f"case {CASE} is paused for expert_review"),
])
def test_a_decision_that_breaks_one_rule_is_refused(
        label: str, chain_state: ChainState, decision: StatementFacts, status: str,
        says: str) -> None:
    refused = broken(lambda: check_decision(chain_state, decision))
    assert refused[0] == status, label
    assert says in refused[1], label


# ---- check_withdrawal -------------------------------------------------------------------

def test_a_window_clerk_of_the_cases_department_withdraws_it_at_any_open_stage() -> None:
    for stage in (Stage.REVIEW, Stage.SIGN, Stage.SEAL):
        check_withdrawal(state(stage), CLERK_WITHDRAWS)


@pytest.mark.parametrize(("label", "chain_state", "withdrawal", "status", "says"), [
    ("the case is sealed", state(Stage.COMPLETED), CLERK_WITHDRAWS,
     "FailedPrecondition", f"case {CASE} is finished (completed)"),
    ("the case was withdrawn", state(Stage.WITHDRAWN), CLERK_WITHDRAWS,
     "FailedPrecondition", f"case {CASE} is finished (withdrawn)"),
    ("not a withdrawal", state(), replace(CLERK_WITHDRAWS, kind=K.DECISION),
     "InvalidArgument", "a decision statement is not a withdrawal"),
    ("another case", state(), replace(CLERK_WITHDRAWS, case_number="AP-20261201-000002"),
     "PermissionDenied", "about case AP-20261201-000002"),
    ("a decision is being taken", state(deciding=True), CLERK_WITHDRAWS,
     "FailedPrecondition", "is being decided"),
    ("a reviewer withdraws", state(), replace(CLERK_WITHDRAWS, roles=("reviewer",)),
     "PermissionDenied", "a withdrawal is taken by a window clerk"),
    ("a clerk of another department", state(),
     replace(CLERK_WITHDRAWS, official_id="FGW-001", department_code="FGW"),
     "PermissionDenied", f"case {CASE} belongs to SCJGJ"),
])
def test_a_withdrawal_that_breaks_one_rule_is_refused(
        label: str, chain_state: ChainState, withdrawal: StatementFacts, status: str,
        says: str) -> None:
    refused = broken(lambda: check_withdrawal(chain_state, withdrawal))
    assert refused[0] == status, label
    assert says in refused[1], label


# ---- special procedures -------------------------------------------------------------------

START = facts(K.PROCEDURE_START, stage="", outcome="", procedure="expert_review")
END = replace(START, kind=K.PROCEDURE_END)


def test_the_deciding_division_pauses_and_resumes_the_clock() -> None:
    check_procedure_start(state(), START)
    check_procedure_start(state(Stage.SIGN), replace(START, official_id="SCJGJ-006",
                                                     roles=("leader",)))
    check_procedure_end(state(paused_for="expert_review"), END)
    check_procedure_end(state(paused_for="expert_review"),
                        replace(END, official_id="SCJGJ-006", roles=("leader",)))


@pytest.mark.parametrize(("label", "chain_state", "start", "status", "says"), [
    ("the case is finished", state(Stage.COMPLETED), START,
     "FailedPrecondition", "is finished"),
    ("not a start", state(), END, "InvalidArgument", "is not a procedure_start"),
    ("another case", state(), replace(START, case_number="AP-20261201-000002"),
     "PermissionDenied", "about case AP-20261201-000002"),
    ("by a window clerk", state(), replace(START, roles=("window_clerk",)),
     "PermissionDenied", "started and ended by the deciding division"),
    ("by another department", state(), replace(START, official_id="FGW-003",
                                               department_code="FGW"),
     "PermissionDenied", f"case {CASE} belongs to SCJGJ"),
    ("a procedure the item does not allow", state(),
     replace(START, procedure="appraisal"),
     "FailedPrecondition", "does not allow appraisal"),
    ("already paused", state(paused_for="hearing"), START,
     "FailedPrecondition", "already paused for hearing"),
])
def test_a_procedure_start_that_breaks_one_rule_is_refused(
        label: str, chain_state: ChainState, start: StatementFacts, status: str,
        says: str) -> None:
    refused = broken(lambda: check_procedure_start(chain_state, start))
    assert refused[0] == status, label
    assert says in refused[1], label


@pytest.mark.parametrize(("label", "chain_state", "end", "status", "says"), [
    ("the case is finished", state(Stage.COMPLETED, paused_for="expert_review"), END,
     "FailedPrecondition", "is finished"),
    ("not an end", state(paused_for="expert_review"), START,
     "InvalidArgument", "is not a procedure_end"),
    ("another case", state(paused_for="expert_review"),
     replace(END, case_number="AP-20261201-000002"),
     "PermissionDenied", "about case AP-20261201-000002"),
    ("by a window clerk", state(paused_for="expert_review"),
     replace(END, roles=("window_clerk",)),
     "PermissionDenied", "started and ended by the deciding division"),
    ("by another department", state(paused_for="expert_review"),
     replace(END, official_id="FGW-003", department_code="FGW"),
     "PermissionDenied", f"case {CASE} belongs to SCJGJ"),
    ("not paused", state(), END, "FailedPrecondition", "the clock is not paused"),
    ("paused for another procedure", state(paused_for="hearing"), END,
     "FailedPrecondition", "paused for hearing, not expert_review"),
])
def test_a_procedure_end_that_breaks_one_rule_is_refused(
        label: str, chain_state: ChainState, end: StatementFacts, status: str,
        says: str) -> None:
    refused = broken(lambda: check_procedure_end(chain_state, end))
    assert refused[0] == status, label
    assert says in refused[1], label


# ---- extension ------------------------------------------------------------------------------

EXTENSION = replace(LEADER, kind=K.EXTENSION, stage="", outcome="", days=10)


def test_a_leader_of_the_department_extends_by_one_to_ten_working_days() -> None:
    for days in (1, 10):
        check_extension(state(), replace(EXTENSION, days=days))
    check_extension(state(Stage.SEAL), EXTENSION)


@pytest.mark.parametrize(("label", "chain_state", "extension", "status", "says"), [
    ("the case is finished", state(Stage.COMPLETED), EXTENSION,
     "FailedPrecondition", "is finished"),
    ("not an extension", state(), replace(EXTENSION, kind=K.PROCEDURE_START),
     "InvalidArgument", "is not a extension"),
    ("another case", state(), replace(EXTENSION, case_number="AP-20261201-000002"),
     "PermissionDenied", "about case AP-20261201-000002"),
    ("by a reviewer", state(), replace(EXTENSION, roles=("reviewer",)),
     "PermissionDenied", "is not a leader"),
    ("by a leader of another department", state(),
     replace(EXTENSION, official_id="FGW-006", department_code="FGW"),
     "PermissionDenied", "not by FGW"),
    ("extended already", state(extended=True), EXTENSION,
     "FailedPrecondition", "was extended already"),
    ("no days", state(), replace(EXTENSION, days=0),
     "InvalidArgument", "1 to 10 working days"),
    ("eleven days", state(), replace(EXTENSION, days=11),
     "InvalidArgument", "1 to 10 working days"),
])
def test_an_extension_that_breaks_one_rule_is_refused(
        label: str, chain_state: ChainState, extension: StatementFacts, status: str,
        says: str) -> None:
    refused = broken(lambda: check_extension(chain_state, extension))
    assert refused[0] == status, label
    assert says in refused[1], label


# ---- sla_state ------------------------------------------------------------------------------

def test_the_case_turns_yellow_at_the_warning_and_red_at_the_promised_deadline() -> None:
    warning = datetime(2026, 12, 7, 15, 59, 59, tzinfo=UTC)
    due = warning + timedelta(days=1)
    second = timedelta(seconds=1)

    def at(now: datetime, paused: bool = False) -> SlaState:
        return sla_state(now=now, warning_at=warning, promised_due_at=due, paused=paused)

    assert [at(warning - second), at(warning), at(due - second), at(due), at(due + second)] == [
        SlaState.ON_TIME, SlaState.WARNING, SlaState.WARNING, SlaState.BREACHED,
        SlaState.BREACHED]
    # A special procedure stops the clock: no colour, even long past the deadline.
    assert [at(warning - second, True), at(due + timedelta(days=30), True)] == [
        SlaState.PAUSED, SlaState.PAUSED]


# ---- check_chain ----------------------------------------------------------------------------

ACCEPTANCE = facts(K.ACCEPTANCE, official="SCJGJ-001", roles=("window_clerk",), stage="",
                   outcome="", issued_at=ACCEPTED_AT)
CHAIN = (
    replace(REVIEWER, issued_at="2026-12-01T02:00:00.000000Z"),
    replace(LEADER, issued_at="2026-12-01T03:00:00.000000Z"),
    replace(SEALER, issued_at="2026-12-01T04:00:00.000000Z"),
)


def chain(review: Mapping[str, object] | None = None,
          sign: Mapping[str, object] | None = None,
          seal: Mapping[str, object] | None = None) -> list[StatementFacts]:
    """The good chain with some fields of some statements changed."""
    return [replace(step, **(changes or {}))  # type: ignore[arg-type]
            for step, changes in zip(CHAIN, (review, sign, seal), strict=True)]


def test_a_whole_chain_in_order_is_sealed_with_the_leaders_outcome() -> None:
    assert check_chain(ACCEPTANCE, chain()) == "approved"
    assert check_chain(ACCEPTANCE, chain(review={"outcome": "refuse"})) == "approved"
    assert check_chain(ACCEPTANCE, chain(sign={"outcome": "refuse"})) == "refused"
    assert check_chain(ACCEPTANCE, chain(review={"outcome": "refuse"},
                                         sign={"outcome": "refuse"})) == "refused"
    deputy = {"official_id": "SCJGJ-007", "on_behalf_of": "SCJGJ-006"}
    assert check_chain(ACCEPTANCE, chain(sign=deputy)) == "approved"
    # Statements signed in the same microsecond are in order.
    same_time = {"issued_at": CHAIN[0].issued_at}
    assert check_chain(ACCEPTANCE, chain(sign=same_time, seal=same_time)) == "approved"


def test_a_chain_of_other_stages_is_refused() -> None:
    review, sign, seal = CHAIN
    later_sign = replace(sign, issued_at="2026-12-01T05:00:00.000000Z")
    for stages in ([review, sign], [review, seal, later_sign], [review, sign, later_sign],
                   [sign, review, seal], [review, sign, seal, seal], [sign, seal],
                   [review, review, sign, seal], []):
        status, message = broken(partial(check_chain, ACCEPTANCE, stages))
        assert status == "FailedPrecondition", [f.stage for f in stages]
        assert "needs review, sign and seal in order" in message


@pytest.mark.parametrize(("label", "steps", "status", "says"), [
    ("a withdrawal in the review's place", chain(review={"kind": K.WITHDRAWAL}),
     "PermissionDenied", "a review statement is not a decision on case"),
    ("a sign of another case", chain(sign={"case_number": "AP-20261201-000002"}),
     "PermissionDenied", "a sign statement is not a decision on case"),
    ("seal as the review's outcome", chain(review={"outcome": "seal"}),
     "InvalidArgument", "seal is not a review outcome"),
    ("approve as the seal's outcome", chain(seal={"outcome": "approve"}),
     "InvalidArgument", "approve is not a seal outcome"),
    ("signed by a reviewer", chain(sign={"official_id": "SCJGJ-004", "roles": ("reviewer",)}),
     "PermissionDenied", "official SCJGJ-004 is not a leader"),
    ("reviewed by a leader", chain(review={"official_id": "SCJGJ-007", "roles": ("leader",)}),
     "PermissionDenied", "official SCJGJ-007 is not a reviewer"),
    ("sealed by a clerk of the center",
     chain(seal={"roles": ("window_clerk",)}),
     "PermissionDenied", "official ZWFWZX-001 is not a seal_custodian"),
    ("reviewed by another department",
     chain(review={"official_id": "FGW-003", "department_code": "FGW"}),
     "PermissionDenied", "decided by SCJGJ, not by FGW"),
    ("sealed outside the center",
     chain(seal={"official_id": "SCJGJ-009", "department_code": "SCJGJ"}),
     "PermissionDenied", "decided by ZWFWZX, not by SCJGJ"),
    ("the clerk reviews",
     chain(review={"official_id": "SCJGJ-001", "roles": ("reviewer", "window_clerk")}),
     "PermissionDenied", "official SCJGJ-001 has already acted"),
    ("the reviewer signs",
     chain(review={"official_id": "SCJGJ-006", "roles": ("leader", "reviewer")}),
     "PermissionDenied", "official SCJGJ-006 has already acted"),
    ("a deputy for the reviewer",
     chain(review={"official_id": "SCJGJ-006", "roles": ("leader", "reviewer")},
           sign={"official_id": "SCJGJ-007", "on_behalf_of": "SCJGJ-006"}),
     "PermissionDenied", "official SCJGJ-007 has already acted"),
    ("the leader seals", chain(seal={"official_id": "SCJGJ-006"}),
     "PermissionDenied", "official SCJGJ-006 has already acted"),
    ("reviewed before the acceptance",
     chain(review={"issued_at": "2026-12-01T00:59:59.999999Z"}),
     "FailedPrecondition", "the review statement predates the step before it"),
    ("signed before the review", chain(sign={"issued_at": "2026-12-01T01:30:00.000000Z"}),
     "FailedPrecondition", "the sign statement predates the step before it"),
    ("sealed before the signature", chain(seal={"issued_at": "2026-12-01T02:30:00.000000Z"}),
     "FailedPrecondition", "the seal statement predates the step before it"),
])
def test_a_chain_that_breaks_one_rule_is_refused(
        label: str, steps: list[StatementFacts], status: str, says: str) -> None:
    refused = broken(lambda: check_chain(ACCEPTANCE, steps))
    assert refused[0] == status, label
    assert says in refused[1], label
