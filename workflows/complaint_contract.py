"""What the complaint workflow and the complaints service agree on.

The complaint workflow (workflows/complaint.py) tracks one complaint case
from routing to closing; the complaints service hosts the activities it
calls (on its own task queue) and sends it the officials' and platforms'
acts as updates. Every name and dataclass they share is here, so the
workflow module imports no service and the service imports no workflow
code. One dataclass in and one out everywhere, so fields can be added
later with defaults (never renamed: both sides build against these names).

As in the approval chain (workflows/approval_contract.py), Temporal carries
the work, not the authority: every act enters the workflow as a statement
signed by the complaints service, which authenticated the official (or the
platform, for a rating), and the service verifies it again when it records
the act. The workflow never sees personal data: a case is known by its
number, an official by id, a platform by id; free text (a reply, a basis,
a contribution, a rating's comment) travels only inside update payloads,
which the payload codec encrypts, bound to its statement by a SHA-256
digest (``content_sha256 == content_digest(**texts)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from temporalio.common import RetryPolicy

from kernel.signing import BadSignature, Signed, TrustedKeys
from workflows.approval_contract import (
    CASE_NUMBER_SHAPE,
    SignedStatement,
    SlaState,
    activity_queue,
    as_statement,
    content_digest,
    iso_instant,
    statement_json,
)
from workflows.statement_fields import StatementFields

__all__ = [
    "CASE_NUMBER_SHAPE", "SignedStatement", "SlaState", "activity_queue", "as_statement",
    "content_digest", "iso_instant", "statement_json",
]

WORKFLOW_NAME = "ComplaintWorkflow"
CASE_KIND = "complaint"
#: The service that signs every complaint statement, and whose task queue has the activities.
COMPLAINTS = "complaints"
#: The center: its dispatchers decide returned cases, extensions and merges.
CENTER_DEPARTMENT = "ZWFWZX"
HANDLER_ROLE = "complaint_handler"
DISPATCHER_ROLE = "complaint_dispatcher"
#: The longest extension any deadline policy may allow, in working days (the policy's own
#: bound, services/complaints/domain/policy.py MAX_DAYS, and the RPC's). The policy in force
#: (10 by default, an operator may change it) is applied by the service before it signs.
MAX_EXTENSION_DAYS = 60
#: Rating levels; a level up to UNSATISFIED_AT is "unsatisfied" (reopens once).
RATING_LEVELS = range(1, 6)
UNSATISFIED_AT = 2


def workflow_id(case_number: str) -> str:
    return f"complaint/{case_number}"


class Stage(StrEnum):
    #: Routed to a department, waiting for it to sign for the case.
    ROUTED = "routed"
    HANDLING = "handling"
    #: Returned by the department: the center's dispatcher decides.
    RETURNED = "returned"
    #: Replied; the rating window is open.
    REPLIED = "replied"
    CLOSED = "closed"
    #: A duplicate, answered by its primary case; terminal.
    MERGED = "merged"


TERMINAL = (Stage.CLOSED, Stage.MERGED)


class ComplaintKind(StrEnum):
    CONSULTATION = "consultation"
    HELP_REQUEST = "help_request"
    SUGGESTION = "suggestion"
    COMPLAINT = "complaint"
    REPORT = "report"


class DispatchOutcome(StrEnum):
    #: To another department: routed again, with a new sign-for clock.
    REASSIGN = "reassign"
    #: Back to the department that returned it: routed again to it.
    SEND_BACK = "send_back"


class ExtensionOutcome(StrEnum):
    GRANTED = "granted"
    REFUSED = "refused"


class OverdueWhat(StrEnum):
    SIGN_FOR = "sign_for"
    REPLY = "reply"


class CloseReason(StrEnum):
    RATING_WINDOW_LAPSED = "rating_window_lapsed"


# Update, signal and query names.
SIGN_FOR = "sign_for"
RETURN_CASE = "return_case"
DISPATCH = "dispatch"
SET_CO_HANDLERS = "set_co_handlers"
CONTRIBUTE = "contribute"
REPLY = "reply"
REQUEST_EXTENSION = "request_extension"
DECIDE_EXTENSION = "decide_extension"
MERGE = "merge"
RATE = "rate"
STATUS = "status"
#: Signal to a primary case: a duplicate was merged into it (display only: no authority).
MERGED_CASE = "merged_case"
#: Signal: the service recomputed the case's deadlines (a holiday schedule was loaded). It
#: only wakes the workflow, which reads the dues from the service (READ_DUES): no authority.
DEADLINES_CHANGED = "deadlines_changed"

# Activity names, on activity_queue(workflow queue, COMPLAINTS).
#: The case opened for handling: its deadlines by the policy in force (CaseClock).
OPEN_CASE = "complaints.open_case"
#: One accepted act, re-verified and recorded by the service with the rule applied (one per
#: transition); its platform events emitted in the same transaction.
RECORD_ACT = "complaints.record_act"
#: A deadline passed (督办): escalation recorded, the supervising side told, SLA red.
MARK_OVERDUE = "complaints.mark_overdue"
#: The case closed without an act (the rating window lapsed).
CLOSE_CASE = "complaints.close_case"
#: One platform event POSTed to the platform's webhook (retried under DELIVERY_RETRY).
DELIVER_PLATFORM_EVENT = "complaints.deliver_platform_event"
#: The approval case or tender a complaint names, looked up once (never blocks the case).
CHECK_LINK = "complaints.check_link"
#: The case's running deadlines as the service has them now (ActRecorded, nothing written).
READ_DUES = "complaints.read_dues"

#: Webhook deliveries are retried until the platform answers 2xx: no attempt limit.
DELIVERY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                             maximum_interval=timedelta(minutes=10), maximum_attempts=0)


# ---- signed statements ------------------------------------------------------------------

class StatementKind(StrEnum):
    #: The workflow's input: the case as the platform pushed it and routing routed it.
    RECEIVED = "complaint_received"
    SIGN_FOR = "complaint_sign_for"
    #: Texts: {"basis"}.
    RETURN = "complaint_return"
    #: outcome (DispatchOutcome), target_department; texts: {"basis"}.
    DISPATCH = "complaint_dispatch"
    #: co_handlers (department codes).
    CO_HANDLERS = "complaint_co_handlers"
    #: Texts: {"contribution"}.
    CONTRIBUTION = "complaint_contribution"
    #: Texts: {"reply"}.
    REPLY = "complaint_reply"
    #: days; texts: {"basis"}.
    EXTENSION_REQUEST = "complaint_extension_request"
    #: outcome (ExtensionOutcome), days (granted).
    EXTENSION_DECISION = "complaint_extension_decision"
    #: primary_case_number.
    MERGE = "complaint_merge"
    #: level 1..5, by the origin platform (platform_id set, official_id = the platform id);
    #: texts: {"comment"} (may be empty).
    RATING = "complaint_rating"


#: The service that signs every kind of complaint statement.
STATEMENT_SIGNER = COMPLAINTS

#: The free texts each kind's ``content_sha256`` covers (exactly these keys); a kind not
#: listed carries none (texts empty, content_sha256 empty).
TEXT_KEYS: dict[StatementKind, tuple[str, ...]] = {
    StatementKind.RETURN: ("basis",),
    StatementKind.DISPATCH: ("basis",),
    StatementKind.CONTRIBUTION: ("contribution",),
    StatementKind.REPLY: ("reply",),
    StatementKind.EXTENSION_REQUEST: ("basis",),
    StatementKind.RATING: ("comment",),
}


def texts_match(kind: StatementKind | str, content_sha256: str, texts: dict[str, str]) -> bool:
    """Are ``texts`` the ones a ``kind`` statement with this digest was signed over?

    No texts and no digest match too (a rating without a comment; a reply without one
    is then refused by the rules, not as forged).
    """
    keys = TEXT_KEYS.get(StatementKind(kind), ())
    if not texts and not content_sha256:
        return True
    return bool(keys) and set(texts) == set(keys) and content_digest(**texts) == content_sha256


@dataclass(frozen=True)
class ComplaintFacts:
    """What a complaint statement's body says, read strictly; ``Malformed`` when it cannot be.

    ``department_code`` is the acting official's department (for RECEIVED: the department
    the case was routed to; for RATING: empty).
    """

    kind: str
    case_number: str
    official_id: str
    department_code: str
    roles: tuple[str, ...]
    system: str
    issued_at: str
    request_id: str = ""
    content_sha256: str = ""
    #: DISPATCH (DispatchOutcome) or EXTENSION_DECISION (ExtensionOutcome).
    outcome: str = ""
    #: DISPATCH: the department the case goes to (the same one for send_back).
    target_department: str = ""
    #: CO_HANDLERS: the co-handling departments.
    co_handlers: tuple[str, ...] = ()
    #: EXTENSION_REQUEST / EXTENSION_DECISION: working days.
    days: int = 0
    #: MERGE: the case this duplicate is answered by.
    primary_case_number: str = ""
    #: RATING: 1..5.
    level: int = 0
    #: RECEIVED and RATING: the origin platform.
    platform_id: str = ""
    #: RECEIVED only: the case as pushed and routed.
    complaint_kind: str = ""
    urgent: bool = False
    category_code: str = ""
    deadline_class: str = ""
    received_at: str = ""

    class Malformed(ValueError):
        pass

    @classmethod
    def read(cls, body: dict[str, Any]) -> ComplaintFacts:
        fields = StatementFields(body, cls.Malformed)
        text, number, flag, texts = fields.text, fields.number, fields.flag, fields.texts

        kind = text("kind", required=True)
        if kind not in set(StatementKind):
            raise cls.Malformed(f"{kind!r} is not a kind of complaint statement")
        case_number = text("case_number", required=True)
        if not CASE_NUMBER_SHAPE.fullmatch(case_number):
            raise cls.Malformed("statement field case_number is not a case number")
        primary = text("primary_case_number")
        if primary and not CASE_NUMBER_SHAPE.fullmatch(primary):
            raise cls.Malformed("statement field primary_case_number is not a case number")
        return cls(
            kind=kind, case_number=case_number,
            official_id=text("official_id", required=True),
            department_code=text("department_code"), roles=texts("roles"),
            system=text("system", required=True), issued_at=text("issued_at", required=True),
            request_id=text("request_id"), content_sha256=text("content_sha256"),
            outcome=text("outcome"), target_department=text("target_department"),
            co_handlers=texts("co_handlers"), days=number("days"),
            primary_case_number=primary, level=number("level"),
            platform_id=text("platform_id"), complaint_kind=text("complaint_kind"),
            urgent=flag("urgent"), category_code=text("category_code"),
            deadline_class=text("deadline_class"), received_at=text("received_at"))


def verified_complaint_facts(keys: TrustedKeys, statement: SignedStatement,
                             kind: StatementKind) -> ComplaintFacts:
    """The facts of ``statement`` if the complaints service signed it and it is a ``kind``.

    Raises BadSignature for a signature that does not hold or the wrong signer,
    and ComplaintFacts.Malformed for a body that cannot be read.
    """
    keys.verify(Signed(statement.body, statement.signer, statement.key_id,
                       statement.signature), signer=STATEMENT_SIGNER)
    facts = ComplaintFacts.read(statement.body)
    if facts.kind != kind:
        raise BadSignature(f"a {facts.kind} statement was given as a {kind}")
    return facts


def complaint_statement_body(*, kind: StatementKind, case_number: str, official_id: str,
                             department_code: str, roles: list[str], system: str,
                             issued_at: datetime, request_id: str = "",
                             **extra: str | int | bool | list[str]) -> dict[str, Any]:
    """The body the complaints service signs: the facts it checked, and nothing personal.

    Extra fields left at their empty value ("", 0, False, []) are left out (read back as
    the same). For texts, pass ``content_sha256=content_digest(**texts)``.
    """
    body: dict[str, Any] = {
        "kind": str(kind), "case_number": case_number, "official_id": official_id,
        "department_code": department_code, "roles": sorted(roles), "system": system,
        "issued_at": iso_instant(issued_at), "request_id": request_id}
    body.update({key: value for key, value in extra.items()
                 if value is not False and value not in ("", 0, [])})
    return body


# ---- the workflow's input, updates and answers ----------------------------------------

@dataclass
class ComplaintInput:
    """Starts the workflow of a committed case: the service's signed RECEIVED statement."""

    received: SignedStatement


