"""The timing rules of a tender, as pure functions: no Temporal, no database.

The Bidding Law and its Implementing Regulations (construction tendering and
the general rule), and the Government Procurement Law's rules where they
differ (DESIGN.md §2):

- the bid period is at least 20 calendar days from the announcement;
- an amendment issued less than 15 days before the deadline pushes the
  deadline to 15 days after the amendment;
- objections to the documents: up to 10 days before the deadline, answered
  within 3 days (government procurement: within 7 working days of the end of
  the documents' availability, answered within 7 working days); an objection
  pauses the process until it is answered, and the deadline moves by the pause;
- government procurement: the documents are available at least 5 working days;
- fewer than 3 bids at the deadline: the tender fails, nothing is opened;
- fewer than 3 valid bids once the decryption window has closed (unrevealed
  or mismatching bids are invalid): the tender fails, nothing is evaluated;
- candidates are published at least 3 days before the award;
- the contract is signed within 30 days of the award.

Working days come from a ``WorkingDays`` calendar (kernel.calendar's
``WorkingCalendar`` is one); a working-day limit ends at the end of its last
working day in China. A broken rule raises ``RuleBroken`` (workflows.approval_rules),
whose ``status`` names the gRPC status a caller gets.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from kernel.chinatime import CHINA, china_date
from workflows.approval_rules import (
    FAILED_PRECONDITION,
    INVALID_ARGUMENT,
    RuleBroken,
)

MIN_BID_PERIOD = timedelta(days=20)
#: An amendment issued less than this before the deadline pushes the deadline.
AMENDMENT_NOTICE = timedelta(days=15)
#: Objections to the documents are taken until this long before the deadline.
OBJECTION_CUTOFF = timedelta(days=10)
OBJECTION_ANSWER = timedelta(days=3)
MIN_DOCUMENTS_WORKING_DAYS = 5
PROCUREMENT_OBJECTION_WORKING_DAYS = 7
PROCUREMENT_ANSWER_WORKING_DAYS = 7
MIN_BIDS = 3
DEFAULT_DECRYPTION_WINDOW = timedelta(hours=2)
MIN_DECRYPTION_WINDOW = timedelta(minutes=30)
MAX_DECRYPTION_WINDOW = timedelta(days=2)
MIN_CANDIDATE_PUBLICATION = timedelta(days=3)
CONTRACT_WITHIN = timedelta(days=30)
#: Longest bid period the platform takes: a deadline further out is a typing mistake.
MAX_BID_PERIOD = timedelta(days=365)

GOVERNMENT_PROCUREMENT = "government_procurement"


class WorkingDays(Protocol):
    def add_working_days(self, start: date, days: int) -> date: ...


def end_of_china_day(day: date) -> datetime:
    """The last second of ``day`` in China, as an instant in UTC."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=CHINA).astimezone(UTC)


def working_days_later(calendar: WorkingDays, start: datetime, days: int) -> datetime:
    """The end of the ``days``-th working day after the day of ``start`` in China."""
    return end_of_china_day(calendar.add_working_days(china_date(start), days))


def check_bid_period(*, announced_at: datetime, deadline: datetime) -> None:
    """The bid period is 20 days at least (and not absurdly long)."""
    if deadline - announced_at < MIN_BID_PERIOD:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"the bid deadline must be at least {MIN_BID_PERIOD.days} days after "
                         f"the announcement: {(announced_at + MIN_BID_PERIOD).isoformat()} "
                         "at the earliest")
    if deadline - announced_at > MAX_BID_PERIOD:
        raise RuleBroken(INVALID_ARGUMENT,
                         f"the bid deadline must be within {MAX_BID_PERIOD.days} days of the "
                         "announcement")


def earliest_documents_until(calendar: WorkingDays, announced_at: datetime) -> datetime:
    """Government procurement: the documents stay available 5 working days at least."""
    return working_days_later(calendar, announced_at, MIN_DOCUMENTS_WORKING_DAYS)


def check_documents_period(calendar: WorkingDays, *, announced_at: datetime,
                           documents_until: datetime, deadline: datetime) -> None:
    earliest = earliest_documents_until(calendar, announced_at)
    if documents_until < earliest:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"government procurement documents are available for at least "
                         f"{MIN_DOCUMENTS_WORKING_DAYS} working days: until "
                         f"{earliest.isoformat()} at the earliest")
    if documents_until > deadline:
        raise RuleBroken(FAILED_PRECONDITION,
                         "the documents must be available until the bid deadline at the latest")


