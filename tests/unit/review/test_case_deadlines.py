"""A case's deadlines in working days, without a database.

2026's National Day holidays run from Thursday 1 to Wednesday 7 October and
Saturday 10 October is a make-up working day (as chinese-calendar has it).
From Tuesday 29 September the working days are 30 September, 8, 9, 10
(Saturday), 12, 13, 14 ... October. The 2027 schedule is made up for the
tests: New Year's Day on Friday 1 January.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from kernel.calendar import WorkingCalendar, YearSchedule
from kernel.errors import InvalidArgument
from services.review.domain.deadlines import Pause, case_deadlines, end_of_day

BUILT_IN = WorkingCalendar()
BEFORE_NATIONAL_DAY = date(2026, 9, 29)
SCHEDULE_2027 = YearSchedule(2027, frozenset({date(2027, 1, 1)}), frozenset())


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_end_of_a_day_is_the_last_second_of_it_in_china() -> None:
    assert end_of_day(date(2026, 10, 12)) == _utc("2026-10-12T15:59:59")


def test_the_holiday_week_is_skipped_and_the_makeup_saturday_counts() -> None:
    found = case_deadlines(BUILT_IN, accepted_on=BEFORE_NATIONAL_DAY, promised_limit_days=5,
                           legal_limit_days=20, today=BEFORE_NATIONAL_DAY)
    # 30 Sep, 8, 9, 10 (Saturday, make-up), 12 Oct: weekdays alone would give the 13th.
    assert found.promised_due_at == _utc("2026-10-12T15:59:59")
    # Yellow from the end of the working day before: the make-up Saturday.
    assert found.warning_at == _utc("2026-10-10T15:59:59")
    assert found.legal_due_at == _utc("2026-11-02T15:59:59")
    assert found.unknown_year == 0


def test_a_one_day_limit_turns_yellow_at_the_end_of_the_acceptance_day() -> None:
    found = case_deadlines(BUILT_IN, accepted_on=BEFORE_NATIONAL_DAY, promised_limit_days=1,
                           legal_limit_days=1, today=BEFORE_NATIONAL_DAY)
    assert found.warning_at == end_of_day(BEFORE_NATIONAL_DAY)
    assert found.promised_due_at == end_of_day(date(2026, 9, 30))
    assert found.warning_at < found.promised_due_at


def test_a_finished_pause_moves_both_deadlines_by_its_working_days() -> None:
    # Paused from the 8th to the 10th: the 9th and the 10th (make-up Saturday) stood still.
    found = case_deadlines(
        BUILT_IN, accepted_on=BEFORE_NATIONAL_DAY, promised_limit_days=5,
        legal_limit_days=20, pauses=[Pause("expert_review", date(2026, 10, 8),
                                           date(2026, 10, 10))],
        today=date(2026, 10, 20))
    assert found.promised_due_at == end_of_day(date(2026, 10, 14))
    assert found.warning_at == end_of_day(date(2026, 10, 13))
    assert found.legal_due_at == end_of_day(date(2026, 11, 4))


def test_a_pause_that_ends_the_day_it_starts_stops_nothing() -> None:
    found = case_deadlines(
        BUILT_IN, accepted_on=BEFORE_NATIONAL_DAY, promised_limit_days=5,
        legal_limit_days=20, pauses=[Pause("hearing", date(2026, 10, 8), date(2026, 10, 8))],
        today=date(2026, 10, 20))
    assert found.promised_due_at == end_of_day(date(2026, 10, 12))


def test_a_running_pause_counts_up_to_and_including_today() -> None:
    running = [Pause("appraisal", date(2026, 10, 12))]
    on_the_14th = case_deadlines(BUILT_IN, accepted_on=BEFORE_NATIONAL_DAY,
                                 promised_limit_days=5, legal_limit_days=20, pauses=running,
                                 today=date(2026, 10, 14))
    on_the_12th = case_deadlines(BUILT_IN, accepted_on=BEFORE_NATIONAL_DAY,
                                 promised_limit_days=5, legal_limit_days=20, pauses=running,
                                 today=date(2026, 10, 12))
    # The 13th and 14th stood still; on the 12th itself nothing had yet.
    assert on_the_14th.promised_due_at == end_of_day(date(2026, 10, 14))
    assert on_the_12th.promised_due_at == end_of_day(date(2026, 10, 12))


def test_an_extension_moves_the_legal_deadline_only() -> None:
    plain = case_deadlines(BUILT_IN, accepted_on=BEFORE_NATIONAL_DAY, promised_limit_days=5,
                           legal_limit_days=20, today=BEFORE_NATIONAL_DAY)
    extended = case_deadlines(BUILT_IN, accepted_on=BEFORE_NATIONAL_DAY,
                              promised_limit_days=5, legal_limit_days=20, extension_days=10,
                              today=BEFORE_NATIONAL_DAY)
    assert extended.legal_due_at == end_of_day(date(2026, 11, 16))
    assert extended.promised_due_at == plain.promised_due_at
    assert extended.warning_at == plain.warning_at


def test_a_year_without_schedule_is_flagged_and_counted_on_weekdays() -> None:
    found = case_deadlines(BUILT_IN, accepted_on=date(2026, 12, 28), promised_limit_days=5,
                           legal_limit_days=20, today=date(2026, 12, 28))
    assert found.unknown_year == 2027
    # 29, 30, 31 December, then Friday 1 January taken as a working day, then the 4th.
    assert found.promised_due_at == end_of_day(date(2027, 1, 4))


def test_a_loaded_schedule_makes_the_year_known() -> None:
    calendar = WorkingCalendar.with_schedules([SCHEDULE_2027])
    found = case_deadlines(calendar, accepted_on=date(2026, 12, 28), promised_limit_days=5,
                           legal_limit_days=20, today=date(2026, 12, 28))
    assert found.unknown_year == 0
    assert found.promised_due_at == end_of_day(date(2027, 1, 5))


def test_a_year_only_walked_through_for_the_legal_deadline_is_flagged_too() -> None:
    found = case_deadlines(BUILT_IN, accepted_on=date(2026, 12, 1), promised_limit_days=5,
                           legal_limit_days=30, today=date(2026, 12, 1))
    assert found.promised_due_at == end_of_day(date(2026, 12, 8))
    assert found.unknown_year == 2027


@pytest.mark.parametrize(("promised", "legal", "extension", "pauses", "field"), [
    (0, 20, 0, [], "promised_limit_days"),
    (5, 0, 0, [], "legal_limit_days"),
    (5, 20, -1, [], "extension_days"),
    (5, 20, 0, [Pause("hearing", date(2026, 9, 1), date(2026, 9, 2))], "paused[0].start_on"),
    (5, 20, 0, [Pause("hearing", date(2026, 10, 9), date(2026, 10, 8))], "paused[0].end_on"),
    (5, 20, 0, [Pause("hearing", date(2026, 10, 8), date(2026, 10, 12)),
                Pause("appraisal", date(2026, 10, 9), date(2026, 10, 13))],
     "paused[1].start_on"),
])
def test_impossible_inputs_are_refused_naming_the_field(
        promised: int, legal: int, extension: int, pauses: list[Pause], field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        case_deadlines(BUILT_IN, accepted_on=BEFORE_NATIONAL_DAY, promised_limit_days=promised,
                       legal_limit_days=legal, extension_days=extension, pauses=pauses,
                       today=BEFORE_NATIONAL_DAY)
    assert [v.field for v in refused.value.violations] == [field]


def test_each_stage_has_its_own_limit_inside_the_promised_one() -> None:
    # Accepted Monday 2026-11-23 with five working days: review by Thursday (3),
    # signature by Friday (4), seal by Monday 30 November, the promised deadline (5).
    found = case_deadlines(BUILT_IN, accepted_on=date(2026, 11, 23), promised_limit_days=5,
                           legal_limit_days=20, today=date(2026, 11, 23))
    assert found.stage_due_at == {
        "review": end_of_day(date(2026, 11, 26)),
        "sign": end_of_day(date(2026, 11, 27)),
        "seal": end_of_day(date(2026, 11, 30)),
    }
    assert found.stage_due_at["seal"] == found.promised_due_at


def test_with_a_one_day_limit_every_stage_is_due_that_day() -> None:
    found = case_deadlines(BUILT_IN, accepted_on=date(2026, 11, 23), promised_limit_days=1,
                           legal_limit_days=20, today=date(2026, 11, 23))
    assert set(found.stage_due_at.values()) == {end_of_day(date(2026, 11, 24))}


def test_a_pause_pushes_every_stage_limit() -> None:
    plain = case_deadlines(BUILT_IN, accepted_on=date(2026, 11, 23), promised_limit_days=5,
                           legal_limit_days=20, today=date(2026, 11, 25))
    paused = case_deadlines(BUILT_IN, accepted_on=date(2026, 11, 23), promised_limit_days=5,
                            legal_limit_days=20, today=date(2026, 11, 25),
                            pauses=[Pause("expert_review", date(2026, 11, 24),
                                          date(2026, 11, 25))])
    assert paused.stage_due_at["review"] == end_of_day(date(2026, 11, 27))
    assert all(paused.stage_due_at[s] > plain.stage_due_at[s] for s in plain.stage_due_at)
