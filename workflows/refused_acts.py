"""Acts a workflow refused for want of authority, on their way to review's audit log.

An update sent to Temporal directly, whose statement no service signed (or
signed for another case, official or role), is refused by the workflow's
validator before it reaches the history. Workflow code does no I/O and the
workflows worker holds no database, so the validator hands the refusal to
this module (the sandbox passes it through: one per process) and the
worker's reporter sends it to review, which keeps it in its audit log
(``RecordRefusedAct``, action ``violation.forged_update``).

Nothing here changes what the workflow does: a report is a side note, made
only while the validator runs for a new update (validators do not run on
replay), and dropped when no reporter listens (tests, tools).
"""

from __future__ import annotations

import asyncio
import hashlib
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

log = structlog.get_logger("govhall.workflows")

#: The longest reason a report carries (RecordRefusedActRequest.reason).
REASON_LIMIT = 300


@dataclass(frozen=True)
class RefusedAct:
    """One refused update: the case is the workflow's own, never the act's claim."""

    case_number: str
    #: SHA-256 over the workflow run and the update's id (whoever sent it chose the id).
    report_id: str
    update_name: str
    reason: str
    refused_at: datetime


def report_id(workflow_id: str, run_id: str, update_id: str) -> str:
    """The report's id: the same refused update gives the same id, however often seen."""
    text = "\n".join((workflow_id, run_id, update_id))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def printable(text: str, limit: int = REASON_LIMIT) -> str:
    """``text`` with every control or unassigned character as "?", cut to ``limit``.

    A refusal's reason quotes what the act claimed (an official's id, a key
    id), which whoever forged it chose; review refuses control characters.
    """
    shown = "".join("?" if unicodedata.category(c).startswith("C") else c for c in text)
    return shown[:limit] or "?"


Listener = Callable[[RefusedAct], None]
_listener: Listener | None = None


def listen(listener: Listener | None) -> None:
    """Send every refusal reported from now on to ``listener`` (None: nobody)."""
    global _listener
    _listener = listener


def report(act: RefusedAct) -> None:
    """Hand a refusal to whoever listens; never raises into the workflow."""
    listener = _listener
    if listener is None:
        return
    try:
        listener(act)
    except Exception:  # the workflow's answer must not depend on the report
        log.exception("violation.report_failed", case_number=act.case_number)


@dataclass
class Reporter:
    """Takes refusals from any thread and sends them, one at a time, until stopped.

    ``send`` delivers one report (retrying as it sees fit) and raises when it
    gives up. At most ``capacity`` reports wait; more are dropped and counted,
    so a flood of forged updates cannot exhaust the worker's memory.
    """

    send: Callable[[RefusedAct], Awaitable[None]]
    loop: asyncio.AbstractEventLoop
    capacity: int = 1000
    dropped: int = 0
    sent: int = 0
    _waiting: asyncio.Queue[RefusedAct] = field(init=False)

    def __post_init__(self) -> None:
        self._waiting = asyncio.Queue(maxsize=self.capacity)

    def take(self, act: RefusedAct) -> None:
        """Queue a refusal; safe from the workflows' threads."""
        self.loop.call_soon_threadsafe(self._put, act)

    def _put(self, act: RefusedAct) -> None:
        try:
            self._waiting.put_nowait(act)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("violation.report_dropped", case_number=act.case_number,
                        dropped=self.dropped)

    async def run(self) -> None:
        while True:
            act = await self._waiting.get()
            try:
                await self.send(act)
                self.sent += 1
            except Exception as error:
                log.warning("violation.report_not_kept", case_number=act.case_number,
                            update=act.update_name, error=type(error).__name__)
            finally:
                self._waiting.task_done()

    @property
    def waiting(self) -> int:
        """Reports taken and not yet sent or given up."""
        return self._waiting.qsize()

    async def drained(self) -> None:
        """Until every report taken so far was sent or given up."""
        # Reports taken on other threads reach the queue through the loop: let them in first.
        await asyncio.sleep(0)
        await self._waiting.join()
