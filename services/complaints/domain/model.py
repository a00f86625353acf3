"""Routing of complaints (DESIGN.md §3), free of any framework.

Every complaint category is routed by a rule to one responsible department:
the department that first receives a case is responsible for it (首接负责),
so there must never be two answers to "who handles this category?".
Re-pointing a category closes the rule in force and starts a new version;
the old versions are kept so that a case routed earlier can still show the
rule it was routed under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from kernel.errors import AlreadyExists, FieldViolation, InvalidArgument

CATEGORY_CODE = re.compile(r"^[A-Z]{2,6}-[0-9]{2,3}$")
NAME_MAX_LENGTH = 100
BASIS_MAX_LENGTH = 500
PLATFORM_KINDS = ("portal", "hotline")
#: The basis recorded for the rules of the routing table loaded at start-up.
INITIAL_BASIS = "initial routing table"


def _refuse(subject: str, problems: list[FieldViolation]) -> None:
    if problems:
        raise InvalidArgument(
            f"{subject} is not valid: " + "; ".join(f"{p.field} {p.description}"
                                                    for p in problems),
            violations=problems)


@dataclass(frozen=True)
class Category:
    """A kind of complaint matter and where it is routed now."""

    code: str
    name: str
    department_code: str
    #: The version of the routing rule in force.
    rule_version: int

    def __post_init__(self) -> None:
        problems: list[FieldViolation] = []
        if not CATEGORY_CODE.fullmatch(self.code):
            problems.append(FieldViolation("category_code", "must look like SC-01"))
        if not self.name.strip() or len(self.name) > NAME_MAX_LENGTH:
            problems.append(FieldViolation(
                "name", f"must be 1 to {NAME_MAX_LENGTH} characters, not only spaces"))
        if self.rule_version < 1:
            problems.append(FieldViolation("rule_version", "must be at least 1"))
        _refuse(f"category {self.code}", problems)


@dataclass(frozen=True)
class RoutingRule:
    """One version of the rule routing a category, in force from valid_from until valid_until."""

    category_code: str
    version: int
    department_code: str
    basis: str
    valid_from: datetime
    #: None while the rule is in force.
    valid_until: datetime | None = None
    #: The official who set the rule; '' for the initial routing table.
    set_by_official_id: str = ""

    def __post_init__(self) -> None:
        problems: list[FieldViolation] = []
        if not self.basis.strip() or len(self.basis) > BASIS_MAX_LENGTH:
            problems.append(FieldViolation(
                "basis", f"must be 1 to {BASIS_MAX_LENGTH} characters, not only spaces"))
        if self.valid_from.tzinfo is None:
            problems.append(FieldViolation("valid_from", "must carry a time zone"))
        if self.valid_until is not None and self.valid_until < self.valid_from:
            problems.append(FieldViolation("valid_until", "must not be before valid_from"))
        _refuse(f"routing rule {self.version} of category {self.category_code}", problems)

    @property
    def in_force(self) -> bool:
        return self.valid_until is None


@dataclass(frozen=True)
class RoutingChange:
    """What setting a routing rule does: the category as now routed and its new rule."""

    category: Category
    rule: RoutingRule
    #: The version the new rule closes; 0 when the category is new.
    superseded_version: int = 0
    #: The department responsible until now; '' when the category is new.
    previous_department_code: str = ""


def change_routing(current: Category | None, *, category_code: str, department_code: str,
                   name: str, basis: str, at: datetime,
                   set_by_official_id: str = "") -> RoutingChange:
    """Create ``category_code`` routed to ``department_code``, or re-point it there.

    ``current`` is the category as routed now (None when it is new). The
    caller checks that the department exists: the directory is not the
    domain's to read.
    """
    if current is None:
        if not name.strip():
            raise InvalidArgument(
                f"category {category_code} is new: give its name",
                violations=[FieldViolation("name", "a new category needs a name")])
        category = Category(category_code, name, department_code, rule_version=1)
        rule = RoutingRule(category_code, 1, department_code, basis, valid_from=at,
                           set_by_official_id=set_by_official_id)
        return RoutingChange(category, rule)
    if name and name != current.name:
        raise InvalidArgument(
            f"category {current.code} is named {current.name!r}: a routing rule does not "
            "rename a category, leave name empty",
            violations=[FieldViolation("name", "must be empty or unchanged for an existing "
                                               "category")])
    if department_code == current.department_code:
        raise AlreadyExists(
            f"category {current.code} is already routed to {department_code} "
            f"(rule version {current.rule_version})")
    version = current.rule_version + 1
    rule = RoutingRule(current.code, version, department_code, basis, valid_from=at,
                       set_by_official_id=set_by_official_id)
    return RoutingChange(
        Category(current.code, current.name, department_code, version), rule,
        superseded_version=current.rule_version,
        previous_department_code=current.department_code)


@dataclass(frozen=True)
class Platform:
    """An external complaint platform registered with the center."""

    id: str
    name: str
    kind: str
    #: The calling system the platform pushes cases through; '' while it has none.
    system_name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PLATFORM_KINDS:
            raise InvalidArgument(
                f"platform {self.id} has kind {self.kind!r}: must be one of "
                + ", ".join(PLATFORM_KINDS),
                violations=[FieldViolation("kind", "unknown platform kind")])
