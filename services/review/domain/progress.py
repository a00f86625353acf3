"""Where a case of the approval chain stands, and its timeline, as review keeps them.

The approval workflow reports each step to review in one activity (the
decision, the tasks, the timeline together), so review answers a case's
progress from its own database: while Temporal is down too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from workflows.approval_contract import STAGE_ROLE, TERMINAL, Stage
from workflows.approval_rules import deciding_department


@dataclass(frozen=True)
class CaseProgress:
    case_number: str
    item_code: str
    department_code: str
    stage: str
    sla_state: str
    warning_at: datetime
    promised_due_at: datetime
    legal_due_at: datetime
    opened_at: datetime
    updated_at: datetime
    unknown_year: int = 0
    stage_due_at: dict[str, datetime] = field(default_factory=dict)
    paused_for: str = ""
    extension_days: int = 0
    certificate_number: str = ""
    #: "approved", "refused" or "withdrawn"; empty while the case runs.
    outcome: str = ""


@dataclass(frozen=True)
class ChainEvent:
    """One line of a case's timeline in the chain: identifiers and codes only."""

    event_id: str
    kind: str
    at: datetime
    stage: str = ""
    official_id: str = ""
    details: dict[str, str] = field(default_factory=dict)
    sla_state: str = ""
    sequence: int = 0


def waiting_for(progress: CaseProgress) -> str:
    """Whom or what the case waits for, in words."""
    if progress.stage in TERMINAL:
        return "nobody: the case is finished"
    if progress.paused_for:
        return f"the special procedure {progress.paused_for} to end"
    role = STAGE_ROLE[Stage(progress.stage)]
    department = deciding_department(progress.stage, progress.department_code)
    return f"a {role.replace('_', ' ')} of {department}"
