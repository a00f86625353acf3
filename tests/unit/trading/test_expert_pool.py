"""The expert pool's rules: who may be registered, who may be drawn."""

from __future__ import annotations

import pytest

from kernel.errors import InvalidArgument
from services.trading.domain.model import EXPERT_SPECIALTIES, Expert, eligible_experts

NAME = "测试专家甲"


def _expert(expert_id: str, *specialties: str, employer: str = "沈阳某设计院",
            available: bool = True) -> Expert:
    expert = Expert(id=expert_id, name="某专家", specialties=specialties, employer=employer)
    return expert if available else expert.with_availability(available=False, reason="出国")


POOL = [
    _expert("EX-0003", "市政工程", employer="沈阳华建设计院"),
    _expert("EX-0001", "市政工程", "电气工程", employer="辽宁通达设计院"),
    _expert("EX-0002", "电气工程"),
    _expert("EX-0004", "市政工程", available=False),
    _expert("EX-0005", "市政工程", employer="辽宁通达设计院"),
    _expert("EX-0006", "市政工程", employer="沈阳某设计院"),
]


def test_eligible_experts_are_of_the_specialty_and_sorted_by_id() -> None:
    assert eligible_experts(POOL, specialty="市政工程", excluded_employers=[]) == [
        "EX-0001", "EX-0003", "EX-0005", "EX-0006"]
    assert eligible_experts(POOL, specialty="电气工程", excluded_employers=[]) == [
        "EX-0001", "EX-0002"]


def test_an_unavailable_expert_is_never_eligible() -> None:
    assert "EX-0004" not in eligible_experts(POOL, specialty="市政工程", excluded_employers=[])


def test_experts_of_an_excluded_employer_stand_aside() -> None:
    eligible = eligible_experts(POOL, specialty="市政工程",
                                excluded_employers=["辽宁通达设计院", " 沈阳华建设计院 "])
    assert eligible == ["EX-0006"]


def test_no_eligible_expert_gives_an_empty_list() -> None:
    assert eligible_experts(POOL, specialty="法律", excluded_employers=[]) == []


def test_an_unknown_specialty_is_refused_not_answered_empty() -> None:
    with pytest.raises(InvalidArgument) as refused:
        eligible_experts(POOL, specialty="烹饪", excluded_employers=[])
    assert [v.field for v in refused.value.violations] == ["specialty"]


@pytest.mark.parametrize(("specialties", "reason"), [
    ((), "none"),
    (EXPERT_SPECIALTIES[:6], "more than five"),
    (("市政工程", "市政工程"), "repeated"),
    (("市政工程", "烹饪"), "unknown"),
])
def test_an_expert_needs_one_to_five_known_distinct_specialties(
        specialties: tuple[str, ...], reason: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        Expert(id="EX-0100", name=NAME, specialties=specialties, employer="某单位")
    assert "specialties" in [v.field for v in refused.value.violations], reason


def test_an_expert_refusal_names_the_id_but_never_the_name() -> None:
    with pytest.raises(InvalidArgument) as refused:
        Expert(id="EX-0100", name=NAME, specialties=("烹饪",), employer="某单位")
    assert "EX-0100" in refused.value.message
    assert NAME not in refused.value.message


def test_an_expert_id_and_employer_are_checked() -> None:
    with pytest.raises(InvalidArgument) as bad_id:
        Expert(id="EX-12", name=NAME, specialties=("法律",), employer="某单位")
    with pytest.raises(InvalidArgument) as blank_employer:
        Expert(id="EX-0100", name=NAME, specialties=("法律",), employer="  ")
    assert [v.field for v in bad_id.value.violations] == ["id"]
    assert [v.field for v in blank_employer.value.violations] == ["employer"]


def test_taking_an_expert_out_needs_a_reason_and_putting_back_clears_it() -> None:
    expert = _expert("EX-0100", "法律")
    with pytest.raises(InvalidArgument):
        expert.with_availability(available=False, reason=" ")
    out = expert.with_availability(available=False, reason=" 病假 ")
    back = out.with_availability(available=True, reason="")
    assert (out.available, out.unavailable_reason) == (False, "病假")
    assert (back.available, back.unavailable_reason) == (True, "")
