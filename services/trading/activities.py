"""Activities the trading service hosts on its own task queue (govhall-trading).

Workflows read the expert pool through these, so a workflow never touches a
database. Only expert ids leave the service this way: names stay inside.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from temporalio import activity

from kernel.activities import run_use_case
from services.trading.app import handlers
from services.trading.db.repository import TradingUnitOfWork


@dataclass(frozen=True)
class EligibleExpertsQuery:
    """Which experts a committee may be drawn from."""

    specialty: str
    #: Employers of the parties to the trade, whose experts must stand aside (回避).
    excluded_employers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EligibleExperts:
    """The candidates of an expert draw, in the order a draw publishes them."""

    specialty: str
    #: Ids of the available experts of the specialty not from an excluded employer, sorted.
    expert_ids: list[str]


class TradingActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name="trading.eligible_experts")
    async def eligible_experts(self, query: EligibleExpertsQuery) -> EligibleExperts:
        ids = await run_use_case(
            handlers.eligible_expert_ids, uow=TradingUnitOfWork(self._engine, write=False),
            specialty=query.specialty, excluded_employers=list(query.excluded_employers))
        return EligibleExperts(specialty=query.specialty, expert_ids=ids)


def activities(engine: Engine, _settings: Any) -> Sequence[Callable[..., Any]]:
    return [TradingActivities(engine).eligible_experts]
