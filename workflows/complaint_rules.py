"""The rules of complaint handling, as pure functions: no Temporal, no database.

The complaint workflow checks every act against these before it takes it
(its validators), and the complaints service may apply the same rules to
its own record of the case. A broken rule raises ``RuleBroken`` (from the
approval rules) whose ``status`` names the gRPC status a caller gets.

The handling: the case is routed to a department, whose complaint handler
signs for it (签收) or returns it with a basis (退单); the center's
dispatcher then reassigns it to another department (改派) or sends it back.
The dispatcher may name co-handling departments, each of which contributes
once; the lead department replies once every co-handler has contributed,
and may ask for an extension (one pending at a time), which the dispatcher
decides. A duplicate not yet replied may be merged into another case (并单).
The origin platform rates the reply while the rating window is open; an
unsatisfied rating (1 or 2) reopens the case once, after that it closes.
Where an act leads (the department a dispatch sends the case to, whether a
rating reopens the case) is decided by the service as it records the act
(services/complaints/domain/handling.py); the workflow follows the recorded
stage and department, so these rules only check that an act may be taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from workflows.approval_rules import (
    FAILED_PRECONDITION,
    INVALID_ARGUMENT,
    PERMISSION_DENIED,
    RuleBroken,
)
from workflows.complaint_contract import (
    CENTER_DEPARTMENT,
    DISPATCHER_ROLE,
    HANDLER_ROLE,
    MAX_EXTENSION_DAYS,
    RATING_LEVELS,
    TERMINAL,
    ComplaintFacts,
    DispatchOutcome,
    ExtensionOutcome,
    Stage,
    StatementKind,
)

__all__ = ["FAILED_PRECONDITION", "INVALID_ARGUMENT", "PERMISSION_DENIED", "RuleBroken"]

Texts = Mapping[str, str]
#: An act without free texts.
NO_TEXTS: Texts = MappingProxyType({})


@dataclass(frozen=True)
class ComplaintState:
    """What the rules need to know of a running case."""

    case_number: str
    stage: str
    #: The department the case is with (the lead department once signed for).
    department_code: str
    #: The platform the case came from: the only one that rates it.
    platform_id: str = ""
    co_handlers: tuple[str, ...] = ()
    contributed: frozenset[str] = field(default_factory=frozenset)
    #: The working days of the extension asked for and not yet decided; 0 when none.
    extension_pending_days: int = 0
    reopened: bool = False
    #: An act is being recorded; the next waits for it.
    busy: bool = False

    @property
    def contributions_pending(self) -> tuple[str, ...]:
        return tuple(d for d in self.co_handlers if d not in self.contributed)


def _open(state: ComplaintState, facts: ComplaintFacts, kind: StatementKind) -> None:
    if facts.kind != kind:
        raise RuleBroken(INVALID_ARGUMENT, f"a {facts.kind} statement is not a {kind}")
    if facts.case_number != state.case_number:
        raise RuleBroken(PERMISSION_DENIED, f"the statement is about case {facts.case_number}, "
                                            f"not {state.case_number}")
    if state.stage in TERMINAL:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"case {state.case_number} is finished ({state.stage})")
    if state.busy:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"an act on case {state.case_number} is being recorded; try again")


def _at(state: ComplaintState, *stages: Stage) -> None:
    if state.stage not in stages:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"case {state.case_number} is {state.stage}, not "
                         + " or ".join(str(s) for s in stages))


def _by(facts: ComplaintFacts, role: str, departments: tuple[str, ...],
        state: ComplaintState) -> None:
    if role not in facts.roles:
        raise RuleBroken(PERMISSION_DENIED, f"official {facts.official_id} is not a {role}")
    if facts.department_code not in departments:
        raise RuleBroken(PERMISSION_DENIED,
                         f"case {state.case_number} is not {facts.department_code}'s to act on")


def _handler_of_case(state: ComplaintState, facts: ComplaintFacts) -> None:
    _by(facts, HANDLER_ROLE, (state.department_code,), state)


def _dispatcher(state: ComplaintState, facts: ComplaintFacts) -> None:
    _by(facts, DISPATCHER_ROLE, (CENTER_DEPARTMENT,), state)


def _written(texts: Texts, key: str, what: str) -> None:
    if not texts.get(key, "").strip():
        raise RuleBroken(INVALID_ARGUMENT, f"{what} must not be empty")


def check_sign_for(state: ComplaintState, facts: ComplaintFacts, texts: Texts = NO_TEXTS) -> None:
    """A complaint handler of the department the case is routed to, while it is routed."""
    _open(state, facts, StatementKind.SIGN_FOR)
    _at(state, Stage.ROUTED)
    _handler_of_case(state, facts)


def check_return(state: ComplaintState, facts: ComplaintFacts, texts: Texts = NO_TEXTS) -> None:
    """The department the case is with, before it signed for it or while handling, with a
    basis."""
    _open(state, facts, StatementKind.RETURN)
    _at(state, Stage.ROUTED, Stage.HANDLING)
    _handler_of_case(state, facts)
    _written(texts, "basis", "the basis of a return")


def check_dispatch(state: ComplaintState, facts: ComplaintFacts, texts: Texts = NO_TEXTS) -> None:
    """The center's dispatcher decides a returned case: another department, or back."""
    _open(state, facts, StatementKind.DISPATCH)
    _at(state, Stage.RETURNED)
    _dispatcher(state, facts)
    if facts.outcome == DispatchOutcome.REASSIGN:
        if not facts.target_department or facts.target_department == state.department_code:
            raise RuleBroken(INVALID_ARGUMENT,
                             "a reassignment names a department other than the one that "
                             "returned the case")
    elif facts.outcome == DispatchOutcome.SEND_BACK:
        if facts.target_department not in ("", state.department_code):
            raise RuleBroken(INVALID_ARGUMENT,
                             f"a case is sent back to {state.department_code}, which returned it")
    else:
        raise RuleBroken(INVALID_ARGUMENT, "a dispatch is reassign or send_back")
    _written(texts, "basis", "the basis of a dispatch")


