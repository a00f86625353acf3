"""The day-dependent set-ups of tests/day_setups.py, on every day of a span and at every hour
that matters: what each test relies on holds whatever day and hour (China time) it runs.

The span runs from December 2026 (a 20-working-day limit started then ends in 2027,
a year chinese-calendar does not know) past the end of 2027, so it crosses two year ends
and has every weekday many times.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from kernel.calendar import UnknownYearError, WorkingCalendar
from kernel.chinatime import CHINA, china_date
from services.complaints.domain.policy import DeadlinePolicy, opening_clock
from services.review.domain.deadlines import case_deadlines, end_of_day
from tests.day_setups import (
    approval_deadline_days,
    first_working_day_after,
    holidays_until_the_weekend,
    plain_calendar,
    schedules_ahead,
    weekdays_after,
)
from tests.integration.workflows.complaint_fakes import SIGN_FOR_HOURS, add_working_hours
from workflows import tender_rules as r

FIRST, LAST = date(2026, 12, 1), date(2028, 1, 10)
#: Midnight, around the working periods' edges (09:00-12:00, 13:30-17:30, 18:00), the last
#: second of the day; in China.
HOURS = (time(0), time(0, 0, 1), time(8, 59), time(9), time(11, 59), time(12), time(13, 29),
         time(13, 30), time(17, 29), time(17, 30), time(18), time(23, 59, 59))


def _days() -> Iterator[date]:
    day = FIRST
    while day <= LAST:
        yield day
        day += timedelta(days=1)


def _moments(day: date) -> Iterator[datetime]:
    for hour in HOURS:
        yield datetime.combine(day, hour, CHINA).astimezone(UTC)


def test_the_span_has_every_weekday_and_two_year_ends() -> None:
    days = list(_days())
    assert {d.weekday() for d in days} == set(range(7))
    assert {date(2026, 12, 31), date(2027, 12, 31)} <= set(days)


def test_approval_deadline_days_give_a_limit_of_two_days_or_more_ending_on_the_saturday() -> None:
    for today in _days():
        days = approval_deadline_days(today)
        assert days.promised >= 2, today
        assert len(days.expected) == days.promised
        assert days.expected[-1] == days.saturday and days.saturday.weekday() == 5
        assert all(d.weekday() < 5 and d > today for d in days.holidays)
        assert not days.holidays & set(days.expected)
        # The warning (the day before the Saturday) is after today: never already past.
        assert days.expected[-2] > today
        # Review counts on what the test loads: every year the count touches is known,
        # and the marks fall where the test expects them.
        loaded = days.by_year()
        assert set(loaded) == days.years
        calendar = plain_calendar(set(days.years), days.holidays, frozenset({days.saturday}))
        counted = case_deadlines(calendar, accepted_on=today, promised_limit_days=days.promised,
                                 legal_limit_days=20, today=today)
        assert counted.unknown_year == 0, today
        assert counted.promised_due_at == end_of_day(days.saturday)
        assert counted.warning_at == end_of_day(days.expected[-2])


def test_a_case_received_before_the_holidays_is_signed_for_at_14_30_on_a_monday() -> None:
    policy = DeadlinePolicy()
    assert policy.sign_for_working_hours == SIGN_FOR_HOURS
    for today in _days():
        holidays = holidays_until_the_weekend(today)
        first = first_working_day_after(today, holidays)
        expected = datetime.combine(first, time(14, 30), CHINA).astimezone(UTC)
        # As FakeComplaints loads them: the year before to two years after.
        calendar = plain_calendar({today.year + n for n in range(-1, 3)}, holidays)
        assert first.weekday() == 0, today
        for now in _moments(today):
            # Received a moment after "today" was read: maybe past China's midnight.
            for received in (now, now + timedelta(seconds=1)):
                assert not calendar.is_working_day(china_date(received)), received
                assert add_working_hours(calendar, received, SIGN_FOR_HOURS) == expected
                # The production count agrees with the test's stand-in.
                clock = opening_clock(policy, calendar, deadline_class="complaint",
                                      received_at=received)
                assert (clock.sign_for_due, clock.unknown_year) == (expected, 0)
            assert expected - now > timedelta(days=2)


def test_procurement_objections_close_three_days_later_or_more_across_the_holidays() -> None:
    for today in _days():
        years = {today.year, today.year + 1}
        holidays = frozenset(weekdays_after(today, 3))
        calendar = plain_calendar(years, holidays)
        plain = plain_calendar(years)
        for now in _moments(today):
            until = r.procurement_objections_until(calendar,
                                                   r.earliest_documents_until(calendar, now))
            without = r.procurement_objections_until(plain,
                                                     r.earliest_documents_until(plain, now))
            assert until - without >= timedelta(days=3), now
            # Within the test's 40-day bid period, and its answers countable.
            assert until < now + timedelta(days=40)
            r.answer_due(calendar, category=r.GOVERNMENT_PROCUREMENT,
                         objected_at=until - timedelta(minutes=1))



def test_the_years_ahead_let_a_trading_count_started_on_any_day_end() -> None:
    # tests/integration/trading/conftest.py gives every trading service these: a property
    # disclosure's 20 working days, or a procurement's documents (15 days) and objections
    # (7 working days) started in December end in a year chinese-calendar does not know.
    failed_without = []
    for today in _days():
        ahead = schedules_ahead(today)
        assert all(not WorkingCalendar().knows(s.year) for s in ahead)
        calendar = WorkingCalendar.with_schedules(ahead)
        for now in _moments(today):
            r.procurement_objections_until(calendar, now + timedelta(days=15))
            calendar.add_working_days(today, 60)
        try:
            r.procurement_objections_until(WorkingCalendar(),
                                           datetime.combine(today, time(12), CHINA)
                                           + timedelta(days=15))
        except UnknownYearError:
            failed_without.append(today)
    # Without them, the procurement test announced on 8 December 2026 or later fails.
    assert min(failed_without) == date(2026, 12, 8)