@dataclass
class Act:
    """One act on the case, signed by the complaints service; the texts its digest covers."""

    statement: SignedStatement
    texts: dict[str, str] = field(default_factory=dict)


@dataclass
class ActReceipt:
    """The case after an act. Due times as ISO 8601 instants, "" when none runs."""

    case_number: str
    stage: str
    department_code: str
    sign_for_due: str
    reply_due: str
    reopened: bool


@dataclass
class MergedCase:
    """A duplicate merged into this case (signal MERGED_CASE; shown, nothing decided)."""

    case_number: str


@dataclass
class ComplaintStatusView:
    """What the `status` query answers. Due times as ISO 8601 instants, "" when none runs."""

    case_number: str
    stage: str
    department_code: str
    co_handlers: list[str]
    contributions_pending: list[str]
    sla_state: str
    sign_for_due: str
    reply_due: str
    reopened: bool
    extension_pending: bool
    escalations: int
    merged_cases: list[str]
    category_code: str = ""
    complaint_kind: str = ""
    urgent: bool = False
    rating: int = 0
    rating_closes: str = ""
    merged_into: str = ""


@dataclass
class ComplaintResult:
    case_number: str
    #: "closed" or "merged".
    stage: str
    ended_at: datetime
    #: Why it ended: "rated", "rating_window_lapsed", "merged".
    reason: str
    rating: int = 0
    reopened: bool = False
    escalations: int = 0


