"""What the tender workflow and the trading service agree on.

The tender workflow (workflows/tender.py) runs one tender from its
announcement to the contract; the trading service hosts the activities it
calls and sends it the officials' acts as updates. Every name and dataclass
they share is here, so the workflow imports no service and the service
imports no workflow code. One dataclass in and one out everywhere.

As in the approval chain, Temporal carries the work, not the authority:
every act of an official (announce, amend, object, answer, evaluate, award,
record the contract) enters the workflow as a statement signed by the trading
service, which authenticated the official, and the trading activity that
records the step verifies the signature again.

Nothing here carries personal data or bid content: a tender is known by its
number, an official and a bidder by id. Free texts (an amendment's content,
an objection's grounds, an answer) stay in the trading database; a statement
binds them by their SHA-256 (``content_sha256``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from kernel.signing import BadSignature, Signed, TrustedKeys
from workflows.approval_contract import SignedStatement, iso_instant
from workflows.statement_fields import StatementFields

#: The workflow type.
WORKFLOW_NAME = "TenderWorkflow"
CASE_KIND = "tender"
#: Every statement of a tender is signed by the trading service.
SIGNER = "trading"
TRADING = "trading"

TENDER_NUMBER_SHAPE = re.compile(r"^TD-[0-9]{8}-[0-9]{6}$")
BIDDER_ID_SHAPE = re.compile(r"^BD-[0-9]{4}$")


def workflow_id(tender_no: str) -> str:
    return f"tender/{tender_no}"


class Stage(StrEnum):
    BIDDING = "bidding"
    DECRYPTION = "decryption"
    EVALUATION = "evaluation"
    CANDIDATES = "candidates"
    AWARDED = "awarded"
    CONTRACTED = "contracted"
    FAILED = "failed"


TERMINAL = (Stage.CONTRACTED, Stage.FAILED)


class StatementKind(StrEnum):
    ANNOUNCEMENT = "tender_announcement"
    AMENDMENT = "tender_amendment"
    OBJECTION = "tender_objection"
    OBJECTION_ANSWER = "tender_objection_answer"
    #: The ranked candidates as an officer submitted them (SubmitEvaluation, no longer
    #: taken: the candidates come from the committee's score sheets). Kept to read and
    #: replay the tenders recorded that way.
    EVALUATION = "tender_evaluation"
    AWARD = "tender_award"
    CONTRACT = "tender_contract"
    #: The evaluation committee, seated from its expert draw's signed result.
    COMMITTEE = "tender_committee"
    #: One member's score sheet for one valid bid, from the member's own system.
    SCORE_SHEET = "tender_score_sheet"


class ObjectionTarget(StrEnum):
    DOCUMENTS = "documents"
    CANDIDATES = "candidates"


# Update and query names.
AMEND = "amend"
OBJECT = "object"
ANSWER_OBJECTION = "answer_objection"
EVALUATE = "evaluate"
AWARD = "award"
RECORD_CONTRACT = "record_contract"
SEAT_COMMITTEE = "seat_committee"
SCORE = "score"
STATUS = "status"

# Activity names, on the trading service's task queue.
#: The tender opened: the announcement recorded and published.
OPEN_TENDER = "trading.open_tender"
#: One official's act recorded (amendment, objection, answer, evaluation, award, contract),
#: and published where the public must see it.
RECORD_TENDER_STEP = "trading.record_tender_step"
#: The deadline came: bids counted, commitments published as the opening record, or the
#: tender failed for want of bids.
CLOSE_BIDDING = "trading.close_bidding"
#: The decryption window ended: the tender goes to evaluation.
CLOSE_DECRYPTION = "trading.close_decryption"
#: A limit passed without the act it waits for (an objection's answer, the contract):
#: recorded and escalated to the supervision desk, once.
MARK_TENDER_LATE = "trading.mark_tender_late"


# ---- signed statements ------------------------------------------------------------------

@dataclass(frozen=True)
class TenderFacts:
    """What a tender statement's body says, read strictly; ``Malformed`` when unreadable."""

    kind: str
    tender_no: str
    official_id: str
    department_code: str
    roles: tuple[str, ...]
    system: str
    issued_at: str
    request_id: str = ""
    #: Announcement: the project, its category, the catalogue entry it entered by ('' when
    #: it entered voluntarily), the tenderer's department, the timetable.
    project_no: str = ""
    category: str = ""
    entry_code: str = ""
    tenderer_department: str = ""
    bid_deadline: str = ""
    documents_until: str = ""
    objections_until: str = ""
    decryption_window_seconds: int = 0
    #: Objection and its answer.
    objection_id: str = ""
    target: str = ""
    answer_due: str = ""
    #: The free text the statement binds (kept by trading), by its SHA-256.
    content_sha256: str = ""
    #: Evaluation: bidder ids in rank order. Award: the winner, the amount.
    candidates: tuple[str, ...] = ()
    winner: str = ""
    amount_fen: int = 0
    contract_no: str = ""
    #: Announcement: the evaluation method ('' is the default) and comprehensive scoring's
    #: weights (price, technical, business).
    evaluation_method: str = ""
    weights: tuple[int, ...] = ()
    #: Committee: its expert draw, the draw's result entry, the members in seat order.
    draw_id: str = ""
    result_sequence: int = 0
    result_sha256: str = ""
    members: tuple[str, ...] = ()
    #: Score sheet: who scored which bid, and how.
    member_id: str = ""
    bidder_id: str = ""
    compliant: bool = False
    technical: int = 0
    business: int = 0

    class Malformed(ValueError):
        pass

    @classmethod
    def read(cls, body: dict[str, Any]) -> TenderFacts:
        fields = StatementFields(body, cls.Malformed)
        text, number, flag = fields.text, fields.number, fields.flag
        texts, numbers = fields.texts, fields.numbers

        kind = text("kind", required=True)
        if kind not in set(StatementKind):
            raise cls.Malformed(f"{kind!r} is not a kind of tender statement")
        tender_no = text("tender_no", required=True)
        if not TENDER_NUMBER_SHAPE.fullmatch(tender_no):
            raise cls.Malformed("statement field tender_no is not a tender number")
        facts = cls(
            kind=kind, tender_no=tender_no, official_id=text("official_id", required=True),
            department_code=text("department_code", required=True), roles=texts("roles"),
            system=text("system", required=True), issued_at=text("issued_at", required=True),
            request_id=text("request_id"), project_no=text("project_no"),
            category=text("category"), entry_code=text("entry_code"),
            tenderer_department=text("tenderer_department"),
            bid_deadline=text("bid_deadline"), documents_until=text("documents_until"),
            objections_until=text("objections_until"),
            decryption_window_seconds=number("decryption_window_seconds"),
            objection_id=text("objection_id"), target=text("target"),
            answer_due=text("answer_due"), content_sha256=text("content_sha256"),
            candidates=texts("candidates"), winner=text("winner"),
            amount_fen=number("amount_fen"), contract_no=text("contract_no"),
            evaluation_method=text("evaluation_method"), weights=numbers("weights"),
            draw_id=text("draw_id"), result_sequence=number("result_sequence"),
            result_sha256=text("result_sha256"), members=texts("members"),
            member_id=text("member_id"), bidder_id=text("bidder_id"),
            compliant=flag("compliant"), technical=number("technical"),
            business=number("business"))
        for instant in ("issued_at", "bid_deadline", "documents_until", "objections_until",
                        "answer_due"):
            value = getattr(facts, instant)
            if value:
                try:
                    parse_instant(value)
                except ValueError as error:
                    raise cls.Malformed(f"statement field {instant} is not an instant") \
                        from error
        return facts

    @property
    def issued(self) -> datetime:
        return parse_instant(self.issued_at)

    def instant(self, name: str) -> datetime | None:
        value: str = getattr(self, name)
        return parse_instant(value) if value else None


