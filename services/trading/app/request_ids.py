"""What a request id answers when it comes again: the rule every trading use case that
creates a record under a caller's request id follows (projects, tenders, listings).

A request id is public (it is in the signed announcement, the audit log, the feed), so
finding a record under it says nothing about who asks now. The record answers again only
the request it was made for: the same calling system, about the same subject, asking the
same thing (a retry after a lost answer). Another system's reuse of the id, another
subject's, or the same id with other terms is ALREADY_EXISTS, and nothing changes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kernel.errors import AlreadyExists
from kernel.signing import canonical
from workflows.request_terms import statement_terms

T = TypeVar("T")


@dataclass(frozen=True)
class Asked:
    """One request made under a request id: the calling system, the subject it is about
    (a project number, a department) and what it asks, by field."""

    system: str
    subject: str
    terms: Mapping[str, object] = field(default_factory=dict)


def answer_again(record: T, *, request_id: str, what: str, first: Asked, now: Asked) -> T:
    """``record`` (made by the ``first`` request under ``request_id``) when ``now`` is that
    request again; otherwise ALREADY_EXISTS, naming the terms that differ (never their
    values: the message reaches the logs)."""
    if first.system != now.system or first.subject != now.subject:
        raise AlreadyExists(f"request id {request_id} was used for another {what}: a new "
                            "request takes a new request id")
    differ = sorted(name for name in first.terms.keys() | now.terms.keys()
                    if first.terms.get(name) != now.terms.get(name))
    if differ:
        raise AlreadyExists(f"request id {request_id} was used for a {what} with other terms "
                            f"({', '.join(differ)}): a retry sends the same request again, "
                            "a new request takes a new request id")
    return record


def terms_sha256(body: Mapping[str, Any]) -> str:
    """The SHA-256 of the terms a signed act's ``body`` asks, in RFC 8785 canonical JSON
    (``request_terms.statement_terms``: neither its instant nor its request id), to tell
    the contents under one request id apart in trading's own database (origin notes, the
    acts recorded), which holds the signed statements themselves. Never where the act's
    content may not go: that takes ``terms_digest``."""
    return hashlib.sha256(canonical(statement_terms(body))).hexdigest()


def terms_digest(body: Mapping[str, Any], *, key: bytes) -> str:
    """The HMAC-SHA-256 under ``key`` (trading's own secret) of the terms a signed act's
    ``body`` asks, in RFC 8785 canonical JSON (``request_terms.statement_terms``: neither
    its instant nor its request id): the same request signed again has the same digest,
    another request under its id another. Keyed, because the digest goes where the act's
    content may not (a workflow update's id, readable in Temporal): a score sheet's few
    possible terms could be guessed back from a plain hash."""
    return hmac.new(key, canonical(statement_terms(body)), hashlib.sha256).hexdigest()


def act_asked_again(record: T, *, request_id: str, first: Mapping[str, Any],
                    now: Mapping[str, Any]) -> T:
    """``record`` (the act signed in the body ``first``, recorded under ``request_id``)
    when the act signed in ``now`` asks the same terms; otherwise ALREADY_EXISTS naming
    the act by its kind ("tender contract", "listing bid") and the terms that differ
    (``answer_again``)."""
    what = str(now.get("kind") or "act").replace("_", " ")
    return answer_again(record, request_id=request_id, what=what,
                        first=Asked(str(first.get("system", "")), "", statement_terms(first)),
                        now=Asked(str(now.get("system", "")), "", statement_terms(now)))
