"""What the approval workflow and the services that serve it agree on.

The approval workflow (workflows/approval.py) runs the four-single chain for
one case; the intake and review services host the activities it calls and
send it the human decisions as updates. Every name and dataclass they share
is here, so the workflow module imports no service and the services import
no workflow code. One dataclass in and one out everywhere, so fields can be
added later with defaults.

Temporal carries the work, not the authority: every act of an official
enters the workflow as a statement signed by the service that authenticated
that official (``SignedStatement``; kernel/signing.py), and the service that
acts on it (review records, intake seals) verifies the signature again.

Nothing here carries personal data: a case is known by its number, an
official by id. Free text (opinions, legal basis) travels only inside
payloads, which the payload codec encrypts, and is bound to its statement
by a SHA-256 digest.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import rfc8785

from kernel.signing import BadSignature, Signed, TrustedKeys
from workflows.statement_fields import StatementFields

#: The workflow type. Version 2: signed statements and one recording activity per
#: transition. Version 1 ("ApprovalWorkflow") lives on in workflows/legacy for replay.
WORKFLOW_NAME = "ApprovalWorkflowV2"
CASE_KIND = "approval"
#: The seal is the center's; its custodians sit in the center's department.
CENTER_DEPARTMENT = "ZWFWZX"
SUPERVISION_DEPARTMENT = "JJZ"


def workflow_id(case_number: str) -> str:
    return f"approval/{case_number}"


class Stage(StrEnum):
    REVIEW = "review"
    SIGN = "sign"
    SEAL = "seal"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"


#: The role that decides at each stage.
STAGE_ROLE = {Stage.REVIEW: "reviewer", Stage.SIGN: "leader", Stage.SEAL: "seal_custodian"}
TERMINAL = (Stage.COMPLETED, Stage.WITHDRAWN)


class Outcome(StrEnum):
    APPROVE = "approve"
    REFUSE = "refuse"
    #: The seal custodian's only decision.
    SEAL = "seal"


class SlaState(StrEnum):
    ON_TIME = "on_time"
    WARNING = "warning"
    BREACHED = "breached"
    PAUSED = "paused"


SPECIAL_PROCEDURES = ("hearing", "expert_review", "inspection_testing", "appraisal",
                      "tendering_auction")
MAX_EXTENSION_DAYS = 10
ESCALATION_KINDS = ("promised_breach", "legal_breach")

# Update, signal and query names.
DECIDE = "decide"
START_SPECIAL_PROCEDURE = "start_special_procedure"
END_SPECIAL_PROCEDURE = "end_special_procedure"
EXTEND_TIME_LIMIT = "extend_time_limit"
WITHDRAW = "withdraw"
RECOMPUTE_DEADLINES = "recompute_deadlines"
STATUS = "status"

# Activity names, each on its service's task queue.
INTAKE = "intake"
REVIEW = "review"


def activity_queue(workflow_queue: str, service: str) -> str:
    """A service's activity queue beside the workflows' queue.

    ``govhall-workflows`` gives ``govhall-review``; a test's ``t1-workflows``
    gives ``t1-review``, so tests sharing one Temporal server never share a queue.
    """
    prefix = workflow_queue.removesuffix("workflows") if workflow_queue.endswith(
        "workflows") else "govhall-"
    return f"{prefix}{service}"

#: Deadlines, the progress record and the review task of a newly accepted case.
OPEN_CASE = "review.open_case"
#: One decided stage: the decision kept, its task closed, the next task opened, the
#: timeline written — in one transaction.
RECORD_TRANSITION = "review.record_transition"
#: Deadlines again (extension, special procedure, a new holiday schedule).
RECOMPUTE_CASE_DEADLINES = "review.recompute_deadlines"
#: A change of SLA state, and the escalation to the supervision desk on a breach.
MARK_SLA = "review.mark_sla"
#: A case that ended without a decision (withdrawn): its task closed, escalations too.
CLOSE_CASE = "review.close_case"
#: The decision document sealed, once, from the chain's verified statements.
SEAL_DECISION = "intake.seal"
#: A case withdrawn through the chain, closed in intake's record.
RECORD_WITHDRAWAL = "intake.record_withdrawal"
#: Something the applicant is told (special procedures, extension).
NOTIFY_APPLICANT = "intake.notify_applicant"


# ---- signed statements ------------------------------------------------------------------

class StatementKind(StrEnum):
    ACCEPTANCE = "acceptance"
    DECISION = "decision"
    EXTENSION = "extension"
    PROCEDURE_START = "procedure_start"
    PROCEDURE_END = "procedure_end"
    WITHDRAWAL = "withdrawal"
    #: Intake's word that it sealed the case: certificate number and outcome.
    SEALED = "sealed"


#: Which service signs each kind of statement: the one that authenticated the official.
STATEMENT_SIGNER = {
    StatementKind.ACCEPTANCE: "intake",
    StatementKind.WITHDRAWAL: "intake",
    StatementKind.SEALED: "intake",
    StatementKind.DECISION: "review",
    StatementKind.EXTENSION: "review",
    StatementKind.PROCEDURE_START: "review",
    StatementKind.PROCEDURE_END: "review",
}


@dataclass
class SignedStatement:
    """An official's act as a service vouches for it (kernel.signing.Signed, as data)."""

    body: dict[str, Any]
    signer: str
    key_id: str
    signature: str


