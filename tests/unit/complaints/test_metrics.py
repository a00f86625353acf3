"""Complaint metrics on a known data set, every figure computed by hand (docs/complaints.md).

The period is March 2026 (UTC), the figures are taken on 10 April. The
comments beside each case say what it adds to which figure; the expected
fractions below are those sums written out.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from kernel.errors import InvalidArgument
from services.complaints.domain.metrics import (
    CaseRecord,
    LinkKind,
    LinkStatus,
    Rate,
    check_period,
    complaint_metrics,
    department_metrics,
    linked_counts,
)

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)
AS_OF = datetime(2026, 4, 10, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def at(day: int, hour: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def case(number: str, department: str, received: datetime, status: str,
         **columns: object) -> CaseRecord:
    return CaseRecord(case_number=number, department_code=department, received_at=received,
                      status=status, **columns)  # type: ignore[arg-type]


DATA = [
    # SCJGJ ------------------------------------------------------------------------------
    # a1: signed for and replied exactly on the due instants (on time), closed, rated 5,
    # linked to an approval case found under item I-1.
    case("a1", "SCJGJ", at(2, 1), "closed", sign_for_due=at(2, 5), signed_for_at=at(2, 5),
         reply_due=at(20, 9), first_replied_at=at(20, 9), closed_at=at(27), rating=5,
         linked_case_number="AP-20260301-000001", link_status=LinkStatus.FOUND,
         link_item_code="I-1", link_department_code="SCJGJ"),
    # a2: one microsecond late for both, closed, rated 4; linked, found, same item.
    case("a2", "SCJGJ", at(3), "closed", sign_for_due=at(3, 5),
         signed_for_at=at(3, 5) + TICK, reply_due=at(20), first_replied_at=at(20) + TICK,
         closed_at=at(28), rating=4,
         linked_case_number="AP-20260301-000002", link_status=LinkStatus.FOUND,
         link_item_code="I-1", link_department_code="SCJGJ"),
    # a3: reopened after a 1, replied again on the 25th by the reopening's due instant (the
    # 26th), rated 5 at last and closed: counted once, as 5, and replied on time.
    # Linked to an approval case intake does not know.
    case("a3", "SCJGJ", at(4), "closed", sign_for_due=at(4, 5), signed_for_at=at(4, 2),
         reply_due=at(26), first_replied_at=at(9), replied_at=at(25), closed_at=at(30),
         rating=5, reopened=True,
         linked_case_number="AP-20260301-000404", link_status=LinkStatus.NOT_FOUND),
    # a4: reopened after a 2, back in handling, its new reply due after AS_OF: its rating is
    # still the 2, not complete, reply not judged yet. Linked, not checked yet.
    case("a4", "SCJGJ", at(5), "handling", sign_for_due=at(5, 5), signed_for_at=at(5, 4),
         reply_due=at(20, month=4), first_replied_at=at(11), replied_at=at(11), rating=2,
         reopened=True,
         linked_case_number="AP-20260301-000003"),
    # a5: never signed for nor replied, both due instants long past: late twice. Linked to
    # a tender trading does not know.
    case("a5", "SCJGJ", at(6), "routed", sign_for_due=at(6, 5), reply_due=at(25),
         linked_tender_number="TD-20260301-000404", tender_link_status=LinkStatus.NOT_FOUND),
    # a6: received in the last second of the period; its due instants are after AS_OF:
    # not judged yet.
    case("a6", "SCJGJ", END - timedelta(seconds=1), "routed",
         sign_for_due=at(20, month=4), reply_due=at(30, month=4)),
    # a7: a duplicate merged into a1 (and linked): left out of everything but the count of
    # merged duplicates.
    case("a7", "SCJGJ", at(7), "merged", merged_into="a1",
         linked_case_number="AP-20260301-000001", link_status=LinkStatus.FOUND,
         link_item_code="I-1", link_department_code="SCJGJ"),
    # a8: received at the period's end instant: outside it.
    case("a8", "SCJGJ", END, "closed", sign_for_due=at(1, 5, month=4),
         signed_for_at=at(1, 1, month=4), rating=5),
    # a9: received at the period's start instant: inside. No deadlines yet (the workflow
    # has not opened it): judged on neither.
    case("a9", "SCJGJ", START, "routed"),
    # a10: replied (window open), signed for with no sign-for due instant on record (not
    # judged), replied on time; not rated yet.
    case("a10", "SCJGJ", at(8), "replied", signed_for_at=at(8, 3), reply_due=at(18),
         first_replied_at=at(17)),
    # ZJJ --------------------------------------------------------------------------------
    # b1: on time twice, replied, rated 3 (rated, neither satisfied nor excellent); linked
    # to a tender not checked yet and to an approval case found under I-2 (ZJJ).
    case("b1", "ZJJ", at(10), "replied", sign_for_due=at(10, 5), signed_for_at=at(10, 4),
         reply_due=at(20), first_replied_at=at(19), rating=3,
         linked_tender_number="ZB-2026-0007", linked_case_number="AP-20260301-000009",
         link_status=LinkStatus.FOUND, link_item_code="I-2", link_department_code="ZJJ"),
    # b2: signed for late, replied on time, closed without a rating (window lapsed);
    # linked to a construction tender of JYJ that trading found.
    case("b2", "ZJJ", at(11), "closed", sign_for_due=at(11, 5), signed_for_at=at(11, 6),
         reply_due=at(25), first_replied_at=at(24), closed_at=at(31),
         linked_tender_number="TD-20260301-000001", tender_link_status=LinkStatus.FOUND,
         tender_link_category="construction", tender_link_department_code="JYJ"),
    # b3: received in February: outside the period.
    case("b3", "ZJJ", at(27, month=2), "closed", sign_for_due=at(27, 5, month=2),
         signed_for_at=at(27, 6, month=2), rating=1),
    # WJW --------------------------------------------------------------------------------
    # c1: WJW's only case of the period is a duplicate merged into b1: no cases to rate.
    case("c1", "WJW", at(12), "merged", merged_into="b1"),
]


def rates(m: object) -> dict[str, tuple[int, int]]:
    return {name: (getattr(m, name).numerator, getattr(m, name).denominator)
            for name in ("completion", "sign_for_on_time", "reply_on_time", "satisfaction",
                         "excellent")}


def test_each_department_on_the_known_data_set() -> None:
    metrics = complaint_metrics(DATA, start=START, end=END, as_of=AS_OF)
    by_code = {d.department_code: d for d in metrics.departments}
    assert list(by_code) == ["SCJGJ", "WJW", "ZJJ"]
    scjgj = by_code["SCJGJ"]
    # a1 a2 a3 a4 a5 a6 a9 a10; a7 merged; a8 outside.
    assert (scjgj.cases, scjgj.merged_duplicates) == (8, 1)
    assert rates(scjgj) == {
        "completion": (4, 8),          # a1 a2 a3 closed, a10 replied
        "sign_for_on_time": (3, 5),    # on time a1 a3 a4; late a2 a5; a6 a9 a10 not judged
        "reply_on_time": (3, 5),       # on time a1 a3 a10; late a2 a5; a4 a6 a9 not judged
        "satisfaction": (3, 4),        # rated a1(5) a2(4) a3(5) a4(2)
        "excellent": (2, 4),           # a1 a3
    }
    zjj = by_code["ZJJ"]
    assert (zjj.cases, zjj.merged_duplicates) == (2, 0)
    assert rates(zjj) == {"completion": (2, 2), "sign_for_on_time": (1, 2),
                          "reply_on_time": (2, 2), "satisfaction": (0, 1),
                          "excellent": (0, 1)}
    wjw = by_code["WJW"]
    assert (wjw.cases, wjw.merged_duplicates) == (0, 1)
    assert all(getattr(wjw, name).no_cases for name in rates(wjw))
    assert str(wjw.completion) == "no cases" and wjw.satisfaction.fraction() is None


def test_overall_is_every_department_together() -> None:
    overall = complaint_metrics(DATA, start=START, end=END, as_of=AS_OF).overall
    assert overall.department_code == ""
    assert (overall.cases, overall.merged_duplicates) == (10, 2)
    assert rates(overall) == {"completion": (6, 10), "sign_for_on_time": (4, 7),
                              "reply_on_time": (5, 7), "satisfaction": (3, 5),
                              "excellent": (2, 5)}
    assert overall.completion.fraction() == Fraction(3, 5)


def test_one_department_asked_for() -> None:
    metrics = complaint_metrics(DATA, start=START, end=END, as_of=AS_OF,
                                department_code="ZJJ")
    assert [d.department_code for d in metrics.departments] == ["ZJJ"]
    assert rates(metrics.overall) == rates(metrics.departments[0])
    assert [(c.kind, c.item_code, c.category) for c in metrics.linked] == [
        (LinkKind.APPROVAL, "I-2", ""), (LinkKind.TENDER, "", "construction"),
        (LinkKind.TENDER, "", "")]


def test_a_department_without_cases_says_no_cases() -> None:
    metrics = complaint_metrics(DATA, start=START, end=END, as_of=AS_OF,
                                department_code="FGJ")
    assert [d.department_code for d in metrics.departments] == ["FGJ"]
    assert metrics.overall.cases == 0 and metrics.overall.sign_for_on_time.no_cases
    assert metrics.linked == ()


def test_linked_complaints_by_item_or_category_and_department() -> None:
    linked = complaint_metrics(DATA, start=START, end=END, as_of=AS_OF).linked
    assert [(c.kind, c.status, c.item_code, c.category, c.department_code, c.cases)
            for c in linked] == [
        (LinkKind.APPROVAL, LinkStatus.FOUND, "I-1", "", "SCJGJ", 2),   # a1 a2 (a7 merged)
        (LinkKind.APPROVAL, LinkStatus.FOUND, "I-2", "", "ZJJ", 1),     # b1
        (LinkKind.APPROVAL, LinkStatus.NOT_FOUND, "", "", "", 1),       # a3
        (LinkKind.APPROVAL, LinkStatus.UNCHECKED, "", "", "", 1),       # a4
        (LinkKind.TENDER, LinkStatus.FOUND, "", "construction", "JYJ", 1),  # b2's tender
        (LinkKind.TENDER, LinkStatus.NOT_FOUND, "", "", "", 1),         # a5's tender
        (LinkKind.TENDER, LinkStatus.UNCHECKED, "", "", "", 1),         # b1's tender
    ]


# ---- each definition at its edge ------------------------------------------------------

def _one(record: CaseRecord, as_of: datetime = AS_OF) -> dict[str, tuple[int, int]]:
    return rates(department_metrics("X", [record], as_of=as_of))


BASE = case("x", "X", at(2), "handling", sign_for_due=at(2, 5), reply_due=at(9))


@pytest.mark.parametrize(("signed", "as_of", "expected"), [
    (at(2, 5), AS_OF, (1, 1)),              # exactly on the due instant: on time
    (at(2, 5) + TICK, AS_OF, (0, 1)),       # a microsecond after: late
    (None, at(2, 5), (0, 0)),               # not signed, the due instant now: not judged
    (None, at(2, 5) + TICK, (0, 1)),        # not signed, the due instant just passed: late
])
def test_sign_for_on_time_at_the_due_instant(signed: datetime | None, as_of: datetime,
                                             expected: tuple[int, int]) -> None:
    assert _one(replace(BASE, signed_for_at=signed), as_of)["sign_for_on_time"] == expected


@pytest.mark.parametrize(("replied", "due", "as_of", "expected"), [
    (at(9), at(9), AS_OF, (1, 1)),
    (at(9) + TICK, at(9), AS_OF, (0, 1)),
    # An extension moved reply_due to the 16th: a reply on the 12th is on time.
    (at(12), at(16), AS_OF, (1, 1)),
    (None, at(9), at(9), (0, 0)),
    (None, at(9), at(9) + TICK, (0, 1)),
    (at(9), None, AS_OF, (0, 0)),           # no due instant on record: not judged
])
def test_reply_on_time_at_the_due_instant(replied: datetime | None, due: datetime | None,
                                          as_of: datetime, expected: tuple[int, int]) -> None:
    record = replace(BASE, first_replied_at=replied, reply_due=due)
    assert _one(record, as_of)["reply_on_time"] == expected


@pytest.mark.parametrize(("status", "completed"), [
    ("routed", 0), ("handling", 0), ("returned", 0), ("replied", 1), ("closed", 1)])
def test_completion_counts_replied_and_closed(status: str, completed: int) -> None:
    assert _one(replace(BASE, status=status))["completion"] == (completed, 1)


@pytest.mark.parametrize(("rating", "satisfied", "excellent"), [
    (None, (0, 0), (0, 0)), (1, (0, 1), (0, 1)), (2, (0, 1), (0, 1)), (3, (0, 1), (0, 1)),
    (4, (1, 1), (0, 1)), (5, (1, 1), (1, 1))])
def test_satisfaction_and_excellent_by_rating(rating: int | None, satisfied: tuple[int, int],
                                              excellent: tuple[int, int]) -> None:
    figures = _one(replace(BASE, rating=rating))
    assert (figures["satisfaction"], figures["excellent"]) == (satisfied, excellent)


@pytest.mark.parametrize(("status", "replied_again", "as_of", "expected"), [
    # The reopening's reply due on the 20th; the first reply (on the 5th) does not count.
    ("handling", None, at(20), (0, 0)),             # not replied again, still in time
    ("handling", None, at(20) + TICK, (0, 1)),      # not replied again, due passed: late
    ("replied", at(20), AS_OF, (1, 1)),             # replied again on the due instant
    ("closed", at(20) + TICK, AS_OF, (0, 1)),       # replied again too late, then closed
])
def test_a_reopened_case_is_judged_by_its_reply_after_reopening(
        status: str, replied_again: datetime | None, as_of: datetime,
        expected: tuple[int, int]) -> None:
    reopened = replace(BASE, status=status, reopened=True, reply_due=at(20),
                       first_replied_at=at(5), replied_at=replied_again or at(5), rating=1)
    assert _one(reopened, as_of)["reply_on_time"] == expected


def test_a_reopened_case_counts_once_by_its_last_rating() -> None:
    reopened = replace(BASE, status="closed", rating=4, reopened=True)
    assert _one(reopened)["satisfaction"] == (1, 1)


@pytest.mark.parametrize("merged", [
    {"merged_into": "CP-20260302-000001", "status": "closed"},
    {"status": "merged"}])
def test_a_merged_duplicate_counts_nowhere(merged: dict[str, str]) -> None:
    duplicate = replace(BASE, rating=1, signed_for_at=at(3), **merged)  # type: ignore[arg-type]
    figures = department_metrics("X", [duplicate], as_of=AS_OF)
    assert (figures.cases, figures.merged_duplicates) == (0, 1)
    assert all(rate == (0, 0) for rate in rates(figures).values())
    assert linked_counts([replace(duplicate, linked_case_number="AP-20260301-000001")]) == ()


@pytest.mark.parametrize(("start", "end", "field"), [
    (END, START, "period_end"),                                   # ends before it starts
    (START, START, "period_end"),                                 # empty
    (START, START + timedelta(days=366, microseconds=1), "period_end"),  # over a leap year
])
def test_bad_periods_are_refused(start: datetime, end: datetime, field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        complaint_metrics(DATA, start=start, end=end, as_of=AS_OF)
    assert [v.field for v in refused.value.violations] == [field]


def test_a_leap_year_is_the_longest_period() -> None:
    check_period(START, START + timedelta(days=366))


def test_a_rate_never_has_more_cases_than_its_denominator() -> None:
    with pytest.raises(ValueError, match="a rate of 2 in 1 cases"):
        Rate(2, 1)
    assert Rate(1, 3).fraction() == Fraction(1, 3) and str(Rate(1, 3)) == "1/3"
