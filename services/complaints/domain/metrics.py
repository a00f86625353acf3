"""How well the center and each department handled the cases of a period (issue #8 item 7).

Pure: the application layer reads the case records and the instant the
figures are taken at (``as_of``), this module counts. docs/complaints.md
("Metrics") states the same definitions for readers; a change here changes
that section too.

- **The period** holds the cases received in ``[start, end)``.
- **Merged duplicates** (并单: a case whose ``merged_into`` names its
  primary) are left out: the primary's reply answers them, so the matter is
  counted once, as the primary, in the primary's own period and department.
- **Department**: the lead department the case is with (after any
  reassignment), as stored on the case.
- **Completion rate**: cases replied or closed / cases.
- **On-time sign-for rate**: among the cases that can be judged, those
  signed for at or before ``sign_for_due``. A case not signed for whose due
  instant has passed at ``as_of`` is late; one still within its time is not
  judged yet, nor is one without a due instant.
- **On-time reply rate**: the same with ``first_replied_at`` and
  ``reply_due`` (the due instant after any granted extension). A reopened
  case holds the reopening's ``reply_due`` (the first one is replaced), so
  it is judged by its reply after reopening: ``replied_at`` once it is
  replied or closed again, late once that due instant passed without one.
- **Satisfaction rate**: rated cases rated 4 or 5 / rated cases; a case is
  counted once by the rating it holds last (a reopened case by the rating of
  its second reply once given).
- **Excellent rate**: rated cases rated 5 / rated cases.

Every rate is a :class:`Rate`: numerator and denominator as counted, so
nothing is rounded away; a rate with no cases says so instead of dividing by
zero.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction

from kernel.errors import FieldViolation, InvalidArgument

#: The longest period one answer covers: a leap year.
LONGEST_PERIOD = timedelta(days=366)
#: Case statuses that count as completed (workflows/complaint_contract.Stage values).
COMPLETED_STATUSES = frozenset({"replied", "closed"})
SATISFIED_RATINGS = frozenset({4, 5})
EXCELLENT_RATING = 5


class LinkStatus(StrEnum):
    """What checking a case's link to an approval case or a trade found."""

    #: The linked case exists; its item and department are recorded.
    FOUND = "found"
    #: The service that keeps such cases has no case of that number.
    NOT_FOUND = "not_found"
    #: Not checked (yet, or it cannot be: no address of the service to ask).
    UNCHECKED = "unchecked"


class LinkKind(StrEnum):
    APPROVAL = "approval"
    TENDER = "tender"


@dataclass(frozen=True)
class Rate:
    """``numerator`` of ``denominator`` cases; no cases when the denominator is 0."""

    numerator: int
    denominator: int

    def __post_init__(self) -> None:
        if not 0 <= self.numerator <= self.denominator:
            raise ValueError(f"a rate of {self.numerator} in {self.denominator} cases")

    @property
    def no_cases(self) -> bool:
        return self.denominator == 0

    def fraction(self) -> Fraction | None:
        """The exact rate, or None for no cases."""
        return None if self.no_cases else Fraction(self.numerator, self.denominator)

    def __str__(self) -> str:
        return "no cases" if self.no_cases else f"{self.numerator}/{self.denominator}"


@dataclass(frozen=True)
class CaseRecord:
    """What the metrics read of one case (the case columns of the same names)."""

    case_number: str
    department_code: str
    received_at: datetime
    status: str
    sign_for_due: datetime | None = None
    signed_for_at: datetime | None = None
    reply_due: datetime | None = None
    first_replied_at: datetime | None = None
    #: The latest reply (after reopening, the second).
    replied_at: datetime | None = None
    closed_at: datetime | None = None
    rating: int | None = None
    reopened: bool = False
    merged_into: str = ""
    linked_case_number: str = ""
    linked_tender_number: str = ""
    link_status: LinkStatus = LinkStatus.UNCHECKED
    link_item_code: str = ""
    link_department_code: str = ""
    tender_link_status: LinkStatus = LinkStatus.UNCHECKED
    tender_link_category: str = ""
    tender_link_department_code: str = ""


@dataclass(frozen=True)
class DepartmentMetrics:
    """The figures of one lead department ('' for the whole center)."""

    department_code: str
    #: Cases of the period, merged duplicates left out.
    cases: int
    #: Merged duplicates of the period, left out of every figure.
    merged_duplicates: int
    completion: Rate
    sign_for_on_time: Rate
    reply_on_time: Rate
    satisfaction: Rate
    excellent: Rate


@dataclass(frozen=True)
class LinkedCount:
    """Complaints of the period linked to approval cases or trades, by what the link found.

    For approval cases found, ``item_code`` and ``department_code`` are the
    approval case's item and deciding department (the complaint-rate input of
    the three-zeros report); for tenders found, ``category`` is the tender's
    category of trade and ``department_code`` the tenderer's department;
    otherwise they are ''.
    """

    kind: LinkKind
    status: LinkStatus
    item_code: str
    department_code: str
    cases: int
    category: str = ""


