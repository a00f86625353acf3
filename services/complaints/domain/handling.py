"""How a complaint case is handled (DESIGN.md §3), free of any framework: the state machine.

The stages (``ComplaintStatus``; the workflow's ``Stage`` has the same values):

- ROUTED: routed to its responsible department, waiting for it to sign for
  the case (签收). The department signs for it (→ HANDLING) or returns it
  with its basis (退单, → RETURNED).
- HANDLING: the lead department handles it. It may name co-handling
  departments, whose contributions join its reply; it may ask the center's
  dispatcher for an extension (one pending at a time, at most the policy's
  limit in all); it may still return the case while it has not replied.
  Its reply (→ REPLIED) waits for every co-handler's contribution.
- RETURNED: the center's dispatcher reassigns it (改派) to another
  department or sends it back to the one that returned it; either way the
  case is ROUTED again and has to be signed for.
- REPLIED: the rating window is open. The origin platform rates it (1..5);
  1 or 2 is unsatisfied and reopens the case once (→ HANDLING, ``reopened``);
  any other rating, a second unsatisfied one, or the window lapsing closes it.
- CLOSED, MERGED: the end. A duplicate merged (并单) into a primary case not
  yet replied is MERGED; the primary's reply is recorded for it too.

Each act returns a ``Change`` or raises the refusal a caller can act on
(FailedPrecondition for the wrong stage, PermissionDenied for the wrong
department, InvalidArgument for a wrong value). This module's rule is the
authoritative one: the workflow applies the same rules to refuse at once,
and the service applies these when it records the act.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from kernel.errors import FailedPrecondition, FieldViolation, InvalidArgument, PermissionDenied
from services.complaints.domain.cases import ComplaintStatus

#: The center's department: its dispatchers review returned cases and extensions.
CENTER_DEPARTMENT = "ZWFWZX"
HANDLER_ROLE = "complaint_handler"
DISPATCHER_ROLE = "complaint_dispatcher"
#: Co-handling departments one case may have.
MAX_CO_HANDLERS = 5
#: A rating at or below this is unsatisfied.
UNSATISFIED_AT_MOST = 2
BASIS_MAX_LENGTH = 1000
REPLY_MAX_LENGTH = 4000

TERMINAL = (ComplaintStatus.CLOSED, ComplaintStatus.MERGED)
#: Stages a case can be merged from (as the duplicate) and into (as the primary).
MERGEABLE = (ComplaintStatus.ROUTED, ComplaintStatus.HANDLING, ComplaintStatus.RETURNED)


class Outcome:
    REASSIGN = "reassign"
    SEND_BACK = "send_back"
    GRANTED = "granted"
    REFUSED = "refused"


@dataclass(frozen=True)
class CaseState:
    """What the rules need to know of a case."""

    number: str
    stage: ComplaintStatus
    department_code: str
    platform_id: str = ""
    #: Co-handling departments, each with whether it has contributed.
    co_handlers: dict[str, bool] = field(default_factory=dict)
    reopened: bool = False
    #: Working days of the extension asked for and not yet decided (0: none pending).
    extension_pending_days: int = 0
    #: Working days granted so far.
    extended_days: int = 0
    #: The department that returned the case while it is RETURNED.
    returned_by: str = ""
    merged_into: str = ""

    @property
    def contributions_pending(self) -> list[str]:
        return sorted(code for code, done in self.co_handlers.items() if not done)


@dataclass(frozen=True)
class Change:
    """What an act does to a case: its new state and the event it makes (a code)."""

    state: CaseState
    event: str
    #: The stage changed (a ``complaint.status_changed`` platform event is due).
    stage_changed: bool = False


def _change(before: CaseState, after: CaseState, event: str) -> Change:
    return Change(after, event, stage_changed=before.stage != after.stage)


def _at(state: CaseState, *stages: ComplaintStatus, act: str) -> None:
    if state.stage not in stages:
        allowed = " or ".join(str(s) for s in stages)
        raise FailedPrecondition(
            f"case {state.number} is {state.stage}: {act} only while it is {allowed}")


def _lead(state: CaseState, department_code: str, act: str) -> None:
    if department_code != state.department_code:
        raise PermissionDenied(
            f"case {state.number} is handled by {state.department_code}, not "
            f"{department_code}: only its handling department may {act}")


def _text(value: str, field_name: str, limit: int) -> None:
    if not value.strip() or len(value) > limit:
        raise InvalidArgument(
            f"{field_name} must be 1 to {limit} characters, not only spaces",
            violations=[FieldViolation(field_name, f"1 to {limit} characters")])


def sign_for(state: CaseState, *, department_code: str) -> Change:
    """The routed department signs for the case (签收)."""
    _at(state, ComplaintStatus.ROUTED, act="sign for it")
    _lead(state, department_code, "sign for it")
    return _change(state, replace(state, stage=ComplaintStatus.HANDLING), "complaint.signed_for")


def return_case(state: CaseState, *, department_code: str, basis: str) -> Change:
    """The department is not responsible: it returns the case with its basis (退单)."""
    _text(basis, "basis", BASIS_MAX_LENGTH)
    _at(state, ComplaintStatus.ROUTED, ComplaintStatus.HANDLING, act="return it")
    _lead(state, department_code, "return it")
    after = replace(state, stage=ComplaintStatus.RETURNED, returned_by=department_code,
                    co_handlers={}, extension_pending_days=0)
    return _change(state, after, "complaint.returned")


def dispatch(state: CaseState, *, outcome: str, target_department: str, basis: str) -> Change:
    """The dispatcher reassigns a returned case (改派) or sends it back; it is ROUTED again."""
    _text(basis, "basis", BASIS_MAX_LENGTH)
    _at(state, ComplaintStatus.RETURNED, act="dispatch it")
    if outcome == Outcome.REASSIGN:
        if not target_department:
            raise InvalidArgument("a reassignment names the department to take the case",
                                  violations=[FieldViolation("department_code", "required")])
        if target_department == state.returned_by:
            raise InvalidArgument(
                f"case {state.number} was returned by {target_department}: reassign it to "
                "another department, or send it back",
                violations=[FieldViolation("department_code", "the returning department")])
        department = target_department
        event = "complaint.reassigned"
    elif outcome == Outcome.SEND_BACK:
        if target_department and target_department != state.returned_by:
            raise InvalidArgument(
                "a case is sent back to the department that returned it: leave "
                "department_code empty",
                violations=[FieldViolation("department_code", "must be empty")])
        department = state.returned_by or state.department_code
        event = "complaint.sent_back"
    else:
        raise InvalidArgument(f"{outcome!r} is not a dispatch outcome",
                              violations=[FieldViolation("outcome", "reassign or send_back")])
    after = replace(state, stage=ComplaintStatus.ROUTED, department_code=department,
                    returned_by="")
    return _change(state, after, event)


def set_co_handlers(state: CaseState, *, co_handlers: list[str]) -> Change:
    """The center's dispatcher names the lead's co-handling departments, before or after the
    lead signed for the case (a department that contributed stays). The caller checks the
    dispatcher, as the workflow does (workflows/complaint_rules.py)."""
    _at(state, ComplaintStatus.ROUTED, ComplaintStatus.HANDLING, act="name co-handlers")
    wanted = list(dict.fromkeys(co_handlers))
    problems: list[FieldViolation] = []
    if len(wanted) != len(co_handlers):
        problems.append(FieldViolation("department_codes", "a department is named twice"))
    if state.department_code in wanted:
        problems.append(FieldViolation("department_codes", "the lead department itself"))
    if len(wanted) > MAX_CO_HANDLERS:
        problems.append(FieldViolation("department_codes",
                                       f"at most {MAX_CO_HANDLERS} departments"))
    dropped = sorted(code for code, done in state.co_handlers.items()
                     if done and code not in wanted)
    if dropped:
        problems.append(FieldViolation(
            "department_codes", f"{', '.join(dropped)} contributed already and stays"))
    if problems:
        raise InvalidArgument(
            f"co-handlers of case {state.number}: "
            + "; ".join(p.description for p in problems), violations=problems)
    after = replace(state, co_handlers={code: state.co_handlers.get(code, False)
                                        for code in wanted})
    return _change(state, after, "complaint.co_handlers_set")


def contribute(state: CaseState, *, department_code: str, text: str) -> Change:
    """A co-handling department's contribution, once; it joins the lead's reply."""
    _text(text, "text", REPLY_MAX_LENGTH)
    _at(state, ComplaintStatus.HANDLING, act="contribute")
    if department_code not in state.co_handlers:
        raise PermissionDenied(
            f"{department_code} is not a co-handling department of case {state.number}")
    if state.co_handlers[department_code]:
        raise FailedPrecondition(
            f"{department_code} has contributed to case {state.number} already")
    after = replace(state, co_handlers=state.co_handlers | {department_code: True})
    return _change(state, after, "complaint.contributed")


def reply(state: CaseState, *, department_code: str, text: str) -> Change:
    """The lead replies, once every co-handler has contributed; the rating window opens."""
    _text(text, "text", REPLY_MAX_LENGTH)
    _at(state, ComplaintStatus.HANDLING, act="reply")
    _lead(state, department_code, "reply")
    pending = state.contributions_pending
    if pending:
        raise FailedPrecondition(
            f"case {state.number} waits for the contributions of {', '.join(pending)}: "
            "the reply joins them")
    after = replace(state, stage=ComplaintStatus.REPLIED, extension_pending_days=0)
    return _change(state, after, "complaint.replied")


def request_extension(state: CaseState, *, department_code: str, days: int, basis: str,
                      max_days: int) -> Change:
    """The lead asks the dispatcher for more working days to reply."""
    _text(basis, "basis", BASIS_MAX_LENGTH)
    _at(state, ComplaintStatus.HANDLING, act="ask for an extension")
    _lead(state, department_code, "ask for an extension")
    left = max_days - state.extended_days
    if not 1 <= days <= left:
        raise InvalidArgument(
            f"case {state.number} may be extended by 1 to {left} more working days",
            violations=[FieldViolation("days", f"1 to {left}")])
    if state.extension_pending_days:
        raise FailedPrecondition(
            f"case {state.number} has an extension waiting for the dispatcher already")
    after = replace(state, extension_pending_days=days)
    return _change(state, after, "complaint.extension_requested")


def decide_extension(state: CaseState, *, outcome: str, days: int) -> Change:
    """The dispatcher grants (up to the days asked) or refuses the pending extension."""
    if not state.extension_pending_days:
        raise FailedPrecondition(f"case {state.number} has no extension waiting")
    _at(state, ComplaintStatus.HANDLING, act="decide an extension")
    if outcome == Outcome.GRANTED:
        if not 1 <= days <= state.extension_pending_days:
            raise InvalidArgument(
                f"grant 1 to {state.extension_pending_days} working days, as asked",
                violations=[FieldViolation("days",
                                           f"1 to {state.extension_pending_days}")])
        after = replace(state, extension_pending_days=0,
                        extended_days=state.extended_days + days)
        return _change(state, after, "complaint.extension_granted")
    if outcome == Outcome.REFUSED:
        return _change(state, replace(state, extension_pending_days=0),
                       "complaint.extension_refused")
    raise InvalidArgument(f"{outcome!r} is not an extension decision",
                          violations=[FieldViolation("outcome", "granted or refused")])


def merge(duplicate: CaseState, primary: CaseState) -> Change:
    """The duplicate is merged into the primary (并单): it is answered by the primary's reply."""
    if duplicate.number == primary.number:
        raise InvalidArgument("a case is not merged into itself",
                              violations=[FieldViolation("primary_case_number", "same case")])
    _at(duplicate, *MERGEABLE, act="merge it into another")
    if primary.stage not in MERGEABLE:
        raise FailedPrecondition(
            f"case {primary.number} is {primary.stage}: a duplicate is merged only into a "
            "case not yet replied or closed")
    after = replace(duplicate, stage=ComplaintStatus.MERGED, merged_into=primary.number,
                    co_handlers={}, extension_pending_days=0)
    return _change(duplicate, after, "complaint.merged")


