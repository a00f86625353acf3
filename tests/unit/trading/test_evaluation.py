"""The evaluation's maths and the committee's composition (services/trading/domain/
evaluation.py), on figures computed by hand."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest

from kernel.errors import FailedPrecondition, InvalidArgument
from services.trading.domain.evaluation import (
    CommitteeShape,
    Method,
    RankedBid,
    ScoreSheet,
    Tally,
    Weights,
    check_sheet,
    check_weights,
    committee_shape,
    evaluate,
    price_points,
    rank,
    read_bid_price,
    shown,
    stated_price,
    tally,
)

MEMBERS = ["EX-0001", "EX-0002", "EX-0003", "EX-0004", "RP-0001"]


def sheets(bidder: str, technical: list[int], business: list[int],
           compliant: list[bool] | None = None) -> list[ScoreSheet]:
    flags = compliant or [True] * len(MEMBERS)
    return [ScoreSheet(m, bidder, c, t, b)
            for m, c, t, b in zip(MEMBERS, flags, technical, business, strict=True)]


# ---- the committee -------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "representatives", "experts"),
                         [(5, 0, 5), (5, 1, 4), (7, 2, 5), (9, 3, 6), (25, 8, 17)])
def test_committees_of_at_least_five_odd_and_two_thirds_experts(
        size: int, representatives: int, experts: int) -> None:
    assert committee_shape(size=size, representatives=representatives) == CommitteeShape(
        size, experts, representatives)


@pytest.mark.parametrize(("size", "representatives", "field"), [
    (3, 0, "committee_size"), (4, 0, "committee_size"), (6, 0, "committee_size"),
    (27, 0, "committee_size"), (5, 2, "representatives"), (7, 3, "representatives"),
    (9, 4, "representatives"), (5, -1, "representatives")])
def test_committees_breaking_a_rule_are_refused_naming_the_field(
        size: int, representatives: int, field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        committee_shape(size=size, representatives=representatives)
    assert refused.value.violations[0].field == field


# ---- weights, sheets, bid documents --------------------------------------------------------

def test_weights_sum_to_one_hundred_and_weigh_the_price() -> None:
    check_weights(Weights(30, 60, 10))
    check_weights(Weights(100, 0, 0))
    for wrong in (Weights(30, 60, 9), Weights(30, 60, 11), Weights(0, 90, 10),
                  Weights(-10, 100, 10), Weights(101, 0, -1)):
        with pytest.raises(InvalidArgument):
            check_weights(wrong)


def test_scores_out_of_range_are_refused_naming_the_field() -> None:
    check_sheet(ScoreSheet("EX-0001", "BD-0001", True, 0, 100), method=Method.COMPREHENSIVE)
    for technical, business, field in ((101, 0, "technical"), (-1, 0, "technical"),
                                       (50, 101, "business"), (50, -5, "business")):
        with pytest.raises(InvalidArgument) as refused:
            check_sheet(ScoreSheet("EX-0001", "BD-0001", True, technical, business),
                        method=Method.COMPREHENSIVE)
        assert refused.value.violations[0].field == field
    with pytest.raises(InvalidArgument):
        check_sheet(ScoreSheet("EX-0001", "BD-0001", True, 50, 0), method=Method.LOWEST_PRICE)


def test_a_bid_document_states_its_price() -> None:
    assert read_bid_price(b'{"price_fen": 12345, "offer": "..."}') == 12345
    for wrong in (b"not json", b"[1]", b'{"price": 1}', b'{"price_fen": 0}',
                  b'{"price_fen": "100"}', b'{"price_fen": true}', b'{"price_fen": 1.5}',
                  b'{"price_fen": 100000000000001}', b"\xff\xfe",
                  # Nested deeper than the parser goes: RecursionError, no price either.
                  b"[" * 100_000 + b"]" * 100_000,
                  b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        with pytest.raises(InvalidArgument):
            read_bid_price(wrong)
        # What the opening records for the ranking: the same reading, None for no price.
        assert stated_price(wrong) is None
    assert stated_price(b'{"price_fen": 12345}') == 12345


def test_price_points_and_display_rounding() -> None:
    assert price_points(price_fen=125_000, lowest_fen=80_000, weight=30) == Fraction(96, 5)
    assert price_points(price_fen=80_000, lowest_fen=80_000, weight=30) == 30
    with pytest.raises(ValueError, match="benchmark"):
        price_points(price_fen=70_000, lowest_fen=80_000, weight=30)
    assert shown(Fraction(96, 5)) == "19.20"
    assert shown(Fraction(2, 3)) == "0.67"
    assert shown(Fraction(1, 200)) == "0.01"  # half up, not to even
    assert shown(Fraction(83)) == "83.00"


def test_shown_is_decimals_half_up_rounding() -> None:
    rng = random.Random(2026)
    values = [Fraction(0), Fraction(-1, 1000), Fraction(-1, 200), Fraction(1, 200),
              Fraction(-3, 200), Fraction(100), Fraction(99999, 1000)]
    values += [Fraction(rng.randint(-10**9, 10**9), rng.randint(1, 10**6))
               for _ in range(5000)]
    values += [Fraction(30 * rng.randint(1, 10**14), rng.randint(1, 10**14))
               for _ in range(2000)]
    for value in values:
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        assert shown(value) == str(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# ---- comprehensive scoring -----------------------------------------------------------------

def test_comprehensive_scoring_by_hand() -> None:
    # Weights 30/60/10. Qualified: A 100,000, B 80,000 (lowest), C 125,000.
    # D (50,000) is found compliant by 2 of 5: it does not qualify, nor set the benchmark.
    # A: price 30*80000/100000 = 24, technical mean 85 -> 51, business 80 -> 8: 83.
    # B: price 30, technical mean 60 -> 36, business 100 -> 10: 76.
    # C: price 30*80000/125000 = 19.2, technical mean 95 -> 57, business 50 -> 5: 81.2.
    prices = {"BD-000A": 100_000, "BD-000B": 80_000, "BD-000C": 125_000, "BD-000D": 50_000}
    given = (sheets("BD-000A", [90, 80, 85, 95, 75], [80] * 5)
             + sheets("BD-000B", [60, 70, 65, 55, 50], [100] * 5)
             + sheets("BD-000C", [100, 95, 90, 100, 90], [50] * 5)
             + sheets("BD-000D", [100] * 5, [100] * 5, [True, True, False, False, False]))
    result = evaluate(method=Method.COMPREHENSIVE, prices=prices, sheets=given,
                      members=MEMBERS, weights=Weights(30, 60, 10))
    assert [(r.rank, r.bidder_id, r.total) for r in result.ranking] == [
        (1, "BD-000A", 83), (2, "BD-000C", Fraction(406, 5)), (3, "BD-000B", 76)]
    assert result.disqualified == ("BD-000D",)
    assert result.candidates == ("BD-000A", "BD-000C", "BD-000B")
    c = result.ranking[1]
    assert (c.price_points, c.technical_points, c.business_points) == (
        Fraction(96, 5), Fraction(57), Fraction(5))
    assert c.as_dict() == {"rank": 2, "bidder_id": "BD-000C", "price_fen": 125_000,
                           "price_points": "19.20", "technical_points": "57.00",
                           "business_points": "5.00", "total": "81.20"}


def test_comprehensive_ties_go_to_the_lower_price_then_the_technical_mean_then_the_id() -> None:
    # Weights 40/40/20.
    # X: 100 (lowest) -> 40, technical 50 -> 20, business 100 -> 20: 80.
    # Y: 100 -> 40, technical 100 -> 40, business 0 -> 0: 80 (higher technical mean than X).
    # A: 200 -> 20, technical 100 -> 40, business 100 -> 20: 80 (dearer, lowest id).
    # W: as Y, a higher id.
    prices = {"BD-000X": 100, "BD-000Y": 100, "BD-000A": 200, "BD-000W": 100}
    given = (sheets("BD-000X", [50] * 5, [100] * 5) + sheets("BD-000Y", [100] * 5, [0] * 5)
             + sheets("BD-000A", [100] * 5, [100] * 5)
             + sheets("BD-000W", [100] * 5, [0] * 5))
    result = evaluate(method=Method.COMPREHENSIVE, prices=prices, sheets=given,
                      members=MEMBERS, weights=Weights(40, 40, 20))
    assert {r.total for r in result.ranking} == {80}
    assert [r.bidder_id for r in result.ranking] == ["BD-000W", "BD-000Y", "BD-000X",
                                                     "BD-000A"]
    assert result.candidates == ("BD-000W", "BD-000Y", "BD-000X")


def test_comprehensive_scoring_uses_exact_fractions_not_rounded_points() -> None:
    # Weights 100/0/0. P: 30,000 (lowest) -> 100. Q: 30,001 -> 99.9966..; R: 30,002 ->
    # 99.9933..: Q and R both show 100.00 and 99.99 is not a tie; exact order P, Q, R.
    prices = {"BD-000P": 30_000, "BD-000Q": 30_001, "BD-000R": 30_002}
    given = [s for b in prices for s in sheets(b, [0] * 5, [0] * 5)]
    result = evaluate(method=Method.COMPREHENSIVE, prices=prices, sheets=given,
                      members=MEMBERS, weights=Weights(100, 0, 0))
    assert [r.bidder_id for r in result.ranking] == ["BD-000P", "BD-000Q", "BD-000R"]
    assert shown(result.ranking[1].total) == "100.00"


# ---- lowest evaluated price ----------------------------------------------------------------

def test_lowest_evaluated_price_among_qualified_bids_ties_by_id() -> None:
    prices = {"BD-0001": 90_000, "BD-0002": 70_000, "BD-0003": 80_000, "BD-0004": 80_000,
              "BD-0005": 60_000}
    given = [s for b in prices for s in sheets(
        b, [0] * 5, [0] * 5,
        [False, False, False, True, True] if b == "BD-0005" else None)]
    result = evaluate(method=Method.LOWEST_PRICE, prices=prices, sheets=given,
                      members=MEMBERS)
    assert [(r.rank, r.bidder_id) for r in result.ranking] == [
        (1, "BD-0002"), (2, "BD-0003"), (3, "BD-0004"), (4, "BD-0001")]
    assert result.candidates == ("BD-0002", "BD-0003", "BD-0004")
    assert result.disqualified == ("BD-0005",)


def test_a_majority_of_the_committee_qualifies_a_bid() -> None:
    prices = {"BD-0001": 100, "BD-0002": 200}
    given = (sheets("BD-0001", [0] * 5, [0] * 5, [True, True, True, False, False])
             + sheets("BD-0002", [0] * 5, [0] * 5, [True, True, False, False, False]))
    result = evaluate(method=Method.LOWEST_PRICE, prices=prices, sheets=given,
                      members=MEMBERS)
    assert result.candidates == ("BD-0001",)
    assert result.disqualified == ("BD-0002",)


def test_no_qualified_bid_gives_no_candidates() -> None:
    prices = {"BD-0001": 100}
    given = sheets("BD-0001", [0] * 5, [0] * 5, [False] * 5)
    result = evaluate(method=Method.LOWEST_PRICE, prices=prices, sheets=given,
                      members=MEMBERS)
    assert result.ranking == () and result.candidates == ()


# ---- the sheets must be complete -----------------------------------------------------------

def test_evaluation_waits_for_every_member_on_every_bid() -> None:
    prices = {"BD-0001": 100, "BD-0002": 200}
    complete = sheets("BD-0001", [0] * 5, [0] * 5) + sheets("BD-0002", [0] * 5, [0] * 5)
    with pytest.raises(FailedPrecondition, match="not scored yet by RP-0001"):
        evaluate(method=Method.LOWEST_PRICE, prices=prices, sheets=complete[:-1],
                 members=MEMBERS)
    with pytest.raises(FailedPrecondition, match="twice"):
        evaluate(method=Method.LOWEST_PRICE, prices=prices,
                 sheets=[*complete, complete[0]], members=MEMBERS)
    with pytest.raises(FailedPrecondition, match="not on the committee"):
        evaluate(method=Method.LOWEST_PRICE, prices=prices,
                 sheets=[*complete, ScoreSheet("EX-9999", "BD-0001", True)],
                 members=MEMBERS)
    with pytest.raises(FailedPrecondition, match="no valid bid"):
        evaluate(method=Method.LOWEST_PRICE, prices=prices,
                 sheets=[*complete, ScoreSheet("EX-0001", "BD-0009", True)],
                 members=MEMBERS)
    with pytest.raises(FailedPrecondition, match="committee of 4"):
        evaluate(method=Method.LOWEST_PRICE, prices=prices, sheets=complete,
                 members=MEMBERS[:4])
    with pytest.raises(InvalidArgument):
        evaluate(method=Method.COMPREHENSIVE, prices=prices,
                 sheets=[*complete[:-1], ScoreSheet("RP-0001", "BD-0002", True, 101, 0)],
                 members=MEMBERS)


def test_ranking_from_tallies_is_the_ranking_from_the_sheets() -> None:
    """What the service ranks from (the database's sums per bid) gives evaluate's result."""
    rng = random.Random(9)
    for _ in range(300):
        members = MEMBERS if rng.random() < 0.5 else [*MEMBERS, "EX-0005", "EX-0006"]
        bidders = [f"BD-{n:04d}" for n in range(rng.randint(1, 12))]
        # Few distinct prices, so that ties happen.
        prices = {b: rng.choice([80_000, 100_000, 125_000, 99_999]) for b in bidders}
        method = rng.choice([Method.LOWEST_PRICE, Method.COMPREHENSIVE])
        weights = Weights(30, 60, 10) if rng.random() < 0.5 else Weights(50, 25, 25)
        given = [ScoreSheet(m, b, rng.random() < 0.7,
                            *((rng.choice([0, 50, 100, rng.randint(0, 100)]),
                               rng.randint(0, 100)) if method == Method.COMPREHENSIVE
                              else (0, 0)))
                 for b in bidders for m in members]
        expected = evaluate(method=method, prices=prices, sheets=given, members=members,
                            weights=weights)
        tallies = {b: tally([s for s in given if s.bidder_id == b]) for b in bidders}
        assert rank(method=method, prices=prices, tallies=tallies, members=len(members),
                    weights=weights) == expected


def test_ranking_from_tallies_refuses_an_incomplete_or_stray_tally() -> None:
    prices = {"BD-0001": 100, "BD-0002": 200, "BD-0003": 300}
    whole = {b: Tally(5, 5, 0, 0) for b in prices}
    assert rank(method=Method.LOWEST_PRICE, prices=prices, tallies=whole,
                members=5).candidates == ("BD-0001", "BD-0002", "BD-0003")
    for tallies, members in (({**whole, "BD-0002": Tally(4, 4, 0, 0)}, 5),
                             ({k: v for k, v in whole.items() if k != "BD-0003"}, 5),
                             ({**whole, "BD-0009": Tally(5, 5, 0, 0)}, 5),
                             (whole, 4)):
        with pytest.raises(FailedPrecondition):
            rank(method=Method.LOWEST_PRICE, prices=prices, tallies=tallies, members=members)


def test_a_ranked_bid_shows_its_points_alike_on_either_path() -> None:
    # Lowest evaluated price's bids have no points: shown as shown(0) gives them.
    plain = RankedBid(1, "BD-0001", 80_000)
    assert plain.as_dict() == {"rank": 1, "bidder_id": "BD-0001", "price_fen": 80_000,
                               "price_points": "0.00", "technical_points": "0.00",
                               "business_points": "0.00", "total": "0.00"}
    assert plain.total == 0 and shown(Fraction(0)) == "0.00" and shown(Fraction(-3)) == "-3.00"
    scored = RankedBid(2, "BD-0002", 100_000, Fraction(24), Fraction(0), Fraction(2, 3))
    assert scored.total == Fraction(74, 3)
    assert scored.as_dict()["total"] == "24.67" and scored.as_dict()["price_points"] == "24.00"
    only_price = RankedBid(3, "BD-0003", 125_000, Fraction(96, 5))
    assert only_price.total == Fraction(96, 5) and only_price.as_dict()["total"] == "19.20"
