"""How a ranking shows points: halves and whole numbers, exactly (evaluation.shown)."""

from __future__ import annotations

from fractions import Fraction

from services.trading.domain.evaluation import RankedBid, shown


def test_shown_rounds_halves_and_whole_numbers_exactly() -> None:
    # The whole-number shortcut must take only whole numbers: a half is no whole number.
    assert [shown(Fraction(n, 2)) for n in (1, -1, 3, -5)] == ["0.50", "-0.50", "1.50",
                                                               "-2.50"]
    assert [shown(Fraction(n)) for n in (0, 7, -3)] == ["0.00", "7.00", "-3.00"]
    # And a ranked bid with half points shows them as such.
    assert RankedBid(1, "BD-0001", 100, Fraction(1, 2)).as_dict()["total"] == "0.50"
