"""What the approval workflow and the services that serve it agree on.

The ApprovalWorkflow (workflows/approval.py) runs the four-single chain for
one case; the intake and review services host the activities it calls and
send it the human decisions as updates. Every name and dataclass they share
is here, so the workflow module imports no service and the services import
no workflow code. One dataclass in and one out everywhere, so fields can be
added later with defaults.

Nothing here carries personal data: a case is known by its number, an
official by id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

WORKFLOW_NAME = "ApprovalWorkflow"
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

# Update, signal and query names.
DECIDE = "decide"
START_SPECIAL_PROCEDURE = "start_special_procedure"
END_SPECIAL_PROCEDURE = "end_special_procedure"
EXTEND_TIME_LIMIT = "extend_time_limit"
WITHDRAW = "withdraw"
RECOMPUTE_DEADLINES = "recompute_deadlines"
STATUS = "status"

# Activity names, each on its service's task queue.
INTAKE_QUEUE = "govhall-intake"
REVIEW_QUEUE = "govhall-review"
CASE_DEADLINES = "review.case_deadlines"
OPEN_TASK = "review.open_task"
CLOSE_TASK = "review.close_task"
RECORD_DECISION = "review.record_decision"
OPEN_ESCALATION = "review.open_escalation"
RECORD_CASE_EVENT = "intake.record_case_event"
NOTIFY_APPLICANT = "intake.notify_applicant"
SEAL_DECISION = "intake.seal_decision"


@dataclass
class ApprovalInput:
    """Starts the chain for an accepted case."""

    case_number: str
    item_code: str
    item_version: int
    item_name: str
    department_code: str
    #: The acceptance date (the day the materials became complete), ISO format.
    accepted_on: str
    accepted_at: datetime
    clerk_id: str
    promised_limit_days: int
    legal_limit_days: int
    special_procedures: list[str] = field(default_factory=list)


@dataclass
class Actor:
    """An official acting on a case, as the owning service verified it."""

    official_id: str
    department_code: str
    roles: list[str]
    system: str
    #: The leader this official signs for under a delegation, if any.
    on_behalf_of: str = ""
    delegation_id: str = ""


@dataclass
class Decision:
    """A decision at one stage: approve or refuse (review, sign) or seal."""

    actor: Actor
    stage: str
    outcome: str
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


@dataclass
class SpecialProcedureChange:
    """Start or end of a special procedure, which stops the clock (art. 45)."""

    actor: Actor
    procedure: str
    note: str = ""


@dataclass
class Extension:
    """A leader's extension of the legal limit (art. 42), once, up to 10 working days."""

    actor: Actor
    days: int
    reason: str


@dataclass
class Withdrawal:
    """The applicant withdraws, through the window, before the seal."""

    actor: Actor
    reason: str = ""


@dataclass
class Recompute:
    """Recompute every deadline, e.g. after a new holiday schedule was loaded."""

    reason: str = ""


@dataclass
class ChangeReceipt:
    case_number: str
    stage: str
    sla_state: str
    deadlines: Deadlines


@dataclass
class PausedSpan:
    """A stretch when the clock stood still; end_on empty while it lasts."""

    procedure: str
    start_on: str
    end_on: str = ""


@dataclass
class CaseDeadlinesInput:
    accepted_on: str
    promised_limit_days: int
    legal_limit_days: int
    extension_days: int = 0
    paused: list[PausedSpan] = field(default_factory=list)


@dataclass
class Deadlines:
    """When the case turns yellow, red, and when the legal limit runs out."""

    warning_at: datetime
    promised_due_at: datetime
    legal_due_at: datetime
    #: A year a deadline falls in that has no holiday schedule; 0 when all are known.
    unknown_year: int = 0
    #: Each stage's own limit within the promised one: review, sign and seal are due by
    #: these instants (empty from services that predate per-stage limits).
    stage_due_at: dict[str, datetime] = field(default_factory=dict)


@dataclass
class TaskOpening:
    case_number: str
    stage: str
    department_code: str
    role: str
    item_code: str
    due_at: datetime


@dataclass
class TaskClosing:
    case_number: str
    stage: str
    official_id: str
    outcome: str


@dataclass
class DecisionRecord:
    case_number: str
    stage: str
    outcome: str
    official_id: str
    system: str
    decided_at: datetime
    opinion: str = ""
    legal_basis: str = ""
    on_behalf_of: str = ""
    delegation_id: str = ""


@dataclass
class EscalationOpening:
    case_number: str
    department_code: str
    stage: str
    #: "promised_breach" or "legal_breach".
    kind: str
    due_at: datetime


@dataclass
class CaseEvent:
    """One line of a case's timeline, kept by the intake service."""

    case_number: str
    #: Unique within the case, so a retried activity records it once.
    event_id: str
    kind: str
    at: datetime
    stage: str = ""
    official_id: str = ""
    details: dict[str, str] = field(default_factory=dict)
    deadlines: Deadlines | None = None
    #: The case's new status, when the event changes it.
    status: str = ""
    sla_state: str = ""


@dataclass
class ApplicantNotice:
    """Tell the applicant something (by template; the text holds no free data)."""

    case_number: str
    event_id: str
    template: str
    at: datetime
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class SealRequest:
    case_number: str
    #: "approved" or "refused".
    decision: str
    decided_at: datetime
    sealed_by: str
    reviewer_id: str
    signer_id: str
    opinion: str = ""
    legal_basis: str = ""


@dataclass
class SealReceipt:
    certificate_number: str
    key_id: str
    document_sha256: str


@dataclass
class ApprovalStatus:
    """What the `status` query answers: the whole state an operator needs."""

    case_number: str
    item_code: str
    department_code: str
    stage: str
    sla_state: str
    deadlines: Deadlines | None
    decisions: list[DecisionRecord]
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