def iso_instant(moment: datetime) -> str:
    """An instant as statements write it: ISO 8601, UTC, microseconds, 'Z'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def content_digest(**texts: str) -> str:
    """SHA-256 over the RFC 8785 form of the free texts that go with a statement."""
    return hashlib.sha256(rfc8785.dumps(dict(texts))).hexdigest()


#: What a case number may look like anywhere a statement or an activity names one: short,
#: plain letters, digits and dashes (AP-20261201-000001), so no log or audit line can be
#: bent by one.
CASE_NUMBER_SHAPE = re.compile(r"^[A-Z]{2}-[0-9A-Za-z-]{1,40}$")


def check_case_number(case_number: str) -> None:
    """Raise ValueError unless ``case_number`` has the shape of one."""
    if not CASE_NUMBER_SHAPE.fullmatch(case_number):
        raise ValueError("not a case number")


@dataclass(frozen=True)
class StatementFacts:
    """What a statement's body says, read strictly; ``Malformed`` when it cannot be read."""

    kind: str
    case_number: str
    official_id: str
    department_code: str
    roles: tuple[str, ...]
    system: str
    issued_at: str
    request_id: str = ""
    stage: str = ""
    outcome: str = ""
    on_behalf_of: str = ""
    delegation_id: str = ""
    content_sha256: str = ""
    days: int = 0
    procedure: str = ""
    #: Acceptance only: the case as the window accepted it.
    item_code: str = ""
    item_version: int = 0
    item_name: str = ""
    accepted_on: str = ""
    promised_limit_days: int = 0
    legal_limit_days: int = 0
    special_procedures: tuple[str, ...] = ()
    #: Sealed only: the certificate number issued.
    certificate_number: str = ""

    class Malformed(ValueError):
        pass

    @classmethod
    def read(cls, body: dict[str, Any]) -> StatementFacts:
        fields = StatementFields(body, cls.Malformed)
        text, number, texts = fields.text, fields.number, fields.texts

        kind = text("kind", required=True)
        if kind not in set(StatementKind):
            raise cls.Malformed(f"{kind!r} is not a kind of statement")
        case_number = text("case_number", required=True)
        if not CASE_NUMBER_SHAPE.fullmatch(case_number):
            raise cls.Malformed("statement field case_number is not a case number")
        return cls(
            kind=kind, case_number=case_number,
            official_id=text("official_id", required=True),
            department_code=text("department_code", required=True), roles=texts("roles"),
            system=text("system", required=True), issued_at=text("issued_at", required=True),
            request_id=text("request_id"), stage=text("stage"), outcome=text("outcome"),
            on_behalf_of=text("on_behalf_of"), delegation_id=text("delegation_id"),
            content_sha256=text("content_sha256"), days=number("days"),
            procedure=text("procedure"), item_code=text("item_code"),
            item_version=number("item_version"), item_name=text("item_name"),
            accepted_on=text("accepted_on"),
            promised_limit_days=number("promised_limit_days"),
            legal_limit_days=number("legal_limit_days"),
            special_procedures=texts("special_procedures"),
            certificate_number=text("certificate_number"))

    @property
    def people(self) -> set[str]:
        """The official who acted and the leader they acted for, if any."""
        return {who for who in (self.official_id, self.on_behalf_of) if who}


