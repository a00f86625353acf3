"""The rules of the four-single chain, as pure functions: no Temporal, no database.

The approval workflow checks every act against these before it takes it;
review's domain uses the same rules for its inbox, and intake checks a whole
chain with ``check_chain`` before it seals. A broken rule raises
``RuleBroken`` whose ``status`` names the gRPC status a caller gets.

The chain: the window accepts (a window clerk of the item's department);
the division reviews (a reviewer of that department: approve or refuse);
a leader of that department signs — every proposal, a refusal included —
and the leader's outcome is the decision; a seal custodian of the center
seals. One person acts once on a case, in person or through a deputy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from workflows.approval_contract import (
    CENTER_DEPARTMENT,
    MAX_EXTENSION_DAYS,
    STAGE_ROLE,
    TERMINAL,
    Outcome,
    SlaState,
    Stage,
    StatementFacts,
    StatementKind,
)

FAILED_PRECONDITION = "FailedPrecondition"
PERMISSION_DENIED = "PermissionDenied"
INVALID_ARGUMENT = "InvalidArgument"


class RuleBroken(Exception):
    """An act the chain does not take; ``status`` is the gRPC status it answers with."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ChainState:
    """What the rules need to know of a running case."""

    case_number: str
    department_code: str
    stage: str
    #: Everyone who acted on the case so far (the clerk included), and whom they acted for.
    acted: frozenset[str]
    special_procedures: tuple[str, ...] = ()
    paused_for: str = ""
    extended: bool = False
    deciding: bool = False


def allowed_outcomes(stage: str) -> tuple[str, ...]:
    if stage == Stage.SEAL:
        return (Outcome.SEAL,)
    return (Outcome.APPROVE, Outcome.REFUSE)


def deciding_department(stage: str, case_department: str) -> str:
    return CENTER_DEPARTMENT if stage == Stage.SEAL else case_department


def next_stage(stage: str) -> Stage:
    """Review → sign → seal → completed: a refusal is signed by a leader like an approval."""
    order = {Stage.REVIEW: Stage.SIGN, Stage.SIGN: Stage.SEAL, Stage.SEAL: Stage.COMPLETED}
    try:
        return order[Stage(stage)]
    except (ValueError, KeyError) as error:
        raise RuleBroken(INVALID_ARGUMENT, f"{stage!r} is not a stage that takes a decision") \
            from error


def outcome_of(decisions: Sequence[tuple[str, str]]) -> str:
    """"approved" or "refused": the leader's signature decides (stage, outcome pairs)."""
    signed = [outcome for stage, outcome in decisions if stage == Stage.SIGN]
    if not signed:
        raise RuleBroken(FAILED_PRECONDITION, "no leader has signed the case")
    return "approved" if signed[-1] == Outcome.APPROVE else "refused"


def _check_open(state: ChainState) -> None:
    if state.stage in TERMINAL:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"case {state.case_number} is finished ({state.stage})")


def _check_case(state: ChainState, facts: StatementFacts, kind: StatementKind) -> None:
    if facts.kind != kind:
        raise RuleBroken(INVALID_ARGUMENT, f"a {facts.kind} statement is not a {kind}")
    if facts.case_number != state.case_number:
        raise RuleBroken(PERMISSION_DENIED,
                         f"the statement is about case {facts.case_number}, "
                         f"not {state.case_number}")


def check_role(facts: StatementFacts, role: str, department: str, case_number: str) -> None:
    if role not in facts.roles:
        raise RuleBroken(PERMISSION_DENIED, f"official {facts.official_id} is not a {role}")
    if facts.department_code != department:
        raise RuleBroken(PERMISSION_DENIED,
                         f"case {case_number} is decided by {department}, "
                         f"not by {facts.department_code}")


def check_once(facts: StatementFacts, acted: frozenset[str], case_number: str) -> None:
    """One person acts once on a case, whether in person or through a deputy."""
    if facts.people & acted:
        raise RuleBroken(PERMISSION_DENIED,
                         f"official {facts.official_id} has already acted on case "
                         f"{case_number}: one person acts once on a case")


def check_decision(state: ChainState, facts: StatementFacts) -> None:
    """May this decision be taken now? Raises RuleBroken when not."""
    _check_open(state)
    _check_case(state, facts, StatementKind.DECISION)
    if facts.stage not in STAGE_ROLE:
        raise RuleBroken(INVALID_ARGUMENT, f"{facts.stage} is not a stage that takes a decision")
    if facts.stage != state.stage or state.deciding:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"case {state.case_number} is at {state.stage}, not at {facts.stage}")
    allowed = allowed_outcomes(facts.stage)
    if facts.outcome not in allowed:
        raise RuleBroken(INVALID_ARGUMENT,
                         f"at {facts.stage} the decision is one of {', '.join(allowed)}")
    check_role(facts, STAGE_ROLE[Stage(facts.stage)],
               deciding_department(facts.stage, state.department_code), state.case_number)
    check_once(facts, state.acted, state.case_number)
    if state.paused_for:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"case {state.case_number} is paused for {state.paused_for}")


