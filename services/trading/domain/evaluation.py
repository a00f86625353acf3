"""Electronic evaluation (DESIGN.md §2, issue #9 item 4): the committee's composition and
the two evaluation methods, as pure functions. Free of any framework; the rules in words
are docs/tenders.md ("Evaluation").

**The committee.** At least 5 members, an odd number, at least two thirds of them
experts drawn from the pool; the rest are the tenderer's representatives.

**The bid document.** A valid bid's document (opened with its revealed key) is a JSON
object with ``price_fen``, the bid price in fen, a whole number from 1 to
``MAX_PRICE_FEN`` (``read_bid_price``).

**Score sheets.** Each member gives one sheet per valid bid: whether the bid meets the
tender's requirements (``compliant``) and, for comprehensive scoring, a technical and a
business score, whole numbers from 0 to 100. A bid *qualifies* when more than half of
the committee found it compliant (the committee is odd: no tie).

**Lowest evaluated price.** The qualified bids by price, lowest first.

**Comprehensive scoring.** Weights for price, technical and business, whole numbers
summing to 100. For a qualified bid:

- price points = W_price × (lowest qualified price) / (the bid's price), so the
  lowest qualified price earns the whole price weight;
- technical points = W_technical × (mean of the members' technical scores) / 100;
- business points = W_business × (mean of the members' business scores) / 100;
- total = their sum.

Computed with exact fractions; rounded (half up) to 2 decimals only for display,
never for the ranking. Ranked by total, highest first.

**Ties** (both methods), in this order: the lower price first, then the higher
technical mean (comprehensive scoring), then the bidder id in ascending order —
a fixed, published order that nobody chooses at the time.

**Candidates**: the first ``CANDIDATES`` (3) of the ranking, or all of it when shorter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from kernel.errors import FailedPrecondition, FieldViolation, InvalidArgument

MIN_COMMITTEE = 5
MAX_COMMITTEE = 25
#: Candidates published from the ranking.
CANDIDATES = 3
MIN_SCORE = 0
MAX_SCORE = 100
#: A bid price above 10^12 yuan is a typing mistake.
MAX_PRICE_FEN = 10**14


class Method(StrEnum):
    LOWEST_PRICE = "lowest_price"
    COMPREHENSIVE = "comprehensive"


#: The method of a tender that did not choose one at its announcement.
DEFAULT_METHOD = Method.LOWEST_PRICE


@dataclass(frozen=True)
class Weights:
    """Comprehensive scoring's weights, in points out of 100."""

    price: int
    technical: int
    business: int

    def as_dict(self) -> dict[str, int]:
        return {"price": self.price, "technical": self.technical, "business": self.business}


#: The weights of a comprehensive-scoring tender that did not give its own.
DEFAULT_WEIGHTS = Weights(price=30, technical=60, business=10)


def check_weights(weights: Weights) -> None:
    """Each weight a whole number from 0 to 100, together 100; INVALID_ARGUMENT otherwise."""
    parts = weights.as_dict()
    for name, value in parts.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise InvalidArgument(f"the {name} weight is a whole number from 0 to 100",
                                  violations=[FieldViolation(f"weights.{name}", "0 to 100")])
    if sum(parts.values()) != 100:
        raise InvalidArgument(f"the weights sum to {sum(parts.values())}, not 100",
                              violations=[FieldViolation("weights", "must sum to 100")])
    if weights.price == 0:
        raise InvalidArgument("comprehensive scoring weighs the price (a weight above 0)",
                              violations=[FieldViolation("weights.price", "above 0")])


@dataclass(frozen=True)
class CommitteeShape:
    size: int
    experts: int
    representatives: int


def committee_shape(*, size: int, representatives: int) -> CommitteeShape:
    """The committee of ``size`` members, ``representatives`` of them the tenderer's.

    At least ``MIN_COMMITTEE`` members, odd, at most ``MAX_COMMITTEE``, and
    experts at least two thirds of the members (3 × experts ≥ 2 × size).
    """
    if isinstance(size, bool) or not MIN_COMMITTEE <= size <= MAX_COMMITTEE:
        raise InvalidArgument(
            f"a committee has {MIN_COMMITTEE} to {MAX_COMMITTEE} members, not {size}",
            violations=[FieldViolation("committee_size", f"{MIN_COMMITTEE} to {MAX_COMMITTEE}")])
    if size % 2 == 0:
        raise InvalidArgument(f"a committee has an odd number of members, not {size}",
                              violations=[FieldViolation("committee_size", "odd")])
    if representatives < 0:
        raise InvalidArgument("representatives cannot be negative",
                              violations=[FieldViolation("representatives", "0 or more")])
    experts = size - representatives
    if 3 * experts < 2 * size:
        raise InvalidArgument(
            f"experts are at least two thirds of the committee: {experts} of {size} is too few "
            f"(at most {size // 3} representatives)",
            violations=[FieldViolation("representatives", f"at most {size // 3}")])
    return CommitteeShape(size, experts, representatives)