def rate(state: CaseState, *, platform_id: str, level: int, at: datetime,
         rating_closes: datetime | None) -> Change:
    """The origin platform's rating; 1 or 2 reopens the case once, anything else closes it."""
    if not 1 <= level <= 5:
        raise InvalidArgument("a rating is a level from 1 to 5",
                              violations=[FieldViolation("level", "1 to 5")])
    if platform_id != state.platform_id:
        raise PermissionDenied(
            f"case {state.number} came from another platform: only its origin rates it")
    _at(state, ComplaintStatus.REPLIED, act="rate it")
    if rating_closes is not None and at > rating_closes:
        raise FailedPrecondition(f"the rating window of case {state.number} has closed")
    if level <= UNSATISFIED_AT_MOST and not state.reopened:
        # The contributions made stay joined into the second reply.
        after = replace(state, stage=ComplaintStatus.HANDLING, reopened=True)
        return _change(state, after, "complaint.reopened")
    return _change(state, replace(state, stage=ComplaintStatus.CLOSED), "complaint.rated")


def close_lapsed(state: CaseState) -> Change:
    """The rating window lapsed without a rating: the case closes."""
    _at(state, ComplaintStatus.REPLIED, act="close it for a lapsed rating window")
    return _change(state, replace(state, stage=ComplaintStatus.CLOSED), "complaint.closed")


