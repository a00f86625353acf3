"""Deal statistics of the venue (issue #9 item 8), free of any framework.

A deal is a trade concluded with a value (docs/tenders.md, "Monitoring and
statistics"):

- a tender, once awarded: dated at its award, worth the contract's amount
  once the contract is recorded, the awarded amount before;
- a direct award (a project the catalogue lets out of the venue): dated
  when recorded, worth its amount;
- a land or property-rights listing, once concluded (when listings are
  recorded): dated at its conclusion, worth its price.

``aggregate`` counts the deals of a period, [start, end), by category and
source, in whole fen (exact integers, never floats).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from kernel.errors import FailedPrecondition, FieldViolation, InvalidArgument

#: The largest total an int64 holds.
INT64_MAX = 2**63 - 1
#: The longest period asked about: more is a typing mistake.
MAX_PERIOD = timedelta(days=366 * 20)


class DealSource(StrEnum):
    TENDER = "tender"
    DIRECT_AWARD = "direct_award"
    LISTING = "listing"


@dataclass(frozen=True)
class Deal:
    source: DealSource
    category: str
    #: The instant the deal counts at.
    at: datetime
    amount_fen: int


@dataclass(frozen=True)
class StatisticsRow:
    category: str
    source: DealSource
    deals: int
    total_value_fen: int


@dataclass(frozen=True)
class Statistics:
    #: By category, then source (both sorted); only the pairs with deals.
    rows: tuple[StatisticsRow, ...]
    deals: int
    total_value_fen: int


def check_period(start: datetime, end: datetime) -> None:
    if end <= start:
        raise InvalidArgument("period_end must be after period_start", violations=[
            FieldViolation("period_end", "must be after period_start")])
    if end - start > MAX_PERIOD:
        raise InvalidArgument("the period is longer than 20 years", violations=[
            FieldViolation("period_end", "at most 20 years after period_start")])


def _int64(total: int, what: str) -> int:
    if total > INT64_MAX:
        raise FailedPrecondition(f"the {what} exceeds what an int64 holds: ask for a shorter "
                                 "period or one category")
    return total


def aggregate(deals: Iterable[Deal], *, start: datetime, end: datetime,
              category: str = "") -> Statistics:
    """The deals dated in [start, end), of ``category`` ('' for all), counted and summed."""
    check_period(start, end)
    counts: dict[tuple[str, DealSource], int] = defaultdict(int)
    sums: dict[tuple[str, DealSource], int] = defaultdict(int)
    for deal in deals:
        if not start <= deal.at < end or (category and deal.category != category):
            continue
        key = (deal.category, deal.source)
        counts[key] += 1
        sums[key] += deal.amount_fen
    rows = tuple(StatisticsRow(c, s, counts[(c, s)], _int64(sums[(c, s)], "total"))
                 for c, s in sorted(counts))
    return Statistics(rows, sum(r.deals for r in rows),
                      _int64(sum(r.total_value_fen for r in rows), "total"))