# ---- activities ---------------------------------------------------------------------------

@dataclass
class OpenCase:
    """Open the case for handling: deadlines from the policy in force (the statement's time)."""

    statement: SignedStatement


@dataclass
class CaseClock:
    sign_for_due: datetime
    reply_due: datetime
    policy_version: int
    #: Platform events emitted on opening (to deliver).
    platform_events: list[str] = field(default_factory=list)


@dataclass
class ActRecord:
    """One accepted act: the service re-verifies the statement and the texts' digest."""

    statement: SignedStatement
    texts: dict[str, str] = field(default_factory=dict)


@dataclass
class ActRecorded:
    """The case as the service recorded it after the act (authoritative)."""

    stage: str
    department_code: str
    #: None when no sign-for (reply, rating window) clock runs.
    sign_for_due: datetime | None = None
    reply_due: datetime | None = None
    rating_closes: datetime | None = None
    #: Event ids emitted with the act (for this case's platform and, on the reply of a
    #: primary case, its duplicates' platforms), to deliver.
    platform_events: list[str] = field(default_factory=list)
    #: Other cases this act closed (a primary's reply answers its duplicates).
    closed_cases: list[str] = field(default_factory=list)


@dataclass
class Overdue:
    case_number: str
    #: OverdueWhat.
    what: str
    due: datetime