def verified_facts(keys: TrustedKeys, statement: SignedStatement,
                   kind: StatementKind) -> StatementFacts:
    """The facts of ``statement`` if its rightful signer signed it and it is a ``kind``.

    Raises BadSignature for a signature that does not hold or the wrong signer,
    and StatementFacts.Malformed for a body that cannot be read.
    """
    keys.verify(Signed(statement.body, statement.signer, statement.key_id,
                       statement.signature), signer=STATEMENT_SIGNER[kind])
    facts = StatementFacts.read(statement.body)
    if facts.kind != kind:
        raise BadSignature(f"a {facts.kind} statement was given as a {kind}")
    return facts


def as_statement(signed: Signed) -> SignedStatement:
    return SignedStatement(signed.body, signed.signer, signed.key_id, signed.signature)


def statement_json(statement: SignedStatement) -> dict[str, Any]:
    """The statement as the signed-document format writes it (kernel/signing.py)."""
    return {"body": statement.body, "signer": statement.signer, "key_id": statement.key_id,
            "signature": statement.signature}


def statement_body(*, kind: StatementKind, case_number: str, official_id: str,
                   department_code: str, roles: list[str], system: str, issued_at: datetime,
                   request_id: str = "", **extra: str | int | list[str]) -> dict[str, Any]:
    """The body a service signs: the facts it checked, and nothing personal."""
    body: dict[str, Any] = {
        "kind": str(kind), "case_number": case_number, "official_id": official_id,
        "department_code": department_code, "roles": sorted(roles), "system": system,
        "issued_at": iso_instant(issued_at), "request_id": request_id}
    body.update({key: value for key, value in extra.items() if value not in ("", 0, [])})
    return body


# ---- the workflow's input, updates and answers ----------------------------------------

@dataclass
class ApprovalInput:
    """Starts the chain for an accepted case: the window's signed acceptance."""

    acceptance: SignedStatement


@dataclass
class Decision:
    """A decision at one stage, signed by review; the free texts its digest covers."""

    statement: SignedStatement
    opinion: str = ""
    legal_basis: str = ""


@dataclass
class DecisionReceipt:
    case_number: str
    stage: str
    outcome: str
    decided_at: datetime
    #: The stage the case went on to.
    next_stage: str
    #: Set when the seal completed the case.
    certificate_number: str = ""
    #: Set with it: intake's signed word that it sealed the case (kind "sealed").
    sealed: SignedStatement | None = None


@dataclass
class ClockChange:
    """A special procedure started or ended, or the legal limit extended (signed by review).

    ``reason`` is the extension's free text, bound by the statement's digest.
    """

    statement: SignedStatement
    reason: str = ""


@dataclass
class Withdrawal:
    """The applicant withdraws, through the window, before the seal (signed by intake)."""

    statement: SignedStatement


@dataclass
class Recompute:
    """Recompute every deadline, e.g. after a new holiday schedule was loaded."""

    reason: str = ""


@dataclass
class PausedSpan:
    """A stretch when the clock stood still; end_on empty while it lasts."""

    procedure: str
    start_on: str
    end_on: str = ""


@dataclass
class Deadlines:
    """When the case turns yellow, red, and when the legal limit runs out."""

    warning_at: datetime
    promised_due_at: datetime
    legal_due_at: datetime
    #: A year a deadline falls in that has no holiday schedule; 0 when all are known.
    unknown_year: int = 0
    #: Each stage's own limit within the promised one.
    stage_due_at: dict[str, datetime] = field(default_factory=dict)


@dataclass
class ChangeReceipt:
    case_number: str
    stage: str
    sla_state: str
    deadlines: Deadlines


@dataclass
class DecisionTaken:
    """A decision as the workflow holds it: the signed statement and its texts."""

    stage: str
    outcome: str
    official_id: str
    on_behalf_of: str
    delegation_id: str
    system: str
    decided_at: datetime
    statement: SignedStatement
    opinion: str = ""
    legal_basis: str = ""


