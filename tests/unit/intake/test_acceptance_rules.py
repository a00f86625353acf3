"""Art. 32 at the window, as pure rules: outcomes, the one correction notice, case numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from kernel.errors import InvalidArgument
from services.intake.domain.cases import (
    Applicant,
    Finding,
    Findings,
    IntakeOutcome,
    NoticeKind,
    SubmittedMaterial,
    assess,
    case_number,
    check_materials,
    china_date,
    fixed_on_the_spot,
    mask_name,
    outstanding,
    supplemented,
)
from services.intake.domain.model import ApprovalItem, Material

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
ITEM = ApprovalItem(
    code="012101000007001", name="食品经营许可（新办）", department_code="SCJGJ",
    legal_limit_days=20, promised_limit_days=10,
    materials=(Material("M01", "申请书", True, "original"),
               Material("M02", "营业执照", True, "copy"),
               Material("M03", "场所平面图", True, "copy"),
               Material("M04", "食品安全管理制度", False, "copy")),
    special_procedures=(), fee_fen=0, basis="《食品经营许可管理办法》", version=3)
NONE = Findings(Finding.NONE)


def _all_fine() -> tuple[SubmittedMaterial, ...]:
    return (SubmittedMaterial("M01", True), SubmittedMaterial("M02", True),
            SubmittedMaterial("M03", True))


def test_complete_materials_are_accepted_with_a_dated_receipt() -> None:
    result = assess(ITEM, NONE, _all_fine(), case_number="AP-20260302-000001", now=NOW)
    assert result.outcome == IntakeOutcome.ACCEPTED
    assert result.notice.kind == NoticeKind.ACCEPTANCE_RECEIPT
    assert "2026年3月2日" in result.notice.text
    assert "AP-20260302-000001" in result.notice.text
    assert result.notice.issued_on == date(2026, 3, 2)


def test_one_correction_notice_lists_every_missing_and_defective_material() -> None:
    materials = (SubmittedMaterial("M01", True, ("缺少法定代表人签字",)),
                 SubmittedMaterial("M02", False),
                 SubmittedMaterial("M04", True, ("复印件模糊", "未加盖公章")))
    result = assess(ITEM, NONE, materials, case_number="AP-20260302-000001", now=NOW)
    assert result.outcome == IntakeOutcome.CORRECTION_REQUIRED
    assert result.notice.kind == NoticeKind.CORRECTION
    listed = {i.material_code: i for i in result.notice.items}
    # M03 was left out altogether: missing like M02 which was declared not provided.
    assert list(listed) == ["M01", "M02", "M03", "M04"]
    assert listed["M01"].reason.endswith("缺少法定代表人签字")
    assert listed["M02"].reason == listed["M03"].reason == "未提交"
    assert "复印件模糊" in listed["M04"].reason and "未加盖公章" in listed["M04"].reason
    assert listed["M03"].material_name == "场所平面图"
    for item in result.notice.items:
        assert item.material_code in result.notice.text


def test_defects_fixed_on_the_spot_do_not_block_and_are_kept() -> None:
    materials = (SubmittedMaterial("M01", True, ("日期笔误",), fixed_on_spot=True),
                 *_all_fine()[1:])
    result = assess(ITEM, NONE, materials, case_number="AP-20260302-000001", now=NOW)
    assert result.outcome == IntakeOutcome.ACCEPTED
    assert fixed_on_the_spot(result.materials) == ["M01"]


def test_an_optional_material_left_out_is_not_asked_for() -> None:
    assert outstanding(ITEM, _all_fine()) == ()


def test_not_subject_to_permit_needs_an_explanation() -> None:
    result = assess(ITEM, Findings(Finding.NOT_SUBJECT_TO_PERMIT, explanation="仅销售预包装食品"),
                    (), case_number="AP-20260302-000001", now=NOW)
    assert result.outcome == IntakeOutcome.NOT_SUBJECT_TO_PERMIT
    assert "仅销售预包装食品" in result.notice.text
    with pytest.raises(InvalidArgument):
        assess(ITEM, Findings(Finding.NOT_SUBJECT_TO_PERMIT, explanation="  "), (),
               case_number="AP-20260302-000001", now=NOW)


def test_outside_authority_names_the_competent_authority() -> None:
    findings = Findings(Finding.OUTSIDE_AUTHORITY, competent_authority="省药品监督管理局")
    result = assess(ITEM, findings, (), case_number="AP-20260302-000001", now=NOW)
    assert result.outcome == IntakeOutcome.OUTSIDE_AUTHORITY
    assert result.notice.competent_authority == "省药品监督管理局"
    assert "省药品监督管理局" in result.notice.text
    with pytest.raises(InvalidArgument):
        assess(ITEM, Findings(Finding.OUTSIDE_AUTHORITY), (), case_number="x", now=NOW)


def test_a_refusal_gives_its_reasons_and_the_applicants_rights() -> None:
    result = assess(ITEM, Findings(Finding.REFUSED, refusal_reasons=("申请人隐瞒有关情况",)),
                    _all_fine(), case_number="AP-20260302-000001", now=NOW)
    assert result.outcome == IntakeOutcome.REFUSED
    assert result.notice.reasons == ("申请人隐瞒有关情况",)
    assert "申请人隐瞒有关情况" in result.notice.text
    assert "60日内" in result.notice.text and "行政复议" in result.notice.text
    assert "6个月内" in result.notice.text and "行政诉讼" in result.notice.text
    with pytest.raises(InvalidArgument):
        assess(ITEM, Findings(Finding.REFUSED, refusal_reasons=(" ",)), (), case_number="x",
               now=NOW)


@pytest.mark.parametrize(("materials", "named"), [
    ((SubmittedMaterial("M01", True), SubmittedMaterial("M01", True)), "M01"),
    ((SubmittedMaterial("M09", True),), "M09"),
    ((SubmittedMaterial("M01", False, ("破损",)),), "defects"),
    ((SubmittedMaterial("M01", True, fixed_on_spot=True),), "fixed_on_spot"),
])
def test_unknown_duplicate_or_contradictory_materials_are_refused(
        materials: tuple[SubmittedMaterial, ...], named: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        assess(ITEM, NONE, materials, case_number="AP-20260302-000001", now=NOW)
    assert named in refused.value.message or any(named in v.field
                                                  for v in refused.value.violations)


def test_a_supplement_may_only_bring_what_the_notice_asked_for() -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_materials(ITEM, (SubmittedMaterial("M01", True),), allowed={"M02"})
    assert "M01" in refused.value.message
    check_materials(ITEM, (SubmittedMaterial("M02", True),), allowed={"M02"})


def test_a_supplement_replaces_what_it_brings_and_keeps_the_rest() -> None:
    before = (SubmittedMaterial("M01", True), SubmittedMaterial("M02", False))
    after = supplemented(before, (SubmittedMaterial("M02", True), SubmittedMaterial("M03", True)))
    assert after == (SubmittedMaterial("M01", True), SubmittedMaterial("M02", True),
                     SubmittedMaterial("M03", True))
    assert outstanding(ITEM, after) == ()


def test_case_numbers_count_per_china_day() -> None:
    assert case_number(date(2026, 3, 2), 7) == "AP-20260302-000007"
    with pytest.raises(ValueError, match="out of range"):
        case_number(date(2026, 3, 2), 1_000_000)
    # 16:30 UTC is already the next day in China.
    assert china_date(datetime(2026, 3, 1, 16, 30, tzinfo=UTC)) == date(2026, 3, 2)
    assert china_date(datetime(2026, 3, 1, 15, 59, tzinfo=UTC)) == date(2026, 3, 1)


def test_the_public_sees_an_applicant_masked() -> None:
    applicant = Applicant("person", "张三丰", "110101199003077777", "13800000000")
    assert applicant.masked() == Applicant("person", "张*", "", "")
    assert mask_name("") == ""