@dataclass
class Escalated:
    #: The case's escalations so far.
    escalations: int
    platform_events: list[str] = field(default_factory=list)


@dataclass
class DeadlinesChanged:
    """The service recomputed the case's deadlines (signal DEADLINES_CHANGED): a wake-up."""

    case_number: str


@dataclass
class DuesRequest:
    """Which case's running deadlines to read (activity READ_DUES)."""

    case_number: str


@dataclass
class Closing:
    case_number: str
    #: CloseReason.
    reason: str


@dataclass
class PlatformDelivery:
    event_id: str


@dataclass
class DeliveryResult:
    #: False when the platform has no webhook (the event stays pullable).
    delivered: bool
    status_code: int = 0


@dataclass
class LinkCheck:
    case_number: str


@dataclass
class LinkChecked:
    #: "approval", "tender" or "" when the case names no link.
    kind: str
    found: bool
    detail: str = ""


def queue(workflow_queue: str) -> str:
    """The complaints activities' task queue beside ``workflow_queue``."""
    return activity_queue(workflow_queue, COMPLAINTS)


def case_summary(facts: ComplaintFacts) -> str:
    """What the Temporal UI shows for the workflow (its static summary): codes only."""
    urgent = " urgent" if facts.urgent else ""
    return (f"Complaint{urgent} {facts.complaint_kind} {facts.category_code} "
            f"— {facts.department_code}")
