"""Monitoring and statistics: the use cases behind WatchTrades, ListTradeAlerts and
GetTradeStatistics (docs/tenders.md, "Monitoring and statistics").

The steps and alerts are recorded where each step is (the tender steps,
sealed bids and draws, in their own transactions); here they are only read.
Who may read them is the registry's business (the supervision system, the
operators, the trading platform): no official is needed, and nothing shown
holds a bid's content or anything personal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kernel.errors import FieldViolation, InvalidArgument
from services.trading.db.repository import TradingUnitOfWork
from services.trading.domain.model import require_category
from services.trading.domain.monitoring import AlertRule, StoredAlert, TradeStep
from services.trading.domain.statistics import Statistics, aggregate, check_period

#: How many steps one read of the watch takes at most.
WATCH_BATCH = 200
DEFAULT_ALERTS_PAGE = 50


def check_step_cursor(*, uow: TradingUnitOfWork, after_step: int) -> int:
    """The last step recorded; INVALID_ARGUMENT for a cursor that is negative or beyond it
    (a cursor no watcher can have been given)."""
    with uow:
        last = uow.monitor.last_sequence()
    if after_step < 0 or after_step > last:
        raise InvalidArgument(
            f"after_step {after_step} is not a step recorded: the last is {last}",
            violations=[FieldViolation("after_step", f"must be between 0 and {last}")])
    return last


def steps_after(*, uow: TradingUnitOfWork, after_step: int,
                limit: int = WATCH_BATCH) -> list[TradeStep]:
    """The steps after ``after_step``, in order, with their alerts."""
    with uow:
        return uow.monitor.after(after_step, limit=limit)


@dataclass(frozen=True)
class AlertsPage:
    alerts: list[StoredAlert]
    next_cursor: int


def list_alerts(*, uow: TradingUnitOfWork, cursor: int, requested_size: int, trade: str = "",
                rule: AlertRule | None = None) -> AlertsPage:
    """The alerts after ``cursor`` (an alert number), of one trade or rule if given."""
    size = requested_size or DEFAULT_ALERTS_PAGE
    with uow:
        last = uow.monitor.last_alert_no()
        if cursor < 0 or cursor > last:
            raise InvalidArgument(
                f"cursor {cursor} is not an alert raised: the last is {last}",
                violations=[FieldViolation("cursor", f"must be between 0 and {last}")])
        alerts = uow.monitor.alerts(cursor, limit=size, trade=trade, rule=rule)
    return AlertsPage(alerts, alerts[-1].alert_no if alerts else cursor)


def trade_statistics(*, uow: TradingUnitOfWork, start: datetime, end: datetime,
                     category: str = "") -> Statistics:
    """Deals and their total value in [start, end), by category and source."""
    check_period(start, end)
    if category:
        require_category(category)
    with uow:
        deals = (uow.tenders.deals(start, end) + uow.projects.direct_deals(start, end)
                 + uow.listings.deals(start, end))
    return aggregate(deals, start=start, end=end, category=category)
