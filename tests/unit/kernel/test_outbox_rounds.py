"""Two promises of kernel/outbox.py about its rounds.

- "An outage costs one attempt a round": with the round going on past an unreachable
  Temporal (each entry tried and passed over), test_outbox.py stayed green.
- An id squatted again and again is left pending, not marked started: with the
  replacements exhausted and the entry marked anyway, test_outbox.py stayed green.
"""

from __future__ import annotations

from typing import Any

from kernel.errors import Unavailable
from kernel.workflow_gateway import ExistingRun
from tests.unit.kernel.test_outbox import FakeGateway, LetterOutbox, _run


class CountingOutage(FakeGateway):
    """Temporal out of reach; counts the starts tried."""

    def __init__(self) -> None:
        super().__init__(outage=True)
        self.tried = 0

    async def start(self, workflow: str, argument: Any, **kwargs: Any) -> bool:
        self.tried += 1
        raise Unavailable("Temporal is down")


async def test_an_outage_costs_one_start_a_round_not_one_per_entry() -> None:
    gateway = CountingOutage()
    outbox = LetterOutbox(gateway, entries={"a": False, "b": False, "c": False})
    assert await outbox.start_pending() == 0
    assert gateway.tried == 1
    assert outbox.pending() == ["a", "b", "c"]


class AlwaysSquatted(FakeGateway):
    """Every start under the id finds it taken again by a stranger's run."""

    async def start(self, workflow: str, argument: Any, **kwargs: Any) -> bool:
        self.started.append(kwargs["workflow_id"])
        return False

    async def existing_run(self, workflow_id: str, argument_type: type[Any]) -> ExistingRun:
        return _run(workflow_id.split("/", 1)[1], queue="elsewhere",
                    run_id=f"bad{len(self.started)}")


async def test_an_id_squatted_on_every_replacement_stays_pending() -> None:
    gateway = AlwaysSquatted()
    outbox = LetterOutbox(gateway, entries={"a": False}, replacements=3)
    assert await outbox.start_pending() == 0
    assert outbox.pending() == ["a"]
    assert outbox.squatters == [("a", "task_queue")] * 3
    assert len(gateway.terminated) == 3
