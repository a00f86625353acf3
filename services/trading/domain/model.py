"""The trading directory (DESIGN.md §2), free of any framework.

Three things the platform needs before any trade starts: the catalogue of
what must enter the venue (进场交易目录), the tender agencies, and the pool
of evaluation experts committees are drawn from.

An expert's name is personal data: it lives on the ``Expert`` so that
trading officers can see it, but nothing here puts it in a message.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from kernel.errors import FieldViolation, InvalidArgument

TRADING_CATEGORIES = ("government_procurement", "construction", "land", "property_rights")

#: The specialties of the expert pool (评标专家专业分类); an expert is
#: registered, and committees are drawn, in these only.
EXPERT_SPECIALTIES = (
    "房屋建筑工程",
    "市政工程",
    "交通工程",
    "水利工程",
    "电气工程",
    "信息化工程",
    "园林绿化",
    "医疗设备",
    "土地估价",
    "资产评估",
    "财务会计",
    "法律",
)

MAX_SPECIALTIES = 5
EXPERT_ID_PATTERN = re.compile(r"^EX-[0-9]{4}$")


def _refuse(subject: str, problems: list[FieldViolation]) -> None:
    if problems:
        raise InvalidArgument(
            f"{subject} is not valid: "
            + "; ".join(f"{p.field} {p.description}" for p in problems),
            violations=problems)


def require_category(category: str) -> str:
    if category not in TRADING_CATEGORIES:
        raise InvalidArgument(
            f"category {category!r} is not one of {', '.join(TRADING_CATEGORIES)}",
            violations=[FieldViolation("category", "unknown trading category")])
    return category


def require_specialty(specialty: str) -> str:
    if specialty not in EXPERT_SPECIALTIES:
        raise InvalidArgument(
            f"specialty {specialty!r} is not a specialty of the expert pool; "
            f"known specialties: {'、'.join(EXPERT_SPECIALTIES)}",
            violations=[FieldViolation("specialty", "not a specialty of the expert pool")])
    return specialty


@dataclass(frozen=True)
class CatalogueEntry:
    """One line of the catalogue of what must enter the venue."""

    code: str
    category: str
    name: str
    #: The estimated value in fen from which a project must enter; 0: always.
    threshold_fen: int
    basis: str

    def __post_init__(self) -> None:
        problems: list[FieldViolation] = []
        if self.category not in TRADING_CATEGORIES:
            problems.append(FieldViolation("category", "unknown trading category"))
        if self.threshold_fen < 0:
            problems.append(FieldViolation("threshold_fen", "must not be negative"))
        _refuse(f"catalogue entry {self.code}", problems)


def entry_requiring_venue(entries: Iterable[CatalogueEntry], *, category: str,
                          estimated_value_fen: int) -> CatalogueEntry | None:
    """The entry that makes a project of ``category`` worth ``estimated_value_fen`` enter
    the venue, or None when no entry does.

    Thresholds are read as "以上", which in Chinese legal usage includes the
    amount itself, so a project worth exactly a threshold must enter. Where
    several entries apply, the highest threshold is the most specific rule;
    equal thresholds go to the lowest code so the answer never depends on
    storage order.
    """
    require_category(category)
    if estimated_value_fen < 0:
        raise InvalidArgument(
            "estimated_value_fen must not be negative",
            violations=[FieldViolation("estimated_value_fen", "must not be negative")])
    reached = [e for e in entries
               if e.category == category and e.threshold_fen <= estimated_value_fen]
    if not reached:
        return None
    return min(reached, key=lambda e: (-e.threshold_fen, e.code))


@dataclass(frozen=True)
class Agency:
    """A tender agency (招标代理机构)."""

    code: str
    name: str
    qualification: str


@dataclass(frozen=True)
class Expert:
    """One member of the expert pool."""

    id: str
    #: Personal data: returned to trading officers, never logged or audited.
    name: str
    specialties: tuple[str, ...]
    employer: str
    available: bool = True
    #: Why the expert may not be drawn; '' when available.
    unavailable_reason: str = ""

    def __post_init__(self) -> None:
        problems: list[FieldViolation] = []
        if not EXPERT_ID_PATTERN.fullmatch(self.id):
            problems.append(FieldViolation("id", "must look like EX-0001"))
        if not self.name.strip():
            problems.append(FieldViolation("name", "must not be blank"))
        if not self.employer.strip():
            problems.append(FieldViolation("employer", "must not be blank"))
        if not 1 <= len(self.specialties) <= MAX_SPECIALTIES:
            problems.append(FieldViolation(
                "specialties", f"must hold 1 to {MAX_SPECIALTIES} specialties"))
        if len(set(self.specialties)) != len(self.specialties):
            problems.append(FieldViolation("specialties", "must not repeat a specialty"))
        unknown = [s for s in self.specialties if s not in EXPERT_SPECIALTIES]
        if unknown:
            problems.append(FieldViolation(
                "specialties",
                f"{'、'.join(unknown)} not in the pool's specialties "
                f"({'、'.join(EXPERT_SPECIALTIES)})"))
        if self.available and self.unavailable_reason:
            problems.append(FieldViolation(
                "unavailable_reason", "must be empty while the expert is available"))
        if not self.available and not self.unavailable_reason.strip():
            problems.append(FieldViolation(
                "reason", "is required when the expert is made unavailable"))
        # Only the id is named: the message reaches logs.
        _refuse(f"expert {self.id}", problems)

    def with_availability(self, *, available: bool, reason: str) -> Expert:
        """The expert made available, or taken out of draws for ``reason``."""
        return replace(self, available=available,
                       unavailable_reason="" if available else reason.strip())


def eligible_experts(experts: Iterable[Expert], *, specialty: str,
                     excluded_employers: Iterable[str]) -> list[str]:
    """The ids, sorted, of the experts a committee of ``specialty`` may be drawn from.

    An expert is eligible when available, registered in the specialty and
    not employed by an excluded employer (a party to the trade: 回避).
    The sorted order is the published candidate list of a verifiable draw.
    """
    require_specialty(specialty)
    excluded = {e.strip() for e in excluded_employers}
    return sorted(e.id for e in experts
                  if e.available and specialty in e.specialties
                  and e.employer.strip() not in excluded)


def act_key(step: str, system: str, request: str) -> str:
    """The key an official's or a bidder's act is recorded under, once: its step and a
    digest of the calling system and its request id (or the statement's instant). A request
    id is the calling system's own, so another system's same id is another act."""
    digest = hashlib.sha256(f"{system}/{request}".encode()).hexdigest()[:40]
    return f"{step}/{digest}"
