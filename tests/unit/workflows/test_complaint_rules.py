"""Complaint handling's rules (workflows/complaint_rules.py) without a server.

For every rule a good act is taken first; each refusal below then changes
exactly one thing of it (the state, the official, a fact or a text), so it
is refused for that one rule alone. The expected status is written out here,
not read from the module under test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pytest

from workflows.complaint_contract import (
    ComplaintFacts,
    Stage,
    StatementKind,
    content_digest,
    texts_match,
)
from workflows.complaint_rules import (
    ComplaintState,
    RuleBroken,
    check_co_handlers,
    check_contribution,
    check_dispatch,
    check_extension_decision,
    check_extension_request,
    check_merge,
    check_rating,
    check_reply,
    check_return,
    check_sign_for,
)

K = StatementKind
CASE = "CP-20261201-000001"
FP, PD, IA = "FailedPrecondition", "PermissionDenied", "InvalidArgument"

Rule = Callable[[ComplaintState, ComplaintFacts, Mapping[str, str]], None]


def facts(kind: StatementKind, *, official: str = "SJJ-010", department: str = "SJJ",
          roles: tuple[str, ...] = ("complaint_handler",), **more: Any) -> ComplaintFacts:
    base = ComplaintFacts(kind=kind, case_number=CASE, official_id=official,
                          department_code=department, roles=roles, system="dept-sjj",
                          issued_at="2026-12-01T02:00:00.000000Z")
    return replace(base, **more)


def state(stage: Stage = Stage.HANDLING, **more: Any) -> ComplaintState:
    base = ComplaintState(case_number=CASE, stage=stage, department_code="SJJ",
                          platform_id="portal-1")
    return replace(base, **more)


Who = dict[str, Any]
DISPATCHER: Who = {"official": "ZWFWZX-020", "department": "ZWFWZX",
                   "roles": ("complaint_dispatcher",)}
CO_HANDLER: Who = {"official": "FGW-010", "department": "FGW", "roles": ("complaint_handler",)}
PLATFORM: Who = {"official": "portal-1", "department": "", "roles": (),
                 "platform_id": "portal-1"}


@dataclass(frozen=True)
class Case:
    """A good act, and what one change of it makes it."""

    rule: Rule
    state: ComplaintState
    facts: ComplaintFacts
    texts: Mapping[str, str]


GOOD = {
    "sign_for": Case(check_sign_for, state(Stage.ROUTED), facts(K.SIGN_FOR), {}),
    "return": Case(check_return, state(Stage.ROUTED), facts(K.RETURN), {"basis": "不属本部门"}),
    "reassign": Case(check_dispatch, state(Stage.RETURNED),
                     facts(K.DISPATCH, outcome="reassign", target_department="FGW",
                           **DISPATCHER), {"basis": "改派"}),
    "send_back": Case(check_dispatch, state(Stage.RETURNED),
                      facts(K.DISPATCH, outcome="send_back", target_department="SJJ",
                            **DISPATCHER), {"basis": "退回"}),
    "co_handlers": Case(check_co_handlers, state(Stage.HANDLING),
                        facts(K.CO_HANDLERS, co_handlers=("FGW", "ZJJ"), **DISPATCHER), {}),
    "contribution": Case(check_contribution, state(co_handlers=("FGW",)),
                         facts(K.CONTRIBUTION, **CO_HANDLER), {"contribution": "会办意见"}),
    "reply": Case(check_reply, state(co_handlers=("FGW",), contributed=frozenset({"FGW"})),
                  facts(K.REPLY), {"reply": "答复"}),
    "extension_request": Case(check_extension_request, state(),
                              facts(K.EXTENSION_REQUEST, days=10), {"basis": "需现场核查"}),
    "extension_decision": Case(check_extension_decision, state(extension_pending_days=5),
                               facts(K.EXTENSION_DECISION, outcome="granted", days=5,
                                     **DISPATCHER), {}),
    "merge": Case(check_merge, state(Stage.ROUTED),
                  facts(K.MERGE, primary_case_number="CP-20261130-000007", **DISPATCHER), {}),
    "rating": Case(check_rating, state(Stage.REPLIED), facts(K.RATING, level=1, **PLATFORM),
                   {"comment": ""}),
}


def check(case: Case) -> None:
    case.rule(case.state, case.facts, case.texts)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_the_good_act_is_taken(name: str) -> None:
    check(GOOD[name])


def _with(name: str, *, state_changes: Mapping[str, Any] | None = None,
          fact_changes: Mapping[str, Any] | None = None,
          texts: Mapping[str, str] | None = None) -> Case:
    good = GOOD[name]
    return Case(good.rule, replace(good.state, **(state_changes or {})),
                replace(good.facts, **(fact_changes or {})),
                good.texts if texts is None else texts)


NOT_HANDLER = {"roles": ("complaint_dispatcher",)}
OTHER_DEPARTMENT = {"department_code": "FGW"}
NOT_DISPATCHER = {"roles": ("complaint_handler",)}
NOT_CENTER = {"department_code": "SJJ"}

REFUSALS: dict[str, tuple[str, Case]] = {
    # Any act: of this case, of its kind, on an open case, one at a time.
    "other case": (PD, _with("sign_for", fact_changes={"case_number": "CP-20261201-000002"})),
    "wrong kind": (IA, _with("sign_for", fact_changes={"kind": K.REPLY})),
    "finished": (FP, _with("reply", state_changes={"stage": Stage.CLOSED})),
    "merged away": (FP, _with("contribution", state_changes={"stage": Stage.MERGED})),
    "busy": (FP, _with("sign_for", state_changes={"busy": True})),
    # Sign-for: routed, a handler of the assigned department.
    "sign for while handling": (FP, _with("sign_for", state_changes={"stage": Stage.HANDLING})),
    "sign for, not a handler": (PD, _with("sign_for", fact_changes=NOT_HANDLER)),
    "sign for, other department": (PD, _with("sign_for", fact_changes=OTHER_DEPARTMENT)),
    # Return: the assigned department, before signing for it or while handling, with a basis.
    "return when replied": (FP, _with("return", state_changes={"stage": Stage.REPLIED})),
    "return when returned": (FP, _with("return", state_changes={"stage": Stage.RETURNED})),
    "return by another department": (PD, _with("return", fact_changes=OTHER_DEPARTMENT)),
    "return without basis": (IA, _with("return", texts={"basis": "  "})),
    # Dispatch: the center's dispatcher, a returned case, a real choice.
    "dispatch while routed": (FP, _with("reassign", state_changes={"stage": Stage.ROUTED})),
    "dispatch by a handler": (PD, _with("reassign", fact_changes=NOT_DISPATCHER)),
    "dispatch outside the center": (PD, _with("reassign", fact_changes=NOT_CENTER)),
    "reassign to the same department": (IA, _with("reassign", fact_changes={
        "target_department": "SJJ"})),
    "reassign to nowhere": (IA, _with("reassign", fact_changes={"target_department": ""})),
    "send back elsewhere": (IA, _with("send_back", fact_changes={"target_department": "FGW"})),
    "dispatch what": (IA, _with("reassign", fact_changes={"outcome": "keep"})),
    "dispatch without basis": (IA, _with("send_back", texts={"basis": ""})),
    # Co-handlers: the dispatcher, while routed or handling, not the lead, no duplicates.
    "co-handlers when returned": (FP, _with("co_handlers", state_changes={
        "stage": Stage.RETURNED})),
    "co-handlers by a handler": (PD, _with("co_handlers", fact_changes=NOT_DISPATCHER)),
    "co-handlers with the lead": (IA, _with("co_handlers", fact_changes={
        "co_handlers": ("FGW", "SJJ")})),
    "co-handlers twice": (IA, _with("co_handlers", fact_changes={"co_handlers": ("FGW", "FGW")})),
    "co-handler dropped after contributing": (FP, _with("co_handlers", state_changes={
        "co_handlers": ("FGW", "ZJJ", "JTJ"), "contributed": frozenset({"JTJ"})})),
    # Contribution: a handler of a co-handling department, once.
    "contribution by a stranger": (PD, _with("contribution", state_changes={
        "co_handlers": ("ZJJ",)})),
    "contribution by a dispatcher": (PD, _with("contribution", fact_changes=NOT_HANDLER)),
    "contribution twice": (FP, _with("contribution", state_changes={
        "contributed": frozenset({"FGW"})})),
    "contribution when replied": (FP, _with("contribution", state_changes={
        "stage": Stage.REPLIED})),
    "empty contribution": (IA, _with("contribution", texts={"contribution": ""})),
    # Reply: the lead's handler while handling, after every contribution.
    "reply while routed": (FP, _with("reply", state_changes={"stage": Stage.ROUTED})),
    "reply by a co-handler": (PD, _with("reply", fact_changes=OTHER_DEPARTMENT)),
    "reply before the contributions": (FP, _with("reply", state_changes={
        "contributed": frozenset()})),
    "empty reply": (IA, _with("reply", texts={"reply": ""})),
    # Extension request: the lead while handling, one pending, 1..10 working days.
    "extension while routed": (FP, _with("extension_request", state_changes={
        "stage": Stage.ROUTED})),
    "extension by another department": (PD, _with("extension_request",
                                                  fact_changes=OTHER_DEPARTMENT)),
    "second extension pending": (FP, _with("extension_request", state_changes={
        "extension_pending_days": 3})),
    "extension too long": (IA, _with("extension_request", fact_changes={"days": 61})),
    "extension of nothing": (IA, _with("extension_request", fact_changes={"days": 0})),
    "extension without basis": (IA, _with("extension_request", texts={"basis": ""})),
    # Extension decision: the dispatcher, while one is pending, up to the days asked.
    "decision with nothing pending": (FP, _with("extension_decision", state_changes={
        "extension_pending_days": 0})),
    "decision by the department": (PD, _with("extension_decision", fact_changes={
        "roles": ("complaint_handler",), "department_code": "SJJ"})),
    "granted more than asked": (IA, _with("extension_decision", fact_changes={"days": 6})),
    "decided what": (IA, _with("extension_decision", fact_changes={"outcome": "maybe"})),
    # Merge: the dispatcher, a duplicate not yet replied, into another case.
    "merge by a handler": (PD, _with("merge", fact_changes=NOT_DISPATCHER)),
    "merge when replied": (FP, _with("merge", state_changes={"stage": Stage.REPLIED})),
    "merge into itself": (IA, _with("merge", fact_changes={"primary_case_number": CASE})),
    # Rating: the origin platform, in the rating window, 1..5.
    "rating by another platform": (PD, _with("rating", fact_changes={
        "platform_id": "hotline-1", "official_id": "hotline-1"})),
    "rating by an official": (PD, _with("rating", fact_changes={"official_id": "SJJ-010"})),
    "rating while handling": (FP, _with("rating", state_changes={"stage": Stage.HANDLING})),
    "rating of six": (IA, _with("rating", fact_changes={"level": 6})),
    "rating of nought": (IA, _with("rating", fact_changes={"level": 0})),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_one_broken_rule_is_refused_with_its_status(name: str) -> None:
    status, case = REFUSALS[name]
    with pytest.raises(RuleBroken) as refused:
        check(case)
    assert refused.value.status == status


def test_an_extension_as_long_as_the_policy_in_force_allows() -> None:
    """The service applies the versioned deadline policy before it signs: an operator's policy
    allowing 15 working days (the default is 10) is not refused here."""
    check(_with("extension_request", fact_changes={"days": 15}))


def test_a_refused_extension_needs_no_days() -> None:
    check(_with("extension_decision", fact_changes={"outcome": "refused", "days": 0}))


def test_texts_match_their_digest_and_their_kind() -> None:
    reply = {"reply": "答复"}
    digest = content_digest(**reply)
    assert texts_match(K.REPLY, digest, reply)
    assert texts_match(K.RATING, "", {})
    assert not texts_match(K.REPLY, digest, {"reply": "别的"})
    assert not texts_match(K.REPLY, digest, {})
    assert not texts_match(K.RETURN, content_digest(reply="x"), {"reply": "x"})
    assert not texts_match(K.SIGN_FOR, digest, reply)
