"""The tender's timing rules, without a server: each on both sides of its limit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from kernel.calendar import WorkingCalendar, YearSchedule
from workflows import tender_rules as r
from workflows.approval_rules import RuleBroken

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in China
SECOND = timedelta(seconds=1)


def test_the_bid_period_is_twenty_days_at_least() -> None:
    r.check_bid_period(announced_at=T0, deadline=T0 + timedelta(days=20))
    with pytest.raises(RuleBroken) as broken:
        r.check_bid_period(announced_at=T0, deadline=T0 + timedelta(days=20) - SECOND)
    assert broken.value.status == "FailedPrecondition"
    assert "20 days" in broken.value.message


def test_an_absurd_bid_period_is_refused() -> None:
    r.check_bid_period(announced_at=T0, deadline=T0 + timedelta(days=365))
    with pytest.raises(RuleBroken) as broken:
        r.check_bid_period(announced_at=T0, deadline=T0 + timedelta(days=366))
    assert broken.value.status == "InvalidArgument"


def test_an_amendment_less_than_fifteen_days_before_the_deadline_pushes_it() -> None:
    deadline = T0 + timedelta(days=20)
    on_time = deadline - timedelta(days=15)
    assert r.deadline_after_amendment(deadline=deadline, amended_at=on_time) == deadline
    late = on_time + SECOND
    assert r.deadline_after_amendment(deadline=deadline, amended_at=late) == \
        late + timedelta(days=15)


def test_no_amendment_after_the_deadline() -> None:
    deadline = T0 + timedelta(days=20)
    r.check_amendment(now=deadline - SECOND, deadline=deadline)
    with pytest.raises(RuleBroken):
        r.check_amendment(now=deadline, deadline=deadline)


def test_objections_to_the_documents_up_to_ten_days_before_the_deadline() -> None:
    deadline = T0 + timedelta(days=20)
    cutoff = deadline - timedelta(days=10)
    r.check_objection(category="construction", now=cutoff, deadline=deadline,
                      objections_until=None, paused=False)
    with pytest.raises(RuleBroken) as broken:
        r.check_objection(category="construction", now=cutoff + SECOND, deadline=deadline,
                          objections_until=None, paused=False)
    assert "10 days" in broken.value.message


def test_a_second_objection_waits_for_the_first_answer() -> None:
    with pytest.raises(RuleBroken) as broken:
        r.check_objection(category="construction", now=T0, deadline=T0 + timedelta(days=20),
                          objections_until=None, paused=True)
    assert "paused" in broken.value.message


def test_the_answer_is_due_within_three_days_and_the_pause_moves_the_deadline() -> None:
    calendar = WorkingCalendar()
    assert r.answer_due(calendar, category="construction", objected_at=T0) == \
        T0 + timedelta(days=3)
    deadline = T0 + timedelta(days=20)
    assert r.deadline_after_pause(deadline=deadline, paused_at=T0,
                                  resumed_at=T0 + timedelta(days=2, hours=5)) == \
        deadline + timedelta(days=2, hours=5)
    with pytest.raises(RuleBroken):
        r.deadline_after_pause(deadline=deadline, paused_at=T0, resumed_at=T0 - SECOND)


# ---- government procurement: working days, across a holiday -------------------------------

#: A made-up schedule: Wednesday 4 to Friday 6 March 2026 are holidays, Saturday 7 is worked.
HOLIDAYS = WorkingCalendar.with_schedules([YearSchedule(
    2026, frozenset({date(2026, 3, 4), date(2026, 3, 5), date(2026, 3, 6)}),
    frozenset({date(2026, 3, 7)}))])


def test_procurement_documents_stay_available_five_working_days_across_a_holiday() -> None:
    # Working days after Monday 2 March: Tue 3, Sat 7 (make-up), Mon 9, Tue 10, Wed 11.
    earliest = r.earliest_documents_until(HOLIDAYS, T0)
    assert earliest == r.end_of_china_day(date(2026, 3, 11))
    # Without the holiday the fifth working day would be Monday 9 March.
    assert r.earliest_documents_until(WorkingCalendar.with_schedules(
        [YearSchedule(2026, frozenset(), frozenset())]), T0) == \
        r.end_of_china_day(date(2026, 3, 9))
    deadline = T0 + timedelta(days=25)
    r.check_documents_period(HOLIDAYS, announced_at=T0, documents_until=earliest,
                             deadline=deadline)
    with pytest.raises(RuleBroken) as broken:
        r.check_documents_period(HOLIDAYS, announced_at=T0, documents_until=earliest - SECOND,
                                 deadline=deadline)
    assert "5 working days" in broken.value.message
    with pytest.raises(RuleBroken):
        r.check_documents_period(HOLIDAYS, announced_at=T0, documents_until=deadline + SECOND,
                                 deadline=deadline)


def test_procurement_objections_within_seven_working_days_answered_within_seven() -> None:
    documents_until = r.end_of_china_day(date(2026, 3, 2))
    # Tue 3, Sat 7, Mon 9, Tue 10, Wed 11, Thu 12, Fri 13.
    until = r.procurement_objections_until(HOLIDAYS, documents_until)
    assert until == r.end_of_china_day(date(2026, 3, 13))
    deadline = T0 + timedelta(days=40)
    r.check_objection(category="government_procurement", now=until, deadline=deadline,
                      objections_until=until, paused=False)
    with pytest.raises(RuleBroken) as broken:
        r.check_objection(category="government_procurement", now=until + SECOND,
                          deadline=deadline, objections_until=until, paused=False)
    assert "7 working days" in broken.value.message
    assert r.answer_due(HOLIDAYS, category="government_procurement", objected_at=T0) == \
        r.end_of_china_day(date(2026, 3, 13))


def test_three_bids_open_two_do_not() -> None:
    assert r.opens(3)
    assert not r.opens(2)
    assert not r.opens(0)


def test_three_valid_bids_are_evaluated_two_are_not() -> None:
    assert r.evaluates(3)
    assert r.evaluates(4)
    assert not r.evaluates(2)
    assert not r.evaluates(0)


def test_the_candidates_are_published_three_days_before_the_award() -> None:
    published = T0
    candidates = ("BD-0001", "BD-0002")
    r.check_award(now=published + timedelta(days=3), candidates_published_at=published,
                  paused_for=timedelta(0), objection_open=False, winner="BD-0001",
                  candidates=candidates)
    with pytest.raises(RuleBroken):
        r.check_award(now=published + timedelta(days=3) - SECOND,
                      candidates_published_at=published, paused_for=timedelta(0),
                      objection_open=False, winner="BD-0001", candidates=candidates)
    # A pause for an objection to the candidates lengthens the publication.
    with pytest.raises(RuleBroken):
        r.check_award(now=published + timedelta(days=3), candidates_published_at=published,
                      paused_for=timedelta(hours=1), objection_open=False, winner="BD-0001",
                      candidates=candidates)
    with pytest.raises(RuleBroken):
        r.check_award(now=published + timedelta(days=4), candidates_published_at=published,
                      paused_for=timedelta(0), objection_open=True, winner="BD-0001",
                      candidates=candidates)
    with pytest.raises(RuleBroken):
        r.check_award(now=published + timedelta(days=4), candidates_published_at=published,
                      paused_for=timedelta(0), objection_open=False, winner="BD-0009",
                      candidates=candidates)


def test_the_contract_is_late_after_thirty_days() -> None:
    assert not r.contract_late(now=T0 + timedelta(days=30), awarded_at=T0)
    assert r.contract_late(now=T0 + timedelta(days=30) + SECOND, awarded_at=T0)


def test_the_decryption_window_is_bounded() -> None:
    r.check_decryption_window(r.DEFAULT_DECRYPTION_WINDOW)
    for wrong in (timedelta(minutes=29), timedelta(days=2, seconds=1)):
        with pytest.raises(RuleBroken):
            r.check_decryption_window(wrong)