def read_bid_price(document: bytes) -> int:
    """The price (fen) a bid document states; InvalidArgument when it states none."""
    try:
        parsed = json.loads(document.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise InvalidArgument("the bid document is not a JSON object") from error
    if not isinstance(parsed, dict):
        raise InvalidArgument("the bid document is not a JSON object")
    price = parsed.get("price_fen")
    if isinstance(price, bool) or not isinstance(price, int) or not 1 <= price <= MAX_PRICE_FEN:
        raise InvalidArgument(f"the bid document's price_fen is a whole number from 1 to "
                              f"{MAX_PRICE_FEN}")
    return price


def stated_price(document: bytes) -> int | None:
    """The price ``read_bid_price`` reads from an opened bid's document; None when it
    states none (the bid is then not ranked)."""
    try:
        return read_bid_price(document)
    except InvalidArgument:
        return None


def price_in(parsed: object) -> int | None:
    """``stated_price`` of a document already parsed (its JSON value; None when it is not
    JSON in UTF-8): the object's ``price_fen`` when a whole number from 1 to
    ``MAX_PRICE_FEN``, else None."""
    price = parsed.get("price_fen") if isinstance(parsed, dict) else None
    if isinstance(price, bool) or not isinstance(price, int) or not 1 <= price <= MAX_PRICE_FEN:
        return None
    return price


@dataclass(frozen=True)
class ScoreSheet:
    """One member's judgement of one bid."""

    member_id: str
    bidder_id: str
    compliant: bool
    technical: int = 0
    business: int = 0


def check_sheet(sheet: ScoreSheet, *, method: Method) -> None:
    """Scores in range for the method; INVALID_ARGUMENT naming the field otherwise.

    Lowest evaluated price takes no scores (both 0): only compliance is judged.
    """
    for name in ("technical", "business"):
        value = getattr(sheet, name)
        if method == Method.LOWEST_PRICE:
            if value != 0:
                raise InvalidArgument(f"lowest evaluated price takes no {name} score",
                                      violations=[FieldViolation(name, "must be 0")])
        elif isinstance(value, bool) or not MIN_SCORE <= value <= MAX_SCORE:
            raise InvalidArgument(
                f"the {name} score is a whole number from {MIN_SCORE} to {MAX_SCORE}, "
                f"not {value}", violations=[FieldViolation(name, f"{MIN_SCORE} to {MAX_SCORE}")])


@dataclass(frozen=True)
class RankedBid:
    rank: int
    bidder_id: str
    price_fen: int
    #: Comprehensive scoring's points (exact); zero for lowest evaluated price.
    price_points: Fraction = Fraction(0)
    technical_points: Fraction = Fraction(0)
    business_points: Fraction = Fraction(0)

    @property
    def total(self) -> Fraction:
        if not (self.technical_points or self.business_points):
            # Lowest evaluated price (all zero), or no other points: no Fraction sums.
            return self.price_points
        return self.price_points + self.technical_points + self.business_points

    def as_dict(self) -> dict[str, object]:
        if not (self.price_points or self.technical_points or self.business_points):
            # Lowest evaluated price: no points, each shown as what shown(0) gives.
            return {"rank": self.rank, "bidder_id": self.bidder_id,
                    "price_fen": self.price_fen, "price_points": _NO_POINTS,
                    "technical_points": _NO_POINTS, "business_points": _NO_POINTS,
                    "total": _NO_POINTS}
        return {"rank": self.rank, "bidder_id": self.bidder_id, "price_fen": self.price_fen,
                "price_points": shown(self.price_points),
                "technical_points": shown(self.technical_points),
                "business_points": shown(self.business_points), "total": shown(self.total)}


@dataclass(frozen=True)
class Evaluation:
    method: Method
    #: The qualified bids in rank order.
    ranking: tuple[RankedBid, ...]
    #: The bids that did not qualify (ids, sorted).
    disqualified: tuple[str, ...]

    @property
    def candidates(self) -> tuple[str, ...]:
        return tuple(r.bidder_id for r in self.ranking[:CANDIDATES])


def shown(value: Fraction) -> str:
    """A fraction as a decimal with 2 places, rounded half up (away from zero on a tie;
    for display only), in exact integer arithmetic: Decimal's result for every value
    within its 28 digits, at a fraction of its cost (a ranking shows 4 per bid)."""
    if value.denominator == 1:
        # A whole number (lowest evaluated price's zero points): nothing to round.
        return f"{value.numerator}.00"
    hundredths, rest = divmod(abs(value.numerator) * 100, value.denominator)
    if 2 * rest >= value.denominator:
        hundredths += 1
    sign = "-" if value.numerator < 0 else ""
    return f"{sign}{hundredths // 100}.{hundredths % 100:02d}"


#: Zero points as shown.
_NO_POINTS = shown(Fraction(0))


def price_points(*, price_fen: int, lowest_fen: int, weight: int) -> Fraction:
    """W_price × lowest / price: the lowest qualified price earns the whole weight."""
    if price_fen < lowest_fen:
        raise ValueError("the lowest qualified price is the benchmark: no bid is below it")
    return Fraction(weight * lowest_fen, price_fen)


def _sheets_by_bid(sheets: Iterable[ScoreSheet], *, members: Sequence[str],
                   prices: Mapping[str, int]) -> dict[str, list[ScoreSheet]]:
    """Every member's sheet for every bid, exactly once; FailedPrecondition otherwise."""
    by_bid: dict[str, dict[str, ScoreSheet]] = {bidder: {} for bidder in prices}
    for sheet in sheets:
        if sheet.bidder_id not in by_bid:
            raise FailedPrecondition(f"{sheet.bidder_id} has no valid bid to score")
        if sheet.member_id not in members:
            raise FailedPrecondition(f"{sheet.member_id} is not on the committee")
        if sheet.member_id in by_bid[sheet.bidder_id]:
            raise FailedPrecondition(f"{sheet.member_id} scored {sheet.bidder_id} twice")
        by_bid[sheet.bidder_id][sheet.member_id] = sheet
    for bidder, given in by_bid.items():
        missing = [m for m in members if m not in given]
        if missing:
            raise FailedPrecondition(f"{bidder} is not scored yet by {', '.join(missing)}")
    return {bidder: list(given.values()) for bidder, given in by_bid.items()}


def evaluate(*, method: Method, prices: Mapping[str, int], sheets: Iterable[ScoreSheet],
             members: Sequence[str], weights: Weights | None = None) -> Evaluation:
    """Rank the valid bids (``prices``: bidder id → price) from every member's sheets.

    Every member must have scored every valid bid (FailedPrecondition otherwise).
    """
    if len(members) < MIN_COMMITTEE or len(members) % 2 == 0 or len(set(members)) != len(
            members):
        raise FailedPrecondition(f"a committee of {len(members)} members cannot evaluate")
    if method == Method.COMPREHENSIVE:
        check_weights(weights or DEFAULT_WEIGHTS)
    sheets = list(sheets)
    for sheet in sheets:
        check_sheet(sheet, method=method)
    by_bid = _sheets_by_bid(sheets, members=members, prices=prices)
    return rank(method=method, prices=prices, tallies={b: tally(given) for b, given in
                                                       by_bid.items()},
                members=len(members), weights=weights)


@dataclass(frozen=True)
class Tally:
    """A bid's score sheets summed: how many, how many found it compliant, and the sums of
    their technical and business scores (all the ranking reads of them)."""

    sheets: int
    compliant: int
    technical: int
    business: int


def tally(sheets: Sequence[ScoreSheet]) -> Tally:
    return Tally(len(sheets), sum(1 for s in sheets if s.compliant),
                 sum(s.technical for s in sheets), sum(s.business for s in sheets))


def rank(*, method: Method, prices: Mapping[str, int], tallies: Mapping[str, Tally],
         members: int, weights: Weights | None = None) -> Evaluation:
    """The ranking ``evaluate`` gives, from each valid bid's ``Tally`` (so a database can
    sum the sheets): each sheet is taken as checked when it was recorded (its scores in
    range, its member on the committee, one per member and bid); every bid must have one
    sheet per member (FailedPrecondition otherwise)."""
    if members < MIN_COMMITTEE or members % 2 == 0:
        raise FailedPrecondition(f"a committee of {members} members cannot evaluate")
    if method == Method.COMPREHENSIVE:
        weights = weights or DEFAULT_WEIGHTS
        check_weights(weights)
    for bidder in tallies:
        if bidder not in prices:
            raise FailedPrecondition(f"{bidder} has no valid bid to score")
    for bidder in prices:
        given = tallies.get(bidder)
        if given is None or given.sheets != members:
            raise FailedPrecondition(f"{bidder} is not scored yet by every member")
    # The committee is odd: more than half of it found the bid compliant, or not.
    qualified = sorted(b for b in prices if 2 * tallies[b].compliant > members)
    # A set to test against: 1,000 bids are not 1,000 passes over a list.
    passed = set(qualified)
    disqualified = tuple(sorted(b for b in prices if b not in passed))
    if not qualified:
        return Evaluation(method, (), disqualified)
    if method == Method.LOWEST_PRICE:
        order = sorted(qualified, key=lambda b: (prices[b], b))
        ranking = tuple(RankedBid(i + 1, b, prices[b]) for i, b in enumerate(order))
        return Evaluation(method, ranking, disqualified)
    assert weights is not None
    lowest = min(prices[b] for b in qualified)
    scored = []
    for bidder in qualified:
        given = tallies[bidder]
        technical_mean = Fraction(given.technical, members)
        business_mean = Fraction(given.business, members)
        scored.append((bidder, technical_mean,
                       price_points(price_fen=prices[bidder], lowest_fen=lowest,
                                    weight=weights.price),
                       weights.technical * technical_mean / 100,
                       weights.business * business_mean / 100))
    scored.sort(key=lambda s: (-(s[2] + s[3] + s[4]), prices[s[0]], -s[1], s[0]))
    ranking = tuple(RankedBid(i + 1, b, prices[b], p, t, u)
                    for i, (b, _, p, t, u) in enumerate(scored))
    return Evaluation(method, ranking, disqualified)