def check_withdrawal(state: ChainState, facts: StatementFacts) -> None:
    _check_open(state)
    _check_case(state, facts, StatementKind.WITHDRAWAL)
    if state.deciding:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"case {state.case_number} is being decided; try again")
    if "window_clerk" not in facts.roles:
        raise RuleBroken(PERMISSION_DENIED,
                         "a withdrawal is taken by a window clerk, for the applicant")
    if facts.department_code != state.department_code:
        raise RuleBroken(PERMISSION_DENIED,
                         f"case {state.case_number} belongs to {state.department_code}")


def _check_division(state: ChainState, facts: StatementFacts) -> None:
    if not {"reviewer", "leader"} & set(facts.roles):
        raise RuleBroken(PERMISSION_DENIED,
                         "special procedures are started and ended by the deciding division")
    if facts.department_code != state.department_code:
        raise RuleBroken(PERMISSION_DENIED,
                         f"case {state.case_number} belongs to {state.department_code}")


def check_procedure_start(state: ChainState, facts: StatementFacts) -> None:
    _check_open(state)
    _check_case(state, facts, StatementKind.PROCEDURE_START)
    _check_division(state, facts)
    if facts.procedure not in state.special_procedures:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"the case's item does not allow {facts.procedure}")
    if state.paused_for:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"the clock is already paused for {state.paused_for}")


def check_procedure_end(state: ChainState, facts: StatementFacts) -> None:
    _check_open(state)
    _check_case(state, facts, StatementKind.PROCEDURE_END)
    _check_division(state, facts)
    if not state.paused_for:
        raise RuleBroken(FAILED_PRECONDITION, "the clock is not paused")
    if state.paused_for != facts.procedure:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"the clock is paused for {state.paused_for}, not {facts.procedure}")


def check_extension(state: ChainState, facts: StatementFacts) -> None:
    _check_open(state)
    _check_case(state, facts, StatementKind.EXTENSION)
    check_role(facts, "leader", state.department_code, state.case_number)
    if state.extended:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"the legal limit of case {state.case_number} was extended already")
    if not 1 <= facts.days <= MAX_EXTENSION_DAYS:
        raise RuleBroken(INVALID_ARGUMENT,
                         f"an extension is 1 to {MAX_EXTENSION_DAYS} working days")


def sla_state(*, now: datetime, warning_at: datetime, promised_due_at: datetime,
              paused: bool) -> SlaState:
    if paused:
        return SlaState.PAUSED
    if now >= promised_due_at:
        return SlaState.BREACHED
    if now >= warning_at:
        return SlaState.WARNING
    return SlaState.ON_TIME


def check_chain(acceptance: StatementFacts, decisions: Sequence[StatementFacts]) -> str:
    """A whole chain before the seal; returns "approved" or "refused".

    ``decisions`` are the review, sign and seal statements, in that order,
    each already verified as signed by review. The window's clerk, the
    reviewer, the leader (or deputy, and the leader they stand for) and the
    seal custodian must all be different people; each must hold the stage's
    role in the deciding department; each comes after the one before.
    """
    stages = [facts.stage for facts in decisions]
    if stages != [Stage.REVIEW, Stage.SIGN, Stage.SEAL]:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"a sealed decision needs review, sign and seal in order, not {stages}")
    case_number = acceptance.case_number
    acted = frozenset(acceptance.people)
    previous = acceptance.issued_at
    for facts in decisions:
        if facts.kind != StatementKind.DECISION or facts.case_number != case_number:
            raise RuleBroken(PERMISSION_DENIED,
                             f"a {facts.stage} statement is not a decision on case {case_number}")
        if facts.outcome not in allowed_outcomes(facts.stage):
            raise RuleBroken(INVALID_ARGUMENT, f"{facts.outcome} is not a {facts.stage} outcome")
        check_role(facts, STAGE_ROLE[Stage(facts.stage)],
                   deciding_department(facts.stage, acceptance.department_code), case_number)
        check_once(facts, acted, case_number)
        if facts.issued_at < previous:
            raise RuleBroken(FAILED_PRECONDITION,
                             f"the {facts.stage} statement predates the step before it")
        acted |= facts.people
        previous = facts.issued_at
    return outcome_of([(facts.stage, facts.outcome) for facts in decisions])