def procurement_objections_until(calendar: WorkingDays, documents_until: datetime) -> datetime:
    """Government procurement: objections to the documents within 7 working days of the end
    of their availability (when a supplier knows, at the latest, what they hold)."""
    return working_days_later(calendar, documents_until, PROCUREMENT_OBJECTION_WORKING_DAYS)


def objection_cutoff(*, category: str, deadline: datetime,
                     objections_until: datetime | None) -> datetime:
    """The last instant an objection to the documents is taken.

    The general rule: 10 days before the (current) deadline. Government
    procurement: the working-day limit fixed at the announcement.
    """
    if category == GOVERNMENT_PROCUREMENT and objections_until is not None:
        return objections_until
    return deadline - OBJECTION_CUTOFF


def check_objection(*, category: str, now: datetime, deadline: datetime,
                    objections_until: datetime | None, paused: bool) -> None:
    cutoff = objection_cutoff(category=category, deadline=deadline,
                              objections_until=objections_until)
    if now > cutoff:
        rule = ("within 7 working days of the end of the documents' availability"
                if category == GOVERNMENT_PROCUREMENT else "up to 10 days before the deadline")
        raise RuleBroken(FAILED_PRECONDITION,
                         f"objections to the documents are taken {rule}: the last was "
                         f"{cutoff.isoformat()}")
    if paused:
        raise RuleBroken(FAILED_PRECONDITION,
                         "an objection is waiting for its answer: the tender is paused; "
                         "a further objection waits until it is answered")


def answer_due(calendar: WorkingDays, *, category: str, objected_at: datetime) -> datetime:
    """When the answer to an objection made at ``objected_at`` is due."""
    if category == GOVERNMENT_PROCUREMENT:
        return working_days_later(calendar, objected_at, PROCUREMENT_ANSWER_WORKING_DAYS)
    return objected_at + OBJECTION_ANSWER


def deadline_after_amendment(*, deadline: datetime, amended_at: datetime) -> datetime:
    """An amendment less than 15 days before the deadline pushes it to 15 days after it."""
    if deadline - amended_at < AMENDMENT_NOTICE:
        return amended_at + AMENDMENT_NOTICE
    return deadline


def check_amendment(*, now: datetime, deadline: datetime) -> None:
    if now >= deadline:
        raise RuleBroken(FAILED_PRECONDITION,
                         "the bid deadline has passed: the documents can no longer be amended")


def deadline_after_pause(*, deadline: datetime, paused_at: datetime,
                         resumed_at: datetime) -> datetime:
    """The deadline moves by the time the process stood paused."""
    if resumed_at < paused_at:
        raise RuleBroken(INVALID_ARGUMENT, "an answer cannot come before its objection")
    return deadline + (resumed_at - paused_at)


def opens(bids: int) -> bool:
    """Three bids at least are opened; fewer and the tender fails."""
    return bids >= MIN_BIDS


def evaluates(valid_bids: int) -> bool:
    """Three valid bids at least are evaluated once the decryption window has closed; fewer
    and the tender fails (an unrevealed or mismatching bid is not valid)."""
    return valid_bids >= MIN_BIDS


def check_decryption_window(window: timedelta) -> None:
    if not MIN_DECRYPTION_WINDOW <= window <= MAX_DECRYPTION_WINDOW:
        raise RuleBroken(INVALID_ARGUMENT,
                         "the decryption window is 30 minutes to 2 days")


def earliest_award(candidates_published_at: datetime, *,
                   paused: timedelta = timedelta(0)) -> datetime:
    """Candidates are published 3 days at least before the award, plus any pause for an
    objection to them."""
    return candidates_published_at + MIN_CANDIDATE_PUBLICATION + paused


def check_award(*, now: datetime, candidates_published_at: datetime | None,
                paused_for: timedelta, objection_open: bool, winner: str,
                candidates: tuple[str, ...]) -> None:
    if candidates_published_at is None:
        raise RuleBroken(FAILED_PRECONDITION, "no candidates are published yet")
    if objection_open:
        raise RuleBroken(FAILED_PRECONDITION,
                         "an objection to the candidates is waiting for its answer")
    earliest = earliest_award(candidates_published_at, paused=paused_for)
    if now < earliest:
        raise RuleBroken(FAILED_PRECONDITION,
                         f"the candidates are published {MIN_CANDIDATE_PUBLICATION.days} days "
                         f"at least: the award may come from {earliest.isoformat()}")
    if winner not in candidates:
        raise RuleBroken(FAILED_PRECONDITION, f"{winner} is not one of the published candidates")


def contract_due(awarded_at: datetime) -> datetime:
    return awarded_at + CONTRACT_WITHIN


def contract_late(*, now: datetime, awarded_at: datetime) -> bool:
    return now > contract_due(awarded_at)
