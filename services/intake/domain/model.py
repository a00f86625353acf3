"""The catalogue of approval items (DESIGN.md §1), free of any framework.

An item is versioned: publishing changes makes a new version, and a case
keeps the version it was accepted under.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kernel.errors import FieldViolation, InvalidArgument

MATERIAL_FORMS = ("original", "copy")
SPECIAL_PROCEDURES = ("hearing", "expert_review", "inspection_testing", "appraisal",
                      "tendering_auction")


@dataclass(frozen=True)
class Material:
    code: str
    name: str
    required: bool
    form: str


@dataclass(frozen=True)
class ApprovalItem:
    code: str
    name: str
    department_code: str
    legal_limit_days: int
    promised_limit_days: int
    materials: tuple[Material, ...]
    special_procedures: tuple[str, ...]
    fee_fen: int
    basis: str
    version: int = 0

    def __post_init__(self) -> None:
        problems: list[FieldViolation] = []
        if not 1 <= self.promised_limit_days <= self.legal_limit_days:
            problems.append(FieldViolation(
                "promised_limit_days", "must be at least 1 and not exceed legal_limit_days"))
        codes = [m.code for m in self.materials]
        if len(set(codes)) != len(codes):
            problems.append(FieldViolation("materials", "material codes must be unique"))
        if not any(m.required for m in self.materials):
            problems.append(FieldViolation("materials", "at least one material must be required"))
        if any(m.form not in MATERIAL_FORMS for m in self.materials):
            problems.append(FieldViolation("materials.form", "must be original or copy"))
        if any(p not in SPECIAL_PROCEDURES for p in self.special_procedures):
            problems.append(FieldViolation("special_procedures", "unknown special procedure"))
        if self.fee_fen < 0:
            problems.append(FieldViolation("fee_fen", "must not be negative"))
        if problems:
            raise InvalidArgument(
                f"approval item {self.code} is not valid: "
                + "; ".join(f"{p.field} {p.description}" for p in problems),
                violations=problems)

    @property
    def required_materials(self) -> tuple[Material, ...]:
        return tuple(m for m in self.materials if m.required)


def next_version(current: ApprovalItem | None, proposed: ApprovalItem) -> ApprovalItem:
    """The version ``proposed`` is published as, after ``current`` (None for a new item)."""
    if current is not None and current.department_code != proposed.department_code:
        raise InvalidArgument(
            f"approval item {proposed.code} belongs to {current.department_code}: "
            "an item cannot move to another department, publish a new item instead")
    return replace(proposed, version=(current.version if current else 0) + 1)
