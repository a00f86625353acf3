"""The rules of complaint cases: deadline classes, numbers, locations, intake, re-pushes."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import pytest

from kernel.errors import AlreadyExists, InvalidArgument
from services.complaints.domain.cases import (
    CONTENT_MAX_LENGTH,
    Complainant,
    ComplaintKind,
    ComplaintStatus,
    ComplaintSubmission,
    DeadlineClass,
    Location,
    case_number,
    check_re_push,
    deadline_class,
    take_in,
)
from services.complaints.domain.model import Category

AT = datetime(2026, 1, 5, 2, 30, tzinfo=UTC)
CATEGORY = Category("SC-01", "食品安全", "SCJGJ", rule_version=3)


def _submission(**changes: Any) -> ComplaintSubmission:
    fields: dict[str, Any] = {
        "external_id": "HL-1", "kind": ComplaintKind.REPORT, "urgent": False,
        "category_code": "SC-01", "content": "过期食材",
        "complainant": Complainant("欧阳晓筠", "13975318642"),
        "location": Location(41.8, 123.4, "和平区"), "linked_case_number": "",
        "linked_tender_number": "ZB-2026-0001"}
    return ComplaintSubmission(**(fields | changes))


@pytest.mark.parametrize(("kind", "expected"), [
    (ComplaintKind.CONSULTATION, DeadlineClass.CONSULTATION),
    (ComplaintKind.HELP_REQUEST, DeadlineClass.REQUEST),
    (ComplaintKind.SUGGESTION, DeadlineClass.REQUEST),
    (ComplaintKind.COMPLAINT, DeadlineClass.COMPLAINT),
    (ComplaintKind.REPORT, DeadlineClass.COMPLAINT),
])
def test_a_case_falls_under_its_kinds_deadline_class_unless_urgent(
        kind: ComplaintKind, expected: DeadlineClass) -> None:
    assert deadline_class(kind, urgent=False) == expected
    assert deadline_class(kind, urgent=True) == DeadlineClass.URGENT


def test_case_numbers_count_per_day_within_six_digits() -> None:
    assert case_number(date(2026, 1, 5), 1) == "CP-20260105-000001"
    assert case_number(date(2026, 12, 31), 999_999) == "CP-20261231-999999"
    for sequence in (0, 1_000_000):
        with pytest.raises(ValueError, match="out of range"):
            case_number(date(2026, 1, 5), sequence)


@pytest.mark.parametrize(("location", "field"), [
    ({"latitude": 41.8}, "location.longitude"),
    ({"longitude": 123.4}, "location.latitude"),
    ({"latitude": 90.5, "longitude": 0.0}, "location.latitude"),
    ({"latitude": 0.0, "longitude": -180.5}, "location.longitude"),
    ({"latitude": math.nan, "longitude": 0.0}, "location.latitude"),
    ({"latitude": 0.0, "longitude": math.inf}, "location.longitude"),
    ({"address": "路" * 201}, "location.address"),
    ({}, "location"),
    ({"address": "   "}, "location"),
])
def test_a_malformed_location_is_refused_naming_the_field(location: dict[str, Any],
                                                          field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        Location(**location)
    assert field in [v.field for v in refused.value.violations]


def test_a_location_may_be_coordinates_an_address_or_both() -> None:
    assert Location(0.0, 0.0).address == ""
    assert Location(address="和平区").latitude is None
    assert Location(-90.0, 180.0, "极点").content() == {
        "latitude": -90.0, "longitude": 180.0, "address": "极点"}


@pytest.mark.parametrize(("change", "field"), [
    ({"content": ""}, "content"), ({"content": "  \n"}, "content"),
    ({"content": "长" * (CONTENT_MAX_LENGTH + 1)}, "content"),
    ({"external_id": "-starts-with-a-dash"}, "external_id"),
    ({"external_id": "x" * 65}, "external_id"),
])
def test_a_submission_without_content_or_with_a_bad_external_id_is_refused(
        change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        _submission(**change)
    assert [v.field for v in refused.value.violations] == [field]


def test_taking_a_case_in_routes_it_by_the_rule_in_force() -> None:
    intake = take_in(_submission(urgent=True), number="CP-20260105-000007", platform_id="12345",
                     category=CATEGORY, received_at=AT)
    case = intake.complaint
    assert (case.department_code, case.rule_version) == ("SCJGJ", 3)
    assert case.deadline_class == DeadlineClass.URGENT
    assert case.status == ComplaintStatus.ROUTED
    assert case.complainant == Complainant("欧阳晓筠", "13975318642")
    assert [(e.sequence, e.code) for e in intake.events] == [
        (1, "complaint.received"), (2, "complaint.routed")]
    assert intake.events[0].details == {"platform": "12345", "kind": "report",
                                        "urgent": "true", "linked_tender": "ZB-2026-0001"}
    assert intake.events[1].details == {"category": "SC-01", "department": "SCJGJ",
                                        "rule_version": "3", "deadline_class": "urgent"}


def test_events_hold_no_personal_data_or_content() -> None:
    intake = take_in(_submission(), number="CP-20260105-000007", platform_id="12345",
                     category=CATEGORY, received_at=AT)
    said = " ".join(f"{k}={v}" for e in intake.events for k, v in e.details.items())
    for personal in ("欧阳晓筠", "13975318642", "过期食材", "和平区"):
        assert personal not in said
    assert "13975318642" not in repr(intake.complaint.complainant)


def test_a_case_is_routed_only_by_its_own_category() -> None:
    with pytest.raises(ValueError, match="routing by category SC-01"):
        take_in(_submission(category_code="SC-02"), number="CP-20260105-000007",
                platform_id="12345", category=CATEGORY, received_at=AT)
    with pytest.raises(ValueError, match="time zone"):
        take_in(_submission(), number="CP-20260105-000007", platform_id="12345",
                category=CATEGORY, received_at=AT.replace(tzinfo=None))


def test_everything_a_push_says_is_in_its_fingerprint() -> None:
    base = _submission().fingerprint_content()
    variants = [_submission(kind=ComplaintKind.COMPLAINT), _submission(urgent=True),
                _submission(content="另一件事"), _submission(location=None),
                _submission(complainant=Complainant("欧阳晓筠", "13000000000")),
                _submission(linked_case_number="AP-20260105-000001")]
    assert all(v.fingerprint_content() != base for v in variants)
    assert _submission().fingerprint_content() == base


def test_a_re_push_must_say_what_the_first_push_said() -> None:
    check_re_push(stored_fingerprint="ab", fingerprint="ab", platform_id="12345",
                  external_id="HL-1", number="CP-20260105-000001")
    with pytest.raises(AlreadyExists) as refused:
        check_re_push(stored_fingerprint="ab", fingerprint="cd", platform_id="12345",
                      external_id="HL-1", number="CP-20260105-000001")
    assert "CP-20260105-000001" in refused.value.message
