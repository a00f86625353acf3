"""Requests a service took, keyed by the calling system and its request id.

A desk that acts on a case (review's decisions, complaints' handling acts) keeps each
request it took: the first call with a request id claims it (an empty answer while in
flight), the answer is stored once given, and a retry with the same id and the same
content (fingerprint) gets the same answer; the same id with other content is refused by
the desk. A claim whose act did not go through is removed, so the id can be used again.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)

from kernel.canonical import canonical_json
from kernel.instants import UtcDateTime

#: What a desk's update-id key is derived for (``ServiceSigner.derived_key``).
UPDATE_IDS = "update ids"


def fingerprint(rpc: str, **content: Any) -> str:
    """What makes a request the same request: the RPC, who asks, and everything asked
    (kept beside the request id in the desk's own database)."""
    return hashlib.sha256(canonical_json({"rpc": rpc, **content})).hexdigest()


def update_id(update: str, request_id: str, print_: str, *, key: bytes) -> str:
    """The update's id: the request id and what was asked, so Temporal answers a repeat of
    the same request with its first result, and never another request's (a request
    refused in the workflow frees its id in the desk, while Temporal keeps its result).
    What was asked enters as a MAC under the desk's own key (``UPDATE_IDS``): Temporal
    shows update ids in clear, and a plain hash of an act with few possible contents (a
    decision's outcome, an extension's days) could be tried back."""
    mac = hmac.new(key, print_.encode("ascii"), hashlib.sha256).hexdigest()
    return f"{update}/{request_id}/{mac[:16]}"


def handled_requests_table(metadata: MetaData) -> Table:
    """The ``handled_requests`` table, the same in every service that keeps one."""
    return Table(
        "handled_requests",
        metadata,
        Column("system", String(100), nullable=False),
        Column("request_id", String(80), nullable=False),
        #: SHA-256 over the request's method and content.
        Column("fingerprint", String(64), nullable=False),
        Column("case_number", String(40), nullable=False),
        #: JSON of the answer once given; empty while the request is in flight.
        Column("response", Text, nullable=False),
        Column("received_at", UtcDateTime, nullable=False),
        PrimaryKeyConstraint("system", "request_id"),
    )


@dataclass(frozen=True)
class HandledRequest:
    system: str
    request_id: str
    fingerprint: str
    case_number: str
    #: JSON of the answer; empty while the request is in flight.
    response: str


class HandledRequests:
    """Repository of requests taken, keyed by the calling system and its request id."""

    def __init__(self, connection: Connection, table: Table) -> None:
        self._connection = connection
        self._t = table

    def get(self, system: str, request_id: str) -> HandledRequest | None:
        row = self._connection.execute(select(self._t).where(
            self._t.c.system == system, self._t.c.request_id == request_id)).first()
        if row is None:
            return None
        return HandledRequest(row.system, row.request_id, row.fingerprint, row.case_number,
                              row.response)

    def add(self, request: HandledRequest, *, received_at: datetime) -> None:
        self._connection.execute(insert(self._t).values(
            system=request.system, request_id=request.request_id,
            fingerprint=request.fingerprint, case_number=request.case_number,
            response=request.response, received_at=received_at))

    def answer(self, system: str, request_id: str, response: str) -> None:
        self._connection.execute(update(self._t).where(
            self._t.c.system == system, self._t.c.request_id == request_id)
            .values(response=response))

    def remove(self, system: str, request_id: str) -> None:
        self._connection.execute(delete(self._t).where(
            self._t.c.system == system, self._t.c.request_id == request_id))
