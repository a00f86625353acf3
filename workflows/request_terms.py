"""What an act signed under a caller's request id asks: its statement's terms.

Trading signs each act it sends to a tender's or a listing's workflow anew on every call,
so a retry after a lost answer carries another statement: another instant (``issued_at``)
and, for an objection, the number and the answer's due date trading gave it then. The rest
of the signed body (who acts, for whom, about what, how much, the text's digest) is what
the request asks, and the same request asks it again identically. Two calls under one
request id with other terms are two requests: only the first may be recorded.

Pure and deterministic: used by the trading service and by the workflows alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from workflows.tender_contract import StatementKind

T = TypeVar("T")

#: The fields of a statement's body each call gives anew, and the request id itself.
VARYING = frozenset({"issued_at", "request_id"})
#: ... and, by kind, those trading gives the act anew on each call: an objection's number
#: and its answer's due date. An answer's ``objection_id`` is not given: it names the
#: objection the caller answers, a term of its request.
GIVEN_ANEW: dict[str, frozenset[str]] = {
    StatementKind.OBJECTION: frozenset({"objection_id", "answer_due"})}


def statement_terms(body: Mapping[str, Any]) -> dict[str, Any]:
    """The terms ``body`` (a signed act's body) asks: all but ``VARYING`` and what its
    kind is given anew (``GIVEN_ANEW``)."""
    anew = VARYING | GIVEN_ANEW.get(str(body.get("kind", "")), frozenset())
    return {name: value for name, value in body.items() if name not in anew}


def differing_terms(first: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The names, sorted, of the terms two statements' bodies ask differently."""
    a, b = statement_terms(first), statement_terms(now)
    return sorted(name for name in a.keys() | b.keys() if a.get(name) != b.get(name))


def request_key(body: Mapping[str, Any]) -> str:
    """The request a signed act answers: its kind, the calling system and its request id
    ('' for an act without a request id)."""
    request_id = str(body.get("request_id") or "")
    if not request_id:
        return ""
    return f"{body.get('kind', '')}/{body.get('system', '')}/{request_id}"


def other_terms(first: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """Why the act signed in ``now`` is refused when its request recorded ``first``: ''
    when it asks the same terms (the same request again), else the message naming the
    terms that differ (never their values: the message reaches the logs)."""
    differ = differing_terms(first, now)
    if not differ:
        return ""
    return (f"request id {now.get('request_id')} was used for a "
            f"{str(now.get('kind', 'act')).replace('_', ' ')} with other terms "
            f"({', '.join(differ)}): a retry sends the same request again, a new request "
            "takes a new request id")


def taken_under(requests: Mapping[str, tuple[Mapping[str, Any], T | None]],
                body: Mapping[str, Any]) -> tuple[str, T | None]:
    """What a workflow answers an act signed in ``body`` by the requests it took
    (``request_key`` -> the signed body taken and its answer, None while it is being
    recorded): ('', the answer) for the same terms again or a request it took none under
    (no answer), or the refusal naming the terms that differ (``other_terms``)."""
    key = request_key(body)
    first = requests.get(key) if key else None
    if first is None:
        return "", None
    refused = other_terms(first[0], body)
    return (refused, None) if refused else ("", first[1])
