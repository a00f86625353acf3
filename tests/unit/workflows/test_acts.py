"""The refusals every workflow's updates share (workflows/acts.py), without a server."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from workflows.acts import read_statement, refuse, refused_by_activity, shaped, stuck
from workflows.approval_contract import SignedStatement


def activity_error(cause: BaseException | None) -> ActivityError:
    error = ActivityError("activity failed", scheduled_event_id=1, started_event_id=2,
                          identity="worker", activity_type="record", activity_id="1",
                          retry_state=RetryState.NON_RETRYABLE_FAILURE)
    if cause is not None:
        error.__cause__ = cause
    return error


def test_a_refusal_carries_its_status_and_is_not_retried() -> None:
    refusal = refuse("NotFound", "no such case")
    assert (refusal.type, refusal.message, refusal.non_retryable) == (
        "NotFound", "no such case", True)


def test_the_services_refusal_is_the_updates_refusal() -> None:
    error = activity_error(ApplicationError("stage moved on", type="FailedPrecondition"))
    refusal = refused_by_activity(error, service="trading service")
    assert (refusal.type, refusal.message) == ("FailedPrecondition", "stage moved on")


def test_a_failure_without_a_status_is_a_retryable_precondition_naming_the_service() -> None:
    refusal = refused_by_activity(activity_error(RuntimeError("boom")),
                                  service="trading service")
    assert (refusal.type, refusal.message) == (
        "FailedPrecondition", "the trading service did not record it; try again")


def test_stuck_names_the_subject_and_the_services_message() -> None:
    error = activity_error(ApplicationError("bad key", type="Internal"))
    assert str(stuck("tender", "could not close its bidding", error)) == \
        "the tender could not close its bidding: bad key"


@dataclass
class Change:
    days: int


def test_shaped_refuses_a_null_or_a_wrong_type_and_lets_the_shape_through() -> None:
    shaped("extend", Change(3), Change)
    for junk in (None, {"days": 3}, "3"):
        with pytest.raises(ApplicationError, match="the extend argument is not a Change") as r:
            shaped("extend", junk, Change)
        assert r.value.type == "InvalidArgument"
    with pytest.raises(ApplicationError, match="the amend argument is not an act"):
        shaped("amend", None, Change, called="an act")


@dataclass(frozen=True)
class Facts:
    kind: str

    class Malformed(ValueError):
        pass

    @classmethod
    def read(cls, body: dict[str, object]) -> Facts:
        if not isinstance(body.get("kind"), str):
            raise cls.Malformed("statement field kind is missing or not text")
        return cls(str(body["kind"]))


def statement(body: dict[str, object]) -> SignedStatement:
    return SignedStatement(body=body, signer="trading", key_id="k", signature="s")


def test_read_statement_refuses_malformed_and_other_kinds() -> None:
    assert read_statement(statement({"kind": "award"}), "award", read=Facts.read,
                          malformed=Facts.Malformed) == Facts("award")
    with pytest.raises(ApplicationError, match="kind is missing") as malformed:
        read_statement(statement({}), "award", read=Facts.read, malformed=Facts.Malformed)
    with pytest.raises(ApplicationError, match="a contract statement is not a award") as other:
        read_statement(statement({"kind": "contract"}), "award", read=Facts.read,
                       malformed=Facts.Malformed)
    assert malformed.value.type == other.value.type == "InvalidArgument"
