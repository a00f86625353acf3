"""The routing rules: one responsible department per category, every version kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kernel.errors import AlreadyExists, InvalidArgument
from services.complaints.domain.model import (
    Category,
    Platform,
    RoutingRule,
    change_routing,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FOOD_SAFETY = Category("SC-01", "食品安全", "SCJGJ", rule_version=1)


def test_a_new_category_starts_at_rule_version_one() -> None:
    change = change_routing(None, category_code="JT-09", department_code="JTYSJ",
                            name="网约车服务", basis="市政府令第12号", at=NOW,
                            set_by_official_id="ZWFWZX-009")
    assert change.category == Category("JT-09", "网约车服务", "JTYSJ", 1)
    assert change.rule == RoutingRule("JT-09", 1, "JTYSJ", "市政府令第12号", valid_from=NOW,
                                      set_by_official_id="ZWFWZX-009")
    assert change.rule.in_force
    assert change.superseded_version == 0
    assert change.previous_department_code == ""


@pytest.mark.parametrize("name", ["", "   "])
def test_a_new_category_needs_a_name(name: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        change_routing(None, category_code="JT-09", department_code="JTYSJ", name=name,
                       basis="市政府令第12号", at=NOW)
    assert [v.field for v in refused.value.violations] == ["name"]


def test_re_pointing_makes_the_next_version_and_supersedes_the_one_in_force() -> None:
    change = change_routing(FOOD_SAFETY, category_code="SC-01", department_code="WJW",
                            name="", basis="职能调整", at=NOW, set_by_official_id="ZWFWZX-010")
    assert change.category == Category("SC-01", "食品安全", "WJW", rule_version=2)
    assert change.rule.version == 2
    assert change.rule.department_code == "WJW"
    assert change.rule.valid_from == NOW
    assert change.superseded_version == 1
    assert change.previous_department_code == "SCJGJ"


def test_re_pointing_to_the_responsible_department_is_refused() -> None:
    with pytest.raises(AlreadyExists) as refused:
        change_routing(FOOD_SAFETY, category_code="SC-01", department_code="SCJGJ", name="",
                       basis="职能调整", at=NOW)
    assert "SCJGJ" in refused.value.message


def test_a_routing_rule_does_not_rename_a_category() -> None:
    with pytest.raises(InvalidArgument) as refused:
        change_routing(FOOD_SAFETY, category_code="SC-01", department_code="WJW",
                       name="食品卫生", basis="职能调整", at=NOW)
    assert [v.field for v in refused.value.violations] == ["name"]
    same_name = change_routing(FOOD_SAFETY, category_code="SC-01", department_code="WJW",
                               name="食品安全", basis="职能调整", at=NOW)
    assert same_name.category.name == "食品安全"


@pytest.mark.parametrize("basis", ["", "  ", "据" * 501])
def test_a_rule_needs_a_basis(basis: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        change_routing(FOOD_SAFETY, category_code="SC-01", department_code="WJW", name="",
                       basis=basis, at=NOW)
    assert [v.field for v in refused.value.violations] == ["basis"]


@pytest.mark.parametrize("code", ["sc-01", "SC01", "SC-1", "S-01", "SC-01;", ""])
def test_category_codes_have_one_shape(code: str) -> None:
    with pytest.raises(InvalidArgument):
        Category(code, "食品安全", "SCJGJ", 1)


def test_a_rule_cannot_end_before_it_starts() -> None:
    with pytest.raises(InvalidArgument) as refused:
        RoutingRule("SC-01", 1, "SCJGJ", "初始", valid_from=NOW,
                    valid_until=NOW - timedelta(seconds=1))
    assert [v.field for v in refused.value.violations] == ["valid_until"]
    closed = RoutingRule("SC-01", 1, "SCJGJ", "初始", valid_from=NOW, valid_until=NOW)
    assert not closed.in_force


def test_a_rule_needs_an_aware_time() -> None:
    with pytest.raises(InvalidArgument):
        RoutingRule("SC-01", 1, "SCJGJ", "初始", valid_from=datetime(2026, 3, 2, 9, 0))


def test_platforms_are_portals_or_hotlines() -> None:
    assert Platform("12345", "热线", "hotline").kind == "hotline"
    with pytest.raises(InvalidArgument):
        Platform("WX", "微信", "wechat")
