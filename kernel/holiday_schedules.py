"""The holiday schedules operators loaded in review, as other services count working days.

Review keeps the schedules operators load for years the built-in
``chinese-calendar`` does not know yet (LoadHolidaySchedule). A service that
counts working days (complaints' deadlines, trading's procurement limits)
reads them with review's ``ListHolidaySchedules`` over mTLS, as its own
calling system, and keeps them in memory (``HolidaySchedules``):

- read again when the copy is older than ``refresh_seconds`` (on the next use);
- read again at once when a computation meets a year it does not know
  (``ScheduledCalendar``), then that day is looked up once more; at most one
  such read per ``retry_spacing_seconds``, so a year review does not know
  either does not turn every computation into a call;
- review unreachable, unconfigured or answering nonsense: the schedules read
  last (at first the built-in ones only), with a warning in the log; never a
  crash. A year nobody knows still raises ``UnknownYearError``: never guessed.

The reads are blocking gRPC calls: every computation runs in a worker thread
(activities' use cases, the servicers' ``asyncio.to_thread``), never on the
event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import grpc
import structlog

from govhall.review.v1 import review_pb2, review_pb2_grpc
from kernel.calendar import UnknownYearError, WorkingCalendar, YearSchedule
from kernel.grpcserver import channel_credentials

log = structlog.get_logger("govhall.holidays")

#: Reads review's loaded schedules; raises when review cannot be asked.
Fetch = Callable[[], Sequence[YearSchedule]]

#: Longest one question to review may take.
CALL_TIMEOUT_SECONDS = 5.0


def schedules_from(response: review_pb2.ListHolidaySchedulesResponse) -> list[YearSchedule]:
    """The loaded schedules of review's answer (built-in years are the package's own).

    A schedule that does not make sense (a day outside its year, a weekday
    make-up day) is left out with a warning: its year stays unknown.
    """
    schedules = []
    for entry in response.schedules:
        if entry.source != review_pb2.HOLIDAY_SCHEDULE_SOURCE_LOADED:
            continue
        try:
            schedules.append(YearSchedule(
                year=entry.year,
                holidays=frozenset(date.fromisoformat(d) for d in entry.holidays),
                makeup_workdays=frozenset(date.fromisoformat(d) for d in entry.makeup_workdays)))
        except ValueError as error:
            log.warning("holidays.schedule_ignored", year=entry.year, reason=str(error))
    return schedules


class ReviewSchedules:
    """``Fetch`` from review's ListHolidaySchedules as ``system``; one channel, opened on use."""

    def __init__(self, address: str, *, pki_dir: Path, system: str,
                 timeout_seconds: float = CALL_TIMEOUT_SECONDS) -> None:
        self.address = address
        self._pki_dir = pki_dir
        self._system = system
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None

    def _stub(self) -> review_pb2_grpc.ReviewServiceStub:
        with self._lock:
            if self._channel is None:
                self._channel = grpc.secure_channel(
                    self.address, channel_credentials(self._pki_dir, self._system))
            return review_pb2_grpc.ReviewServiceStub(self._channel)

    def __call__(self) -> list[YearSchedule]:
        response = self._stub().ListHolidaySchedules(review_pb2.ListHolidaySchedulesRequest(),
                                                     timeout=self._timeout)
        return schedules_from(response)

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None


class HolidaySchedules:
    """The schedules review knows, kept in memory; see the module's docstring."""

    def __init__(self, fetch: Fetch | None, *, refresh_seconds: float = 300.0,
                 retry_spacing_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, source: str = "review") -> None:
        self._fetch = fetch
        self._refresh_seconds = refresh_seconds
        self._retry_spacing = retry_spacing_seconds
        self._clock = clock
        self._source = source
        self._lock = threading.Lock()
        self._current = WorkingCalendar()
        #: When review was last asked (answered or not); None: never.
        self._asked_at: float | None = None
        #: Reads that reached review, and ones that did not.
        self.reads = 0
        self.failures = 0
        if fetch is None:
            log.warning("holidays.review_not_configured",
                        detail="working days follow the built-in schedules only")

    @classmethod
    def from_review(cls, address: str, *, pki_dir: Path, system: str,
                    refresh_seconds: float = 300.0,
                    retry_spacing_seconds: float = 5.0) -> HolidaySchedules:
        """Read from review at ``address`` as ``system``; an empty address: built-in only."""
        fetch = ReviewSchedules(address, pki_dir=pki_dir, system=system) if address else None
        return cls(fetch, refresh_seconds=refresh_seconds,
                   retry_spacing_seconds=retry_spacing_seconds, source=address or "none")

    def calendar(self) -> WorkingCalendar:
        """The built-in schedules and the loaded ones, read again when the copy is stale."""
        self._refresh(older_than=self._refresh_seconds)
        return self._current

    def refresh(self) -> bool:
        """Ask review now; whether it answered."""
        return self._refresh(older_than=0.0)

    def knows_after_asking(self, year: int) -> bool:
        """A computation met ``year`` unknown: ask review at once (unless asked moments ago)
        and say whether the year is known now."""
        if self._current.knows(year):
            return True
        self._refresh(older_than=self._retry_spacing)
        return self._current.knows(year)

    def working_calendar(self) -> ScheduledCalendar:
        """A calendar that always counts with these schedules."""
        return ScheduledCalendar(self)

    def _refresh(self, *, older_than: float) -> bool:
        if self._fetch is None:
            return False
        asked = self._asked_at
        if asked is not None and self._clock() - asked < older_than:
            return False  # fresh enough: no lock taken on the common path
        with self._lock:  # one read at a time; who waited finds it done
            now = self._clock()
            if self._asked_at is not None and now - self._asked_at < older_than:
                return False
            self._asked_at = now
            try:
                schedules = self._fetch()
            except Exception as error:
                self.failures += 1
                code = error.code().name if isinstance(error, grpc.RpcError) else None
                log.warning("holidays.review_unreachable", source=self._source,
                            error=type(error).__name__, code=code,
                            detail="working days follow the schedules read last")
                return False
            self.reads += 1
            before = set(self._current.loaded)
            self._current = WorkingCalendar.with_schedules(schedules)
            if set(self._current.loaded) != before:
                log.info("holidays.schedules_read", years=sorted(self._current.loaded))
            return True


class ScheduledCalendar(WorkingCalendar):
    """A ``WorkingCalendar`` that counts with a ``HolidaySchedules``' current schedules.

    Its own ``loaded`` stays empty: the schedules are the source's, read
    again as it refreshes. A day in an unknown year makes the source ask
    review at once; the day is then looked up once more, and if its year is
    still unknown ``UnknownYearError`` is raised as before.
    """

    def __init__(self, schedules: HolidaySchedules) -> None:
        super().__init__()
        self.schedules = schedules

    def knows(self, year: int) -> bool:
        return self.schedules.calendar().knows(year)

    def is_working_day(self, day: date) -> bool:
        try:
            return self.schedules.calendar().is_working_day(day)
        except UnknownYearError as error:
            if not self.schedules.knows_after_asking(error.year):
                raise
            return self.schedules.calendar().is_working_day(day)


def built_in_only() -> HolidaySchedules:
    """No review to ask: the built-in schedules (tests, tools)."""
    return HolidaySchedules(None)