def parse_instant(text: str) -> datetime:
    """An instant as statements write it (ISO 8601, UTC, 'Z'); ValueError otherwise."""
    if not text.endswith("Z"):
        raise ValueError("an instant ends in Z")
    moment = datetime.fromisoformat(text[:-1] + "+00:00")
    return moment


def verified_facts(keys: TrustedKeys, statement: SignedStatement,
                   kind: StatementKind) -> TenderFacts:
    """The facts of ``statement`` if trading signed it and it is a ``kind``.

    Raises BadSignature for a signature that does not hold or the wrong signer,
    and TenderFacts.Malformed for a body that cannot be read.
    """
    keys.verify(Signed(statement.body, statement.signer, statement.key_id,
                       statement.signature), signer=SIGNER)
    facts = TenderFacts.read(statement.body)
    if facts.kind != kind:
        raise BadSignature(f"a {facts.kind} statement was given as a {kind}")
    return facts


def tender_statement_body(*, kind: StatementKind, tender_no: str, official_id: str,
                          department_code: str, roles: list[str], system: str,
                          issued_at: datetime, request_id: str = "",
                          **extra: str | int | list[str] | list[int] | datetime | None
                          ) -> dict[str, Any]:
    """The body trading signs: the facts it checked, and nothing personal."""
    body: dict[str, Any] = {
        "kind": str(kind), "tender_no": tender_no, "official_id": official_id,
        "department_code": department_code, "roles": sorted(roles), "system": system,
        "issued_at": iso_instant(issued_at), "request_id": request_id}
    for key, value in extra.items():
        if value is not True and value in ("", 0, [], None):
            continue
        body[key] = iso_instant(value) if isinstance(value, datetime) else value
    return body