@dataclass
class ApprovalStatus:
    """What the `status` query answers: the whole state an operator needs."""

    case_number: str
    item_code: str
    department_code: str
    stage: str
    sla_state: str
    deadlines: Deadlines | None
    decisions: list[DecisionTaken]
    waiting_for: str
    paused_for: str = ""
    extension_days: int = 0
    certificate_number: str = ""
    outcome: str = ""
    calendar_gap_year: int = 0


@dataclass
class ApprovalResult:
    case_number: str
    #: "approved", "refused" or "withdrawn".
    outcome: str
    completed_at: datetime
    sla_state: str
    certificate_number: str = ""


# ---- activities ---------------------------------------------------------------------------

@dataclass
class DeadlinesRequest:
    """Everything the deadlines follow from, each act signed by whom authenticated it.

    ``pauses`` are the special procedures' start and end statements in order;
    review derives the paused spans from them (the dates in China they were
    signed on).
    """

    acceptance: SignedStatement
    pauses: list[SignedStatement] = field(default_factory=list)
    extension: SignedStatement | None = None
    extension_reason: str = ""
    #: The stage whose open task follows the new due time; '' before the chain began.
    stage: str = ""
    #: Why they are computed, for the timeline (free text of a recompute signal:
    #: shown as a note, never as an act of anyone).
    reason: str = ""
    #: What caused them, set by the workflow: "accepted", "procedure_ended",
    #: "extended" or "recomputed".
    cause: str = "recomputed"
    #: When the workflow asked (the timeline's time of the event).
    at: datetime | None = None
    #: The SLA state the case had when it asked.
    sla_state: str = ""


@dataclass
class Transition:
    """A decided stage, as review records it; one activity per decision.

    Review takes from it only what is signed: the decision's statement and,
    at the seal, intake's sealed statement. The next stage, its department,
    role and due time review works out itself from the chain's rules and its
    own record of the case; the other fields are for the Temporal UI.
    """

    case_number: str
    decision: DecisionTaken
    next_stage: str
    #: The next stage's task: department, role and due time (none at completion).
    next_department: str = ""
    next_role: str = ""
    next_due_at: datetime | None = None
    item_code: str = ""
    certificate_number: str = ""
    #: The case's outcome once completed: "approved" or "refused".
    outcome: str = ""
    sla_state: str = ""
    #: At the seal: intake's signed word that it sealed the case.
    sealed: SignedStatement | None = None


@dataclass
class SlaMark:
    """The case's SLA state changed; ``escalations`` to open with it (breach kinds)."""

    case_number: str
    department_code: str
    stage: str
    sla_state: str
    at: datetime
    escalations: list[str] = field(default_factory=list)
    promised_due_at: datetime | None = None
    legal_due_at: datetime | None = None
    #: The special procedure's start, when the clock stops for one.
    statement: SignedStatement | None = None


@dataclass
class CaseClosing:
    """A case that ended without a decision: withdrawn at ``stage``."""

    case_number: str
    stage: str
    outcome: str
    at: datetime
    statement: SignedStatement | None = None


@dataclass
class SealRequest:
    """Seal the case's decision from the chain's signed statements (review, sign, seal)."""

    case_number: str
    decisions: list[DecisionTaken]


@dataclass
class SealReceipt:
    certificate_number: str
    key_id: str
    document_sha256: str
    #: "approved" or "refused", as intake read it from the verified statements.
    decision: str = ""
    #: The same, signed by intake (kind "sealed"): what the workflow and review believe.
    statement: SignedStatement | None = None


@dataclass
class ApplicantNotice:
    """Tell the applicant of a signed act on the case's clock (a special procedure
    started or ended, the legal limit extended): intake reads the template and
    its details from the verified statement itself."""

    case_number: str
    event_id: str
    template: str
    at: datetime
    details: dict[str, str] = field(default_factory=dict)
    statement: SignedStatement | None = None


@dataclass
class WithdrawalRecord:
    """A withdrawal the chain carried out, for intake's record of the case."""

    case_number: str
    stage: str
    at: datetime
    statement: SignedStatement