@dataclass(frozen=True)
class ComplaintMetrics:
    period_start: datetime
    period_end: datetime
    as_of: datetime
    overall: DepartmentMetrics
    #: One entry per lead department with cases (or merged duplicates) in the period, by code.
    departments: tuple[DepartmentMetrics, ...]
    linked: tuple[LinkedCount, ...]


def check_period(start: datetime, end: datetime) -> None:
    """Refuse (INVALID_ARGUMENT) a period that ends before it starts, is empty or is longer
    than a leap year."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("a period's instants must carry a time zone")
    if end <= start:
        raise InvalidArgument(
            f"the period must end after it starts ({start.isoformat()} to {end.isoformat()})",
            violations=[FieldViolation("period_end", "must be after period_start")])
    if end - start > LONGEST_PERIOD:
        raise InvalidArgument(
            "the period must be at most 366 days long: ask for each year apart",
            violations=[FieldViolation("period_end", "at most 366 days after period_start")])


def is_merged_duplicate(record: CaseRecord) -> bool:
    """A duplicate merged into its primary (并单): the primary stands for it."""
    return bool(record.merged_into) or record.status == "merged"


def in_period(record: CaseRecord, start: datetime, end: datetime) -> bool:
    return start <= record.received_at < end


def _judged_on_time(done_at: datetime | None, due: datetime | None, as_of: datetime,
                    ) -> bool | None:
    """True on time, False late, None not judged (no due instant, or still within it)."""
    if due is None:
        return None
    if done_at is not None:
        return done_at <= due
    return False if as_of > due else None


def _reply_verdict(record: CaseRecord, as_of: datetime) -> bool | None:
    if record.reopened:
        # reply_due is the reopening's: the reply that answers it is the one after reopening,
        # given once the case is replied (or closed) again.
        again = record.replied_at if record.status in COMPLETED_STATUSES else None
        return _judged_on_time(again, record.reply_due, as_of)
    return _judged_on_time(record.first_replied_at, record.reply_due, as_of)


def _rate_of(verdicts: Iterable[bool | None]) -> Rate:
    judged = [v for v in verdicts if v is not None]
    return Rate(sum(judged), len(judged))


def department_metrics(department_code: str, records: Iterable[CaseRecord], *,
                       as_of: datetime) -> DepartmentMetrics:
    """The figures of ``records`` (cases of one period), merged duplicates left out."""
    every = list(records)
    counted = [r for r in every if not is_merged_duplicate(r)]
    rated = [r.rating for r in counted if r.rating is not None]
    return DepartmentMetrics(
        department_code=department_code, cases=len(counted),
        merged_duplicates=len(every) - len(counted),
        completion=Rate(sum(r.status in COMPLETED_STATUSES for r in counted), len(counted)),
        sign_for_on_time=_rate_of(_judged_on_time(r.signed_for_at, r.sign_for_due, as_of)
                                  for r in counted),
        reply_on_time=_rate_of(_reply_verdict(r, as_of) for r in counted),
        satisfaction=Rate(sum(r in SATISFIED_RATINGS for r in rated), len(rated)),
        excellent=Rate(sum(r == EXCELLENT_RATING for r in rated), len(rated)))


def linked_counts(records: Iterable[CaseRecord]) -> tuple[LinkedCount, ...]:
    """Linked complaints (merged duplicates left out) by kind, status, item or category, and
    department."""
    counts: Counter[tuple[LinkKind, LinkStatus, str, str, str]] = Counter()
    for record in records:
        if is_merged_duplicate(record):
            continue
        if record.linked_case_number:
            found = record.link_status is LinkStatus.FOUND
            counts[(LinkKind.APPROVAL, record.link_status,
                    record.link_item_code if found else "",
                    record.link_department_code if found else "", "")] += 1
        if record.linked_tender_number:
            found = record.tender_link_status is LinkStatus.FOUND
            counts[(LinkKind.TENDER, record.tender_link_status, "",
                    record.tender_link_department_code if found else "",
                    record.tender_link_category if found else "")] += 1
    return tuple(LinkedCount(kind, status, item, department, cases, category)
                 for (kind, status, item, department, category), cases
                 in sorted(counts.items()))


def complaint_metrics(records: Iterable[CaseRecord], *, start: datetime, end: datetime,
                      as_of: datetime, department_code: str = "") -> ComplaintMetrics:
    """The period's figures, overall and per lead department (only ``department_code``'s
    when given, and then "overall" is that department's too)."""
    check_period(start, end)
    chosen = [r for r in records if in_period(r, start, end)
              and (not department_code or r.department_code == department_code)]
    by_department: defaultdict[str, list[CaseRecord]] = defaultdict(list)
    for record in chosen:
        by_department[record.department_code].append(record)
    if department_code:
        by_department.setdefault(department_code, [])
    return ComplaintMetrics(
        period_start=start, period_end=end, as_of=as_of,
        overall=department_metrics("", chosen, as_of=as_of),
        departments=tuple(department_metrics(code, by_department[code], as_of=as_of)
                          for code in sorted(by_department)),
        linked=linked_counts(chosen))
