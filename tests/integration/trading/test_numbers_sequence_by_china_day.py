"""Each day in China starts its own sequence of numbers (not only its own day prefix): the
first project, tender and listing of 2 December in China (16:00 UTC on 1 December) are
each number 000001, after 1 December's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.integration.trading.test_numbers_by_china_day import _numbers
from tests.support import ServiceUnderTest


def test_each_day_in_china_numbers_from_one(trading: ServiceUnderTest, pki_dir: Path) -> None:
    late = _numbers(trading, pki_dir, datetime(2026, 12, 1, 15, 59, 59, tzinfo=UTC))
    next_day = _numbers(trading, pki_dir, datetime(2026, 12, 1, 16, 0, tzinfo=UTC))
    # Two projects a day (one tendered, one listed): the first is the tendered one.
    assert late == ["PJ-20261201-000001", "TD-20261201-000001", "LS-20261201-000001"]
    assert next_day == ["PJ-20261202-000001", "TD-20261202-000001", "LS-20261202-000001"]