def check_co_handlers(state: ComplaintState, facts: ComplaintFacts,
                      texts: Texts = NO_TEXTS) -> None:
    """The dispatcher names the co-handling departments while the case is being handled."""
    _open(state, facts, StatementKind.CO_HANDLERS)
    _at(state, Stage.ROUTED, Stage.HANDLING)
    _dispatcher(state, facts)
    codes = facts.co_handlers
    if any(not code for code in codes):
        raise RuleBroken(INVALID_ARGUMENT, "a co-handling department has a code")
    if len(set(codes)) != len(codes):
        raise RuleBroken(INVALID_ARGUMENT, "a co-handling department is named once")
    if state.department_code in codes:
        raise RuleBroken(INVALID_ARGUMENT,
                         f"{state.department_code} leads the case; it does not co-handle it")
    dropped = sorted(state.contributed - set(codes))
    if dropped:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"{', '.join(dropped)} contributed already and stays a co-handler")


def check_contribution(state: ComplaintState, facts: ComplaintFacts,
                       texts: Texts = NO_TEXTS) -> None:
    """A handler of a co-handling department, once, before the reply."""
    _open(state, facts, StatementKind.CONTRIBUTION)
    _at(state, Stage.ROUTED, Stage.HANDLING)
    _by(facts, HANDLER_ROLE, state.co_handlers, state)
    if facts.department_code in state.contributed:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"{facts.department_code} has contributed to case "
                         f"{state.case_number} already")
    _written(texts, "contribution", "a contribution")


def check_reply(state: ComplaintState, facts: ComplaintFacts, texts: Texts = NO_TEXTS) -> None:
    """A handler of the lead department, while handling, once every co-handler contributed."""
    _open(state, facts, StatementKind.REPLY)
    _at(state, Stage.HANDLING)
    _handler_of_case(state, facts)
    pending = state.contributions_pending
    if pending:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"waiting for the contributions of {', '.join(pending)}")
    _written(texts, "reply", "a reply")


def check_extension_request(state: ComplaintState, facts: ComplaintFacts,
                            texts: Texts = NO_TEXTS) -> None:
    """The lead department, while handling, one at a time, up to the longest extension."""
    _open(state, facts, StatementKind.EXTENSION_REQUEST)
    _at(state, Stage.HANDLING)
    _handler_of_case(state, facts)
    if state.extension_pending_days:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"an extension of case {state.case_number} waits for a decision")
    if not 1 <= facts.days <= MAX_EXTENSION_DAYS:
        raise RuleBroken(INVALID_ARGUMENT,
                         f"an extension is 1 to {MAX_EXTENSION_DAYS} working days")
    _written(texts, "basis", "the basis of an extension")


def check_extension_decision(state: ComplaintState, facts: ComplaintFacts,
                             texts: Texts = NO_TEXTS) -> None:
    """The dispatcher, while an extension is pending: granted (up to the days asked) or not."""
    _open(state, facts, StatementKind.EXTENSION_DECISION)
    _dispatcher(state, facts)
    if not state.extension_pending_days:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"no extension of case {state.case_number} waits for a decision")
    if facts.outcome == ExtensionOutcome.GRANTED:
        if not 1 <= facts.days <= state.extension_pending_days:
            raise RuleBroken(INVALID_ARGUMENT,
                             f"an extension is granted for 1 to "
                             f"{state.extension_pending_days} working days")
    elif facts.outcome != ExtensionOutcome.REFUSED:
        raise RuleBroken(INVALID_ARGUMENT, "an extension is granted or refused")


def check_merge(state: ComplaintState, facts: ComplaintFacts, texts: Texts = NO_TEXTS) -> None:
    """The dispatcher merges a duplicate not yet replied into another case."""
    _open(state, facts, StatementKind.MERGE)
    _dispatcher(state, facts)
    if state.stage == Stage.REPLIED:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"case {state.case_number} is replied already: no duplicate")
    if not facts.primary_case_number or facts.primary_case_number == state.case_number:
        raise RuleBroken(INVALID_ARGUMENT, "a case is merged into another case")


def check_rating(state: ComplaintState, facts: ComplaintFacts, texts: Texts = NO_TEXTS) -> None:
    """The origin platform rates the reply, while the rating window is open."""
    _open(state, facts, StatementKind.RATING)
    if not facts.platform_id or facts.platform_id != state.platform_id \
            or facts.official_id != facts.platform_id:
        raise RuleBroken(PERMISSION_DENIED,
                         f"case {state.case_number} is rated by the platform it came from")
    _at(state, Stage.REPLIED)
    if facts.level not in RATING_LEVELS:
        raise RuleBroken(INVALID_ARGUMENT,
                         f"a rating is {RATING_LEVELS.start} to {RATING_LEVELS.stop - 1}")