# ---- the workflow's input, updates and answers ----------------------------------------

@dataclass
class TenderInput:
    """Starts a tender: trading's signed announcement."""

    announcement: SignedStatement


@dataclass
class OfficialAct:
    """An official's act on the tender, signed by trading (amend, object, answer, evaluate,
    award, record the contract); ``text`` is the free text its ``content_sha256`` binds
    (an amendment's content, an objection's grounds, an answer), carried in the encrypted
    payload only."""

    statement: SignedStatement
    text: str = ""


@dataclass
class ActReceipt:
    tender_no: str
    stage: str
    bid_deadline: datetime
    paused: bool
    #: The feed entry that published the act (0 when it is not published).
    feed_sequence: int = 0


@dataclass
class OpenObjection:
    objection_id: str
    target: str
    objected_at: datetime
    answer_due: datetime


@dataclass
class TenderStatus:
    """What the `status` query answers."""

    tender_no: str
    project_no: str
    category: str
    department_code: str
    stage: str
    bid_deadline: datetime
    waiting_for: str
    objection: OpenObjection | None = None
    bids: int = 0
    decryption_ends_at: datetime | None = None
    candidates: list[str] = field(default_factory=list)
    candidates_published_at: datetime | None = None
    award_from: datetime | None = None
    winner: str = ""
    contract_due: datetime | None = None
    contract_late: bool = False
    amendments: int = 0
    objections: int = 0
    #: The feed entries published for the tender, in order.
    feed_sequences: list[int] = field(default_factory=list)


@dataclass
class TenderResult:
    tender_no: str
    #: "contracted" or "failed".
    outcome: str
    finished_at: datetime
    winner: str = ""
    bids: int = 0


# ---- activities ---------------------------------------------------------------------------

@dataclass
class TenderStep:
    """One transition, for trading to record: the statement that caused it (the
    announcement for a step the clock caused), when, and the workflow's view of it.

    Trading takes from it only what is signed, plus the instant; the deadline it
    keeps it computes itself from the signed statements.
    """

    tender_no: str
    statement: SignedStatement
    at: datetime
    #: The step's name, for the record ("announced", "amended", ..., "contract_late").
    step: str = ""
    #: The deadline as the workflow sees it, for the record.
    bid_deadline: datetime | None = None
    #: The objection an answer ends, with its statement (the pause runs from it).
    objection: SignedStatement | None = None
    #: The free text the statement binds by its digest.
    text: str = ""


@dataclass
class StepReceipt:
    tender_no: str
    stage: str
    bid_deadline: datetime
    feed_sequence: int = 0
    #: A score sheet that completed the evaluation: the candidates computed, in rank order.
    candidates: list[str] = field(default_factory=list)


@dataclass
class BiddingClosed:
    tender_no: str
    bids: int
    opened: bool
    feed_sequence: int = 0
