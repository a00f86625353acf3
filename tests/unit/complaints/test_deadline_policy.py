"""Complaint deadlines in the center's working time: weekends, holidays, make-up days, hours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kernel.calendar import WorkingCalendar
from kernel.chinatime import CHINA
from kernel.errors import InvalidArgument
from services.complaints.domain.policy import (
    DeadlinePolicy,
    after_working_days,
    after_working_time,
    extended_reply_due,
    opening_clock,
    rating_closes,
    reopened_reply_due,
    sign_for_due,
)

CALENDAR = WorkingCalendar()
POLICY = DeadlinePolicy()


def china(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CHINA)


def test_the_defaults_are_the_plans() -> None:
    assert (POLICY.consultation_days, POLICY.request_days, POLICY.complaint_days) == (2, 10, 15)
    assert (POLICY.urgent_reply_hours, POLICY.sign_for_working_hours,
            POLICY.urgent_sign_for_minutes) == (2, 4, 30)
    assert (POLICY.rating_window_days, POLICY.reopen_reply_days,
            POLICY.max_extension_days) == (5, 15, 10)


def test_a_consultation_is_due_two_working_days_on_at_the_end_of_working_time() -> None:
    # Monday 9 November 2026: due Wednesday 17:30 in China.
    due = after_working_days(CALENDAR, china(2026, 11, 9, 10), 2)
    assert due.at == china(2026, 11, 11, 17, 30).astimezone(UTC)
    assert due.unknown_year == 0


def test_a_weekend_is_not_counted() -> None:
    # Friday 6 November: Saturday and Sunday are off, so Monday and Tuesday.
    due = after_working_days(CALENDAR, china(2026, 11, 6, 10), 2)
    assert due.at == china(2026, 11, 10, 17, 30)


def test_national_day_is_not_counted() -> None:
    # Wednesday 30 September: 1–7 October are holidays, so Thursday 8 and Friday 9.
    due = after_working_days(CALENDAR, china(2026, 9, 30, 10), 2)
    assert due.at == china(2026, 10, 9, 17, 30)


def test_a_make_up_saturday_is_counted() -> None:
    # Friday 9 October: Saturday 10 October is a make-up working day, then Monday 12.
    due = after_working_days(CALENDAR, china(2026, 10, 9, 10), 2)
    assert due.at == china(2026, 10, 12, 17, 30)


@pytest.mark.parametrize(("arrives", "due"), [
    # Inside the morning: one hour before lunch, three after.
    (china(2026, 11, 9, 11), china(2026, 11, 9, 16, 30)),
    # Over lunch: counting starts at 13:30 and the afternoon holds exactly four hours.
    (china(2026, 11, 9, 12, 30), china(2026, 11, 9, 17, 30)),
    # At 17:30 sharp the day is over: the next morning's three hours and one more.
    (china(2026, 11, 9, 17, 30), china(2026, 11, 10, 14, 30)),
    # Friday 17:00: half an hour, then the weekend, then Monday.
    (china(2026, 11, 6, 17), china(2026, 11, 9, 14)),
    # Before opening: from 09:00.
    (china(2026, 11, 9, 7), china(2026, 11, 9, 14, 30)),
    # Sunday: from Monday 09:00.
    (china(2026, 11, 8, 10), china(2026, 11, 9, 14, 30)),
    # The day before national day at 16:00: 90 minutes, then 8 October.
    (china(2026, 9, 30, 16), china(2026, 10, 8, 11, 30)),
    # Friday 9 October at 17:00: half an hour, then the make-up Saturday.
    (china(2026, 10, 9, 17), china(2026, 10, 10, 14)),
])
def test_sign_for_is_due_four_working_hours_on(arrives: datetime, due: datetime) -> None:
    assert after_working_time(CALENDAR, arrives, 4 * 60).at == due
    assert sign_for_due(POLICY, CALENDAR, urgent=False, routed_at=arrives).at == due


def test_an_urgent_case_runs_on_clock_time_whatever_the_day() -> None:
    saturday_night = china(2026, 11, 7, 23)
    clock = opening_clock(POLICY, CALENDAR, deadline_class="urgent", received_at=saturday_night)
    assert clock.sign_for_due == china(2026, 11, 7, 23, 30)
    assert clock.reply_due == china(2026, 11, 8, 1)
    assert sign_for_due(POLICY, CALENDAR, urgent=True, routed_at=saturday_night).at == \
        china(2026, 11, 7, 23, 30)


def test_reply_days_by_class_across_the_holiday() -> None:
    start = china(2026, 9, 30, 10)
    days = {klass: opening_clock(POLICY, CALENDAR, deadline_class=klass, received_at=start)
            .reply_due for klass in ("consultation", "request", "complaint")}
    # Working days from 8 October: 8, 9, 10 (Sat, make-up), 12, 13, 14, 15, 16, 19, 20 (10th),
    # 21, 22, 23, 26, 27 (15th).
    assert days == {"consultation": china(2026, 10, 9, 17, 30),
                    "request": china(2026, 10, 20, 17, 30),
                    "complaint": china(2026, 10, 27, 17, 30)}
    clock = opening_clock(POLICY, CALENDAR, deadline_class="complaint", received_at=start)
    # 10:00–12:00 and 13:30–15:30.
    assert clock.sign_for_due == china(2026, 9, 30, 15, 30)
    assert clock.unknown_year == 0


def test_a_year_without_a_schedule_is_flagged_not_guessed_silently() -> None:
    clock = opening_clock(POLICY, CALENDAR, deadline_class="complaint",
                          received_at=china(2026, 12, 28, 10))
    assert clock.unknown_year == 2027
    # Taken as Monday to Friday meanwhile: 29, 30, 31 December then 12 January 2027 days.
    assert clock.reply_due == china(2027, 1, 18, 17, 30)


def test_rating_window_reopening_and_extension() -> None:
    replied = china(2026, 11, 6, 16)  # Friday
    assert rating_closes(POLICY, CALENDAR, replied_at=replied).at == china(2026, 11, 13, 17, 30)
    assert reopened_reply_due(POLICY, CALENDAR, rated_at=replied).at == \
        china(2026, 11, 27, 17, 30)
    due = china(2026, 9, 30, 17, 30)
    assert extended_reply_due(CALENDAR, reply_due=due, days=3).at == china(2026, 10, 10, 17, 30)
    with pytest.raises(ValueError, match="one working day or more"):
        extended_reply_due(CALENDAR, reply_due=due, days=0)


def test_a_policy_out_of_bounds_is_refused() -> None:
    with pytest.raises(InvalidArgument) as refused:
        DeadlinePolicy(version=2, consultation_days=0, urgent_reply_hours=1000)
    assert {v.field for v in refused.value.violations} == {"consultation_days",
                                                           "urgent_reply_hours"}
    with pytest.raises(ValueError, match="not a deadline class counted in days"):
        POLICY.reply_days("urgent")


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        after_working_time(CALENDAR, datetime(2026, 11, 9, 10), 60)
