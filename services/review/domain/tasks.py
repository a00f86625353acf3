"""Inbox tasks, claims, escalations, and who may act at which stage (DESIGN.md §1).

A task is one stage of one case waiting for a decision: review and sign by
the item's department, seal by the center. An official takes tasks of the
stages whose role they hold in the deciding department; a deputy holding a
leader's delegation in force also takes that leader's sign tasks, and every
decision made so is recorded with the delegation. The supervision desk and
the center's operators read every inbox but decide nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from kernel.directory import Official
from kernel.errors import FailedPrecondition, PermissionDenied
from services.review.domain.model import Delegation
from workflows.approval_contract import CENTER_DEPARTMENT, STAGE_ROLE, Stage

#: The stages that wait in an inbox, in the chain's order.
TASK_STAGES: tuple[str, ...] = (Stage.REVIEW, Stage.SIGN, Stage.SEAL)

#: Roles that read every department's inbox and escalations without deciding.
OVERSIGHT_ROLES = frozenset({"supervisor", "operator"})

ESCALATION_KINDS = ("promised_breach", "legal_breach")


def deciding_department(stage: str, case_department: str) -> str:
    """The seal is the center's; review and signature are the item's department's."""
    return CENTER_DEPARTMENT if stage == Stage.SEAL else case_department


@dataclass(frozen=True)
class Task:
    case_number: str
    stage: str
    department_code: str
    role: str
    item_code: str
    due_at: datetime
    opened_at: datetime
    claimed_by: str = ""
    claimed_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str = ""
    outcome: str = ""

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True)
class Capacity:
    """How an official acts at a stage: in their own right or for a leader."""

    official: Official
    department_code: str
    roles: frozenset[str]
    on_behalf_of: str = ""
    delegation_id: int = 0


def acting_capacity(official: Official, *, role: str,
                    delegations_in_force: Iterable[Delegation]) -> Capacity:
    """The official's capacity to act in ``role``: for a leader they stand in for, or their own.

    A deputy (another leader of the department) holding a leader's delegation
    in force signs for that leader (the earliest granted, if several), and the
    decision is recorded with the delegation. Anyone else acts in their own
    right with the roles they have, and whoever checks the role (a claim here,
    the workflow's rules for a decision) refuses a role they lack.
    """
    own = Capacity(official, official.department_code, official.roles)
    if role != STAGE_ROLE[Stage.SIGN]:
        return own
    held = sorted((d for d in delegations_in_force
                   if d.deputy_id == official.id and role in official.roles),
                  key=lambda d: d.id)
    if not held:
        return own
    delegation = held[0]
    return Capacity(official, delegation.department_code, official.roles,
                    delegation.leader_id, delegation.id)


@dataclass(frozen=True)
class InboxScope:
    """Which tasks an official may list: (department, stage) pairs, or any for oversight."""

    pairs: frozenset[tuple[str, str]]
    #: Oversight reads every department (or the one asked for) at these stages.
    oversight_stages: tuple[str, ...] = ()
    oversight_department: str = ""

    @property
    def oversight(self) -> bool:
        return bool(self.oversight_stages)


def inbox_scope(official: Official, *, department_code: str, stage: str,
                delegations_in_force: Iterable[Delegation]) -> InboxScope:
    """What ``official`` may see of the inboxes, narrowed to a department and a stage if asked.

    Asking for a department or a stage the official has no part in is refused,
    so a caller learns it asked wrongly instead of reading an empty inbox.
    """
    stages = (stage,) if stage else TASK_STAGES
    if official.roles & OVERSIGHT_ROLES:
        return InboxScope(frozenset(), stages, department_code)
    pairs: set[tuple[str, str]] = set()
    for task_stage in TASK_STAGES:
        if STAGE_ROLE[Stage(task_stage)] in official.roles:
            pairs.add((deciding_department(task_stage, official.department_code), task_stage))
    for delegation in delegations_in_force:
        if delegation.deputy_id == official.id:
            pairs.add((delegation.department_code, Stage.SIGN))
    wanted = {(d, s) for d, s in pairs
              if s in stages and (not department_code or d == department_code)}
    if not wanted:
        where = f" of {department_code}" if department_code else ""
        what = f"{stage} tasks" if stage else "tasks"
        raise PermissionDenied(
            f"official {official.id} may not take {what}{where}: an inbox shows the stages "
            "whose role the official holds in the deciding department")
    return InboxScope(frozenset(wanted))


def check_progress_reader(official: Official, *, case_number: str,
                          case_department: str) -> None:
    """A case's progress (decisions, opinions) is read by its own department and by oversight."""
    if official.roles & OVERSIGHT_ROLES or official.department_code == case_department:
        return
    raise PermissionDenied(
        f"official {official.id} of {official.department_code} may not read the progress of "
        f"case {case_number}: it is read by officials of {case_department}, supervisors and "
        "operators")


def claim(task: Task, capacity: Capacity, *, now: datetime,
          earlier_deciders: Sequence[str]) -> Task:
    """``task`` claimed by the official of ``capacity``; unchanged if they hold it already."""
    official = capacity.official
    if task.role not in capacity.roles:
        raise PermissionDenied(
            f"official {official.id} does not hold the role {task.role}"
            + (" nor a leader's delegation in force" if task.stage == Stage.SIGN else ""))
    if not task.is_open:
        raise FailedPrecondition(
            f"the {task.stage} task of case {task.case_number} is closed ({task.outcome})")
    if capacity.department_code != task.department_code:
        raise PermissionDenied(
            f"the {task.stage} task of case {task.case_number} belongs to "
            f"{task.department_code}, not to {capacity.department_code}")
    if task.claimed_by == official.id:
        return task
    if task.claimed_by:
        raise FailedPrecondition(
            f"the {task.stage} task of case {task.case_number} is claimed by "
            f"{task.claimed_by}")
    acting_for = {official.id, capacity.on_behalf_of} - {""}
    if acting_for & set(earlier_deciders):
        raise PermissionDenied(
            f"official {official.id} has already acted on case {task.case_number}: one "
            "person acts once on a case")
    return replace(task, claimed_by=official.id, claimed_at=now)


def check_not_claimed_by_another(task: Task | None, official_id: str) -> None:
    """A decision on an open task someone else claimed is refused; unclaimed is fine."""
    if task is not None and task.is_open and task.claimed_by not in ("", official_id):
        raise FailedPrecondition(
            f"the {task.stage} task of case {task.case_number} is claimed by "
            f"{task.claimed_by}")


@dataclass(frozen=True)
class Escalation:
    """A breached deadline reported to the supervision desk; closed when the case ends."""

    case_number: str
    department_code: str
    stage: str
    kind: str
    due_at: datetime
    opened_at: datetime
    id: int = 0
    closed_at: datetime | None = None


@dataclass(frozen=True)
class RecordedDecision:
    """A decision as the workflow recorded it: at a stage, or a leader's extension."""

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
    #: The decision as review signed it (JSON of the signed statement).
    statement: str = ""