def overdue(state: CaseState, *, what: str) -> None:
    """A deadline passed while the case still owed what it was set for (督办 is due)."""
    if what == "sign_for":
        _at(state, ComplaintStatus.ROUTED, act="be overdue for sign-for")
    elif what == "reply":
        _at(state, ComplaintStatus.ROUTED, ComplaintStatus.HANDLING, ComplaintStatus.RETURNED,
            act="be overdue for a reply")
    else:
        raise InvalidArgument(f"{what!r} is not a deadline",
                              violations=[FieldViolation("what", "sign_for or reply")])


#: Numbers shaped like a phone number (mobile or landline) or a resident ID card number.
_NUMBER_SHAPES = re.compile(
    r"(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{15}|1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8}"
    r"|[0-9]{7,8})(?![0-9])")


def _masked(match: re.Match[str]) -> str:
    return re.sub(r"[0-9Xx]", "*", match.group(0))


def anonymised(text: str, *, names: Iterable[str], numbers: Iterable[str]) -> str:
    """``text`` for publication: the complainant's names and numbers, and anything shaped
    like a phone or ID card number, masked."""
    published = text
    for secret in sorted((s for s in (*names, *numbers) if s.strip()), key=len, reverse=True):
        published = published.replace(secret, "*" * len(secret))
    return _NUMBER_SHAPES.sub(_masked, published)
