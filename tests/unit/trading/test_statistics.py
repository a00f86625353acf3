"""Deal statistics (services/trading/domain/statistics.py), counted by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kernel.errors import FailedPrecondition, InvalidArgument
from services.trading.domain.statistics import (
    INT64_MAX,
    Deal,
    DealSource,
    StatisticsRow,
    aggregate,
)

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)
TENDER, DIRECT = DealSource.TENDER, DealSource.DIRECT_AWARD

DEALS = [
    Deal(TENDER, "construction", JAN, 500_000_001),
    Deal(TENDER, "construction", JAN + timedelta(days=3), 250_000_000),
    Deal(DIRECT, "construction", JAN + timedelta(days=5), 99_999_999),
    Deal(TENDER, "government_procurement", FEB - timedelta(microseconds=1), 1),
    # The period's end is excluded: February's deals do not count in January.
    Deal(TENDER, "construction", FEB, 7_000_000),
    Deal(DealSource.LISTING, "land", FEB + timedelta(days=1), 3_000_000_000),
]


def test_january_by_category_and_source() -> None:
    january = aggregate(DEALS, start=JAN, end=FEB)
    # construction/tender: 500,000,001 + 250,000,000 = 750,000,001 in 2 deals;
    # construction/direct: 99,999,999 in 1; procurement/tender: 1 in 1.
    assert january.rows == (
        StatisticsRow("construction", DIRECT, 1, 99_999_999),
        StatisticsRow("construction", TENDER, 2, 750_000_001),
        StatisticsRow("government_procurement", TENDER, 1, 1),
    )
    assert january.deals == 4
    assert january.total_value_fen == 850_000_001


def test_february_starts_at_its_first_instant() -> None:
    february = aggregate(DEALS, start=FEB, end=MAR)
    assert february.rows == (StatisticsRow("construction", TENDER, 1, 7_000_000),
                             StatisticsRow("land", DealSource.LISTING, 1, 3_000_000_000))
    assert (february.deals, february.total_value_fen) == (2, 3_007_000_000)


def test_one_category() -> None:
    both = aggregate(DEALS, start=JAN, end=MAR, category="construction")
    assert {r.category for r in both.rows} == {"construction"}
    assert (both.deals, both.total_value_fen) == (4, 857_000_000)


def test_a_period_without_deals_is_empty() -> None:
    empty = aggregate(DEALS, start=MAR, end=MAR + timedelta(days=31))
    assert (empty.rows, empty.deals, empty.total_value_fen) == ((), 0, 0)


def test_totals_are_exact_beyond_a_double_s_precision() -> None:
    # 2^53 + 1 is not a double: a float sum would lose the 1.
    deals = [Deal(TENDER, "construction", JAN, 2**53), Deal(TENDER, "construction", JAN, 1)]
    assert aggregate(deals, start=JAN, end=FEB).total_value_fen == 2**53 + 1


def test_a_total_beyond_int64_is_refused_not_wrapped() -> None:
    near = [Deal(TENDER, "construction", JAN, INT64_MAX), Deal(TENDER, "land", JAN, 1)]
    with pytest.raises(FailedPrecondition):
        aggregate(near, start=JAN, end=FEB)
    assert aggregate(near[:1], start=JAN, end=FEB).total_value_fen == INT64_MAX


@pytest.mark.parametrize(("start", "end"), [(FEB, JAN), (JAN, JAN),
                                            (JAN, JAN + timedelta(days=366 * 21))])
def test_a_period_must_run_forwards_and_not_for_ever(start: datetime, end: datetime) -> None:
    with pytest.raises(InvalidArgument):
        aggregate(DEALS, start=start, end=end)
