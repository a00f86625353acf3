from __future__ import annotations

from dataclasses import replace

import pytest

from kernel.errors import InvalidArgument
from services.intake.domain.model import ApprovalItem, Material, next_version

FOOD = ApprovalItem(
    code="012101000001000", name="食品经营许可", department_code="SCJGJ",
    legal_limit_days=20, promised_limit_days=10,
    materials=(Material("M01", "申请书", True, "original"),
               Material("M02", "场所平面图", False, "copy")),
    special_procedures=("inspection_testing",), fee_fen=0,
    basis="《中华人民共和国食品安全法》第三十五条")


def test_a_new_item_starts_at_version_one_and_changes_count_up() -> None:
    first = next_version(None, FOOD)
    second = next_version(first, replace(FOOD, promised_limit_days=5))
    assert (first.version, second.version) == (1, 2)
    assert second.promised_limit_days == 5


def test_an_item_cannot_move_department() -> None:
    with pytest.raises(InvalidArgument, match="cannot move"):
        next_version(next_version(None, FOOD), replace(FOOD, department_code="FGW"))


@pytest.mark.parametrize(("change", "field"), [
    ({"promised_limit_days": 21}, "promised_limit_days"),
    ({"promised_limit_days": 0}, "promised_limit_days"),
    ({"materials": (Material("M01", "a", True, "original"),
                    Material("M01", "b", False, "copy"))}, "materials"),
    ({"materials": (Material("M01", "a", False, "original"),)}, "materials"),
    ({"special_procedures": ("bribery",)}, "special_procedures"),
    ({"fee_fen": -1}, "fee_fen"),
])
def test_broken_rules_are_refused_with_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        replace(FOOD, **change)  # type: ignore[arg-type]
    assert field in [v.field for v in refused.value.violations]


def test_required_materials_are_those_marked_required() -> None:
    assert [m.code for m in FOOD.required_materials] == ["M01"]
